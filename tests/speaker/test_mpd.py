"""speaker.mpd against a real Debian MPD on a loopback port (null and fifo outputs, software mixer).

Every check reads the state back from MPD (``status``/``currentsong``) or measures the PCM MPD writes
to its FIFO; nothing only checks that a call returned.
"""

from __future__ import annotations

import os
import select
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speaker.mpd import MpdError, MpdStatus, MpdTransport, free_port, parse_song, parse_status, spawn_test_mpd

pytestmark = pytest.mark.skipif(not os.access("/usr/bin/mpd", os.X_OK) and shutil.which("mpd") is None,
                                reason="mpd is not installed (Debian: apt-get install mpd)")

RATE = 44100
SONG_S = 8.0
SONGS = [("Low_Hum.wav", 220.0, None), ("Middle_Tone.wav", 440.0, None),
         ("High_Whistle.wav", 880.0, ("Whistle Solo", "Sine Band"))]
"""(file name, sine frequency Hz, (title tag, artist tag) or None: the title then comes from the name)."""


def write_sine(path: Path, frequency_hz: float, tags: tuple[str, str] | None = None) -> Path:
    t = np.arange(int(RATE * SONG_S)) / RATE
    with sf.SoundFile(path, "w", RATE, 1, "PCM_16") as f:
        if tags is not None:
            f.title, f.artist = tags
        f.write((0.3 * np.sin(2 * np.pi * frequency_hz * t)).astype(np.float32))
    return path


@pytest.fixture(scope="module")
def music(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("songs")
    return [write_sine(folder / name, freq, tags) for name, freq, tags in SONGS]


@pytest.fixture(scope="module")
def server(tmp_path_factory, music):
    with spawn_test_mpd(tmp_path_factory.mktemp("mpd-null"), music, output="null") as spawned:
        yield spawned


@pytest.fixture
def mpd_transport(server):
    with server.transport() as transport:
        transport.stop()
        transport.set_volume(50)
        yield transport


def test_spawned_mpd_has_the_queue_stopped(server):
    with server.transport() as transport:
        status = transport.status()
    assert server.uris == [name for name, _, _ in SONGS]
    assert status.queue_length == 3
    conf = server.conf_path.read_text()
    assert 'bind_to_address "127.0.0.1"' in conf and 'mixer_type "software"' in conf


def test_play_pause_resume(mpd_transport):
    status = mpd_transport.play(0)
    assert (status.state, status.position, status.duration_s) == ("play", 0, pytest.approx(SONG_S, abs=0.01))
    time.sleep(0.3)
    assert mpd_transport.status().elapsed_s > 0.1  # the null output plays at the real-time pace

    assert mpd_transport.run("pause") == "Paused."
    paused = mpd_transport.status()
    assert paused.state == "pause"
    time.sleep(0.2)
    assert mpd_transport.status().elapsed_s == paused.elapsed_s  # frozen while paused

    assert mpd_transport.run("play") == "Playing Low Hum."
    resumed = mpd_transport.status()
    assert resumed.state == "play" and resumed.position == 0
    assert resumed.elapsed_s >= paused.elapsed_s  # resumed, not restarted

    assert mpd_transport.run("stop") == "Stopped."
    assert mpd_transport.status().state == "stop"
    assert mpd_transport.run("pause") == "Nothing is playing."


def test_next_and_previous_move_through_the_queue(mpd_transport):
    mpd_transport.play(0)
    assert mpd_transport.now_playing().title == "Low Hum"

    assert mpd_transport.run("next") == "Next song: Middle Tone."
    status, song = mpd_transport.status(), mpd_transport.now_playing()
    assert (status.state, status.position) == ("play", 1)
    assert (song.file, song.title, song.position) == ("Middle_Tone.wav", "Middle Tone", 1)

    assert mpd_transport.run("next") == "Next song: Whistle Solo by Sine Band."
    assert mpd_transport.status().position == 2

    assert mpd_transport.run("previous") == "Previous song: Middle Tone."
    assert mpd_transport.status().position == 1
    assert mpd_transport.now_playing().file == "Middle_Tone.wav"

    mpd_transport.play(2)
    assert mpd_transport.run("next") == "That was the last song in the queue; stopped."
    assert mpd_transport.status().state == "stop"
    assert mpd_transport.run("next") == "Nothing is playing; say play first."


def test_volume_steps_with_the_software_mixer(mpd_transport):
    mpd_transport.play(0)
    assert mpd_transport.status().volume == 50
    assert mpd_transport.run("volume_down") == "Volume 45 %."
    assert mpd_transport.status().volume == 45
    assert mpd_transport.volume_step(-10) == 35
    assert mpd_transport.status().volume == 35
    assert mpd_transport.run("volume_up") == "Volume 40 %."
    assert mpd_transport.status().volume == 40

    mpd_transport.set_volume(3)
    assert mpd_transport.volume_step(-10) == 0 and mpd_transport.status().volume == 0
    assert mpd_transport.volume_step(500) == 100 and mpd_transport.status().volume == 100


def test_now_playing_reads_tags_and_file(mpd_transport):
    mpd_transport.play(2)
    song = mpd_transport.now_playing()
    assert (song.file, song.title, song.artist, song.position) == ("High_Whistle.wav", "Whistle Solo", "Sine Band", 2)
    assert song.duration_s == pytest.approx(SONG_S, abs=0.01)
    assert mpd_transport.run("now_playing").startswith("Playing Whistle Solo by Sine Band (0:0")
    assert mpd_transport.run("status").endswith("volume 50 %.")
    mpd_transport.stop()
    assert mpd_transport.run("now_playing") == "Nothing is playing."


def test_rejected_commands_carry_mpds_message(mpd_transport):
    with pytest.raises(MpdError, match=r"^MPD refused play: Bad song index$"):
        mpd_transport.play(99)
    with pytest.raises(MpdError, match=r"^MPD refused next: Not playing$"):
        mpd_transport.next()
    with pytest.raises(MpdError, match="unknown MPD transport command 'rewind'"):
        mpd_transport.run("rewind")
    assert mpd_transport.status().state == "stop"  # the connection still works after a refusal


def test_reconnects_after_mpd_closed_the_connection(mpd_transport):
    mpd_transport.play(1)
    first = mpd_transport._client
    first.close()  # MPD closes the connection, as it does after connection_timeout idle seconds
    status = mpd_transport.status()
    assert mpd_transport._client is not first
    assert (status.state, status.position) == ("play", 1)


def test_refused_connection_is_one_line():
    port = free_port()
    transport = MpdTransport("127.0.0.1", port, timeout_s=1.0)
    with pytest.raises(MpdError) as caught:
        transport.run("pause")
    message = str(caught.value)
    assert message == (f"cannot reach MPD at 127.0.0.1:{port}: connection refused "
                       "(is mpd running? check bind_to_address and port in mpd.conf)")
    assert "\n" not in message


def test_silent_and_foreign_servers():
    silent = socket.create_server(("127.0.0.1", 0))  # accepts (backlog) but never says hello
    foreign = socket.create_server(("127.0.0.1", 0))

    def answer_http() -> None:
        conn, _ = foreign.accept()
        with conn:
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

    thread = threading.Thread(target=answer_http, daemon=True)
    thread.start()
    with silent, foreign:
        silent_port, foreign_port = silent.getsockname()[1], foreign.getsockname()[1]
        with pytest.raises(MpdError, match=rf"^cannot reach MPD at 127.0.0.1:{silent_port}: no answer within 0.3 s$"):
            MpdTransport("127.0.0.1", silent_port, timeout_s=0.3).status()
        with pytest.raises(MpdError, match=rf"^cannot reach MPD at 127.0.0.1:{foreign_port}: not an MPD server"):
            MpdTransport("127.0.0.1", foreign_port, timeout_s=2.0).status()
    thread.join(2)


def test_no_mixer_is_reported(monkeypatch):
    assert parse_status({"state": "play", "volume": "-1"}).volume is None
    assert parse_status({"state": "play"}).volume is None
    transport = MpdTransport("127.0.0.1", free_port())
    monkeypatch.setattr(transport, "status", lambda: MpdStatus(state="play", volume=None))
    with pytest.raises(MpdError, match='has no volume control: add mixer_type "software"'):
        transport.volume_step(-5)


def test_parsers():
    status = parse_status({"state": "pause", "volume": "45", "song": "1", "elapsed": "1.5", "time": "1:8",
                           "playlistlength": "3"})
    assert status == MpdStatus("pause", 45, 1, 1.5, 8.0, 3, None)
    assert parse_song({}) is None
    song = parse_song({"file": "dir/My_Song.flac", "artist": ["A", "B"], "pos": "0", "time": "61"})
    assert (song.title, song.artist, song.duration_s, song.label) == ("My Song", "A", 61.0, "My Song by A")


def read_fifo(fd: int, seconds: float) -> np.ndarray:
    """``seconds`` of the left channel from MPD's FIFO output (s16le stereo), float in [-1, 1)."""
    want, data, deadline = int(seconds * RATE) * 4, bytearray(), time.monotonic() + seconds + 3
    while len(data) < want and time.monotonic() < deadline:
        select.select([fd], [], [], 0.1)
        try:
            data += os.read(fd, 65536)
        except BlockingIOError:
            pass
    assert len(data) >= want, f"MPD wrote only {len(data)} of {want} bytes to its FIFO"
    return np.frombuffer(bytes(data[:want]), "<i2").reshape(-1, 2)[:, 0] / 32768.0


def peak_hz(x: np.ndarray) -> float:
    block = x[-16384:] * np.hanning(16384)
    return float(np.argmax(np.abs(np.fft.rfft(block))) * RATE / 16384)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x[-8192:] ** 2)))


def test_fifo_output_carries_the_song_and_the_volume(tmp_path, music):
    with spawn_test_mpd(tmp_path / "mpd-fifo", music[:2], output="fifo") as spawned:
        assert spawned.fifo_path is not None and spawned.fifo_path.exists()
        fd = os.open(spawned.fifo_path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            with spawned.transport() as transport:
                transport.set_volume(100)
                transport.play(0)
                loud = read_fifo(fd, 0.8)
                assert peak_hz(loud) == pytest.approx(220.0, abs=3.0)
                assert rms(loud) == pytest.approx(0.3 / np.sqrt(2), rel=0.05)

                assert transport.set_volume(50) == 50
                # MPD's software mixer: gain = (exp(percent / 25) - 1) / (exp(4) - 1), 0.119 at 50 %
                quiet = read_fifo(fd, 0.8)
                expected = (np.exp(2.0) - 1) / (np.exp(4.0) - 1)
                assert rms(quiet) / rms(loud) == pytest.approx(expected, rel=0.1)

                assert transport.run("next") == "Next song: Middle Tone."
                assert peak_hz(read_fifo(fd, 0.8)) == pytest.approx(440.0, abs=3.0)
        finally:
            os.close(fd)
    assert spawned.process.poll() is not None  # terminated on exit
