"""Reading, writing and resampling audio files.

Audio inside SENSE is a float32 array of shape ``(channels, samples)`` in [-1, 1].
Files are read and written with soundfile (libsndfile: WAV, FLAC, Ogg Vorbis, MP3, AIFF, ...);
resampling uses soxr. Writing is atomic and never overwrites an existing file.

Every error raised here is an :class:`AudioError` whose message is one line naming the file and
what is wrong, so a command line can print it without a traceback.
"""

from __future__ import annotations

import os
import struct
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


class AudioError(SenseError):
    """Base class of audio input/output errors; the message is one line naming the file."""


class AudioFileNotFoundError(AudioError, FileNotFoundError):
    """The audio file does not exist."""


class AudioDecodeError(AudioError):
    """The file is not audio, is corrupt or truncated, or holds NaN/infinite samples."""


class EmptyAudioError(AudioError):
    """The file holds no audio (zero frames, or zero bytes)."""


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


def load_audio(path: str | os.PathLike) -> Audio:
    """Read an audio file into float32 samples of shape (channels, samples).

    Any sample rate and channel count; any format libsndfile reads (WAV, FLAC, Ogg Vorbis/Opus,
    MP3, AIFF, ...). Integer PCM is scaled to [-1, 1).

    Args:
        path: the file.
    Returns:
        Audio with samples float32 (channels, samples), the file's sample rate (Hz) and path.
    Raises:
        AudioFileNotFoundError: the file does not exist.
        EmptyAudioError: the file has zero bytes or zero frames.
        AudioDecodeError: not audio (e.g. a text file named .wav), corrupt, truncated (a WAV whose
            data chunk is shorter than its header declares; a FLAC/MP3 that decodes to fewer
            frames than it declares), or holding NaN/infinite samples. A cut Ogg file cannot be
            told from a shorter one (Ogg declares no total length) and reads as what is present.
        AudioError: the file exists but cannot be opened (e.g. permission denied).
    """
    path = Path(path)
    if not path.exists():
        raise AudioFileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise AudioDecodeError(f"{path}: is a folder, not an audio file")
    try:
        if path.stat().st_size == 0:
            raise EmptyAudioError(f"{path}: empty file (0 bytes)")
        _check_wav_complete(path)
        with sf.SoundFile(path) as fh:
            declared, fmt, sample_rate = fh.frames, fh.format, fh.samplerate
            data = fh.read(dtype="float32", always_2d=True)
    except sf.LibsndfileError as exc:
        raise AudioDecodeError(f"{path}: cannot decode as audio ({_one_line(exc.error_string)})") from exc
    except (sf.SoundFileError, RuntimeError) as exc:
        raise AudioDecodeError(f"{path}: cannot decode as audio ({_one_line(exc)})") from exc
    except OSError as exc:
        raise AudioError(f"{path}: cannot read ({_one_line(exc.strerror or exc)})") from exc
    shortfall = declared - data.shape[0]
    tolerance = int(_MP3_LENGTH_TOLERANCE * declared) if fmt == "MP3" else 0
    if shortfall > tolerance:
        raise AudioDecodeError(f"{path}: truncated {fmt}: decoded {data.shape[0]} of {declared} frames")
    if data.shape[0] == 0:
        raise EmptyAudioError(f"{path}: no audio (0 frames)")
    if not np.isfinite(data).all():
        raise AudioDecodeError(f"{path}: corrupt: holds NaN or infinite samples")
    return Audio(samples=np.ascontiguousarray(data.T), sample_rate=int(sample_rate), path=path)


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
