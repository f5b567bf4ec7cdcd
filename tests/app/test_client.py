"""The app's API driven by gradio_client: a whole turn, measured; a follow-up; the rating; login."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf

from tools.analysis import band_energy_change_db
from tools.export import parse_eq_text
from tools.loudness import integrated_lufs


def _read(path) -> tuple[np.ndarray, int]:
    samples, rate = sf.read(path, dtype="float32", always_2d=True)
    return samples.T, rate


def _texts(chat: list[dict]) -> list[str]:
    """Message texts from the Chatbot value as the client returns it (content: str or [{type, text}])."""
    out = []
    for message in chat:
        content = message["content"]
        if isinstance(content, list):
            content = " ".join(part.get("text", "") for part in content if isinstance(part, dict))
        out.append(str(content))
    return out


def test_client_turn_lowers_presence_and_follow_up_goes_further(sense_app, excerpt):
    """"less harsh" through /chat: the returned audio has measurably less 2–5 kHz energy; "more" lowers it
    further; the EQ downloads parse back; 👍 through /rate_up writes the preference store."""
    from gradio_client import Client, handle_file

    web, url = sense_app
    client = Client(url, verbose=False)
    chat, _, _, original, processed, plot, trace, downloads, rating, *_variants = client.predict(
        "less harsh", handle_file(str(excerpt)), api_name="/chat")
    texts = _texts(chat)
    assert processed and Path(processed).is_file(), texts[-2:]
    assert Path(plot).stat().st_size > 10_000
    source, rate = _read(excerpt)
    out, out_rate = _read(processed)
    assert out_rate == rate and out.shape == source.shape
    presence = band_energy_change_db(source, out, rate)["presence"]
    print(f"\ngradio_client 'less harsh': presence (2-5 kHz) change {presence:+.2f} dB")
    assert presence < -1.0
    assert abs(integrated_lufs(out, rate) - integrated_lufs(source, rate)) <= 0.5  # loudness-matched A/B
    assert any("harsh" in t for t in texts) and any("Tool trace" in t or "Plan" in t for t in texts)
    assert trace["plan"][0]["tool"] == "equalize" and all(c["ok"] for c in trace["checks"])
    assert "/" not in trace["files"]["audio"]  # the page never sees server paths
    names = sorted(Path(p).name for p in downloads)
    assert names == sorted(["ParametricEQ.txt", "config.txt", Path(processed).name, Path(processed).with_suffix(".json").name])
    public_trace = Path(next(p for p in downloads if p.endswith(".json"))).read_text()
    assert str(web.root) not in public_trace and '"preference_record_id"' in public_trace
    for name in ("config.txt", "ParametricEQ.txt"):
        parsed = parse_eq_text(Path(next(p for p in downloads if Path(p).name == name)).read_text())
        assert len(parsed.filters) == len(trace["plan"][0]["args"]["filters"]) and parsed.graphic is None
        assert parsed.preamp_db <= 0.0

    chat2, _, _, _, processed2, _, trace2, *_ = client.predict("more", None, api_name="/chat")
    more, _ = _read(processed2)
    presence2 = band_energy_change_db(source, more, rate)["presence"]
    print(f"gradio_client 'more': presence change {presence2:+.2f} dB")
    assert presence2 < presence - 0.5
    assert trace2["intent"]["follow_up"] == "more"

    message = client.predict(api_name="/rate_up")
    record_id = trace2["preference_record_id"]
    assert f"#{record_id}" in message
    session = next(s for s in web.sessions.values() if s.result and s.result["record_id"] == record_id)
    assert web.rt.prefs.get(session.user, record_id).rating == 1
    assert session.user.startswith("web-")  # anonymous: one user per session


def test_login_makes_preferences_per_user(rt_rules, excerpt, tmp_path):
    """With SENSE_APP_PASSWORD the page asks for a login; ratings go to that user's preferences."""
    from gradio_client import Client, handle_file

    from webui.bench import free_port
    from webui.chat import SenseApp
    from webui.server import launch

    web = SenseApp(rt_rules, sessions_root=tmp_path / "sessions")
    port = free_port()
    demo = launch(web, port=port, block=False, quiet=True, auth=("alice", "s3cret"))
    url = f"http://127.0.0.1:{port}/"
    try:
        with pytest.raises(Exception):
            Client(url, verbose=False)  # no login, no API
        with pytest.raises(Exception):
            Client(url, auth=("alice", "wrong"), verbose=False)  # a wrong password neither
        client = Client(url, auth=("alice", "s3cret"), verbose=False)
        trace = client.predict("warmer", handle_file(str(excerpt)), api_name="/chat")[6]
        client.predict(api_name="/rate_up")
        record = web.rt.prefs.get("alice", trace["preference_record_id"])
        assert record.rating == 1 and record.request == "warmer"
        result = next(iter(web.sessions.values())).result["audio"]
        file_url = f"{url}gradio_api/file={result}"
        assert httpx.get(file_url, timeout=30).status_code in (401, 403)  # files need the login too
        login = httpx.post(f"{url}login", data={"username": "alice", "password": "s3cret"}, timeout=30)
        assert httpx.get(file_url, cookies=login.cookies, timeout=30).status_code == 200
    finally:
        demo.close()


def test_auth_from_env(monkeypatch):
    from webui.server import auth_from_env

    monkeypatch.delenv("SENSE_APP_PASSWORD", raising=False)
    assert auth_from_env() is None
    monkeypatch.setenv("SENSE_APP_PASSWORD", "pw")
    monkeypatch.delenv("SENSE_APP_USER", raising=False)
    assert auth_from_env() == ("sense", "pw")
    monkeypatch.setenv("SENSE_APP_USER", "bob")
    assert auth_from_env() == ("bob", "pw")


def test_app_py_is_the_entry_point():
    """``python app.py`` stays the command (the Makefile runs it) and re-exports the webui names."""
    import app
    import webui.bench
    import webui.chat
    import webui.server

    assert app.SenseApp is webui.chat.SenseApp and app.launch is webui.server.launch
    assert app.free_port is webui.bench.free_port and callable(app.main)
    with pytest.raises(SystemExit) as exit_:
        app.main(["--help"])
    assert exit_.value.code == 0
