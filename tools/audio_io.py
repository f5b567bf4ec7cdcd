"""Reading, writing and resampling audio files.

Audio inside SENSE is a float32 array of shape ``(channels, samples)`` in [-1, 1].
Files are read and written with soundfile (libsndfile: WAV, FLAC, Ogg Vorbis, MP3, AIFF, ...);
resampling uses soxr. Writing is atomic and never overwrites an existing file.

Every error raised here is an :class:`AudioError` whose message is one line naming the file and
what is wrong, so a command line can print it without a traceback.
"""

from __future__ import annotations

import math
import os
import stat
import struct
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from tools.atomic import write_new_file
from tools.errors import SenseError

# libsndfile's MP3 length comes from the Xing/LAME header or, without one, an estimate from the
# file size; a decoded length this much shorter than declared is read as truncation.
_MP3_LENGTH_TOLERANCE = 0.02
_DEFAULT_SUBTYPES = {"WAV": "PCM_24", "FLAC": "PCM_24", "OGG": "VORBIS", "MP3": "MPEG_LAYER_III"}
_EXTENSION_FORMATS = {"aif": "AIFF", "aiff": "AIFF"}
_READ_BLOCK_FRAMES = 1 << 16
#: Accepted sample rates, Hz: telephone audio up to 8x 96 kHz.
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 8000, 768_000
#: Shortest audio :func:`load_audio` accepts by default, seconds (one 1-sample "file" is not music to EQ).
MIN_DURATION_S = 0.1
#: Most channels the processing chain takes: BS.1770 loudness (tools.loudness) weights L, R, C, Ls, Rs.
MAX_PROCESSED_CHANNELS = 5
#: Largest sample magnitude accepted from a float file (float WAVs may go over 1.0; 1e30 is a broken file).
MAX_FLOAT_PEAK = 1000.0


class AudioError(SenseError):
    """Base class of audio input/output errors; the message is one line naming the file."""


class AudioFileNotFoundError(AudioError, FileNotFoundError):
    """The audio file does not exist."""


class AudioDecodeError(AudioError):
    """The file is not audio, is corrupt or truncated, or holds NaN/infinite samples."""


class EmptyAudioError(AudioError):
    """The file holds no audio (zero frames, or zero bytes)."""


class TooShortAudioError(AudioError):
    """The file holds less audio than the caller needs (see :data:`MIN_DURATION_S`)."""


class TooManyChannelsError(AudioError):
    """The file has more channels than the caller can process (see :data:`MAX_PROCESSED_CHANNELS`)."""


@dataclass
class Audio:
    """Decoded audio.

    Attributes:
        samples: float32 array, shape (channels, samples), range [-1, 1] (float files may exceed it).
        sample_rate: samples per second, Hz.
        path: the file it was read from, if any.
    """

    samples: np.ndarray
    sample_rate: int
    path: Path | None = None

    @property
    def channels(self) -> int:
        """Number of channels."""
        return int(self.samples.shape[0])

    @property
    def n_samples(self) -> int:
        """Number of samples per channel (frames)."""
        return int(self.samples.shape[1])

    @property
    def duration_s(self) -> float:
        """Duration in seconds."""
        return self.n_samples / self.sample_rate


class _QuietStderr:
    """Context manager: file descriptor 2 goes to /dev/null while libsndfile decodes.

    libsndfile's MP3 decoder (mpg123) prints "Note: Illegal Audio-MPEG-Header ..." and "Warning: Xing
    stream size off ..." lines straight to the process's stderr for damaged files, around the one-line
    error SENSE gives. Re-entrant across threads (the first to enter mutes, the last to leave restores);
    other threads' stderr output in those milliseconds is lost. Does nothing when fd 2 is closed.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._saved: int | None = None

    def __enter__(self) -> None:
        with self._lock:
            if self._depth == 0:
                try:
                    sys.stderr.flush()
                    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
                    os.dup2(null, 2)
                    os.close(null)
                    self._saved = saved
                except (OSError, ValueError, AttributeError):
                    self._saved = None
            self._depth += 1

    def __exit__(self, *_exc) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth == 0 and self._saved is not None:
                os.dup2(self._saved, 2)
                os.close(self._saved)
                self._saved = None


_quiet_decoder = _QuietStderr()


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _check_wav_complete(path: Path) -> None:
    """Raise AudioDecodeError if a RIFF/WAVE file holds fewer data bytes than its header declares.

    libsndfile silently shortens such files to what is present, so this reads the chunk headers
    (RIFF, little-endian, or RIFX, big-endian). Other containers (RF64, W64, non-WAV) pass.
    A data size of 0 or 0xFFFFFFFF (written by streaming encoders that could not seek back) is
    not checked.
    """
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
            return
        endian = "<" if head[:4] == b"RIFF" else ">"
        pos = 12
        while pos + 8 <= size:
            fh.seek(pos)
            chunk_id, chunk_size = struct.unpack(endian + "4sI", fh.read(8))
            if chunk_id == b"data":
                available = size - (pos + 8)
                if chunk_size not in (0, 0xFFFFFFFF) and available < chunk_size:
                    raise AudioDecodeError(
                        f"{path}: truncated WAV: data chunk declares {chunk_size} bytes, "
                        f"the file holds {available}"
                    )
                return
            pos += 8 + chunk_size + (chunk_size & 1)
        if pos > size:
            raise AudioDecodeError(f"{path}: truncated WAV: a header chunk runs past the end of the file")


def _refuse_non_file(path: Path) -> None:
    """Raise unless ``path`` is a regular file (after links), without ever opening it.

    Opening a FIFO for reading blocks until a writer comes, and a device such as ``/dev/zero`` never
    ends, so both are refused from their ``stat`` alone.
    """
    if not path.exists():
        if path.is_symlink():
            raise AudioFileNotFoundError(f"{path}: broken link (its target does not exist or loops)")
        raise AudioFileNotFoundError(f"{path}: no such file")
    mode = path.stat().st_mode
    if stat.S_ISDIR(mode):
        raise AudioDecodeError(f"{path}: is a folder, not an audio file")
    if not stat.S_ISREG(mode):
        kind = ("a named pipe (FIFO)" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
        raise AudioDecodeError(f"{path}: is {kind}, not an audio file; save the audio to a file first")


def _decode(path: Path) -> tuple[np.ndarray, int, str, int]:
    """(float32 (frames, channels), sample rate Hz, format, declared frames), read block by block so a
    header that declares more frames than the file holds cannot make one huge allocation."""
    blocks = []
    with _quiet_decoder, sf.SoundFile(path) as fh:
        declared, fmt, sample_rate, channels = fh.frames, fh.format, fh.samplerate, fh.channels
        while len(block := fh.read(_READ_BLOCK_FRAMES, dtype="float32", always_2d=True)):
            blocks.append(block)  # (SoundFile.blocks would pad a short file's last block with garbage)
    data = np.concatenate(blocks) if blocks else np.zeros((0, channels), dtype=np.float32)
    return data, int(sample_rate), fmt, int(declared)


def _check_decoded(path: Path, data: np.ndarray, sample_rate: int, fmt: str, declared: int,
                   min_duration_s: float, max_channels: int | None) -> None:
    """Raise the loader's errors for truncation, no frames, non-finite samples, or an unusable rate or length."""
    shortfall = declared - data.shape[0]
    tolerance = int(_MP3_LENGTH_TOLERANCE * declared) if fmt == "MP3" else 0
    if shortfall > tolerance:
        raise AudioDecodeError(f"{path}: truncated {fmt}: decoded {data.shape[0]} of {declared} frames")
    if data.shape[0] == 0:
        raise EmptyAudioError(f"{path}: no audio (0 frames)")
    if not np.isfinite(data).all():
        raise AudioDecodeError(f"{path}: corrupt: holds NaN or infinite samples")
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise AudioDecodeError(f"{path}: unusable sample rate {sample_rate} Hz "
                               f"(SENSE takes {MIN_SAMPLE_RATE} Hz to {MAX_SAMPLE_RATE // 1000} kHz)")
    if data.shape[0] < math.ceil(min_duration_s * sample_rate - 1e-6):
        raise TooShortAudioError(f"{path}: too short: {data.shape[0]} frames ({1000 * data.shape[0] / sample_rate:.3g} ms); "
                                 f"SENSE needs at least {1000 * min_duration_s:g} ms of audio")
    if max_channels is not None and data.shape[1] > max_channels:
        raise TooManyChannelsError(f"{path}: has {data.shape[1]} channels; this takes at most {max_channels} "
                                   "(L, R, C, Ls, Rs): downmix it first")
    peak = float(np.max(np.abs(data)))
    if peak > MAX_FLOAT_PEAK:
        raise AudioDecodeError(f"{path}: corrupt or mis-scaled: samples reach {peak:.3g} "
                               f"(full scale is 1.0; more than {MAX_FLOAT_PEAK:g} is not audio)")


def load_audio(path: str | os.PathLike, *, min_duration_s: float = MIN_DURATION_S,
               max_channels: int | None = None) -> Audio:
    """Read an audio file into float32 samples of shape (channels, samples).

    Any channel count; a sample rate from :data:`MIN_SAMPLE_RATE` to :data:`MAX_SAMPLE_RATE` Hz; any
    format libsndfile reads (WAV, FLAC, Ogg Vorbis/Opus, MP3, AIFF, ...). Integer PCM is scaled to [-1, 1).
    Only regular files are opened: a folder, FIFO, device or socket is refused from its ``stat``.

    Args:
        path: the file.
        min_duration_s: shortest accepted audio, seconds (default :data:`MIN_DURATION_S`; 0 takes 1 frame).
        max_channels: most channels accepted (None: any; the processing chain takes
            :data:`MAX_PROCESSED_CHANNELS`).
    Returns:
        Audio with samples float32 (channels, samples), the file's sample rate (Hz) and path.
    Raises:
        AudioFileNotFoundError: the file does not exist (or is a broken link).
        EmptyAudioError: the file has zero bytes or zero frames.
        TooShortAudioError: fewer than ``min_duration_s`` seconds of audio.
        TooManyChannelsError: more than ``max_channels`` channels.
        AudioDecodeError: not a regular file (folder, FIFO, device), not audio (e.g. a text file named
            .wav), corrupt, truncated (a WAV whose data chunk is shorter than its header declares; a
            FLAC/MP3 that decodes to fewer frames than it declares), holding NaN/infinite samples or
            float samples beyond :data:`MAX_FLOAT_PEAK`, or a sample rate outside the range. A cut Ogg
            file cannot be told from a shorter one (Ogg declares no total length) and reads as what is present.
        AudioError: the file exists but cannot be opened (e.g. permission denied).
    """
    path = Path(path)
    try:
        _refuse_non_file(path)
        if path.stat().st_size == 0:
            raise EmptyAudioError(f"{path}: empty file (0 bytes)")
        _check_wav_complete(path)
        data, sample_rate, fmt, declared = _decode(path)
    except AudioError:
        raise
    except sf.LibsndfileError as exc:
        reason = _one_line(exc.error_string)
        if "not a regular file" in reason:  # libsndfile's words when no decoder recognised the bytes
            reason = "not in a format SENSE reads: WAV, FLAC, Ogg, MP3, AIFF"
        raise AudioDecodeError(f"{path}: cannot decode as audio ({reason})") from exc
    except (sf.SoundFileError, RuntimeError, ValueError, struct.error) as exc:
        raise AudioDecodeError(f"{path}: cannot decode as audio ({_one_line(exc)})") from exc
    except (MemoryError, OverflowError) as exc:
        raise AudioDecodeError(f"{path}: cannot decode as audio (its header declares an impossible size)") from exc
    except OSError as exc:
        raise AudioError(f"{path}: cannot read ({_one_line(exc.strerror or exc)})") from exc
    _check_decoded(path, data, sample_rate, fmt, declared, min_duration_s, max_channels)
    return Audio(samples=np.ascontiguousarray(data.T), sample_rate=sample_rate, path=path)


def resample(samples: np.ndarray, sample_rate_in: int, sample_rate_out: int) -> np.ndarray:
    """Change the sample rate (soxr, 'VHQ' quality: linear phase, no delay, flat to ~0.9 Nyquist).

    Args:
        samples: float array, shape (channels, samples) or (samples,).
        sample_rate_in: rate of ``samples``, Hz (> 0).
        sample_rate_out: wanted rate, Hz (> 0).
    Returns:
        float32 array with the same leading shape and ``round(samples * out / in)`` samples.
    Raises:
        ValueError: a rate is not positive.
    Source: libsoxr (https://sourceforge.net/projects/soxr/) via python-soxr.
    """
    if sample_rate_in <= 0 or sample_rate_out <= 0:
        raise ValueError(f"sample rates must be positive, got {sample_rate_in} and {sample_rate_out}")
    x = np.asarray(samples, dtype=np.float32)
    if sample_rate_in == sample_rate_out:
        return x.copy()
    out = soxr.resample(np.ascontiguousarray(x.T), sample_rate_in, sample_rate_out, quality="VHQ")
    return np.ascontiguousarray(out.T, dtype=np.float32)


def _format_for(path: Path) -> str:
    ext = path.suffix.lower().lstrip(".")
    fmt = _EXTENSION_FORMATS.get(ext, ext.upper())
    if fmt not in sf.available_formats():
        raise ValueError(f"{path}: unknown audio file extension {path.suffix!r} (use .wav, .flac, .ogg, .mp3)")
    return fmt


def write_audio(
    path: str | os.PathLike, samples: np.ndarray, sample_rate: int, subtype: str | None = None
) -> Path:
    """Write audio atomically, never overwriting an existing file.

    The data goes to a hidden temp file in the same folder, is fsynced, and is then linked into
    place (tools.atomic.write_new_file), so a reader never sees a half-written file and an
    existing file is never replaced.

    Args:
        path: destination; the format comes from its extension (.wav, .flac, .ogg, .mp3, .aiff).
        samples: float array, shape (channels, samples) or (samples,) for mono, range [-1, 1].
            For integer subtypes values outside [-1, 1] are clipped (libsndfile would wrap them).
        sample_rate: Hz.
        subtype: libsndfile subtype; default PCM_24 for WAV/FLAC, VORBIS for Ogg,
            MPEG_LAYER_III for MP3, libsndfile's default otherwise.
    Returns:
        The path written.
    Raises:
        FileExistsError: ``path`` exists (see :func:`unique_path`).
        ValueError: unknown extension, or non-finite samples.
        FileNotFoundError: the folder does not exist.
    """
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path}: already exists; not overwriting")
    fmt = _format_for(path)
    subtype = subtype or _DEFAULT_SUBTYPES.get(fmt) or sf.default_subtype(fmt)
    data = np.asarray(samples, dtype=np.float32)
    data = data[np.newaxis, :] if data.ndim == 1 else data
    if not np.isfinite(data).all():
        raise ValueError(f"{path}: refusing to write NaN or infinite samples")
    if not subtype.startswith(("FLOAT", "DOUBLE")):
        data = np.clip(data, -1.0, 1.0)
    return write_new_file(path, lambda tmp: sf.write(tmp, data.T, int(sample_rate), subtype=subtype, format=fmt))


def unique_path(path: str | os.PathLike) -> Path:
    """Return ``path`` if it does not exist, else the first free ``stem-1.ext``, ``stem-2.ext``, ...

    Args:
        path: the wanted file name.
    Returns:
        A path that did not exist when checked (another writer may still take it; ``write_audio``
        then raises FileExistsError rather than overwrite).
    """
    path = Path(path)
    candidate, n = path, 0
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return candidate
