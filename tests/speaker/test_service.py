"""speaker.service / speaker.api / speaker.commands: requests change what a playing room sounds like, measured
on the file sink's output against its input (real engine, no LLM, real music)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from knowledge.fr_store import FR_GRID_HZ
from speaker.commands import OFF_TOPIC, off_topic, parse
from speaker.room import RoomStore
from speaker.service import Room, room_engine
from speaker.stream import ArraySource, WavSink

SR = 44100
PACE = 6.0  # times real time: 30 s of music in 5 s, with time for requests mid-stream


@pytest.mark.parametrize("said, kind", [
    ("undo", "undo"), ("Undo.", "undo"), ("and do", "undo"), ("on do", "undo"), ("ladder", "volume_up"),
    ("turn it up all the way", "volume_max"), ("next song", "next"), ("nexts song", "next"), ("pause", "pause"),
    ("what's playing", "now_playing"), ("volume minus 20", "volume_set"), ("much quieter", "volume_down"),
    ("less boomy", None), ("louder vocals", None), ("more bass", None), ("what's the weather", None),
    ("make it sound like my AirPods", None), ("the second one", None)])
def test_commands_take_room_words_and_leave_requests_to_the_agent(said, kind):
    command = parse(said)
    assert (command.kind if command else None) == kind


@pytest.fixture(scope="module")
def engine(rt_rules):
    return room_engine(rt_rules)


@pytest.fixture(scope="module")
def music(vibe_ace):
    samples, rate = sf.read(vibe_ace, dtype="float32", start=30 * SR, frames=30 * SR)
    return samples.T.copy(), rate


def band_gain_db(x: np.ndarray, y: np.ndarray, lo: float, hi: float) -> float:
    """Output/input power ratio in [lo, hi] Hz, dB (both (channels, n), time-aligned)."""
    f = np.fft.rfftfreq(x.shape[1], 1 / SR)
    band = (f >= lo) & (f < hi)
    px = (np.abs(np.fft.rfft(x, axis=1)) ** 2)[:, band].sum()
    py = (np.abs(np.fft.rfft(y, axis=1)) ** 2)[:, band].sum()
    return 10 * np.log10(py / px)


def tilt_db(x, y, start_s: float, seconds: float = 0.5) -> float:
    """Bass (60-250 Hz) gain minus mid (500 Hz-2 kHz) gain over a window, dB: the filter's bass move."""
    a, b = int(start_s * SR), int((start_s + seconds) * SR)
    return band_gain_db(x[:, a:b], y[:, a:b], 60, 250) - band_gain_db(x[:, a:b], y[:, a:b], 500, 2000)


def wait_for_input(room: Room, seconds: float) -> None:
    while room._player is None or room._player.frames_in < seconds * SR:
        time.sleep(0.01)


def test_requests_change_the_playing_output_and_undo_restores_it(tmp_path, engine, music):
    samples, rate = music
    store = RoomStore(tmp_path / "rooms.sqlite")
    room = Room("kitchen", store, engine)
    assert room.handle("less boomy").action == "nothing_playing"
    room.play(ArraySource(samples, rate), WavSink(tmp_path / "out.wav"), pace=PACE)
    wait_for_input(room, 5)
    boomy = room.handle("it's too boomy")
    wait_for_input(room, 14)
    undone = room.handle("undo")
    report = room.wait(timeout_s=60)
    out, _ = sf.read(tmp_path / "out.wav", dtype="float32", always_2d=True)
    out = out.T
    assert report.frames_out == samples.shape[1] == out.shape[1]
    assert boomy.action == "tone" and boomy.changed and "boomy" in boomy.text.lower()
    assert undone.action == "undo" and undone.state.filters == []
    changes = [c.input_frame / SR for c in report.changes]
    before, during, after = tilt_db(samples, out, 1.0), tilt_db(samples, out, changes[0] + 1.0), tilt_db(samples, out, changes[1] + 1.0)
    assert abs(before) < 0.05  # flat: only the volume
    assert during < before - 3.0  # bass down by several dB
    assert abs(after - before) < 0.1  # undo restores the output
    assert [r.action for r in store.history("kitchen", 10)][:3] == ["now_playing", "undo", "apply"]


def test_hearing_safety_stem_requests_and_bad_input_change_nothing_unsafe(tmp_path, engine, music):
    samples, rate = music
    store = RoomStore(tmp_path / "rooms.sqlite")
    room = Room("den", store, engine)
    room.play(ArraySource(samples, rate, frames=60 * SR), WavSink(tmp_path / "out.wav"), pace=PACE)
    wait_for_input(room, 3)
    loud = room.handle("turn it up all the way")
    assert loud.state.volume_db == loud.state.ceiling_db == -6.0 and "protect your hearing" in loud.text
    bass = room.handle("+40 dB of bass")
    assert bass.action == "tone" and "+12 dB" in bass.text and "protect your hearing" in bass.text
    assert max(f.gain_db for f in bass.state.filters) <= 12.0
    before = store.load("den")
    for said, action in [("louder vocals", "not_live"), ("what's the weather", "answer")]:
        reply = room.handle(said)
        assert reply.action == action and not reply.changed and store.load("den").settings() == before.settings()
    assert reply.via == "room" and reply.text == OFF_TOPIC  # answered by the room, no agent turn
    room.stop()
    assert [r.action for r in store.history("den", 2)] == ["now_playing", "answer"]


def test_speaker_model_is_the_listening_device(tmp_path, engine, music, data_dir):
    from knowledge.speakers import SpeakerStore
    from tools.transfer import transfer_curve

    speakers = SpeakerStore.load()
    samples, rate = music
    store = RoomStore(tmp_path / "rooms.sqlite")
    store.apply("lounge", store.load("lounge").changed(speaker_model="KEF LS50"), "model")
    room = Room("lounge", store, engine, speakers=speakers)
    room.play(ArraySource(samples, rate), WavSink(tmp_path / "out.wav"), pace=PACE)
    wait_for_input(room, 3)
    reply = room.handle("make it sound like my AirPods")
    room.stop()
    assert reply.action == "tone" and "KEF LS50" in reply.details
    fr = engine.rt.store
    plain = transfer_curve(FR_GRID_HZ, fr.curve("Apple AirPods").db, fr.target_for("Apple AirPods").db)
    applied = np.asarray(reply.state.fir_db.gain_db)
    kef = speakers.resolve("KEF LS50")
    band = (FR_GRID_HZ > 300) & (FR_GRID_HZ < 8000)
    # relative to the KEF: the AirPods curve minus the KEF's own deviation (smoothed), not the plain one
    expected = plain - (kef.deviation_db - kef.deviation_db[band].mean())
    assert np.sqrt(np.mean((applied - expected)[band] ** 2)) < 0.6
    assert np.sqrt(np.mean((applied - plain)[band] ** 2)) > 0.5


def test_control_api(tmp_path, engine, music):
    from fastapi.testclient import TestClient

    from speaker.api import create_app

    samples, rate = music
    room = Room("office", RoomStore(tmp_path / "rooms.sqlite"), engine)
    client = TestClient(create_app({"office": room}))
    room.play(ArraySource(samples, rate), WavSink(tmp_path / "out.wav"), pace=PACE)
    wait_for_input(room, 3)
    reply = client.post("/rooms/office/request", json={"text": "less harsh"}).json()
    status = client.get("/rooms/office").json()
    curve = dict(zip(status["curve"]["frequency_hz"], status["curve"]["gain_db"]))
    presence = [g for f, g in curve.items() if 2000 <= f <= 5000]
    assert reply["action"] == "tone" and status["playing"] and min(presence) < -1.0
    assert client.post("/rooms/office/volume", json={"volume_db": 10}).json()["state"]["volume_db"] == -6.0
    assert client.post("/rooms/office/undo").json()["state"]["volume_db"] == -12.0
    assert "Biquad" in client.get("/rooms/office/camilladsp").text
    assert client.get("/rooms/nowhere").status_code == 404
    room.stop()


def test_web_ui_speaker_panel_talks_to_a_running_room(tmp_path, engine, music):
    """The web UI panel's handlers against the real control API served on 127.0.0.1 (uvicorn)."""
    from speaker.cli import start_api
    from tests.speaker.test_serve import free_port
    from webui.speaker import refresh, send, undo

    samples, rate = music
    room = Room("kitchen", RoomStore(tmp_path / "rooms.sqlite"), engine, user="panel-test")
    port = free_port()
    server = start_api({"kitchen": room}, port)
    api = f"http://127.0.0.1:{port}"
    try:
        while not server.started:
            time.sleep(0.05)
        room.play(ArraySource(samples, rate), WavSink(tmp_path / "out.wav"), pace=PACE)
        wait_for_input(room, 3)
        status, plot, cleared = send(api, "kitchen", "less harsh")
        assert "Less harsh" in status and "1 undo step" in status and cleared == ""
        assert plot.endswith(".png")
        from PIL import Image

        assert Image.open(plot).size[0] > 400
        status, _ = undo(api, "kitchen")
        assert "Undone" in status and "0 EQ band" in status
        assert "▶" in refresh(api, "kitchen")[0]
    finally:
        room.stop()
        server.should_exit = True


def test_every_change_is_pushed_to_camilladsp(tmp_path, engine, music):
    """--camilladsp ws://: each change reaches a validating CamillaDSP stand-in as SetConfigJson, never Reload."""
    import json

    from tests.tools.test_camilladsp import FakeCamillaDsp

    fake = FakeCamillaDsp()
    samples, rate = music
    room = Room("studio", RoomStore(tmp_path / "rooms.sqlite"), engine, camilladsp_url=fake.url)
    try:
        room.play(ArraySource(samples, rate), WavSink(tmp_path / "out.wav"), pace=PACE)
        wait_for_input(room, 3)
        room.handle("make it sound like my AirPods")
        room.handle("less harsh")
        room.handle("undo")
    finally:
        room.stop()
        fake.close()
    names = [next(iter(m)) if isinstance(m, dict) else m for m in fake.received]
    assert names == ["SetConfigJson"] * 3
    first, last = (json.loads(m["SetConfigJson"]) for m in (fake.received[0], fake.received[-1]))
    assert "sense_fir" in first["filters"] or any(f["type"] == "Conv" for f in first["filters"].values())
    assert last == first  # undo pushed the state before "less harsh" again
    assert len(json.loads(fake.received[1]["SetConfigJson"])["filters"]) > len(first["filters"])


def test_spoken_transport_words_reach_mpd(tmp_path, engine):
    """A room with MPD configured: "pause", "next song", "volume down" go to Debian's mpd (read back from it)."""
    import shutil

    from speaker.mpd import spawn_test_mpd

    if shutil.which("mpd") is None and not Path("/usr/bin/mpd").exists():
        pytest.skip("Debian mpd is not installed")
    songs = []
    for i, hz in enumerate((220, 330, 440)):
        t = np.arange(6 * SR) / SR
        songs.append(tmp_path / f"song_{i}.wav")
        sf.write(songs[-1], 0.2 * np.sin(2 * np.pi * hz * t), SR)
    with spawn_test_mpd(tmp_path / "mpd", songs, output="null") as mpd:
        transport = mpd.transport()
        transport.play()
        room = Room("hall", RoomStore(tmp_path / "rooms.sqlite"), engine, transport=transport)
        paused = room.handle("pause")
        assert paused.action == "pause" and transport.status().state == "pause"
        room.handle("play")
        assert transport.status().state == "play"
        nxt = room.handle("next song")
        assert nxt.action == "next" and transport.status().position == 1 and "song 1" in nxt.text.lower()
        volume = transport.status().volume
        down = room.handle("volume down")
        assert down.action == "volume_down" and transport.status().volume == volume - 5
        assert "song_1" in room.handle("what's playing").text.replace(" ", "_").lower()


@pytest.mark.parametrize("text, expected", [
    ("what's the weather like tomorrow", True), ("tell me a joke", True), ("purple monkey dishwasher", True),
    ("set a timer for ten minutes", True), ("Sony top.", True),
    ("make it sound like a cathedral", False), ("the guitar is too loud", False), ("warm at least", False),
    ("less shouty please", False), ("make it pop", False), ("I want it like a live concert", False),
    ("sound like my AirPods", False), ("put some reverb on it", False), ("plus chaud", False), ("", False),
])
def test_off_topic_is_only_what_has_nothing_about_sound(rt_rules, text, expected):
    from agent.engine import vocabulary

    assert off_topic(text, vocabulary(rt_rules)) is expected


def test_a_room_engine_plans_a_stem_request_but_does_not_separate(tmp_path, engine, music):
    from agent.planner import needs_stems

    samples, rate = music
    wav = tmp_path / "playing.wav"
    sf.write(wav, samples[:, : 10 * rate].T, rate)
    stems = engine.turn("stems", "louder vocals", wav)
    assert stems.status == "answer" and needs_stems(stems.plan) and stems.outputs == {}
    assert "plan" in stems.timings_s and "act" not in stems.timings_s  # the turn ended before separating
    tone = engine.turn("tone", "less boomy", wav)
    assert tone.status == "processed" and not needs_stems(tone.plan) and "act" in tone.timings_s
