"""SenseApp without a server: upload checks, friendly errors, per-session isolation, exports."""

from __future__ import annotations

import json

import re

import numpy as np
import pytest
import soundfile as sf

from tools.export import parse_eq_text
from webui.chat import SenseApp
from webui.session import MB, Limits, UploadProblem


def _no_progress(*args, **kwargs):
    return None


def run_turn(web, session, text, audio=None):
    """Drive the turn generator to its end; returns (session, the last outputs tuple)."""
    out = None
    for out in web.turn(text, str(audio) if audio else None, session, None, _no_progress):
        pass
    return out[-1], out


@pytest.fixture(scope="module")
def web(rt_rules, tmp_path_factory):
    return SenseApp(rt_rules, limits=Limits(max_upload_mb=6, max_duration_s=30),
                    sessions_root=tmp_path_factory.mktemp("unit-sessions"))


def test_upload_checks_explain_each_problem(web, tmp_path, excerpt):
    text = tmp_path / "notes.wav"
    text.write_text("this is a text file, not audio\n" * 20)
    empty = tmp_path / "empty.flac"
    empty.write_bytes(b"")
    big = tmp_path / "big.wav"
    big.write_bytes(np.random.default_rng(0).bytes(7 * MB))
    long = tmp_path / "long.wav"
    sf.write(long, np.zeros((31 * 8000, 1), dtype=np.float32), 8000)
    doc = tmp_path / "song.txt"
    doc.write_text("la la la")
    expected = {text: "can't read", empty: "empty (0 bytes)", big: "limit is 6 MB", long: "limit is 0:30",
                doc: "not an audio file type"}
    for path, words in expected.items():
        with pytest.raises(UploadProblem) as info:
            web.check_upload(path)
        message = str(info.value)
        assert words in message and path.name in message
        assert str(tmp_path) not in message  # never a server path
    assert web.check_upload(excerpt) == pytest.approx(20.0, abs=0.01)


def test_bad_upload_in_a_turn_is_a_chat_message(web, tmp_path, excerpt):
    bad = tmp_path / "renamed.wav"
    bad.write_text("hello")
    session, out = run_turn(web, None, "less harsh", bad)
    assert session.history[-1]["content"].startswith("⚠️") and "renamed.wav" in session.history[-1]["content"]
    assert session.source is None and not any(session.folder.iterdir())  # nothing kept
    session, _ = run_turn(web, session, "less harsh", excerpt)  # and the next good one works
    assert session.result is not None


def test_errors_become_friendly_messages(web, excerpt, monkeypatch):
    session, _ = run_turn(web, None, "", excerpt)

    def boom(*args, **kwargs):
        raise RuntimeError("internal detail /secret/path")

    monkeypatch.setattr(web.engine.graph, "stream", boom)
    session, _ = run_turn(web, session, "warmer")
    last = session.history[-1]["content"]
    assert last.startswith("⚠️ Sorry, something went wrong on my side (RuntimeError)")
    assert "Traceback" not in last and "/secret/path" not in last
    monkeypatch.undo()
    session, _ = run_turn(web, session, "warmer")
    assert session.result is not None and "warm" in session.history[-2]["content"]


def test_sessions_are_isolated(web, excerpt):
    """Two sessions: own folders, own conversations (undo in one leaves the other alone), own users."""
    a, _ = run_turn(web, None, "less harsh", excerpt)
    b, _ = run_turn(web, None, "warmer", excerpt)
    assert a.folder != b.folder and a.thread != b.thread and a.user != b.user
    files_a = {p.name for p in a.folder.rglob("*") if p.is_file()}
    files_b = {p.name for p in b.folder.rglob("*") if p.is_file()}
    assert "vibe_ace_20s-sense.wav" in files_a and "vibe_ace_20s-sense.wav" in files_b
    assert all(str(a.folder) in str(p) for p in a.result.values() if isinstance(p, str) and p.startswith("/"))
    a, _ = run_turn(web, a, "more")
    assert "harsh" in a.history[-2]["content"] and "warm" not in a.history[-2]["content"]
    b, _ = run_turn(web, b, "undo")
    assert "Undone" in b.history[-1]["content"] and b.result is None
    assert a.result is not None  # a's result untouched
    with pytest.raises(KeyError):  # one user can never rate another's record
        web.rt.prefs.rate(b.user, a.result["record_id"], 1)
    folder = a.folder
    web.forget(a)
    assert not folder.exists() and a.id not in web.sessions


def test_exports_hold_the_plan(web, excerpt):
    """AirPods + less harsh: config.txt = transfer as GraphicEQ + the word's filters; ParametricEQ.txt says
    the transfer is not in it."""
    session, out = run_turn(web, None, "make this sound like it's on my AirPods, less harsh", excerpt)
    downloads = out[7]
    config = parse_eq_text(open(next(p for p in downloads if p.endswith("config.txt"))).read())
    parametric_text = open(next(p for p in downloads if p.endswith("ParametricEQ.txt"))).read()
    parametric = parse_eq_text(parametric_text)
    trace = json.loads(open(next(p for p in downloads if p.endswith(".json"))).read())
    word_filters = trace["plan"][1]["args"]["filters"]
    assert len(config.filters) == len(parametric.filters) == len(word_filters)
    assert config.graphic is not None and parametric.graphic is None
    from knowledge.fr_store import FR_GRID_HZ
    from tools.transfer import transfer_curve

    args = trace["plan"][0]["args"]
    store = web.rt.store
    transfer = transfer_curve(FR_GRID_HZ, store.curve(args["target"]).db, store.target_for(args["target"]).db,
                              smoothing=args["smoothing_octaves"], max_boost_db=args["max_boost_db"])

    freqs, gains = config.graphic
    assert np.max(np.abs(gains - np.interp(np.log(freqs), np.log(FR_GRID_HZ), transfer))) <= 0.051
    assert re.search(r"NOT included: device transfer → Apple AirPods", parametric_text)
    from tools.export import combined_response_db

    for parsed in (config, parametric):  # preamp = -(largest boost of everything in the file), to 0.1 dB
        boost = max(0.0, float(np.max(combined_response_db(parsed.filters, parsed.graphic))))
        assert -boost - 0.1 - 1e-9 <= parsed.preamp_db <= -boost + 1e-9
