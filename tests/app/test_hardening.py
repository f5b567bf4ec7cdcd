"""The web app hardened: localhost by default, session isolation under concurrent sessions, file-route
attacks refused, over-limit uploads refused, idle sessions expire (the full run: ``python -m webui.loadtest``)."""

from __future__ import annotations

import inspect
import os
import socket
import time
from urllib.parse import urlparse

import numpy as np
import pytest
import soundfile as sf

from webui.session import MB, SessionStore


def _non_loopback_address() -> str | None:
    """An address of this machine other than 127.0.0.1 (None when it has none)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # no packet is sent; this only picks the outgoing interface
            address = probe.getsockname()[0]
    except OSError:
        return None
    return None if address.startswith("127.") else address


def test_default_host_is_localhost(sense_app):
    import app
    from webui.server import launch

    assert app.build_parser().parse_args([]).host == "127.0.0.1"
    assert inspect.signature(launch).parameters["host"].default == "127.0.0.1"
    _, url = sense_app
    port = urlparse(url).port
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass  # served on loopback
    other = _non_loopback_address()
    if other is None:
        pytest.skip("this machine has no address besides loopback to try")
    with pytest.raises(OSError):  # and not on the machine's other interface
        socket.create_connection((other, port), timeout=5).close()


def test_concurrent_sessions_are_isolated_and_attacks_refused(rt_rules, tmp_path):
    """3 client sessions at once, 2 turns each: every turn plays, 0 leaks (folders, chats, ids, preferences),
    every file-route attack refused (absolute, ../ plain and encoded, directories, symlinks, guessed ids)
    while each session's own result is served, and another session's file as input is refused."""
    from webui.loadtest import run_load

    report = run_load(rt_rules, tmp_path, sessions=3, turns=2, clip_s=5.0)
    print("\n" + report.text())
    assert report.turns_ok == 6 and report.turns_failed == 0
    assert report.leaks == []
    kinds = {f.check: 0 for f in report.findings}
    for f in report.findings:
        kinds[f.check] += 1
    assert kinds["own result served (control)"] == 3
    assert kinds["file route refuses"] == 3 * 10  # 10 attack paths per session, each plain and URL-encoded
    assert kinds["another session's file as input refused"] == 1
    assert kinds["preferences hold only its own requests"] == 3
    assert kinds["session folder holds only its own files"] >= 3 * 4  # upload, 2 results, their exports
    assert 0 < report.send_to_playable["p50"] <= report.send_to_playable["p95"]


def test_over_limit_upload_is_refused(sense_app, tmp_path):
    """A 7 MB WAV against the 6 MB limit: Gradio refuses it before the app sees it; nothing is kept."""
    from gradio_client import Client, handle_file

    web, url = sense_app
    big = tmp_path / "too-big.wav"
    rate = 44100
    sf.write(big, np.zeros((int(7 * MB / 2) + rate, 1), dtype=np.int16), rate, subtype="PCM_16")
    assert big.stat().st_size > 7 * MB
    client = Client(url, verbose=False)
    try:
        chat = client.predict("warmer", handle_file(str(big)), api_name="/chat")[0]
        answer = str(chat[-1]["content"])
        assert "limit" in answer, answer
    except Exception as exc:  # noqa: BLE001 - Gradio's own refusal (HTTP 413)
        assert "size" in str(exc).lower() or "413" in str(exc), exc
    assert not any(p.name.startswith("too-big") for p in web.root.rglob("*"))


def test_idle_sessions_expire_with_their_folders(tmp_path):
    dropped = []
    store = SessionStore(tmp_path / "sessions", "hi", ttl_s=60, on_drop=dropped.append)
    idle, active = store.get(None, "page-1"), store.get(None, "page-2")
    for s in (idle, active):
        (s.folder / "song.wav").write_bytes(b"x")
    idle.last_active -= 61
    assert store.expire() == [idle.id]
    assert not idle.folder.exists() and idle.id not in store.sessions and dropped == [idle]
    assert (active.folder / "song.wav").exists()
    assert store.get(None, "page-1").id != idle.id  # the page gets a fresh session
    # left-overs of a stopped server: only folders of no live session, older than the limit
    old, fresh = tmp_path / "sessions" / ("0" * 32), tmp_path / "sessions" / ("f" * 32)
    old.mkdir()
    fresh.mkdir()
    two_days_ago = time.time() - 2 * 86400
    os.utime(old, (two_days_ago, two_days_ago))
    os.utime(active.folder, (two_days_ago, two_days_ago))
    assert store.remove_stale(max_age_s=3600) == [old]
    assert fresh.exists() and active.folder.exists()


def test_expired_session_loses_its_conversation(rt_rules, tmp_path, excerpt):
    from webui.chat import SenseApp

    web = SenseApp(rt_rules, sessions_root=tmp_path / "sessions", session_ttl_s=30)
    session = None
    for out in web.turn("warmer", str(excerpt), None, None, lambda *a, **k: None):
        session = out[-1]
    assert session.result is not None and web.engine.conversation(session.thread).settings is not None
    session.last_active -= 31
    assert web.store.expire() == [session.id]
    assert not session.folder.exists() and web.engine.conversation(session.thread).settings is None


def test_a_file_of_another_session_is_not_adopted(rt_rules, tmp_path):
    """Defence in depth behind Gradio's own check (it accepts only files uploaded by a user as inputs):
    a path in another session's folder is refused, one in the session's own folder is fine."""
    from webui.chat import SenseApp

    web = SenseApp(rt_rules, sessions_root=tmp_path / "sessions")
    a, b = web.store.get(None, "page-a"), web.store.get(None, "page-b")
    theirs = b.folder / "secret-sense.wav"
    sf.write(theirs, np.zeros((4410, 1), dtype=np.float32), 44100)
    for path in (theirs, a.folder / ".." / b.id / theirs.name):
        problem = web._adopt_or_explain(a, str(path))
        assert problem and "not one of your files" in problem and str(b.folder) not in problem
    assert not any(a.folder.iterdir()) and a.source is None
    mine = a.folder / "mine.wav"
    sf.write(mine, np.zeros((4410, 1), dtype=np.float32), 44100)
    assert web._adopt_or_explain(a, str(mine)) is None and a.source is not None
