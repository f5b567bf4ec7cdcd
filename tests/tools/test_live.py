"""tools.live: total_fir's response and LiveFilter's streaming convolution, crossfades and volume, measured.

Clicks are measured as the largest sample-to-sample step: around a filter or volume change it must be
no larger than the signal's own largest step (the music under either filter), while a hard switch on a
low sine, whose own steps are tiny, is shown to exceed it many times over.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import soundfile as sf

from tests.tools.signals import FR_GRID_HZ, sine
from tools.eq import Filter, frequency_response_db
from tools.live import LiveFilter, total_fir
from tools.transfer import minimum_phase_fir

SR = 44100  # Vibe Ace's rate
BASS_UP = [Filter(type="low_shelf", frequency_hz=120, gain_db=6.0)]
BASS_DOWN = [Filter(type="low_shelf", frequency_hz=120, gain_db=-6.0)]


@pytest.fixture(scope="module")
def music(vibe_ace) -> np.ndarray:
    """6 s of Vibe Ace (from 20 s in), float32 (2, samples), 44.1 kHz."""
    if not vibe_ace.exists():
        pytest.skip(f"{vibe_ace} not found: point SENSE_DATA_DIR at the shared data set")
    samples, rate = sf.read(vibe_ace, dtype="float32", start=20 * SR, frames=6 * SR)
    assert rate == SR
    return samples.T.copy()


def device_fir() -> np.ndarray:
    """A device-transfer FIR: a smooth curve, +4 dB at 60 Hz to -5 dB at 10 kHz."""
    curve = 4.0 * np.exp(-(np.log2(FR_GRID_HZ / 60.0) ** 2)) - 5.0 * np.exp(-(np.log2(FR_GRID_HZ / 10000.0) ** 2))
    return minimum_phase_fir(FR_GRID_HZ, curve, SR)


def stream(live: LiveFilter, x: np.ndarray, block: int, at: int | None = None, change=None) -> np.ndarray:
    """Feed ``x`` in blocks of ``block``; call ``change(live)`` before the block that starts at ``at``.
    Returns every output, flush included, with the latency dropped: shape of ``x``."""
    outs = []
    for i in range(0, x.shape[1], block):
        if i == at:
            change(live)
        out = live.process(x[:, i:i + block])
        assert out.shape == x[:, i:i + block].shape and out.dtype == np.float32
        outs.append(out)
    outs.append(live.flush())
    return np.concatenate(outs, axis=1)[:, live.latency:]


def reference(x: np.ndarray, fir: np.ndarray) -> np.ndarray:
    """The whole signal convolved at once (scipy.signal.fftconvolve), cut to its length, float64."""
    return np.stack([scipy.signal.fftconvolve(row.astype(np.float64), fir)[: row.size] for row in x])


def max_step(y: np.ndarray, lo: int, hi: int) -> float:
    return float(np.max(np.abs(np.diff(y[:, lo:hi], axis=1))))


@pytest.mark.parametrize("filters", [
    [Filter(type="low_shelf", frequency_hz=100, gain_db=12.0)],
    [Filter(type="low_shelf", frequency_hz=100, gain_db=-12.0)],
    [Filter(type="high_shelf", frequency_hz=6000, gain_db=12.0)],
    [Filter(type="high_shelf", frequency_hz=6000, gain_db=-12.0)],
    [Filter(type="peaking", frequency_hz=40, gain_db=12.0, q=4.31),  # rings long: needs 32768 taps
     Filter(type="peaking", frequency_hz=3500, gain_db=-6.0, q=1.41),
     Filter(type="high_pass", frequency_hz=25, q=0.7071)],
], ids=["ls+12", "ls-12", "hs+12", "hs-12", "chain"])
@pytest.mark.parametrize("rate", [44100, 48000])
def test_total_fir_response_matches_the_biquads(filters, rate):
    """|FIR response - frequency_response_db| <= 0.1 dB, 40 Hz-16 kHz (measured with scipy.signal.freqz)."""
    f = np.geomspace(40.0, 16000.0, 600)
    fir = total_fir(filters, rate)
    _, h = scipy.signal.freqz(fir, worN=f, fs=rate)
    error = np.abs(20 * np.log10(np.abs(h)) - frequency_response_db(filters, f, rate))
    assert np.max(error) <= 0.1


def test_total_fir_with_device_transfer_adds_the_responses():
    """Biquads then the device FIR: the total response is the dB sum of both, within 0.1 dB."""
    f = np.geomspace(40.0, 16000.0, 600)
    extra = device_fir()
    fir = total_fir(BASS_UP, SR, extra)
    _, h_total = scipy.signal.freqz(fir, worN=f, fs=SR)
    _, h_device = scipy.signal.freqz(extra, worN=f, fs=SR)
    want = frequency_response_db(BASS_UP, f, SR) + 20 * np.log10(np.abs(h_device))
    assert np.max(np.abs(20 * np.log10(np.abs(h_total)) - want)) <= 0.1
    assert fir.size == total_fir(BASS_UP, SR).size + extra.size - 1
    np.testing.assert_array_equal(total_fir([], SR), [1.0])
    np.testing.assert_array_equal(total_fir([], SR, extra), extra)


@pytest.mark.parametrize("block", [100, 777, 1024, 4096])
def test_stream_equals_whole_signal_convolution(music, block):
    """Odd caller block lengths: the stream equals fftconvolve of the whole track to <= 1e-5, and the
    output length equals the input length exactly."""
    fir = total_fir(BASS_UP + [Filter(type="peaking", frequency_hz=2500, gain_db=-4, q=2)], SR, device_fir())
    assert fir.size > 2 * 1024  # several partitions
    live = LiveFilter(fir, SR, channels=2, clip=False)
    got = stream(live, music, block)
    assert got.shape == music.shape
    assert np.max(np.abs(got - reference(music, fir))) <= 1e-5
    # without the flush, process() alone returns exactly as many samples as it is given
    n = 10 * block + 3
    live2 = LiveFilter(fir, SR, clip=False)
    assert sum(live2.process(music[:, i:min(i + block, n)]).shape[1] for i in range(0, n, block)) == n


def test_short_fir_and_mono():
    """An FIR shorter than one block, one channel, a signal shorter than one block: still exact."""
    x = np.random.default_rng(1).uniform(-0.5, 0.5, (1, 700)).astype(np.float32)
    fir = np.array([0.5, -0.25, 0.125])
    got = stream(LiveFilter(fir, SR, channels=1, block_size=256), x, 99)
    assert got.shape == x.shape
    assert np.max(np.abs(got - reference(x, fir))) <= 1e-6
    with pytest.raises(ValueError):
        LiveFilter(fir, SR, channels=1).process(np.zeros((2, 10), np.float32))


def test_filter_change_on_music_does_not_click(music):
    """+6 dB bass shelf -> -6 dB mid-stream (50 ms crossfade), at three places: the largest step around
    the change is no larger than the music's own there (steady under either filter). A hard switch at the
    same places clicks where the two filters' outputs differ at that instant (measured: 3.7x the music's
    own step at 1 s, 1.8x at 4 s, none at 3 s)."""
    up, down = total_fir(BASS_UP, SR), total_fir(BASS_DOWN, SR)
    ref_up, ref_down = reference(music, up), reference(music, down)
    hard_ratios = []
    for at in (1 * SR // 777 * 777, 3 * SR // 777 * 777, 4 * SR // 777 * 777):
        lo, hi = at - 2048, at + 1024 + int(0.1 * SR)  # from before the change to well past the fade
        own = max(max_step(music, lo, hi), max_step(ref_up, lo, hi), max_step(ref_down, lo, hi))
        faded = stream(LiveFilter(up, SR, clip=False), music, 777, at, lambda lf: lf.set_filter(down))
        hard = stream(LiveFilter(up, SR, clip=False), music, 777, at, lambda lf: lf.set_filter(down, fade_s=0))
        assert max_step(faded, lo, hi) <= own + 1e-6
        hard_ratios.append(max_step(hard, lo, hi) / own)
    assert max(hard_ratios) > 2.0
    # after the fade the stream is the new filter exactly; before the internal block holding the change
    # (it starts at most one block before it, as buffered input is filtered with the new fade) the old one
    np.testing.assert_allclose(faded[:, hi:], ref_down[:, hi:], atol=1e-5)
    np.testing.assert_allclose(faded[:, :at - 1024], ref_up[:, :at - 1024], atol=1e-5)


def test_hard_switch_clicks_on_a_low_sine_crossfade_does_not():
    """60 Hz sine: a hard switch steps ~70x the sine's own largest step; the crossfade (also one
    interrupted halfway by a change back) stays within the steady outputs' largest step."""
    x = sine(60.0, SR, 3.0, amplitude=0.3)
    up, down = total_fir(BASS_UP, SR), total_fir(BASS_DOWN, SR)
    at = SR // 500 * 500
    lo, hi = at - 2048, at + 1024 + int(0.1 * SR)
    own = max(max_step(reference(x, up), lo, hi), max_step(reference(x, down), lo, hi))
    hard = stream(LiveFilter(up, SR, channels=1), x, 500, at, lambda lf: lf.set_filter(down, fade_s=0))
    faded = stream(LiveFilter(up, SR, channels=1), x, 500, at, lambda lf: lf.set_filter(down))

    def there_and_back(lf):
        lf.set_filter(down)
        lf.process(np.zeros((1, 0), np.float32))
        lf.set_filter(up)  # before any audio of the first fade: starts from the mix now playing

    assert max_step(hard, lo, hi) > 10 * own
    assert max_step(faded, lo, hi) <= own + 1e-6
    back = stream(LiveFilter(up, SR, channels=1), x, 500, at, there_and_back)
    assert max_step(back, lo, hi) <= own + 1e-6
    interrupted = LiveFilter(up, SR, channels=1)
    outs = [interrupted.process(x[:, i:i + 500]) for i in range(0, at, 500)]
    interrupted.set_filter(down)
    outs += [interrupted.process(x[:, i:i + 500]) for i in range(at, at + 1500, 500)]
    interrupted.set_filter(up)  # mid-fade
    outs += [interrupted.process(x[:, i:i + 500]) for i in range(at + 1500, x.shape[1], 500)]
    y = np.concatenate(outs, axis=1)[:, interrupted.latency:]
    assert max_step(y, lo, hi) <= own + 1e-6


def test_volume_ramp_and_ceiling(music):
    """Volume -20 dB then back up: no step larger than the music's own; set_volume(+40) is held at the
    ceiling (measured output/input amplitude), and the output never exceeds +-1."""
    identity = np.array([1.0])
    live = LiveFilter(identity, SR, clip=False)
    at = SR // 500 * 500

    def down_then_up(lf):
        assert lf.set_volume(-20.0) == -20.0

    quiet = stream(live, music, 500, at, down_then_up)
    lo, hi = at - 2048, at + 1024 + int(0.1 * SR)
    assert max_step(quiet, lo, hi) <= max_step(music, lo, hi) + 1e-6
    assert np.max(np.abs(quiet[:, hi + 2048:])) == pytest.approx(0.1 * np.max(np.abs(music[:, hi + 2048:])), rel=1e-5)
    x = sine(60.0, SR, 1.0, amplitude=0.5)
    hard = stream(LiveFilter(identity, SR, channels=1, gain_db=-20), x, 500, at // 4,
                  lambda lf: lf.set_volume(0.0, ramp_s=0))
    ramped = stream(LiveFilter(identity, SR, channels=1, gain_db=-20), x, 500, at // 4, lambda lf: lf.set_volume(0.0))
    assert max_step(hard, 0, x.shape[1]) > 10 * max_step(x, 0, x.shape[1])
    assert max_step(ramped, 0, x.shape[1]) <= max_step(x, 0, x.shape[1]) + 1e-6

    boost = total_fir([Filter(type="low_shelf", frequency_hz=200, gain_db=12)], SR)
    loud = LiveFilter(boost, SR, channels=1, ceiling_db=-6.0)
    assert loud.set_volume(40.0) == -6.0 and loud.gain_db == -6.0
    x = sine(100.0, SR, 1.0, amplitude=0.1)
    ratio = np.max(np.abs(stream(loud, x, 512))) / np.max(np.abs(reference(x, boost)))
    assert ratio == pytest.approx(10 ** (-6 / 20), rel=1e-5)  # the ceiling's gain, not +40 dB
    full = LiveFilter(boost, SR, channels=1)
    assert full.set_volume(40.0) == 0.0
    assert np.max(np.abs(stream(full, sine(60.0, SR, 1.0, amplitude=0.9), 512))) <= 1.0  # the safety clip
