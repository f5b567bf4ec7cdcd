"""The expert vocabulary: mixing and mastering descriptors with their frequency regions and sources.

Data: ``knowledge/expert_terms.yaml`` — each term ("boomy", "honky", "low mids", "air") names one or
more frequency regions and the sign of energy it means there ("boomy": more energy in 60–250 Hz;
"thin": less in 100–300 Hz), with other forms ("boom", "boominess"), translations (de, fr, es, it)
and the published sources it comes from (Izhaki, Owsinski, Katz, Senior, the SocialEQ/Audealize
papers …; every term cites at least one).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

DEFAULT_PATH = Path(__file__).resolve().parent / "expert_terms.yaml"
#: Inflections tried when a word is not a term or form itself ("muddier" → "muddy", "boominess" → "boomy").
_SUFFIXES = (("iness", "y"), ("ness", ""), ("ier", "y"), ("iest", "y"), ("er", ""), ("est", ""), ("r", ""),
             ("y", ""), ("", "y"), ("s", ""))


@dataclass(frozen=True)
class Region:
    """A frequency region a word is about: [low_hz, high_hz) and the sign of energy the word means there."""

    low_hz: float
    high_hz: float
    sign: int

    @property
    def centre_hz(self) -> float:
        """Geometric centre, Hz."""
        return float((self.low_hz * self.high_hz) ** 0.5)

    def label(self) -> str:
        """``"60–250 Hz"``."""
        fmt = lambda f: f"{f / 1000:g} kHz" if f >= 1000 else f"{f:g} Hz"  # noqa: E731
        return f"{fmt(self.low_hz)}–{fmt(self.high_hz)}"


@dataclass(frozen=True)
class ExpertTerm:
    """One descriptor of the expert vocabulary.

    Attributes:
        term: the canonical word ("boomy", "low mids").
        forms: other words for it ("boom", "boominess").
        regions: the regions it is about, main region first.
        translations: language code → words (de, fr, es, it).
        sources: full citations of the works it comes from.
    """

    term: str
    forms: tuple[str, ...]
    regions: tuple[Region, ...]
    translations: dict[str, tuple[str, ...]] = field(default_factory=dict, hash=False, compare=False)
    sources: tuple[str, ...] = ()

    @property
    def main(self) -> Region:
        return self.regions[0]

    def cites(self) -> str:
        """The sources, short: ``"Izhaki 2017; Owsinski 2017"`` (author and year of each citation)."""
        return "; ".join(_short(c) for c in self.sources)


def _short(citation: str) -> str:
    author = re.split(r"[,&]| and ", citation)[0].split()[-1]
    year = re.search(r"(19|20)\d\d", citation)
    return f"{author} {year.group(0)}" if year else author


class ExpertVocabulary:
    """Look up a word (a term, a form, an inflection of one, or a translation) in the expert vocabulary."""

    def __init__(self, terms: list[ExpertTerm]):
        self._terms = terms
        self._by_word: dict[str, ExpertTerm] = {}
        self._language: dict[str, str] = {}
        for t in terms:
            for word in (t.term, *t.forms):
                self._by_word.setdefault(word.lower(), t)
            for lang, words in t.translations.items():
                for word in words:
                    self._by_word.setdefault(word.lower(), t)
                    self._language[word.lower()] = lang

    @classmethod
    def load(cls, path: Path | None = None) -> ExpertVocabulary:
        """Read the YAML file (default ``knowledge/expert_terms.yaml``).

        Raises:
            OSError, yaml.YAMLError, KeyError, ValueError: a missing or malformed file.
        """
        return _load(str(Path(path or DEFAULT_PATH).resolve()))

    def terms(self) -> list[ExpertTerm]:
        return list(self._terms)

    def phrases(self) -> list[str]:
        """Every word of several tokens ("low mids", "top end"), longest first (the parser joins them)."""
        return sorted((w for w in self._by_word if " " in w), key=len, reverse=True)

    def language(self, word: str) -> str:
        """"en", or the language of a translation ("de", "fr", "es", "it")."""
        return self._language.get(word.lower().strip(), "en")

    def lookup(self, word: str) -> ExpertTerm | None:
        """The term ``word`` names: itself, a form, a translation, or an inflection of one; else None."""
        text = " ".join(word.lower().replace("-", " ").split())
        if text in self._by_word:
            return self._by_word[text]
        for suffix, repl in _SUFFIXES:
            if text.endswith(suffix) and len(text) - len(suffix) >= 3:
                stem = text[: len(text) - len(suffix)]
                for candidate in (stem + repl, re.sub(r"(.)\1$", r"\1", stem) + repl):
                    if candidate in self._by_word:
                        return self._by_word[candidate]
        return None


@lru_cache(maxsize=4)
def _load(path: str) -> ExpertVocabulary:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    sources = data["sources"]
    terms = []
    for entry in data["terms"]:
        regions = tuple(Region(float(r["low_hz"]), float(r["high_hz"]), int(r["sign"])) for r in entry["regions"])
        if not regions or not entry.get("sources"):
            raise ValueError(f"expert term {entry.get('term')!r} needs regions and sources")
        terms.append(ExpertTerm(
            term=entry["term"].lower(), forms=tuple(f.lower() for f in entry.get("forms") or ()), regions=regions,
            translations={k: tuple(w.lower() for w in v) for k, v in (entry.get("translations") or {}).items()},
            sources=tuple(sources[key] for key in entry["sources"])))
    return ExpertVocabulary(terms)
