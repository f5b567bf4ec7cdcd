"""tools.audio_io: loading (good and bad files), resampling, atomic no-overwrite writing."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from tests.tools.signals import sine
from tools.audio_io import (
    Audio,
    AudioDecodeError,
    AudioError,
    AudioFileNotFoundError,
    EmptyAudioError,
    load_audio,
    resample,
    unique_path,
    write_audio,
)
from tools.levels import power_db, rms_db


def _raises_one_line(error: type[AudioError], path, *words: str) -> str:
    with pytest.raises(error) as info:
        load_audio(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    for word in words:
        assert word in message
    return message


def _wav(path, seconds=1.0, rate=44100, channels=2, subtype="PCM_16"):
    rng = np.random.default_rng(1)
    sf.write(path, 0.1 * rng.standard_normal((int(seconds * rate), channels)), rate, subtype=subtype)
    return path


# ---- bad input ----------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    _raises_one_line(AudioFileNotFoundError, tmp_path / "nope.wav", "no such file")


def test_text_file_renamed_wav(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio\n" * 50)
    _raises_one_line(AudioDecodeError, path, "cannot decode")


def test_wav_cut_to_half_its_bytes(tmp_path):
    path = _wav(tmp_path / "full.wav")
    data = path.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[: len(data) // 2])
    _raises_one_line(AudioDecodeError, cut, "truncated")


def test_wav_header_fine_but_data_missing(tmp_path):
    path = _wav(tmp_path / "full.wav")
    header_only = tmp_path / "header_only.wav"
    header_only.write_bytes(path.read_bytes()[:44])  # canonical 44-byte header, data chunk declared
    _raises_one_line(AudioDecodeError, header_only, "truncated")


def test_truncated_flac(tmp_path):
    path = tmp_path / "full.flac"
    sf.write(path, 0.1 * np.random.default_rng(2).standard_normal((44100, 2)), 44100)
    cut = tmp_path / "cut.flac"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    _raises_one_line(AudioDecodeError, cut)


def test_zero_length_wav(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros((0, 2)), 44100)
    _raises_one_line(EmptyAudioError, path, "0 frames")


def test_zero_byte_file(tmp_path):
    path = tmp_path / "nothing.wav"
    path.write_bytes(b"")
    _raises_one_line(EmptyAudioError, path, "0 bytes")


def test_nan_samples(tmp_path):
    path = tmp_path / "nan.wav"
    data = np.zeros((1000, 1), dtype=np.float32)
    data[500] = np.nan
    sf.write(path, data, 44100, subtype="FLOAT")
    _raises_one_line(AudioDecodeError, path, "NaN")


def test_fifo_and_device_refused_without_opening(tmp_path):
    import os

    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)  # opening it for reading would block forever
    _raises_one_line(AudioDecodeError, fifo, "named pipe")
    _raises_one_line(AudioDecodeError, "/dev/zero", "device")
    link = tmp_path / "gone.wav"
    link.symlink_to(tmp_path / "nowhere.wav")
    _raises_one_line(AudioFileNotFoundError, link, "broken link")


def test_too_short_too_slow_and_too_many_channels(tmp_path):
    from tools.audio_io import TooManyChannelsError, TooShortAudioError

    one = tmp_path / "one.wav"
    sf.write(one, np.zeros((1, 2)), 44100)
    _raises_one_line(TooShortAudioError, one, "too short", "100 ms")
    assert load_audio(one, min_duration_s=0).n_samples == 1
    slow = tmp_path / "slow.wav"
    sf.write(slow, np.zeros((4, 1)), 1)
    _raises_one_line(AudioDecodeError, slow, "sample rate 1 Hz")
    eight = _wav(tmp_path / "eight.wav", seconds=0.2, channels=8)
    assert load_audio(eight).channels == 8
    with pytest.raises(TooManyChannelsError, match="8 channels"):
        load_audio(eight, max_channels=5)


def test_header_declaring_more_frames_reads_no_garbage(tmp_path):
    """soundfile's blocks() pads a short read with uninitialised memory; the loader must not."""
    path = tmp_path / "short.mp3"
    sf.write(path, 0.1 * np.random.default_rng(0).standard_normal((22050, 1)), 22050, format="MP3")
    path.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 5])
    _raises_one_line(AudioDecodeError, path, "truncated MP3")


def test_huge_float_samples_refused(tmp_path):
    path = tmp_path / "huge.wav"
    sf.write(path, np.full((4410, 1), 1e30), 44100, subtype="FLOAT")
    _raises_one_line(AudioDecodeError, path, "1e+30")


def test_errors_share_a_base_class():
    assert issubclass(AudioFileNotFoundError, AudioError) and issubclass(AudioFileNotFoundError, FileNotFoundError)
    assert issubclass(AudioDecodeError, AudioError) and issubclass(EmptyAudioError, AudioError)


# ---- good input ---------------------------------------------------------------------------------


def test_silence_loads_as_zeros(tmp_path):
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros((22050, 2)), 44100, subtype="PCM_16")
    audio = load_audio(path)
    assert audio.samples.shape == (2, 22050) and audio.samples.dtype == np.float32
    assert not audio.samples.any()
    assert audio.duration_s == pytest.approx(0.5)


def test_8k_mono(tmp_path):
    path = tmp_path / "mono8k.wav"
    x = sine(440, 8000, 1.5)
    sf.write(path, x.T, 8000, subtype="PCM_24")
    audio = load_audio(path)
    assert (audio.channels, audio.n_samples, audio.sample_rate) == (1, 12000, 8000)
    assert np.max(np.abs(audio.samples - x)) < 2**-22  # 24-bit quantisation


def test_96k_stereo(tmp_path):
    path = tmp_path / "stereo96k.flac"
    x = np.vstack([sine(1000, 96000, 0.5)[0], sine(3000, 96000, 0.5, 0.25)[0]])
    sf.write(path, x.T, 96000, subtype="PCM_24")
    audio = load_audio(path)
    assert (audio.channels, audio.n_samples, audio.sample_rate) == (2, 48000, 96000)
    assert np.max(np.abs(audio.samples - x)) < 2**-22


def test_real_ogg(vibe_ace_audio):
    assert isinstance(vibe_ace_audio, Audio)
    assert (vibe_ace_audio.channels, vibe_ace_audio.sample_rate) == (2, 44100)
    assert vibe_ace_audio.duration_s == pytest.approx(61.5, abs=0.2)
    assert 0.1 < np.abs(vibe_ace_audio.samples).max() <= 1.1


# ---- resampling ---------------------------------------------------------------------------------


@pytest.mark.parametrize("rate_in,rate_out", [(48000, 44100), (44100, 8000), (44100, 96000)])
def test_resample_keeps_frequency_and_level(rate_in, rate_out):
    x = np.vstack([sine(1000, rate_in, 2.0), sine(1000, rate_in, 2.0, 0.25)])
    y = resample(x, rate_in, rate_out)
    assert y.shape == (2, round(x.shape[1] * rate_out / rate_in)) and y.dtype == np.float32
    middle = y[:, rate_out // 2 : -rate_out // 2]
    spectrum = np.abs(np.fft.rfft(middle[0] * np.hanning(middle.shape[1])))
    peak_hz = np.argmax(spectrum) * rate_out / middle.shape[1]
    assert peak_hz == pytest.approx(1000, abs=rate_out / middle.shape[1])
    levels = np.array([rms_db(channel) for channel in middle])
    gain_db = levels - power_db(np.array([0.5, 0.25]) ** 2 / 2)  # a sine of amplitude a has mean square a²/2
    assert np.all(np.abs(gain_db) < 0.01)


# ---- writing ------------------------------------------------------------------------------------


def test_write_roundtrip_defaults_to_pcm24(tmp_path):
    x = np.vstack([sine(440, 48000, 0.5)[0], sine(660, 48000, 0.5)[0]])
    path = write_audio(tmp_path / "out.wav", x, 48000)
    assert sf.info(path).subtype == "PCM_24"
    assert np.max(np.abs(load_audio(path).samples - x)) < 2**-22
    assert sf.info(write_audio(tmp_path / "out.flac", x, 48000)).subtype == "PCM_24"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp files left


def test_write_never_overwrites(tmp_path):
    path = tmp_path / "keep.wav"
    path.write_bytes(b"precious")
    with pytest.raises(FileExistsError):
        write_audio(path, np.zeros((1, 100)), 44100)
    assert path.read_bytes() == b"precious"


def test_write_clips_overs_instead_of_wrapping(tmp_path):
    x = np.array([[0.5, 1.7, -2.0, 0.25]], dtype=np.float32)
    y = load_audio(write_audio(tmp_path / "overs.wav", x, 44100), min_duration_s=0).samples
    assert y[0, 1] == pytest.approx(1.0, abs=1e-6) and y[0, 2] == pytest.approx(-1.0, abs=1e-6)


def test_write_mono_1d(tmp_path):
    audio = load_audio(write_audio(tmp_path / "mono.ogg", sine(440, 44100, 0.5)[0], 44100))
    assert audio.channels == 1 and sf.info(audio.path).subtype == "VORBIS"


def test_unique_path(tmp_path):
    wanted = tmp_path / "render.wav"
    assert unique_path(wanted) == wanted
    wanted.write_bytes(b"x")
    assert unique_path(wanted) == tmp_path / "render-1.wav"
    (tmp_path / "render-1.wav").write_bytes(b"x")
    assert unique_path(wanted) == tmp_path / "render-2.wav"
