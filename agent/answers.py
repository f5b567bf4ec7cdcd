"""Questions answered with read-only tools: devices, the track, sound words and the last result.

Each tool owns its argument model (a discriminated union on ``tool``, like :mod:`agent.plan`) and
``run(args, ctx) -> Answer``: a short answer first, then the numbers and their sources, the facts as
data (for the trace), and optionally a plot. Nothing here changes the audio or the settings.

Device shapes are each device's frequency response minus its class target (AutoEq's pairing), mean
dB per analysis band of :data:`tools.analysis.BANDS_HZ`; a track's balance is its long-term spectrum
against the average of the shared real music, both normalised to their 100 Hz–16 kHz mean.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.json_schema import SkipJsonSchema

from agent.runtime import Runtime
from knowledge.expert import ExpertVocabulary
from knowledge.fr_store import FR_GRID_HZ
from tools.analysis import BANDS_HZ, long_term_spectrum

#: Bands a device or a track is described by (``mud`` overlaps and is left out).
BANDS = ("sub_bass", "bass", "low_mid", "mid", "presence", "brilliance", "air")
#: A band further than this from the target (dB) is worth naming.
NOTABLE_DB = 1.5
#: Two devices this close in a band (dB) sound about the same there.
SAME_DB = 0.5
#: Words for a question's band ("more bass" → bass).
#: Words about the level of the whole track, not its tone ("is it too loud?").
LOUDNESS_WORDS = frozenset({"loud", "louder", "quiet", "quieter", "loudness", "volume", "level", "soft", "dynamic",
                            "dynamics", "dynamic range"})
BAND_WORDS = {"sub": "sub_bass", "sub bass": "sub_bass", "bass": "bass", "low end": "bass", "lows": "bass",
              "low mids": "low_mid", "low mid": "low_mid", "mids": "mid", "midrange": "mid", "mid": "mid",
              "presence": "presence", "treble": "brilliance", "highs": "brilliance", "high end": "brilliance",
              "top end": "brilliance", "brilliance": "brilliance", "air": "air", "sparkle": "brilliance"}


def band_label(band: str) -> str:
    lo, hi = BANDS_HZ[band]
    fmt = lambda f: f"{f / 1000:g} kHz" if f >= 1000 else f"{f:g} Hz"  # noqa: E731
    return f"{band.replace('_', ' ')} ({fmt(lo)}–{fmt(hi)})"


def band_means(curve_db: np.ndarray) -> dict[str, float]:
    """Mean dB of a curve on FR_GRID_HZ over each band of BANDS."""
    return {b: float(np.mean(curve_db[(FR_GRID_HZ >= BANDS_HZ[b][0]) & (FR_GRID_HZ < BANDS_HZ[b][1])])) for b in BANDS}


#: Store types a type word covers: "earbuds" in everyday speech are sealed in-ears (most true-wireless
#: buds) as well as unsealed earbuds.
EVERYDAY_TYPES = {"earbud": {"earbud", "in-ear"}}


# ----------------------------------------------------------------------------------------- args

class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CompareDevices(_Args):
    """Band-by-band difference of two devices, each relative to its class target."""

    tool: Literal["compare_devices"] = "compare_devices"
    a: str
    b: str
    band: str | None = Field(default=None, description="the band or sound word the question asks about (bass, treble, bright …)")


class DescribeDevice(_Args):
    """How a device deviates from its target, in numbers and in listener words."""

    tool: Literal["describe_device"] = "describe_device"
    device: str
    word: str | None = Field(default=None, description="a sound word the question asks about ('are they harsh?')")


class ListDevices(_Args):
    """What the store holds: by brand, type, or the person's own devices."""

    tool: Literal["list_devices"] = "list_devices"
    brand: str | None = None
    type: Literal["in-ear", "earbud", "over-ear"] | None = None
    owned: bool = False


class RankDevices(_Args):
    """Devices ordered by a band's level relative to their targets, or by closeness to neutral."""

    tool: Literal["rank_devices"] = "rank_devices"
    by: str = Field(description="a band (bass, treble …), a sound word (bright, warm …) or 'neutral'")
    owned: bool = True
    most: bool = True
    among: SkipJsonSchema[list[str]] = []  # rank only these (the models the last answer named); not in the LLM's schema
    brand: SkipJsonSchema[str | None] = None  # rank one brand's models ("which Sennheiser is brightest?")
    type: SkipJsonSchema[Literal["in-ear", "earbud", "over-ear"] | None] = None


class AnalyzeTrack(_Args):
    """The track: loudness, loudness range, true peak, clipping, balance against typical music."""

    tool: Literal["analyze_track"] = "analyze_track"
    word: str | None = Field(default=None, description="a sound word the question asks about ('why muddy?')")
    focus: Literal["all", "loudness", "clipping", "peak"] = "all"

    @model_validator(mode="after")
    def _loudness_is_no_tone_word(self):
        """"is it too loud?" asks for the loudness, not for the region of a tone word "loud"."""
        if (self.word or "").lower().strip() in LOUDNESS_WORDS:
            self.word, self.focus = None, "loudness"
        return self


class PreviewWord(_Args):
    """What a tone word would do, without applying it; with ``other``, how two words differ."""

    tool: Literal["preview_word"] = "preview_word"
    word: str
    other: str | None = None


class ExplainLast(_Args):
    """What the last result changed and why; with a frequency, which step moved it."""

    tool: Literal["explain_last"] = "explain_last"
    frequency_hz: float | None = None


QuestionCall = Annotated[Union[CompareDevices, DescribeDevice, ListDevices, RankDevices, AnalyzeTrack, PreviewWord,
                               ExplainLast], Field(discriminator="tool")]


class QuestionPlan(BaseModel):
    """The tools a question needs (the LLM's JSON, at most 3 calls)."""

    calls: list[QuestionCall] = Field(min_length=1, max_length=3)


@dataclass
class Answer:
    """What a question tool found: ``short`` (one sentence, first in the reply), ``details`` (numbers and
    sources), ``facts`` (the data, for the trace), ``plot`` (draws a PNG at a path, or None), ``devices`` (the
    models the answer points at, the one a follow-up "those" means first), ``suggest`` (a request the answer
    proposes)."""

    short: str
    details: list[str] = field(default_factory=list)
    facts: dict = field(default_factory=dict)
    plot: Callable[[Path], object] | None = None
    devices: list[str] = field(default_factory=list)
    suggest: str | None = None  # the request the answer suggests ("less bright"): what "fix it" then does


class NotAnswerable(Exception):
    """A question tool cannot answer (an unknown device, no audio, no last result): ``str`` says why, for the reply."""


@dataclass
class AskContext:
    """What the question tools may read: the runtime, the user, the audio being worked on, the last result."""

    rt: Runtime
    user: str
    audio_path: str | None = None
    last_steps: list[str] = field(default_factory=list)
    last_summary: str | None = None
    last_curves: list[tuple[str, np.ndarray]] = field(default_factory=list)
    request: str = ""  # the question as asked ("which has more …?" is answered with a name, not Yes/No)


# -------------------------------------------------------------------------------------- devices

def resolve(ctx: AskContext, name: str) -> str:
    """The stored model a name means. Raises NotAnswerable with the clarifying question otherwise."""
    if name.strip().lower() in ("", "null", "none", "it", "they", "them"):
        raise NotAnswerable("Which headphones or earbuds do you mean? Name the model.")
    res = ctx.rt.devices.resolve(name, owned=ctx.rt.prefs.owned_devices(ctx.user))
    if res.status != "resolved":
        raise NotAnswerable(res.question or f"I don't know \"{name}\".")
    return res.device


@dataclass
class Shape:
    """A device against its class target: the curve (dB on FR_GRID_HZ), band means, who measured, the target."""

    name: str
    curve: np.ndarray
    means: dict[str, float]
    source: str
    target: str


def shape(rt: Runtime, name: str) -> Shape:
    measured, target = rt.store.curve(name), rt.store.target_for(name)
    curve = measured.db - target.db
    return Shape(name, curve, band_means(curve), measured.source, target.device)


def shape_words(means: dict[str, float]) -> list[str]:
    """Listener words for a deviation from the target: V-shaped, bass-heavy, warm, bright, dark, mid-forward,
    scooped, close to neutral (thresholds in dB, NOTABLE_DB and 3 dB)."""
    low, mid = max(means["sub_bass"], means["bass"]), means["mid"]
    high, dull = max(means["presence"], means["brilliance"]), min(means["presence"], means["brilliance"])
    if max(abs(v) for k, v in means.items() if k != "air") <= NOTABLE_DB:
        return ["close to neutral"]
    words = []
    if low >= 3 and high >= NOTABLE_DB and mid <= low - 3:
        words.append("V-shaped")
    elif low >= 3:
        words.append("bass-heavy" if dull > -3 else "warm and dark")
    elif low <= -3:
        words.append("light in the bass")
    if high >= 3 and "V-shaped" not in words:
        words.append("bright")
    elif dull <= -3 and "warm and dark" not in words:
        words.append("dark" if dull <= -4 else "smooth in the treble")
    if mid >= 2 and mid > low and mid > high:
        words.append("mid-forward")
    return words or ["mildly coloured"]


#: What each shape word of :func:`shape_words` requires, for answers that use it.
SHAPE_RULES = {"V-shaped": "bass ≥ +3 dB, treble ≥ +1.5 dB and the mids 3 dB below the bass",
               "close to neutral": "every band below 10 kHz within ±1.5 dB of the target",
               "bass-heavy": "bass ≥ +3 dB and no treble band below −3 dB",
               "mid-forward": "the mids ≥ +2 dB and above both bass and treble"}


def _deviations(means: dict[str, float]) -> str:
    notable = [f"{band_label(b)} {v:+.1f} dB" for b, v in means.items() if abs(v) >= NOTABLE_DB]
    return ", ".join(notable) or "every band within ±1.5 dB"


def _source(s: Shape) -> str:
    return f"{s.name}: {s.source} measurement via AutoEq, against the {s.target} target"


def _asked_region(word: str | None) -> tuple[str, tuple[float, float], int] | None:
    """What a comparison asks about: a band ("bass") or a sound word's main region ("brighter": 4–12 kHz,
    "darker": the same region, less energy meant), as (wording, (low_hz, high_hz), sign); None: nothing known."""
    word = (word or "").lower().strip()
    band = BAND_WORDS.get(word)
    if band is not None:
        return band_label(band), BANDS_HZ[band], 1
    term = ExpertVocabulary.load().lookup(word) if word else None
    if term is None:
        return None
    return f"energy in the {term.main.label()} region, where \"{term.term}\" lives", \
        (term.main.low_hz, term.main.high_hz), term.main.sign


#: How people ask about closeness to the target ("which is more neutral?", "is it flatter?").
NEUTRAL_WORDS = frozenset({"neutral", "flat", "flatter", "more neutral", "closer to neutral", "neutrality",
                           "most neutral", "closest to neutral"})


def _form(request: str) -> str:
    """How a comparison was asked: "which" (answer with a name), "plain" ("what about treble?", "compare …":
    no verdict) or "yes_no" ("do the A have more bass than the B?", the default)."""
    if re.search(r"\bwhich\s+(?:one\s+|pair\s+)?(?:of\s+\w+\s+)?(?:has|have|is|are|sounds?)\b", request, re.I):
        return "which"
    return "plain" if re.match(r"\s*(?:(?:what|how)\s+about|and\b|compare|how\s+(?:do|does))", request, re.I) else "yes_no"


def _closer_to_neutral(a: Shape, b: Shape, request: str) -> tuple[str, list[str]]:
    """Which of two devices is closer to its target (RMS over the bands below 10 kHz): the short answer and
    the devices, closer first. Yes/No when asked "is A more neutral than B?", a name when asked "which …"."""
    ra, rb = _neutral_rms(a), _neutral_rms(b)
    leader = [a.name, b.name] if ra <= rb else [b.name, a.name]
    said = (f"the {leader[0]} are closer to neutral: {min(ra, rb):.1f} dB RMS from their target against "
            f"{max(ra, rb):.1f} dB for the {leader[1]}.")
    if abs(ra - rb) < SAME_DB:
        return f"About the same: {said}", leader
    form = _form(request)
    return (f"{'Yes' if ra < rb else 'No'}: {said}" if form == "yes_no" else said[0].upper() + said[1:]), leader


def _more_in_region(a: Shape, b: Shape, asked: tuple[str, tuple[float, float], int], request: str) -> tuple[str, list[str]]:
    """Which of two devices has more of the asked region against its target: the short answer (Yes/No, or a
    name when asked "which …"; about the same within SAME_DB) and the devices, the one with more first."""
    what, (lo, hi), sign = asked
    inside = (FR_GRID_HZ >= lo) & (FR_GRID_HZ < hi)
    level_a, level_b = float(np.mean(a.curve[inside])), float(np.mean(b.curve[inside]))
    d = level_a - level_b
    leader = [a.name, b.name] if sign * d >= 0 else [b.name, a.name]
    form = _form(request)
    if abs(d) >= SAME_DB and form != "yes_no":  # "which has more …?", "what about treble?": the one with more first
        a, b, level_a, level_b, d = (a, b, level_a, level_b, d) if sign * d >= 0 else (b, a, level_b, level_a, -d)
    said = (f"relative to their targets the {a.name} have {abs(d):.1f} dB {'more' if d > 0 else 'less'} {what} than "
            f"the {b.name} ({level_a:+.1f} dB vs {level_b:+.1f} dB).")
    verdict = "About the same" if abs(d) < SAME_DB else "Yes" if sign * d > 0 else "No"
    if form == "yes_no" or abs(d) < SAME_DB:
        return f"{verdict}: {said}", leader
    return said[0].upper() + said[1:], leader  # "which …?", "what about …?": the one with more, named first


def compare(args: CompareDevices, ctx: AskContext) -> Answer:
    a, b = shape(ctx.rt, resolve(ctx, args.a)), shape(ctx.rt, resolve(ctx, args.b))
    diff = {k: a.means[k] - b.means[k] for k in BANDS}
    neutral = (args.band or "").lower().strip() in NEUTRAL_WORDS
    asked = None if neutral else _asked_region(args.band)
    if neutral:
        short, leader = _closer_to_neutral(a, b, ctx.request)
    elif asked is not None:
        short, leader = _more_in_region(a, b, asked, ctx.request)
    else:
        big = max(BANDS, key=lambda k: abs(diff[k]))
        short = (f"The biggest difference is in the {band_label(big)}: the {a.name} are {diff[big]:+.1f} dB against "
                 f"the {b.name}, relative to their targets.")
        leader = [a.name, b.name]
    details = ["Band by band (" + a.name + " minus " + b.name + "): "
               + ", ".join(f"{band_label(k)} {diff[k]:+.1f} dB" for k in BANDS) + ".",
               f"Sources: {_source(a)}; {_source(b)}."]
    shade = {asked[0]: asked[1]} if asked else None

    def plot(path: Path):
        from tools.plot import plot_curves

        return plot_curves(path, frequency_hz=FR_GRID_HZ, curves={a.name: a.curve, b.name: b.curve},
                           title=f"{a.name} vs {b.name}, each against its target", bands=shade)

    return Answer(short, details, {"a": a.name, "b": b.name, "difference_db": {k: round(v, 2) for k, v in diff.items()}},
                  plot, devices=leader)


#: Words of :func:`shape_words` a person asks about ("is it V-shaped?"): the word as asked → as described.
SHAPE_ASKED = {"v-shaped": "V-shaped", "v shaped": "V-shaped", "v-shape": "V-shaped", "neutral": "close to neutral",
               "flat": "close to neutral", "bass-heavy": "bass-heavy", "mid-forward": "mid-forward"}


def _word_verdict(s: Shape, words: list[str], word: str | None, request: str = "") -> str | None:
    """The short answer to "are they X?": by the word's region (Yes ≥ NOTABLE_DB toward it, Slightly ≥
    SAME_DB, else No), or by the shape words ("V-shaped", "neutral"); no verdict when asked "how X are
    they?"; None when the word is neither."""
    overall = f"{' and '.join(words)}: {_deviations(s.means)}"
    how = bool(re.match(r"\s*(?:how|can you tell me how)\b", request, re.I))
    label = SHAPE_ASKED.get((word or "").lower().strip())
    if label is not None:
        said = f"against the {s.target} target the {s.name} sound {overall}. (\"{label}\" here: {SHAPE_RULES[label]}.)"
        return said[0].upper() + said[1:] if how else f"{'Yes' if label in words else 'No'} — {said}"
    asked = _asked_region(word)
    if asked is None:
        return None
    level = _level(s, asked[1])
    toward = asked[2] * level
    verdict = "Yes" if toward >= NOTABLE_DB else "Slightly" if toward >= SAME_DB else "No"
    said = f"the {s.name} have {level:+.1f} dB {asked[0]} against the {s.target} target. Overall they sound {overall}."
    return said[0].upper() + said[1:] if how else f"{verdict} — \"{word}\": {said}"


def describe_device(args: DescribeDevice, ctx: AskContext) -> Answer:
    s = shape(ctx.rt, resolve(ctx, args.device))
    words = shape_words(s.means)
    short = _word_verdict(s, words, args.word, ctx.request) or \
        f"The {s.name} sound {' and '.join(words)} against the {s.target} target: {_deviations(s.means)}."
    lowest = float(FR_GRID_HZ[np.argmin(np.where(FR_GRID_HZ < 16000, s.curve, np.inf))])
    details = [f"Deepest dip below 16 kHz at {lowest:.0f} Hz ({s.curve[np.argmin(np.where(FR_GRID_HZ < 16000, s.curve, np.inf))]:+.1f} dB).",
               f"Source: {_source(s)}. Say \"make it sound like the {s.name}\" to hear it."]

    def plot(path: Path):
        from tools.plot import plot_curves

        return plot_curves(path, frequency_hz=FR_GRID_HZ, curves={s.name: s.curve}, title=f"{s.name} against its target")

    return Answer(short, details, {"device": s.name, "words": words, "band_db": {k: round(v, 2) for k, v in s.means.items()}},
                  plot, devices=[s.name])


def _matching(ctx: AskContext, brand: str | None, type_: str | None, owned: bool) -> list[str]:
    names = ctx.rt.prefs.owned_devices(ctx.user) if owned else ctx.rt.store.devices()
    names = [n for n in names if n in ctx.rt.store.devices()]
    if brand:
        names = [n for n in names if n.lower().startswith(brand.lower().strip())]
    if type_:
        kinds = EVERYDAY_TYPES.get(type_, {type_})
        names = [n for n in names if ctx.rt.store.device_type(n) in kinds]
    return names


def list_devices(args: ListDevices, ctx: AskContext) -> Answer:
    names = _matching(ctx, args.brand, args.type, args.owned)
    brand = (args.brand or "").strip()
    brand = names[0][:len(brand)] if names and brand else brand.title()  # as the store spells it: "AKG", "KZ"
    what = " ".join(w for w in (brand or None, args.type, "models" if len(names) != 1 else "model") if w)
    if args.owned:
        what = f"your {what}"
    if not names:
        raise NotAnswerable(f"I have no {what} with measurements." + ("" if not args.owned else
                            " Register yours with `sense devices own NAME` or ⭐ in the web UI."))
    short = f"I know {len(names)} {what}: " + ", ".join(names) + "."
    details = [", ".join(f"{n} ({ctx.rt.store.device_type(n)}; {'+'.join(ctx.rt.store.sources(n))})" for n in names)]
    return Answer(short, details, {"devices": names, "count": len(names)}, devices=names)


def _level(s: Shape, band: tuple[float, float]) -> float:
    """Mean dB of a device's deviation from its target over [low_hz, high_hz)."""
    inside = (FR_GRID_HZ >= band[0]) & (FR_GRID_HZ < band[1])
    return float(np.mean(s.curve[inside]))


def _neutral_rms(s: Shape) -> float:
    return float(np.sqrt(np.mean([v ** 2 for k, v in s.means.items() if k != "air"])))


def rank_devices(args: RankDevices, ctx: AskContext) -> Answer:
    by = args.by.lower().strip()
    asked = None if by in ("neutral", "flat") else _asked_region(by)
    if asked is None and by not in ("neutral", "flat"):
        raise NotAnswerable(f"I can rank devices by a band (bass, treble, mids …), a sound word (bright, warm …) or "
                            f"by closeness to neutral, not by \"{by}\".")
    names = [n for n in args.among if n in ctx.rt.store.devices()] or _matching(ctx, args.brand, args.type, args.owned)
    if len(names) < 2:
        raise NotAnswerable("You need at least two devices in your profile for that: add them with "
                            "`sense devices own NAME` or ⭐ in the web UI." if args.owned else "I need at least two devices.")
    if asked is None:
        score, value, what = (lambda s: -_neutral_rms(s)), _neutral_rms, "RMS from the target"
    else:
        score, value, what = (lambda s: asked[2] * _level(s, asked[1])), (lambda s: _level(s, asked[1])), asked[0]
    shapes = sorted((shape(ctx.rt, n) for n in names), key=score, reverse=args.most)
    best = shapes[0]
    if asked is None:
        short = (f"The {best.name} are {'closest to' if args.most else 'furthest from'} neutral: "
                 f"{value(best):.1f} dB RMS from their target.")
    else:
        short = (f"The {best.name} have the {'most' if args.most else 'least'} {what}: {value(best):+.1f} dB against "
                 "their target.")
    details = [f"{what[0].upper()}{what[1:]}, against each target: " + ", ".join(f"{s.name} {value(s):+.1f} dB" for s in shapes)
               + ".", "Sources: " + "; ".join(_source(s) for s in shapes) + "."]
    return Answer(short, details, {"ranking": [s.name for s in shapes], "by": by, "best": best.name},
                  devices=[s.name for s in shapes])


# ----------------------------------------------------------------------------------------- track

#: The real music the "typical" balance is built from: the shared data set's music (its top folder and nc/),
#: whole pieces of at least REFERENCE_MIN_S (not loops), their median.
REFERENCE_GLOBS = ("*.ogg", "nc/*.ogg")
REFERENCE_MIN_S = 30.0
#: Playback loudness of the big streaming services (Spotify's default normalisation and YouTube's: −14 LUFS
#: integrated; Apple Music −16): "is it too loud?" is answered against it.
STREAMING_LUFS = -14.0


def _normalised_spectrum(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Long-term spectrum on FR_GRID_HZ, dB, 1/3-octave smoothed, minus its 100 Hz–16 kHz mean."""
    from tools.transfer import smooth_octave

    f, db = long_term_spectrum(samples, sample_rate)
    grid = np.interp(np.log(FR_GRID_HZ), np.log(np.maximum(f, 1e-3)), db)
    grid = smooth_octave(FR_GRID_HZ, grid, 1 / 3)
    ref = (FR_GRID_HZ >= 100) & (FR_GRID_HZ < 16000)
    return grid - float(np.mean(grid[ref]))


@lru_cache(maxsize=2)
def reference_spectrum(folder: str) -> np.ndarray:
    """The median normalised spectrum (dB on FR_GRID_HZ) of the music in ``folder``: "typical music"."""
    from tools.audio_io import load_audio

    tracks = [load_audio(p) for pattern in REFERENCE_GLOBS for p in sorted(Path(folder).glob(pattern))]
    curves = [_normalised_spectrum(t.samples, t.sample_rate) for t in tracks if t.duration_s >= REFERENCE_MIN_S]
    if not curves:
        raise NotAnswerable(f"no reference music in {folder}")
    return np.median(curves, axis=0)


def _clipping(samples: np.ndarray) -> int:
    """Runs of 3 or more consecutive samples at |x| ≥ 0.999 (full scale), over all channels."""
    at = np.abs(samples) >= 0.999
    starts = at[:, 2:] & at[:, 1:-1] & at[:, :-2] & ~np.pad(at, ((0, 0), (1, 0)))[:, :-3]
    return int(starts.sum())


def analyze_track(args: AnalyzeTrack, ctx: AskContext) -> Answer:
    from knowledge.config import data_dir
    from tools.audio_io import load_audio
    from tools.loudness import integrated_lufs, loudness_range_lu, true_peak_dbtp

    if not ctx.audio_path:
        raise NotAnswerable("Give me a track first (drop a file, or /audio PATH), then I can measure it.")
    audio = load_audio(ctx.audio_path)
    x, rate = audio.samples, audio.sample_rate
    lufs, lra, peak, clips = integrated_lufs(x, rate), loudness_range_lu(x, rate), true_peak_dbtp(x, rate), _clipping(x)
    balance = _normalised_spectrum(x, rate) - reference_spectrum(str(data_dir() / "music"))
    means = band_means(balance)
    loudest = max(BANDS, key=lambda b: abs(means[b]))
    clip_text = (f"it clips: {clips} run(s) of samples at full scale" if clips else
                 f"no clipping (true peak {peak:.1f} dBTP)")
    short = f"It measures {lufs:.1f} LUFS integrated, loudness range {lra:.1f} LU, true peak {peak:.1f} dBTP; {clip_text}."
    if args.focus == "clipping":
        short = (f"Yes, it clips: {clips} run(s) of samples at full scale (true peak {peak:.1f} dBTP)." if clips else
                 f"No, it doesn't clip: no samples at full scale; true peak {peak:.1f} dBTP, {lufs:.1f} LUFS.")
    elif args.focus == "peak":
        short = f"Its true peak is {peak:.1f} dBTP ({'above' if peak > -1 else 'at or below'} the usual −1 dBTP ceiling); {clip_text}."
    elif args.focus == "loudness":
        short = (f"It measures {lufs:.1f} LUFS integrated: {abs(lufs - STREAMING_LUFS):.1f} dB "
                 f"{'louder' if lufs > STREAMING_LUFS else 'quieter'} than the {STREAMING_LUFS:.0f} LUFS that Spotify and "
                 f"YouTube normalise playback to; loudness range {lra:.1f} LU, true peak {peak:.1f} dBTP; {clip_text}.")
    fix = None
    if args.word:
        try:
            why, fix = _why(args.word, balance, ctx)
        except NotAnswerable as unknown:  # the measurements still answer; the word is named as unknown
            why = str(unknown).split(" Try ")[0]
        short = why + " " + short
    details = ["Against typical music (the shared real tracks, 1/3-octave, level-matched): "
               + ", ".join(f"{band_label(b)} {means[b]:+.1f} dB" for b in BANDS) + f"; the {band_label(loudest)} stands out most.",
               "Measured with ITU-R BS.1770-4 loudness (pyloudnorm's K-weighting), EBU Tech 3342 loudness range, "
               "4× oversampled true peak."]

    def plot(path: Path):
        from tools.plot import plot_curves

        return plot_curves(path, frequency_hz=FR_GRID_HZ, curves={"this track against typical music": balance},
                           title="Spectral balance", ylabel="dB re typical music")

    facts = {"lufs": round(lufs, 2), "loudness_range_lu": round(lra, 2), "true_peak_dbtp": round(peak, 2),
             "clipping_runs": clips, "balance_db": {k: round(v, 2) for k, v in means.items()}}
    return Answer(short, details, facts, plot, suggest=fix)


#: An embedding guess below this cosine is no sound word for an answer ("favourite" → "delicious").
ANSWER_MIN_SCORE = 0.8


def known_word(rt: Runtime, word: str):
    """The meaning of a sound word an answer may use (``knowledge.words.WordMeaning``). Raises NotAnswerable
    when the vocabulary only guesses it by embedding below ANSWER_MIN_SCORE."""
    meaning = rt.words.lookup(word)
    if meaning.via == "embedding" and meaning.score < ANSWER_MIN_SCORE:
        raise NotAnswerable(f"I don't know \"{word}\" as a sound word (the nearest I know, \"{meaning.word}\", is "
                            "only a guess). Try one like warm, bright, muddy, harsh, boomy, airy.")
    return meaning


def _why(word: str, balance: np.ndarray, ctx: AskContext) -> tuple[str, str | None]:
    """"why does it sound muddy?": how the track stands in the word's region against typical music, and the
    request that would change it (None when the region does not stand out)."""
    from knowledge.words import region_level_db

    meaning = known_word(ctx.rt, word)
    level = region_level_db(balance, meaning.main)
    toward = level * meaning.main.sign
    verdict = ("that is where it comes from" if toward >= 1.0 else
               "so it is not the track's balance alone: the room, the speakers or the arrangement may add to it")
    fix = f"less {meaning.word}" if toward >= 1.0 else None
    offer = f" Say \"{fix}\" (or \"fix it\") to change it." if fix else ""
    return (f"The {meaning.main.label()} region, where \"{meaning.word}\" lives, is {level:+.1f} dB against typical "
            f"music here — {verdict}.{offer}"), fix


# ----------------------------------------------------------------------------------------- words

#: The amounts a preview shows: the words people use and the multiple of the default move (3 dB) they mean.
PREVIEW_AMOUNTS = {"a little": 0.5, "the default": 1.0, "a lot": 2.0}


def _word_curve(rt: Runtime, word: str, amount: float = 1.0, direction: str = "more"):
    from tools.eq import frequency_response_db

    meaning = known_word(rt, word)
    return meaning, frequency_response_db(rt.words.filters(meaning, direction, amount), FR_GRID_HZ, 48000)


def _variants(rt: Runtime, word: str, direction: str) -> tuple[str, dict[str, np.ndarray]]:
    """A word's variants: ``direction`` ("more"/"less") at each amount of PREVIEW_AMOUNTS, as a sentence
    with each EQ's largest gain, and the curves."""
    from knowledge.words import TARGET_DB

    curves = {f"{direction} {word}, {label}": _word_curve(rt, word, amount, direction)[1]
              for label, amount in PREVIEW_AMOUNTS.items()}
    said = ", ".join(f"{label} {TARGET_DB * amount:.1f} dB (EQ peak {float(np.max(np.abs(c))):.1f} dB)"
                     for (label, amount), c in zip(PREVIEW_AMOUNTS.items(), curves.values()))
    return f"Amounts for \"{direction} {word}\" (the region's move): {said}; any filter capped at ±12 dB.", curves


def _word_sentence(meaning, curve: np.ndarray) -> str:
    sign = "raise" if meaning.main.sign > 0 else "lower"
    return (f"\"More {meaning.word}\" would {sign} the {meaning.main.label()} region by 3 dB against the 100 Hz–16 kHz "
            f"mean (\"less {meaning.word}\" the opposite); the EQ peaks at {float(np.max(np.abs(curve))):.1f} dB.")


def preview_word(args: PreviewWord, ctx: AskContext) -> Answer:
    meaning, curve = _word_curve(ctx.rt, args.word)
    curves = {f"more {meaning.word}": curve}
    short = _word_sentence(meaning, curve)
    direction = "less" if re.search(r"\bless\b", ctx.request) else "more"
    variants, amount_curves = _variants(ctx.rt, meaning.word, direction)
    if not args.other:
        curves = amount_curves
    details = [f"Source: {meaning.why}.", variants]
    facts = {"word": meaning.word, "region": meaning.main.label(), "source": meaning.source,
             "eq_peak_db": {k.rsplit(", ", 1)[1]: round(float(np.max(np.abs(c))), 2) for k, c in amount_curves.items()}}
    if args.other:
        other, other_curve = _word_curve(ctx.rt, args.other)
        curves[f"more {other.word}"] = other_curve
        short = (f"\"{meaning.word}\" is about {meaning.main.label()}, \"{other.word}\" about {other.main.label()}. "
                 + short + " " + _word_sentence(other, other_curve))
        details.append(f"Source for \"{other.word}\": {other.why}.")
        facts["other"] = {"word": other.word, "region": other.main.label(), "source": other.source}
    details.append(f"Say \"{direction} {meaning.word}\" to apply it.")

    def plot(path: Path):
        from tools.plot import plot_curves

        title = "What the words would do (default amount)" if args.other else \
            f"What \"{direction} {meaning.word}\" would do, by amount"
        return plot_curves(path, frequency_hz=FR_GRID_HZ, curves=curves, title=title, ylabel="gain (dB)")

    return Answer(short, details, facts, plot)


# ----------------------------------------------------------------------------------------- last

def explain_last(args: ExplainLast, ctx: AskContext) -> Answer:
    if not ctx.last_summary:
        raise NotAnswerable("Nothing is processed in this conversation yet, so nothing has changed.")
    details = [f"{i}. {step}" for i, step in enumerate(ctx.last_steps, 1)]
    if args.frequency_hz is None:
        return Answer(f"Last time: {ctx.last_summary}", details, {"summary": ctx.last_summary, "steps": ctx.last_steps})
    f = args.frequency_hz
    i = int(np.argmin(np.abs(FR_GRID_HZ - f)))
    moves = sorted(((label, float(curve[i])) for label, curve in ctx.last_curves), key=lambda t: -abs(t[1]))
    if not moves or abs(moves[0][1]) < 0.3:
        short = f"Nothing I did moved {f:g} Hz by more than 0.3 dB."
    else:
        label, gain = moves[0]
        short = f"At {f:g} Hz the biggest move was {gain:+.1f} dB, from \"{label}\"."
    details = [", ".join(f"{label} {gain:+.1f} dB" for label, gain in moves) + f" at {f:g} Hz.", *details]
    return Answer(short, details, {"frequency_hz": f, "moves_db": {k: round(v, 2) for k, v in moves}})


RUN: dict[str, Callable[[BaseModel, AskContext], Answer]] = {
    "compare_devices": compare, "describe_device": describe_device, "list_devices": list_devices,
    "rank_devices": rank_devices, "analyze_track": analyze_track, "preview_word": preview_word,
    "explain_last": explain_last}


def run(call, ctx: AskContext) -> Answer:
    """Run one question tool; a NotAnswerable becomes an answer that says why."""
    try:
        return RUN[call.tool](call, ctx)
    except NotAnswerable as exc:
        return Answer(str(exc), [], {"not_answerable": str(exc)})
