"""speaker.stream: the player's output length, clicks at live changes, undo, and the PCM/ALSA sinks, measured.

A click is measured as the largest sample-to-sample step: around each live change it must be no larger
than the music's own largest step there, i.e. the same stretch of music rendered steadily through
either side's filter at either side's volume (plus the crossfade's own slope term, see ``click_bound``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.signal
import soundfile as sf

from speaker.room import DeviceCurve, RoomStore, default_state
from speaker.stream import (AplaySink, ArraySource, FileSource, PcmSource, PipeSink, Player, SinkError,
                            WavSink, main, state_fir)
from tools.eq import Filter
from tools.errors import OutputExistsError
from tools.live import DEFAULT_BLOCK_SIZE, DEFAULT_FADE_S

SR = 44100
ROOT = Path(__file__).resolve().parents[2]
BASS_UP = [Filter(type="low_shelf", frequency_hz=120, gain_db=6.0)]
BASS_DOWN = [Filter(type="low_shelf", frequency_hz=120, gain_db=-6.0)]
TREBLE_DOWN = [Filter(type="high_shelf", frequency_hz=6000, gain_db=-4.0)]
PRESENCE = [Filter(type="peaking", frequency_hz=3500, gain_db=3.0, q=1.2)]
GRID = np.geomspace(20.0, 20000.0, 97)
AIRPODS_LIKE = DeviceCurve(frequency_hz=GRID.tolist(), gain_db=(
    4.0 * np.exp(-np.log2(GRID / 60.0) ** 2) - 5.0 * np.exp(-np.log2(GRID / 10000.0) ** 2)).tolist())


@pytest.fixture(scope="module")
def track(vibe_ace) -> np.ndarray:
    """Vibe Ace decoded whole (61.5 s, 44.1 kHz stereo), float32 (2, n)."""
    if not vibe_ace.exists():
        pytest.skip(f"{vibe_ace} not found: point SENSE_DATA_DIR at the shared data set")
    samples, rate = sf.read(vibe_ace, dtype="float32")
    assert rate == SR
    return samples.T.copy()


def max_step(y: np.ndarray) -> float:
    return float(np.max(np.abs(np.diff(y, axis=-1))))


def render_ref(track: np.ndarray, state, lo: int, hi: int) -> np.ndarray:
    """Input frames lo..hi of the looped track filtered steadily by ``state``'s FIR at unit gain, float64."""
    fir = state_fir(state, SR)
    start = max(0, lo - fir.size)
    x = track[:, np.arange(start, hi) % track.shape[1]].astype(np.float64)
    return np.stack([scipy.signal.fftconvolve(row, fir)[lo - start: hi - start] for row in x])


def click_bound(track, before, after, lo, hi) -> tuple[float, float]:
    """(own, slack) for the stretch lo..hi around a change ``before`` -> ``after``.

    own: the largest step of the music rendered steadily with either side's filter at either side's
    volume (the change moves between these). slack: the extra step the transition itself may add. The
    output during it is g(t) [(1 - w(t)) a + w(t) b] with raised-cosine w and g over L = 50 ms; its step is
    at most max(g) max(|da|, |db|) + max|dw| max(g) max|b - a| + max|dg| max(|a|, |b|), and a raised
    cosine's largest step over L samples is pi / (2 L): 7.1e-4 at 44.1 kHz, so the slack is a few 1e-4
    against music steps of ~0.05-0.2 (measured below).
    """
    a, b = render_ref(track, before, lo, hi), render_ref(track, after, lo, hi)
    ga, gb = 10 ** (before.volume_db / 20), 10 ** (after.volume_db / 20)
    own = max(g * max_step(r) for g in (ga, gb) for r in (a, b))
    slope = np.pi / (2 * round(DEFAULT_FADE_S * SR))
    slack = slope * (max(ga, gb) * float(np.max(np.abs(b - a))) + abs(gb - ga) * float(np.max(np.abs(np.r_[a, b]))))
    return own, slack


def change_plan(n: int = 20, first_s: float = 12.0, every_s: float = 28.0):
    """n room states for a 10-minute stream: filter only, volume only, or both, in turn; one asks +40 dB.
    Every 28 s from 12 s: on the 61.46 s loop each change lands in music, none in the track's silent last second."""
    looks = [BASS_UP, BASS_DOWN + TREBLE_DOWN, PRESENCE, BASS_UP + PRESENCE, TREBLE_DOWN, []]
    state, plan = default_state("kitchen"), []
    for k in range(n):
        kind = k % 3
        if kind in (0, 2):
            state = state.changed(filters=looks[k % len(looks)], fir_db=AIRPODS_LIKE if k % 4 == 1 else None)
        if kind in (1, 2):
            state = state.changed(volume_db=40.0 if k == 4 else -24.0 + (k * 7) % 15)
        plan.append((round((first_s + every_s * k) * SR), state))
    return plan


def test_ten_minutes_with_20_live_changes_no_dropout_no_click(tmp_path, track):
    """10 minutes of Vibe Ace (looped) through Player -> WavSink (float) while a control thread applies 20
    filter/volume changes: the file is exactly as long as the input, finite, equal to the steady
    reference between changes (no sample lost or repeated) and never steps more than the music's own
    around a change. "+40 dB" is held at the -6 dB ceiling."""
    frames = 600 * SR
    out = tmp_path / "ten_minutes.wav"
    player = Player(ArraySource(track, SR, frames=frames, name="Vibe Ace x10"), WavSink(out, subtype="FLOAT"),
                    default_state("kitchen"))
    plan, cond, errors, done = change_plan(), threading.Condition(), [], threading.Event()
    progress = [0]

    def on_block(blocks: int, frames_in: int) -> None:
        with cond:
            progress[0] = frames_in
            cond.notify_all()

    def control() -> None:
        try:
            for target, state in plan:
                with cond:
                    cond.wait_for(lambda t=target: progress[0] >= t or done.is_set())
                if done.is_set():
                    return
                player.apply(state)
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)

    thread = threading.Thread(target=control)
    thread.start()
    cpu0 = time.process_time()
    report = player.run(on_block=on_block)
    cpu = time.process_time() - cpu0
    done.set()
    with cond:
        cond.notify_all()
    thread.join()
    assert not errors, errors
    assert report.frames_in == report.frames_out == frames and sf.info(out).frames == frames
    assert len(report.changes) == 20 and report.nonfinite == 0
    assert report.changes[4].volume_db == -6.0  # the +40 dB request, held at the ceiling
    y = sf.read(out, dtype="float32")[0].T
    assert y.shape == (2, frames) and np.isfinite(y).all()
    print(f"\n10 min stream: {frames} frames in, {y.shape[1]} out; player CPU {cpu:.1f} s "
          f"({600 / cpu:.0f}x real time incl. the control thread's FIR designs)")
    ratios = check_changes(y, track, [default_state("kitchen")] + [s for _, s in plan], report.changes)
    print(f"largest step ratio {max(ratios):.3f}, median {np.median(ratios):.3f}")


def check_changes(y: np.ndarray, track: np.ndarray, states: list, changes) -> list[float]:
    """Around each change: no step above the music's own (+ slack); between changes and at the flushed
    end: exactly the steady state's filter and volume, sample-aligned. Returns the step ratios."""
    frames = y.shape[1]
    starts = [0] + [c.input_frame for c in changes] + [frames]
    ratios = []
    for k, change in enumerate(changes):
        c = change.input_frame
        lo, hi = c - 2 * DEFAULT_BLOCK_SIZE, c + DEFAULT_BLOCK_SIZE + round(0.15 * SR)
        own, slack = click_bound(track, states[k], states[k + 1], lo, hi)
        got = max_step(y[:, lo:hi])
        ratios.append(got / own)
        print(f"change {k + 1:2d} at {c / SR:6.2f} s: step {got:.4f} vs music {own:.4f} "
              f"(ratio {got / own:.3f}, slack {slack:.1e})")
        assert own > 1e-3  # music is playing there
        assert got <= own + slack + 1e-6
    for k in range(len(states)):  # steady stretches: exactly the state's filter and volume, sample-aligned
        mid = (starts[k] + starts[k + 1]) // 2
        ref = render_ref(track, states[k], mid, mid + 4096) * 10 ** (states[k].volume_db / 20)
        assert np.max(np.abs(y[:, mid:mid + 4096] - ref)) <= 1e-5
    tail = render_ref(track, states[-1], frames - 4096, frames) * 10 ** (states[-1].volume_db / 20)
    assert np.max(np.abs(y[:, -4096:] - tail)) <= 1e-5  # the flushed end, too
    return ratios


def band_levels_db(y: np.ndarray) -> np.ndarray:
    """Octave-band levels 63 Hz-16 kHz, dB, of a (channels, n) signal (power spectrum summed per band)."""
    power = np.sum(np.abs(np.fft.rfft(y, axis=-1)) ** 2, axis=0)
    f = np.fft.rfftfreq(y.shape[-1], 1 / SR)
    centres = 62.5 * 2.0 ** np.arange(9)
    return np.array([10 * np.log10(np.sum(power[(f >= c / np.sqrt(2)) & (f < c * np.sqrt(2))])) for c in centres])


def render(path: Path, out: Path, state, at_s: float | None = None, then=None) -> np.ndarray:
    """Play ``path`` with ``state`` into ``out`` (float WAV); at ``at_s`` apply ``then()``'s state live."""
    player = Player(FileSource(path), WavSink(out, subtype="FLOAT"), state)
    at = None if at_s is None else round(at_s * SR)
    fired = []

    def on_block(blocks: int, frames_in: int) -> None:
        if at is not None and not fired and frames_in >= at:
            fired.append(player.apply(then()))

    report = player.run(on_block=on_block)
    assert report.frames_out == sf.info(path).frames
    return sf.read(out, dtype="float32")[0].T


def test_undo_restores_the_output(tmp_path, excerpt):
    """State A (bass +6, presence +3, AirPods-like curve, -10 dB) is rendered; B (bass -6, treble -4,
    -16 dB) is applied; undo -> the store gives back A. Rendered again from the undone state the output
    equals A's sample for sample; applied live mid-stream (B playing, undo at 2 s) the output after the
    crossfade matches A's render within 0.1 dB in every octave band (measured ~0 dB) while B differs by dB."""
    with RoomStore(tmp_path / "rooms.sqlite") as store:
        a = store.apply("kitchen", store.load("kitchen").changed(
            filters=BASS_UP + PRESENCE, fir_db=AIRPODS_LIKE, volume_db=-10.0), "like my AirPods")
        b = store.apply("kitchen", a.changed(filters=BASS_DOWN + TREBLE_DOWN, fir_db=None, volume_db=-16.0), "boomy")
        undone = store.undo("kitchen")
    assert undone.settings() == a.settings()
    ya = render(excerpt, tmp_path / "a.wav", a)
    yb = render(excerpt, tmp_path / "b.wav", b)
    again = render(excerpt, tmp_path / "undone.wav", undone)
    assert np.max(np.abs(again - ya)) == 0.0
    live = render(excerpt, tmp_path / "live.wav", b, at_s=2.0, then=lambda: undone)
    settled = round(2.5 * SR)
    err_db = np.abs(band_levels_db(live[:, settled:]) - band_levels_db(ya[:, settled:]))
    b_db = np.abs(band_levels_db(yb[:, settled:]) - band_levels_db(ya[:, settled:]))
    print(f"\nundo: live output vs A, largest octave-band error {np.max(err_db):.2e} dB, largest sample "
          f"difference {np.max(np.abs(live[:, settled:] - ya[:, settled:])):.1e}; B vs A up to {np.max(b_db):.1f} dB")
    assert np.max(err_db) <= 0.1 and np.max(b_db) >= 3.0
    np.testing.assert_allclose(live[:, settled:], ya[:, settled:], atol=1e-5)


def test_pipe_sink_to_a_fifo_gets_every_byte(tmp_path):
    """A thread reads a FIFO (as snapserver would) while the player writes 3.3 s of stereo s16le into it:
    exactly frames x 2 channels x 2 bytes arrive, and they are the input at -12 dB within one LSB."""
    x = (0.5 * np.sin(2 * np.pi * 440 * np.arange(145_555) / SR)).astype(np.float32)[None].repeat(2, 0)
    fifo = tmp_path / "snapfifo"
    os.mkfifo(fifo)
    got = bytearray()

    def reader() -> None:
        with open(fifo, "rb") as fh:
            while chunk := fh.read(65536):
                got.extend(chunk)

    thread = threading.Thread(target=reader)
    thread.start()
    sink = PipeSink(fifo)
    report = Player(ArraySource(x, SR), sink, default_state("kitchen")).run()
    thread.join(timeout=60)
    assert len(got) == sink.bytes_written == report.frames_out * 2 * 2 == x.shape[1] * 4
    pcm = np.frombuffer(bytes(got), dtype="<i2").reshape(-1, 2).T
    assert np.max(np.abs(pcm - np.rint(x * 10 ** (-12 / 20) * 32767))) <= 1
    (tmp_path / "plain.raw").write_bytes(b"")
    with pytest.raises(SinkError, match="not a FIFO"):
        PipeSink(tmp_path / "plain.raw").open(SR, 2)
    with pytest.raises(SinkError, match="No such file"):
        PipeSink(tmp_path / "missing").open(SR, 2)


def test_pcm_source_on_a_stream_and_pipe_sink_to_a_stream(tmp_path):
    """Raw s16le in on a binary stream (MPD's pipe output), a ragged last frame dropped, raw s16le out."""
    import io

    pcm = (np.arange(-5000, 5000, dtype="<i2") * 3).tobytes() + b"\x01"  # 5000 stereo frames + 1 stray byte
    out = io.BytesIO()
    source = PcmSource(io.BytesIO(pcm), SR, 2)
    report = Player(source, PipeSink(out), default_state("x").changed(volume_db=0.0, ceiling_db=0.0)).run()
    assert report.frames_out == 5000 and source.dropped_bytes == 1
    assert out.getvalue() == pcm[:-1] or np.max(np.abs(
        np.frombuffer(out.getvalue(), "<i2").astype(int) - np.frombuffer(pcm[:-1], "<i2"))) <= 1


@pytest.mark.skipif(shutil.which("aplay") is None, reason="aplay not installed (Debian: apt-get install alsa-utils)")
def test_aplay_sink_null_device_exits_0():
    """aplay -D null takes 0.3 s of stereo s16le and exits 0; an unknown device is a one-line SinkError."""
    x = np.zeros((2, round(0.3 * SR)), np.float32)
    sink = AplaySink("null")
    report = Player(ArraySource(x, SR), sink, default_state("kitchen")).run()
    assert sink.returncode == 0 and report.frames_out == x.shape[1]
    with pytest.raises(SinkError, match="aplay -D no_such_device"):
        Player(ArraySource(x, SR), AplaySink("no_such_device"), default_state("kitchen")).run()


def test_wav_sink_never_leaves_half_a_file(tmp_path):
    """A source failing mid-stream: no file under the final name, no temp file left; an existing output
    is refused before anything is played."""
    class Failing(ArraySource):
        def read(self, frames):
            if self._pos > SR:
                raise OSError("source went away")
            return super().read(frames)

    out = tmp_path / "out.wav"
    with pytest.raises(OSError, match="source went away"):
        Player(Failing(np.zeros((2, 3 * SR), np.float32), SR), WavSink(out), default_state("k")).run()
    assert list(tmp_path.iterdir()) == []
    out.write_bytes(b"keep me")
    with pytest.raises(OutputExistsError):
        Player(ArraySource(np.zeros((2, SR), np.float32), SR), WavSink(out), default_state("k")).run()
    assert out.read_bytes() == b"keep me"


def test_cli_plays_the_rooms_state_and_refuses_to_overwrite(tmp_path, excerpt, capsys):
    """The CLI renders the room's stored volume (-20 dB: 0.1x), is as long as INPUT, refuses INPUT as
    output even with --force and an existing output without it, each with a one-line error."""
    db = tmp_path / "rooms.sqlite"
    with RoomStore(db) as store:
        store.set_volume("den", -20.0)
    out = tmp_path / "out.wav"
    assert main([str(excerpt), "--output", str(out), "--room", "den", "--db", str(db), "--subtype", "FLOAT"]) == 0
    assert "room 'den'" in capsys.readouterr().out
    y, x = sf.read(out, dtype="float32")[0], sf.read(excerpt, dtype="float32")[0]
    assert y.shape == x.shape and np.max(np.abs(y - 0.1 * x)) <= 1e-4
    for argv in ([str(excerpt), "-o", str(excerpt), "--force"], [str(excerpt), "-o", str(out)],
                 [str(tmp_path / "missing.ogg"), "-o", str(tmp_path / "new.wav")]):
        assert main(argv + ["--db", str(db)]) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, err
    assert main([str(excerpt), "-o", str(out), "--force", "--seconds", "1.5", "--db", str(db)]) == 0
    assert sf.info(out).frames == round(1.5 * SR)
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0 and "--room" in capsys.readouterr().out


def test_cli_killed_mid_render_leaves_no_output(tmp_path, excerpt):
    """`python -m speaker.stream` killed with SIGKILL while writing: nothing under the output name."""
    out = tmp_path / "out.wav"
    proc = subprocess.Popen([sys.executable, "-m", "speaker.stream", "-", "--rate", str(SR), "-o", str(out),
                             "--db", str(tmp_path / "none.sqlite")], cwd=ROOT, stdin=subprocess.PIPE)
    proc.stdin.write(np.zeros(2 * SR * 2, "<i2").tobytes())  # 2 s in; the player waits for more
    proc.stdin.flush()
    deadline = time.monotonic() + 30
    while not any(p.name.endswith(".part") for p in tmp_path.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdin.close()
    assert not out.exists() and any(p.name.endswith(".part") for p in tmp_path.iterdir())
