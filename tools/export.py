"""EQ exports: an EqualizerAPO ``config.txt`` and an AutoEq ``ParametricEQ.txt`` from filter lists.

Both formats are lines of ``Command: parameters`` text; lines that start with ``#`` are comments.

- **EqualizerAPO** (configuration reference:
  https://sourceforge.net/p/equalizerapo/wiki/Configuration%20reference/)::

      Preamp: -3.0 dB
      GraphicEQ: 20 -1.2; 21 -1.1; ...; 20000 -4.0
      Filter 1: ON PK Fc 1000 Hz Gain -3.0 dB Q 1.41

  ``Preamp`` is a gain in dB applied before the filters; ``GraphicEQ`` is a list of
  ``frequency gain`` pairs (Hz, dB) that EqualizerAPO interpolates and realises as one FIR filter;
  ``Filter <n>: ON <type> Fc <Hz> Hz Gain <dB> dB Q <q>`` adds one biquad (the number is not
  interpreted). Filters and the graphic EQ apply in sequence, so their dB responses add.
- **AutoEq** ``ParametricEQ.txt`` (https://github.com/jaakkopasanen/AutoEq, the file AutoEq writes
  for EqualizerAPO, Peace, Wavelet, PipeWire's parametric-equalizer module …)::

      Preamp: -6.2 dB
      Filter 1: ON LSC Fc 105 Hz Gain 6.4 dB Q 0.70
      Filter 2: ON PK Fc 213 Hz Gain -3.1 dB Q 0.59

  i.e. ``Preamp`` plus the same ``Filter`` lines. Parametric filters only: a graphic (FIR) curve
  such as SENSE's device transfer has no place in it, so :func:`parametric_eq_txt` leaves it out and
  its header says so.

Filter types, :class:`tools.eq.Filter` → file: peaking → ``PK``, low_shelf → ``LSC``,
high_shelf → ``HSC`` (EqualizerAPO's shelves "with corner frequency" and Q: the RBJ cookbook
shelves that tools.eq implements, as AutoEq writes them), low_pass → ``LPQ``, high_pass → ``HPQ``
(pass filters with Q; no gain).

Preamp: the negative of the largest boost of everything the file applies (the dB sum of all
filters and the graphic EQ, evaluated on a dense log grid at 48 kHz), rounded *down* to 0.1 dB, so
a full-scale signal never clips — AutoEq's rule. An EQ that only cuts gets ``Preamp: 0.0 dB``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tools.atomic import write_new_file
from tools.eq import Filter, frequency_response_db

TYPE_CODES: dict[str, str] = {
    "peaking": "PK", "low_shelf": "LSC", "high_shelf": "HSC", "low_pass": "LPQ", "high_pass": "HPQ",
}
"""tools.eq filter type → EqualizerAPO / AutoEq filter code."""
_CODE_TYPES = {code: kind for kind, code in TYPE_CODES.items()} | {"PEQ": "peaking", "LS": "low_shelf",
                                                                  "HS": "high_shelf"}
EVAL_SAMPLE_RATE = 48000.0
"""Sample rate at which the preamp is computed (EqualizerAPO runs at the device's rate; 48 kHz is typical)."""
EVAL_GRID_HZ = np.geomspace(20.0, 20000.0, 2000)
"""Where the combined response is evaluated for the preamp: 2000 log-spaced points, 20 Hz–20 kHz."""
GRAPHIC_POINTS = 127
"""Points of an exported GraphicEQ line (as AutoEq writes it: 127 log-spaced frequencies)."""


@dataclass
class ParsedEq:
    """What :func:`parse_eq_text` read back from a file.

    Attributes:
        preamp_db: the ``Preamp`` value, dB (0.0 when the file has none).
        filters: the ``Filter`` lines, in order.
        graphic: ``(frequency_hz, gain_db)`` arrays of a ``GraphicEQ`` line, or None.
        comments: the ``#`` lines without the ``#``.
    """

    preamp_db: float = 0.0
    filters: list[Filter] = field(default_factory=list)
    graphic: tuple[np.ndarray, np.ndarray] | None = None
    comments: list[str] = field(default_factory=list)


def _fmt(value: float, decimals: int) -> str:
    text = f"{value:.{decimals}f}"
    return "0.0" if decimals and float(text) == 0 else text


def _fc(frequency_hz: float) -> str:
    return f"{round(frequency_hz, 1):g}"


def round_filter(flt: Filter) -> Filter:
    """The filter as a file stores it: Fc to 0.1 Hz, gain to 0.1 dB, Q to 0.01."""
    return Filter(type=flt.type, frequency_hz=round(flt.frequency_hz, 1), gain_db=round(flt.gain_db, 1),
                  q=max(round(flt.q, 2), 0.01))


def filter_line(number: int, flt: Filter) -> str:
    """One ``Filter <n>: ON …`` line, e.g. ``Filter 1: ON PK Fc 1000 Hz Gain -3.0 dB Q 1.41``."""
    flt = round_filter(flt)
    code = TYPE_CODES[flt.type]
    if flt.type in ("low_pass", "high_pass"):
        return f"Filter {number}: ON {code} Fc {_fc(flt.frequency_hz)} Hz Q {flt.q:.2f}"
    return f"Filter {number}: ON {code} Fc {_fc(flt.frequency_hz)} Hz Gain {_fmt(flt.gain_db, 1)} dB Q {flt.q:.2f}"


def resample_curve(frequency_hz: np.ndarray, gain_db: np.ndarray, points: int = GRAPHIC_POINTS
                   ) -> tuple[np.ndarray, np.ndarray]:
    """A curve on ``points`` log-spaced integer frequencies over its range, gains rounded to 0.1 dB.

    Args:
        frequency_hz: increasing frequencies, Hz, shape (n,).
        gain_db: dB at each, shape (n,).
        points: how many points to keep.
    Returns:
        ``(frequency_hz, gain_db)``, float64, interpolated linearly on log frequency.
    """
    f = np.asarray(frequency_hz, dtype=np.float64)
    g = np.asarray(gain_db, dtype=np.float64)
    grid = np.unique(np.round(np.geomspace(f[0], f[-1], points)))
    return grid, np.round(np.interp(np.log(grid), np.log(f), g), 1)


def graphic_eq_line(frequency_hz: np.ndarray, gain_db: np.ndarray) -> str:
    """``GraphicEQ: f1 g1; f2 g2; …`` (Hz, dB) as written, without resampling."""
    pairs = "; ".join(f"{f:g} {_fmt(g, 1)}" for f, g in zip(frequency_hz, gain_db))
    return f"GraphicEQ: {pairs}"


def combined_response_db(filters: list[Filter], graphic: tuple[np.ndarray, np.ndarray] | None = None,
                         frequency_hz: np.ndarray = EVAL_GRID_HZ, sample_rate: float = EVAL_SAMPLE_RATE) -> np.ndarray:
    """dB response of the filters in sequence plus the graphic curve (interpolated on log frequency)."""
    total = frequency_response_db(filters, frequency_hz, sample_rate)
    if graphic is not None:
        f, g = (np.asarray(a, dtype=np.float64) for a in graphic)
        total = total + np.interp(np.log(frequency_hz), np.log(f), g)
    return total


def preamp_db(filters: list[Filter], graphic: tuple[np.ndarray, np.ndarray] | None = None) -> float:
    """``-max(0, largest boost of the combined response)``, rounded down to 0.1 dB (never clips)."""
    peak = float(np.max(combined_response_db(filters, graphic)))
    return -math.ceil(max(peak, 0.0) * 10.0 - 1e-9) / 10.0 + 0.0


def _header(lines: list[str]) -> list[str]:
    return [f"# {line}".rstrip() for text in lines for line in str(text).splitlines() or [""]]


def parametric_eq_txt(filters: list[Filter], *, header: list[str] = (), transfer_left_out: str | None = None) -> str:
    """AutoEq ``ParametricEQ.txt``: ``Preamp`` and ``Filter`` lines (filters only).

    Args:
        filters: the parametric filters, applied in order.
        header: comment lines for the top of the file (written as ``# …``).
        transfer_left_out: when the EQ also had a graphic (FIR) stage that this format cannot hold,
            a short description of it; the header then says it is not included and where it is.
    Returns:
        The file's text (``\\n`` line ends, trailing newline).
    """
    filters = [round_filter(f) for f in filters]
    notes = list(header)
    if transfer_left_out:
        notes.append(f"NOT included: {transfer_left_out}. It is a graphic (FIR) curve, which ParametricEQ.txt "
                     "cannot hold; the EqualizerAPO config.txt has it as a GraphicEQ line.")
    lines = _header(notes) + [f"Preamp: {_fmt(preamp_db(filters), 1)} dB"]
    lines += [filter_line(i, f) for i, f in enumerate(filters, 1)]
    return "\n".join(lines) + "\n"


def equalizer_apo_config(filters: list[Filter], graphic: tuple[np.ndarray, np.ndarray] | None = None, *,
                         header: list[str] = ()) -> str:
    """EqualizerAPO ``config.txt``: ``Preamp``, an optional ``GraphicEQ`` line, then ``Filter`` lines.

    Args:
        filters: parametric filters, applied in order after the graphic EQ.
        graphic: ``(frequency_hz, gain_db)`` of a curve to realise as EqualizerAPO's GraphicEQ
            (resampled to :data:`GRAPHIC_POINTS` log-spaced points), or None.
        header: comment lines for the top of the file.
    Returns:
        The file's text; the preamp covers the filters and the graphic curve together.
    """
    filters = [round_filter(f) for f in filters]
    graphic = resample_curve(*graphic) if graphic is not None else None
    lines = _header(list(header)) + [f"Preamp: {_fmt(preamp_db(filters, graphic), 1)} dB"]
    if graphic is not None:
        lines.append(graphic_eq_line(*graphic))
    lines += [filter_line(i, f) for i, f in enumerate(filters, 1)]
    return "\n".join(lines) + "\n"


_FILTER_RE = re.compile(
    r"^Filter\s*\d*\s*:\s*ON\s+(?P<code>[A-Z]+)\s+Fc\s+(?P<fc>[-+0-9.eE]+)\s*Hz"
    r"(?:\s+Gain\s+(?P<gain>[-+0-9.eE]+)\s*dB)?(?:\s+Q\s+(?P<q>[-+0-9.eE]+))?\s*$", re.IGNORECASE)


def parse_eq_text(text: str) -> ParsedEq:
    """Read an EqualizerAPO / AutoEq text back (``Preamp``, ``GraphicEQ``, ``Filter`` with Q; ``#`` comments).

    Raises:
        ValueError: a ``Filter`` line with a type or form this module does not write (e.g. ``BW Oct``).
    """
    parsed = ParsedEq()
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            parsed.comments.append(line[1:].strip())
        elif line.lower().startswith("preamp:"):
            parsed.preamp_db += float(re.search(r"[-+0-9.eE]+", line.split(":", 1)[1]).group())
        elif line.lower().startswith("graphiceq:"):
            pairs = [p.split() for p in line.split(":", 1)[1].split(";") if p.strip()]
            parsed.graphic = (np.array([float(f) for f, _ in pairs]), np.array([float(g) for _, g in pairs]))
        elif line.lower().startswith("filter"):
            m = _FILTER_RE.match(line)
            if not m or m["code"].upper() not in _CODE_TYPES:
                raise ValueError(f"unsupported filter line: {line!r}")
            kind = _CODE_TYPES[m["code"].upper()]
            parsed.filters.append(Filter(type=kind, frequency_hz=float(m["fc"]),
                                         gain_db=float(m["gain"] or 0.0), q=float(m["q"] or 0.7071)))
    return parsed


def write_exports(folder: str | Path, filters: list[Filter], graphic: tuple[np.ndarray, np.ndarray] | None = None,
                  *, header: list[str] = (), graphic_label: str | None = None) -> dict[str, Path]:
    """Write ``config.txt`` (EqualizerAPO) and ``ParametricEQ.txt`` (AutoEq) into ``folder``.

    Args:
        folder: created if missing; existing files are never overwritten (FileExistsError).
        filters: the parametric filters.
        graphic: a graphic curve (e.g. the device transfer) for config.txt, or None.
        header: comment lines for both files.
        graphic_label: what the graphic curve is (for ParametricEQ.txt's "not included" note).
    Returns:
        ``{"config": path, "parametric": path}``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    texts = {
        "config": ("config.txt", equalizer_apo_config(filters, graphic, header=header)),
        "parametric": ("ParametricEQ.txt", parametric_eq_txt(
            filters, header=header, transfer_left_out=(graphic_label or "a graphic EQ curve") if graphic is not None else None)),
    }
    written = {}
    for key, (name, text) in texts.items():
        written[key] = write_new_file(folder / name, lambda tmp, text=text: tmp.write_text(text, encoding="utf-8"))
    return written
