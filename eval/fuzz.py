"""Hostile-audio fuzz suite over every entry point that reads audio.

``python -m eval.fuzz --cases 2000 --seed N [--report out/fuzz.json]`` generates ``--cases`` inputs with
hypothesis strategies and explicit builders (soundfile writes valid WAV/FLAC/OGG/MP3 of odd shapes,
rates and subtypes; mutations cut, flip, lie about sizes or replace headers; special paths are
folders, FIFOs, ``/dev/zero``, dangling and looping links, unicode, markup and 250-character names)
and drives each through one entry point, in this process:

* ``run``: ``sense run FILE -r "less harsh" --no-llm`` (typer's CliRunner on :data:`agent.cli.app`);
* ``separate`` / ``separate-auto``: ``sense separate FILE --method classical`` / the default method;
* ``chat`` / ``chat-arg``: ``sense chat --no-llm`` fed ``/audio FILE`` then a request on stdin, or the
  file as its argument;
* ``web``: the web UI's upload path, :func:`webui.session.check_upload` + :func:`webui.session.adopt`
  with the app's default :class:`webui.session.Limits`.

Every case ends in one outcome: ``accepted`` (processed; the output exists, is finite and has the
input's length after resampling), ``rejected-clear`` (non-zero exit / refusal with one line that names
the file, no traceback), or a failure: ``rejected-unclear``, ``wrong-decision`` (e.g. NaN samples
accepted, a plain 8-channel file refused), ``bad-output``, ``traceback``, ``hang`` (past
:data:`CASE_TIMEOUT_S`). Every input is hashed before and after; a changed input is a failure too.
The report (``--report``) lists every failing case's spec, which ``--replay REPORT`` runs again.
The small corpus in ``tests/fixtures/fuzz`` is written by ``--write-corpus DIR`` (deterministic).
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import hashlib
import io
import json
import math
import os
import shutil
import signal
import stat
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import soundfile as sf
from hypothesis import strategies as st

ENTRIES = ("run", "separate", "separate-auto", "chat", "chat-arg", "web")
ROTATION = ("run", "web", "separate", "chat-arg", "run", "web", "separate-auto", "chat", "web", "separate")
OK_OUTCOMES = ("accepted", "rejected-clear")
FAIL_OUTCOMES = ("rejected-unclear", "wrong-decision", "bad-output", "traceback", "hang")
CASE_TIMEOUT_S = 30
REQUEST = "less harsh"
RATES = (1, 4000, 8000, 11025, 22050, 44100, 48000, 96000, 192000, 384000)
MP3_RATES = (8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000)
FORMATS = {  # format -> (subtypes, rates, max channels, extension)
    "WAV": (("PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE", "ULAW", "ALAW"), RATES, 8, ".wav"),
    "FLAC": (("PCM_S8", "PCM_16", "PCM_24"), RATES[2:], 8, ".flac"),
    "OGG": (("VORBIS",), RATES[2:9], 8, ".ogg"),
    "OPUS": (("OPUS",), (48000,), 2, ".opus"),
    "MP3": (("MPEG_LAYER_III",), MP3_RATES, 2, ".mp3"),
}
SIGNALS = ("noise", "sine", "dc", "square", "silence", "nan", "inf", "huge")
MUTATIONS = ("none", "truncate", "flip", "header", "size-lie", "garbage-tail", "random-bytes", "text", "empty")
SOURCES = ("audio", "dir", "fifo", "devzero", "devzero-link", "missing", "dangling-link", "loop-link")
NAMES = ("plain", "unicode", "long", "long-unicode", "markup", "spaces", "dots")
EXTS = ("match", "swap", "upper", "none", "txt")
MAGICS = (b"fLaC", b"OggS", b"ID3\x04", b"RIFF", b"RIFX", b"\x00\x00\x00\x00", b"\xff\xfb\x90\x00", b"FORM")
DURATIONS = (0, 1, 2, 16, 441, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0) + (0.25, 0.5, 1.0) * 3  # ints: frames; floats: s
MAX_SAMPLES = 192_000  # frames x channels per case: keeps 2,000 cases to minutes
MIN_ACCEPTED_S = 0.1  # tools.audio_io.MIN_DURATION_S
MIN_ACCEPTED_RATE = 8000  # tools.audio_io.MIN_SAMPLE_RATE
MAX_PROCESSED_CHANNELS = 5  # tools.audio_io.MAX_PROCESSED_CHANNELS
DEFAULT_CORPUS = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "fuzz"


class CaseTimeout(BaseException):
    """A case ran past its bound (a BaseException, so no ``except Exception`` in the code under test eats it)."""


@dataclass(frozen=True)
class CaseSpec:
    """Everything needed to rebuild one case exactly (the report stores it; ``--replay`` runs it).

    Attributes:
        entry: one of :data:`ENTRIES`.
        source: one of :data:`SOURCES` ("audio": a file from the fields below; "corpus": ``corpus_file``).
        fmt, subtype, rate (Hz), channels, duration (int: frames; float: seconds), signal: the audio.
        mutation, cut (0..1: where a cut or the flips go), flips, seed: the damage done to the bytes.
        name, ext: the file name's style and extension style.
        corpus_file: a file of the corpus folder whose bytes are used as is.
    """

    entry: str = "run"
    source: str = "audio"
    fmt: str = "WAV"
    subtype: str = "PCM_16"
    rate: int = 44100
    channels: int = 2
    duration: float = 0.25
    signal: str = "noise"
    mutation: str = "none"
    cut: float = 0.5
    flips: int = 1
    seed: int = 0
    name: str = "plain"
    ext: str = "match"
    corpus_file: str = ""

    @property
    def frames(self) -> int:
        frames = self.duration if isinstance(self.duration, int) else int(round(self.duration * self.rate))
        return int(min(frames, MAX_SAMPLES // self.channels))


@dataclass
class CaseResult:
    """One case's outcome: one of :data:`OK_OUTCOMES` or :data:`FAIL_OUTCOMES`, a one-line detail,
    the wall time (s), whether the input changed, and the spec."""

    spec: CaseSpec
    outcome: str
    detail: str
    seconds: float
    modified: bool = False

    @property
    def failed(self) -> bool:
        return self.modified or self.outcome not in OK_OUTCOMES


# ---- building inputs ------------------------------------------------------------------------------


def _signal(spec: CaseSpec) -> np.ndarray:
    """The samples of an audio case, float64, shape (frames, channels)."""
    rng = np.random.default_rng(spec.seed)
    n, c = spec.frames, spec.channels
    t = np.arange(n)[:, None] / spec.rate
    base = {
        "sine": 0.5 * np.sin(2 * np.pi * min(440.0, spec.rate / 4) * t + np.arange(c)),
        "dc": np.full((n, c), 0.5),
        "square": np.where(np.sin(2 * np.pi * min(100.0, spec.rate / 4) * t + 0.1) >= 0, 1.0, -1.0) * np.ones((1, c)),
        "silence": np.zeros((n, c)),
    }.get(spec.signal)
    x = base if base is not None else np.clip(0.1 * rng.standard_normal((n, c)), -1, 1)
    float_file = spec.subtype in ("FLOAT", "DOUBLE")
    if float_file and n and spec.signal in ("nan", "inf"):
        x = x.copy()
        x[rng.integers(0, n, size=max(1, n // 100)), rng.integers(0, c)] = np.nan if spec.signal == "nan" else np.inf
    elif float_file and spec.signal == "huge":
        x = x * 1e30
    return np.broadcast_to(x, (n, c)).copy()


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
        table.append(crc & 0xFFFFFFFF)
    return table


_OGG_CRC = _crc_table()


def _ogg_fixed_serial(data: bytes, serial: bytes = b"SENS") -> bytes:
    """Ogg pages with a fixed stream serial (libsndfile draws a random one) and their CRCs redone."""
    out, pos = bytearray(data), 0
    while pos + 27 <= len(out) and out[pos:pos + 4] == b"OggS":
        n = out[pos + 26]
        end = pos + 27 + n + sum(out[pos + 27: pos + 27 + n])
        out[pos + 14: pos + 18], out[pos + 22: pos + 26] = serial, b"\0\0\0\0"
        crc = 0
        for byte in out[pos:end]:
            crc = ((crc << 8) & 0xFFFFFFFF) ^ _OGG_CRC[(crc >> 24) ^ byte]
        out[pos + 22: pos + 26] = crc.to_bytes(4, "little")
        pos = end
    return bytes(out)


def deterministic(data: bytes) -> bytes:
    """The same file bytes on every run: a WAV PEAK chunk's timestamp zeroed, Ogg serials fixed."""
    if data[:4] == b"OggS":
        return _ogg_fixed_serial(data)
    at = data.find(b"PEAK", 12, 512) if data[:4] in (b"RIFF", b"RIFX") else -1
    return data[: at + 12] + b"\0\0\0\0" + data[at + 16:] if at >= 0 else data


def encode(spec: CaseSpec) -> bytes:
    """The undamaged file of an audio case (soundfile); a combination the encoder refuses becomes a 16-bit WAV."""
    fmt = "OGG" if spec.fmt == "OPUS" else spec.fmt
    buf = io.BytesIO()
    try:
        sf.write(buf, _signal(spec), spec.rate, subtype=spec.subtype, format=fmt)
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError):
        buf = io.BytesIO()
        sf.write(buf, _signal(replace(spec, subtype="PCM_16")), spec.rate, subtype="PCM_16", format="WAV")
    return deterministic(buf.getvalue())


def mutate(data: bytes, spec: CaseSpec) -> bytes:
    """``data`` damaged as ``spec.mutation`` says (deterministic in ``spec.seed``)."""
    rng = np.random.default_rng(spec.seed + 1)
    m, n = spec.mutation, len(data)
    if m == "truncate":
        return data[: int(n * spec.cut)]
    if m == "flip" and n:
        out = bytearray(data)
        span = max(1, min(n, 64) if spec.cut < 0.5 else n)  # the header, or anywhere
        for pos in rng.integers(0, span, size=spec.flips):
            out[pos] ^= int(rng.integers(1, 256))
        return bytes(out)
    if m == "header":
        return MAGICS[spec.seed % len(MAGICS)] + data[4:]
    if m == "size-lie":
        out = bytearray(data)
        lie = int(rng.integers(0, 2**32)).to_bytes(4, "little")
        at = data.find(b"data") if data.find(b"data") >= 0 else 0
        out[4:8], out[at + 4: at + 8] = lie, lie[::-1]
        return bytes(out[:n])
    if m == "garbage-tail":
        return data + rng.integers(0, 256, size=1 + spec.flips * 97, dtype=np.uint8).tobytes()
    if m == "random-bytes":
        return rng.integers(0, 256, size=1 + int(spec.cut * 4000), dtype=np.uint8).tobytes()
    if m == "text":
        return b"this is not audio, just a renamed text file\n" * (1 + spec.flips)
    if m == "empty":
        return b""
    return data


def file_name(spec: CaseSpec) -> str:
    """The case's file name: its name style plus an extension (≤ 255 bytes, as file systems allow)."""
    exts = {k: v[3] for k, v in FORMATS.items()}
    ext = {"match": exts[spec.fmt], "swap": (".mp3", ".flac", ".wav", ".ogg")[spec.seed % 4],
           "upper": exts[spec.fmt].upper(), "none": "", "txt": ".txt"}[spec.ext]
    if spec.source == "corpus" and spec.ext == "match":
        ext = Path(spec.corpus_file).suffix
    stem = {"plain": f"case-{spec.seed}", "unicode": f"sönge – テスト 🎵 {spec.seed}",
            "long": "l" * (250 - len(ext)), "long-unicode": "é" * ((250 - len(ext.encode())) // 2),
            "markup": f"[bold]mix[red] [link=x] \\[i] {spec.seed}", "spaces": f"my song (final) v2 {spec.seed}",
            "dots": f"..a.b.c.{spec.seed}"}[spec.name]
    return stem + ext


def materialize(spec: CaseSpec, folder: Path, corpus: Path = DEFAULT_CORPUS) -> Path:
    """Create the case's input in ``folder`` (or return the special path) and return its path."""
    path = folder / file_name(spec)
    src = spec.source
    if src == "dir":
        path.mkdir()
    elif src == "fifo":
        os.mkfifo(path)
    elif src == "devzero":
        return Path("/dev/zero")
    elif src == "devzero-link":
        path.symlink_to("/dev/zero")
    elif src == "dangling-link":
        path.symlink_to(folder / "nowhere.wav")
    elif src == "loop-link":
        path.symlink_to(path)
    elif src == "corpus":
        path.write_bytes((corpus / spec.corpus_file).read_bytes())
    elif src == "audio":
        path.write_bytes(mutate(encode(spec), spec))
    return path  # "missing": never created


def expectation(spec: CaseSpec) -> str:
    """What a polished tool does with the case: "accept", "reject" or "either" (damage it may not see)."""
    if spec.source not in ("audio", "corpus"):
        return "reject"
    if spec.mutation in ("header", "random-bytes", "text", "empty"):
        return "reject" if spec.mutation in ("text", "empty") else "either"
    if spec.mutation != "none":
        return "either"
    if spec.ext in ("txt", "none") and spec.entry == "web":
        return "reject"  # the web upload takes audio file types only
    if spec.signal in ("nan", "inf") and spec.subtype in ("FLOAT", "DOUBLE") and spec.frames:
        return "reject"
    if spec.signal == "huge" and spec.subtype in ("FLOAT", "DOUBLE"):
        return "either"
    if spec.frames < math.ceil(MIN_ACCEPTED_S * spec.rate - 1e-6) or spec.rate < MIN_ACCEPTED_RATE:
        return "reject"
    if spec.channels > MAX_PROCESSED_CHANNELS and not spec.entry.startswith("separate"):
        return "reject"  # loudness matching (BS.1770) takes L R C Ls Rs; separation takes any count
    return "either" if spec.fmt in ("MP3", "OPUS") else "accept"  # lossy codecs pad and trim frames


# ---- hypothesis strategies -------------------------------------------------------------------------


@st.composite
def audio_specs(draw, entries=ENTRIES) -> CaseSpec:
    """Audio files of every format, odd shape, rate and subtype, most of them then damaged."""
    fmt = draw(st.sampled_from(tuple(FORMATS)))
    subtypes, rates, max_channels, _ = FORMATS[fmt]
    return CaseSpec(
        entry=draw(st.sampled_from(entries)), source="audio", fmt=fmt, subtype=draw(st.sampled_from(subtypes)),
        rate=draw(st.sampled_from(rates)), channels=draw(st.integers(1, max_channels)),
        duration=draw(st.sampled_from(DURATIONS)), signal=draw(st.sampled_from(SIGNALS)),
        mutation=draw(st.sampled_from(MUTATIONS[:1] * 6 + MUTATIONS[1:])),
        cut=draw(st.floats(0.0, 0.999, allow_nan=False)), flips=draw(st.integers(1, 16)),
        seed=draw(st.integers(0, 2**20)), name=draw(st.sampled_from(NAMES[:1] * 4 + NAMES[1:])),
        ext=draw(st.sampled_from(EXTS[:1] * 8 + EXTS[1:])))


@st.composite
def special_specs(draw, entries=ENTRIES) -> CaseSpec:
    """Paths that are not audio files: folders, FIFOs, /dev/zero, missing files, broken links."""
    return CaseSpec(entry=draw(st.sampled_from(entries)), source=draw(st.sampled_from(SOURCES[1:])),
                    seed=draw(st.integers(0, 2**20)), name=draw(st.sampled_from(NAMES)))


def case_specs(entries: tuple[str, ...] = ENTRIES) -> st.SearchStrategy[CaseSpec]:
    """Every kind of case; about one in twelve is a special path."""
    return st.one_of(*[audio_specs(entries)] * 11, special_specs(entries))


# ---- corpus -----------------------------------------------------------------------------------------


_SMALL = CaseSpec(rate=22050, channels=1, duration=0.15)
CORPUS_SPECS: dict[str, CaseSpec] = {name: replace(_SMALL, **fields) for name, fields in {
    "truncated.wav": dict(mutation="truncate", cut=0.6),
    "truncated.flac": dict(fmt="FLAC", mutation="truncate", cut=0.6),
    "truncated.ogg": dict(fmt="OGG", subtype="VORBIS", mutation="truncate", cut=0.3),
    "truncated.mp3": dict(fmt="MP3", subtype="MPEG_LAYER_III", mutation="truncate", cut=0.4, duration=0.5),
    "garbled-header.wav": dict(mutation="flip", cut=0.1, flips=12, seed=3),
    "garbled.flac": dict(fmt="FLAC", mutation="flip", cut=0.9, flips=40, seed=4),
    "flac-magic-in-wav.wav": dict(mutation="header", seed=0),
    "size-lie.wav": dict(mutation="size-lie", seed=5),
    "text-renamed.mp3": dict(fmt="MP3", subtype="MPEG_LAYER_III", mutation="text"),
    "random.ogg": dict(fmt="OGG", subtype="VORBIS", mutation="random-bytes", cut=0.5, seed=6),
    "empty.wav": dict(mutation="empty"),
    "nan-float32.wav": dict(subtype="FLOAT", signal="nan"),
    "inf-float64.wav": dict(subtype="DOUBLE", signal="inf"),
    "huge-float32.wav": dict(subtype="FLOAT", signal="huge"),
    "one-sample.wav": dict(duration=1),
    "zero-frames.wav": dict(duration=0),
    "zero-frames.flac": dict(fmt="FLAC", duration=0),
    "8ch.wav": dict(channels=8, rate=8000),
    "8ch.flac": dict(fmt="FLAC", channels=8, rate=16000),
    "5ch.wav": dict(channels=5, rate=8000, signal="sine"),
    "384k.wav": dict(rate=384000, duration=0.105, signal="sine"),
    "1hz.wav": dict(rate=1, duration=4),
    "8bit.wav": dict(subtype="PCM_U8", signal="sine"),
    "float32.wav": dict(subtype="FLOAT", signal="sine", channels=2),
    "dc.flac": dict(fmt="FLAC", signal="dc"),
    "square-fullscale.wav": dict(signal="square", channels=2),
    "mono.ogg": dict(fmt="OGG", subtype="VORBIS", signal="sine"),
    "stereo.mp3": dict(fmt="MP3", subtype="MPEG_LAYER_III", signal="sine", channels=2, duration=0.5),
}.items()}
"""The corpus: file name -> the spec that writes it (all audio < 0.5 s, so the folder stays < 300 kB)."""
CORPUS_NAMES = {"unicode": "8bit.wav", "long": "dc.flac", "long-unicode": "truncated.wav", "markup": "mono.ogg",
                "spaces": "float32.wav", "dots": "nan-float32.wav"}
"""Corpus files the tests also run under each hostile name style."""


def write_corpus(folder: Path) -> dict[str, str]:
    """Write the corpus files and ``manifest.json`` (file -> spec and expectation) into ``folder``.

    Deterministic: the same soundfile/libsndfile writes the same bytes. Returns file -> sha256.
    """
    folder.mkdir(parents=True, exist_ok=True)
    digests, manifest = {}, {}
    for name, spec in CORPUS_SPECS.items():
        data = mutate(encode(spec), spec)
        (folder / name).write_bytes(data)
        digests[name] = hashlib.sha256(data).hexdigest()
        manifest[name] = {"spec": asdict(spec), "expect": expectation(spec), "sha256": digests[name]}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return digests


def corpus_specs(folder: Path = DEFAULT_CORPUS, entries: tuple[str, ...] = ENTRIES) -> list[CaseSpec]:
    """Every corpus file through every entry in ``entries``, plus the hostile-name variants."""
    manifest = json.loads((folder / "manifest.json").read_text())
    specs = []
    for entry in entries:
        for name, item in sorted(manifest.items()):
            base = replace(CaseSpec(**item["spec"]), entry=entry, source="corpus", corpus_file=name)
            specs.append(base)
            specs += [replace(base, name=style) for style, file in CORPUS_NAMES.items() if file == name]
    return specs


def special_cases(entries: tuple[str, ...] = ENTRIES) -> list[CaseSpec]:
    """Each special path through each entry."""
    return [CaseSpec(entry=e, source=s, name="plain" if s != "fifo" else "unicode") for e in entries for s in SOURCES[1:]]


# ---- checking ---------------------------------------------------------------------------------------


def fingerprint(path: Path) -> str:
    """sha256 of a regular file's bytes; a folder's listing; a FIFO's or device's type (never opened)."""
    try:
        st_ = os.lstat(path)
    except OSError:
        return "absent"
    if stat.S_ISLNK(st_.st_mode):
        return "link:" + os.readlink(path)
    if stat.S_ISDIR(st_.st_mode):
        return "dir:" + ",".join(sorted(os.listdir(path)))
    if not stat.S_ISREG(st_.st_mode):
        return f"special:{stat.S_IFMT(st_.st_mode)}"
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fold(text: str) -> str:
    return " ".join(text.split())


def names_file(message: str, path: Path, *also: str) -> bool:
    """Whether a message names the file (its path, its name, or one of ``also``), whitespace folded."""
    message = _fold(message)
    return any(_fold(c) in message for c in (str(path), path.name, *also) if c)


def check_audio_out(out: Path, src: tuple[int, int] | None) -> str:
    """'' when ``out`` is a finite audio file whose length matches the input's ``(frames, rate)`` after
    resampling (±1 frame per 1,000, for codec padding), else what is wrong."""
    try:
        data, rate = sf.read(out, dtype="float32", always_2d=True)
    except Exception as exc:  # noqa: BLE001 - any failure to read the output is the finding
        return f"output {out.name} unreadable: {exc}"
    if not np.isfinite(data).all():
        return f"output {out.name} holds NaN/Inf"
    if src is not None:
        want = src[0] * rate / src[1]
        if abs(data.shape[0] - want) > 1 + want / 1000:
            return f"output {out.name} has {data.shape[0]} frames, expected {want:.0f}"
    return ""


def source_shape(path: Path) -> tuple[int, int] | None:
    """(frames, rate) of the input as SENSE decodes it (any length), else None (not readable audio)."""
    from tools.audio_io import load_audio

    try:
        audio = load_audio(path, min_duration_s=0)
    except Exception:  # noqa: BLE001 - unreadable inputs have no shape; the entry point reports how it fails
        return None
    return audio.n_samples, audio.sample_rate


@contextlib.contextmanager
def captured_fd2(into: Path):
    """Send file descriptor 2 (what C libraries print, which CliRunner cannot see) to ``into`` meanwhile;
    yields ``into``."""
    sys.stderr.flush()
    saved = os.dup(2)
    with into.open("wb") as fh:
        os.dup2(fh.fileno(), 2)
        try:
            yield into
        finally:
            os.dup2(saved, 2)
            os.close(saved)


@contextlib.contextmanager
def bounded(seconds: int):
    """Raise :class:`CaseTimeout` in the main thread after ``seconds`` (SIGALRM; a blocked ``open`` of a FIFO
    is interrupted too), with a hard process exit at 4x as the last resort."""
    def on_alarm(_signum, _frame):
        raise CaseTimeout(f"no result after {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    faulthandler.dump_traceback_later(4 * seconds, exit=True)
    try:
        yield
    finally:
        signal.alarm(0)
        faulthandler.cancel_dump_traceback_later()
        signal.signal(signal.SIGALRM, old)


# ---- driving the entry points ----------------------------------------------------------------------


def _exc_line(exc_info) -> str:
    """``file:line in func: Type: message`` of an exception's innermost frame."""
    exc = exc_info[1]
    frames = traceback.extract_tb(exc_info[2])
    where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno} in {frames[-1].name}: " if frames else ""
    return _fold(f"{where}{type(exc).__name__}: {exc}")[:400]


def _new_files(case_dir: Path, path: Path, pattern: str) -> list[Path]:
    return sorted(p for p in case_dir.rglob(pattern) if p != path and not p.name.endswith(".part"))


def _split_variants(outs: list[Path]) -> tuple[list[Path], list[Path]]:
    """(results, their variants): ``OUT-B.wav`` / ``OUT-C.wav`` beside an ``OUT.wav`` are alternatives offered with it
    (agent.variants), not extra results."""
    names = {p.with_suffix("") for p in outs}
    variant = [p for p in outs if p.stem[-2:] in ("-B", "-C") and p.with_name(p.stem[:-2]) in names]
    return [p for p in outs if p not in variant], variant


def _error_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


class Harness:
    """Runs cases through the entry points in this process; the rule-based runtime is loaded once.

    Args:
        rt: an ``agent.runtime.Runtime`` to use (default: ``Runtime.load(use_llm=False)`` on first need).
        limits: the web upload limits (default: the app's defaults).
        corpus: the corpus folder.
    """

    def __init__(self, rt=None, limits=None, corpus: Path = DEFAULT_CORPUS):
        from typer.testing import CliRunner

        from webui.session import Limits

        self._rt, self._engines = rt, {}
        self.limits = limits or Limits()
        self.corpus = corpus
        self.runner = CliRunner()

    def engine(self, variants: bool = True):
        """One ``agent.engine.Engine`` per ``variants`` setting for every CLI case (the CLI would load one per
        command); they share one runtime."""
        if variants not in self._engines:
            from agent.engine import Engine
            from agent.runtime import Runtime

            self._rt = self._rt or Runtime.load(use_llm=False)
            self._engines[variants] = Engine(self._rt, variants=variants)
        return self._engines[variants]

    def invoke(self, args: list[str], stdin: str | None = None):
        """``sense ARGS`` through CliRunner, with this harness's engine instead of a fresh load."""
        import agent.cli as cli

        original = cli._engine
        cli._engine = lambda model, llm_url, no_llm, fr_dir, variants: self.engine(variants)
        try:
            return self.runner.invoke(cli.app, args, input=stdin)
        finally:
            cli._engine = original

    def run_case(self, spec: CaseSpec, root: Path) -> CaseResult:
        """Build the case in a fresh folder under ``root``, drive it (bounded), judge it, clean up."""
        case_dir = Path(tempfile.mkdtemp(dir=root))
        (case_dir / "in").mkdir()
        start = time.perf_counter()
        path = materialize(spec, case_dir / "in", self.corpus)
        before = fingerprint(path)
        with captured_fd2(case_dir / "fd2.txt") as fd2:
            try:
                with bounded(CASE_TIMEOUT_S):
                    shape = source_shape(path)
                    outcome, detail = DRIVERS[spec.entry](self, spec, path, case_dir, shape)
            except CaseTimeout as exc:
                outcome, detail = "hang", str(exc)
            except Exception:  # noqa: BLE001 - an escaped exception is the finding
                outcome, detail = "traceback", _exc_line(sys.exc_info())
        if outcome == "rejected-clear" and spec.entry != "web" and (noise := _error_lines(fd2.read_text(errors="replace"))):
            outcome, detail = "rejected-unclear", f"{detail} | also on stderr (fd 2): {' | '.join(noise)}"[:400]
        outcome, detail = judge(spec, outcome, detail)
        modified = fingerprint(path) != before
        shutil.rmtree(case_dir, ignore_errors=True)
        return CaseResult(spec, outcome, detail, round(time.perf_counter() - start, 3), modified)


def judge(spec: CaseSpec, outcome: str, detail: str) -> tuple[str, str]:
    """A clean outcome that contradicts :func:`expectation` becomes ``wrong-decision``."""
    want = expectation(spec)
    if (outcome, want) in (("accepted", "reject"), ("rejected-clear", "accept")):
        return "wrong-decision", f"expected {want}, got {outcome}: {detail}"
    return outcome, detail


def cli_outcome(result, path: Path, check) -> tuple[str, str]:
    """Classify a CliRunner result: a traceback, a clear or unclear refusal, or ``check()``'s verdict."""
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return "traceback", _exc_line(result.exc_info)
    if "Traceback (most recent call last)" in result.output:
        return "traceback", _fold(result.output)[-400:]
    errors = _error_lines(result.stderr)
    if result.exit_code != 0:
        if len(errors) == 1 and errors[0].startswith("error:") and names_file(errors[0], path):
            return "rejected-clear", errors[0][:400]
        return "rejected-unclear", (f"exit {result.exit_code}: " + " | ".join(errors))[:400]
    problem = check()
    return ("bad-output", problem) if problem else ("accepted", "")


def drive_run(h: Harness, spec: CaseSpec, path: Path, case_dir: Path, shape) -> tuple[str, str]:
    """``sense run PATH -r "less harsh" --no-llm`` (even seeds: ``-o``; odd: the default output name)."""
    args = ["run", str(path), "-r", REQUEST, "--no-llm"]
    if spec.seed % 2 == 0:
        args += ["-o", str(case_dir / "out" / "result.wav")]
    result = h.invoke(args)

    def check() -> str:
        outs = _new_files(case_dir, path, "*.wav")
        if len(outs) != 1 or not outs[0].with_suffix(".json").exists():
            return f"expected one output .wav with its trace, found {[p.name for p in outs]}"
        return check_audio_out(outs[0], shape)

    return cli_outcome(result, path, check)


def drive_separate(h: Harness, spec: CaseSpec, path: Path, case_dir: Path, shape) -> tuple[str, str]:
    """``sense separate PATH --method classical`` (``separate-auto``: the default method); the four stems
    must be finite, as long as the input and sum to it."""
    args = ["separate", str(path)] + (["--method", "classical"] if spec.entry == "separate" else [])
    if spec.seed % 2 == 0:
        args += ["-o", str(case_dir / "out" / "stems")]
    result = h.invoke(args)

    def check() -> str:
        stems = _new_files(case_dir, path, "*.wav")
        if sorted(p.stem for p in stems) != ["bass", "drums", "other", "vocals"]:
            return f"expected four stems, found {[p.name for p in stems]}"
        problems = [check_audio_out(p, shape) for p in stems]
        if any(problems):
            return next(p for p in problems if p)
        mix, _ = sf.read(path, dtype="float32", always_2d=True)
        total = sum(sf.read(p, dtype="float32", always_2d=True)[0] for p in stems)
        err = float(np.max(np.abs(total - mix))) if mix.size else 0.0
        return "" if err <= 1e-3 * max(1.0, float(np.max(np.abs(mix)))) else f"stems sum off the input by {err:.2g}"

    return cli_outcome(result, path, check)


def drive_chat(h: Harness, spec: CaseSpec, path: Path, case_dir: Path, shape) -> tuple[str, str]:
    """``sense chat --no-llm`` fed ``/audio PATH`` and a request (``chat-arg``: PATH as the argument)."""
    if spec.entry == "chat-arg":
        result = h.invoke(["chat", str(path), "--no-llm"], stdin=f"{REQUEST}\n/quit\n")
    else:
        result = h.invoke(["chat", "--no-llm"], stdin=f"/audio {path}\n{REQUEST}\n/quit\n")

    def check() -> str:
        outs, variants = _split_variants(_new_files(case_dir, path, "*.wav"))
        if len(outs) != 1:
            return f"expected one output, found {len(outs)}"
        return next(filter(None, (check_audio_out(p, shape) for p in outs + variants)), "")

    if result.exit_code == 0 and (errors := _error_lines(result.stderr)):  # chat goes on after an error line
        if len(errors) == 1 and errors[0].startswith("error:") and names_file(errors[0], path):
            return "rejected-clear", errors[0][:400]
        return "rejected-unclear", " | ".join(errors)[:400]
    return cli_outcome(result, path, check)


def drive_web(h: Harness, spec: CaseSpec, path: Path, case_dir: Path, shape) -> tuple[str, str]:
    """The web upload: ``check_upload`` + ``adopt`` into a fresh session folder; the session's copy must be
    byte-identical and the message for a refusal one line, naming the file and no server folder."""
    from webui.session import Session, UploadProblem, adopt, safe_name

    folder = case_dir / "session"
    folder.mkdir()
    session = Session(id="fuzz", folder=folder, user="fuzz", thread="fuzz")
    try:
        copy, _new = adopt(session, path, h.limits)
    except UploadProblem as exc:
        message = str(exc)
        clear = "\n" not in message and names_file(message, path, safe_name(path.name))
        clear = clear and str(case_dir) not in message
        return ("rejected-clear" if clear else "rejected-unclear"), _fold(message)[:400]
    if copy.read_bytes() != path.read_bytes():
        return "bad-output", "the session's copy differs from the upload"
    return "accepted", ""


DRIVERS = {"run": drive_run, "separate": drive_separate, "separate-auto": drive_separate,
           "chat": drive_chat, "chat-arg": drive_chat, "web": drive_web}


# ---- the full run ---------------------------------------------------------------------------------


def fixed_cases(corpus: Path = DEFAULT_CORPUS) -> list[CaseSpec]:
    """The deterministic part of every run: the corpus and the special paths through every entry."""
    return corpus_specs(corpus) + special_cases()


def generated_cases(n: int, seed: int) -> list[CaseSpec]:
    """``n`` cases drawn by hypothesis from :func:`case_specs` with a fixed seed (generation only)."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as seed_

    specs: list[CaseSpec] = []

    @seed_(seed)
    @settings(max_examples=n, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case_specs())
    def draw(spec):
        specs.append(spec)

    if n > 0:
        draw()
    # entries in a fixed rotation (hypothesis' own draws favour some), weighted to the cheap ones
    return [replace(s, entry=ROTATION[i % len(ROTATION)]) for i, s in enumerate(specs[:n])]


def run_all(specs: list[CaseSpec], harness: Harness, progress: bool = True) -> list[CaseResult]:
    """Run every case (a progress bar on stderr); returns the results in order."""
    from tqdm import tqdm

    results: list[CaseResult] = []
    root = Path(tempfile.mkdtemp(prefix="sense-fuzz-"))
    try:
        with tqdm(specs, desc="fuzz", unit="case", disable=not progress, file=sys.__stderr__) as bar:
            for spec in bar:
                results.append(harness.run_case(spec, root))
                bar.set_postfix(failed=sum(r.failed for r in results))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return results


def summarize(results: list[CaseResult], wall_s: float, seed: int) -> dict:
    """Counts per entry and outcome, input changes, timing, and every failure with its spec."""
    counts: dict[str, Counter] = {e: Counter() for e in ENTRIES}
    for r in results:
        counts[r.spec.entry][r.outcome] += 1
    return {
        "seed": seed, "cases": len(results), "wall_s": round(wall_s, 1),
        "slowest_case_s": max((r.seconds for r in results), default=0.0),
        "outcomes": dict(Counter(r.outcome for r in results)), "inputs_modified": sum(r.modified for r in results),
        "per_entry": {e: dict(c) for e, c in counts.items() if c},
        "failures": [{**asdict(r), "spec": asdict(r.spec)} for r in results if r.failed],
    }


def print_summary(report: dict) -> None:
    """The per-entry × outcome table and the failures, on stdout."""
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    outcomes = list(OK_OUTCOMES + FAIL_OUTCOMES)
    table = Table("entry", *outcomes, "total", title=f"fuzz: {report['cases']} cases, seed {report['seed']}, "
                  f"{report['wall_s']} s")
    for entry, c in report["per_entry"].items():
        table.add_row(entry, *[str(c.get(o, 0)) for o in outcomes], str(sum(c.values())))
    table.add_row("all", *[str(report["outcomes"].get(o, 0)) for o in outcomes], str(report["cases"]))
    console.print(table)
    console.print(f"inputs modified: {report['inputs_modified']}; slowest case {report['slowest_case_s']} s")
    for f in report["failures"][:40]:
        console.print(f"FAIL {f['spec']['entry']} {f['outcome']}: {f['detail']}", markup=False)


def write_report(path: Path, report: dict) -> None:
    from tools.atomic import replace_file

    path.parent.mkdir(parents=True, exist_ok=True)
    replace_file(path, lambda tmp: tmp.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n"))


def main(argv: list[str] | None = None) -> int:
    """``python -m eval.fuzz``; exit status 1 when any case failed."""
    p = argparse.ArgumentParser(prog="python -m eval.fuzz", description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", type=int, default=2000, help="total cases (the corpus and special paths included)")
    p.add_argument("--seed", type=int, default=0, help="hypothesis seed for the generated cases")
    p.add_argument("--report", type=Path, help="write the JSON report here")
    p.add_argument("--replay", type=Path, help="run only the failures listed in this report")
    p.add_argument("--write-corpus", type=Path, metavar="DIR", help="(re)write the corpus into DIR and exit")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    if args.write_corpus:
        digests = write_corpus(args.write_corpus)
        print(f"wrote {len(digests)} files to {args.write_corpus}")
        return 0
    os.environ.setdefault("SENSE_HOME", tempfile.mkdtemp(prefix="sense-fuzz-home-"))
    if args.replay:
        specs = [CaseSpec(**f["spec"]) for f in json.loads(args.replay.read_text())["failures"]]
    else:
        fixed = fixed_cases()
        specs = fixed + generated_cases(max(0, args.cases - len(fixed)), args.seed)
    start = time.perf_counter()
    results = run_all(specs, Harness(), progress=not args.no_progress)
    report = summarize(results, time.perf_counter() - start, args.seed)
    print_summary(report)
    if args.report:
        write_report(args.report, report)
    return 1 if report["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
