"""Checks of the expert vocabulary data file, ``knowledge/expert_terms.yaml``.

Light: reads the YAML only (no models, no audio, no shared data).

Uniqueness rule: a word (a term, one of its forms, or a translation, compared case-insensitively)
belongs to exactly one term. Inside one term a translation may repeat the term's English word or
the same word in another language ("warm" → de "warm"; "bright" → de/fr "brillant"), but no list
may hold a word twice and no word may appear under two different terms.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
import yaml

PATH = Path(__file__).resolve().parents[2] / "knowledge" / "expert_terms.yaml"
LANGUAGES = ("de", "fr", "es", "it")
MUST_INCLUDE = (
    "boomy", "muddy", "boxy", "honky", "nasal", "tinny", "thin", "full", "fat", "warm", "bright", "dark", "airy",
    "crisp", "present", "harsh", "piercing", "sibilant", "brittle", "punchy", "scooped", "hollow", "veiled",
    "muffled", "smooth", "mellow", "clear", "detailed", "sparkly", "shimmery", "edgy", "aggressive", "crunchy",
    "fizzy", "shrill", "strident", "deep", "heavy", "rumbly", "woolly", "cloudy", "congested", "tubby", "papery",
    "hard", "bassy", "sub", "open", "closed", "dull", "lifeless", "sweet", "silky", "rich", "thick", "round",
    "forward", "recessed", "distant", "intimate", "glassy", "metallic", "hissy",
    # band words people use without numbers
    "low end", "bottom end", "sub bass", "low mids", "mids", "midrange", "upper mids", "top end", "high end",
    "highs", "treble", "presence", "air",
)


@pytest.fixture(scope="module")
def data() -> dict:
    return yaml.safe_load(PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def terms(data) -> list[dict]:
    return data["terms"]


def _english(entry: dict) -> list[str]:
    return [entry["term"], *(entry.get("forms") or [])]


def test_enough_terms(terms):
    assert len(terms) >= 60, f"only {len(terms)} terms"


def test_words_are_lower_case_strings(terms):
    bad = []
    for entry in terms:
        words = _english(entry) + [w for ws in (entry.get("translations") or {}).values() for w in ws]
        bad += [f"{entry.get('term')!r}: {w!r}" for w in words if not isinstance(w, str) or not w.strip() or w != w.lower()]
    assert not bad, "words must be non-empty lower-case strings: " + "; ".join(bad)


def test_every_term_cites_known_sources(data, terms):
    sources = data["sources"]
    assert isinstance(sources, dict) and sources
    empty = [key for key, citation in sources.items() if not isinstance(citation, str) or not citation.strip()]
    assert not empty, f"sources without a citation: {empty}"
    uncited = [entry["term"] for entry in terms if not entry.get("sources")]
    assert not uncited, f"terms without a source: {uncited}"
    unknown = sorted({f"{entry['term']}: {key}" for entry in terms for key in entry["sources"] if key not in sources})
    assert not unknown, f"source keys missing from `sources`: {unknown}"


def test_regions_are_valid(terms):
    problems = []
    for entry in terms:
        regions = entry.get("regions") or []
        if not regions:
            problems.append(f"{entry['term']}: no region")
        for r in regions:
            low, high, sign = r.get("low_hz"), r.get("high_hz"), r.get("sign")
            if not (isinstance(low, (int, float)) and isinstance(high, (int, float)) and 20 <= low < high <= 20000):
                problems.append(f"{entry['term']}: bad range {low}-{high} Hz")
            elif high / low < 2 ** (1 / 3) - 1e-9:
                problems.append(f"{entry['term']}: {low}-{high} Hz is narrower than a third of an octave")
            if sign not in (-1, 1):
                problems.append(f"{entry['term']}: sign {sign!r} is not -1 or +1")
    assert not problems, "; ".join(problems)


def test_translation_languages_are_known(terms):
    unknown = [f"{entry['term']}: {lang}" for entry in terms for lang in (entry.get("translations") or {})
               if lang not in LANGUAGES]
    assert not unknown, f"unknown translation languages: {unknown}"


def test_every_word_appears_once(terms):
    owners: dict[str, set[str]] = defaultdict(set)  # word -> the terms it appears under
    repeated: list[str] = []  # words listed twice in one list of one term
    for entry in terms:
        fields = {"en": _english(entry), **(entry.get("translations") or {})}
        for field, words in fields.items():
            seen: set[str] = set()
            for word in words:
                key = word.lower().strip()
                if key in seen:
                    repeated.append(f"{key!r} twice in {entry['term']!r} ({field})")
                seen.add(key)
                owners[key].add(entry["term"])
    shared = [f"{word!r} under {sorted(names)}" for word, names in sorted(owners.items()) if len(names) > 1]
    assert not (shared or repeated), "duplicate words: " + "; ".join(shared + repeated)


def test_must_include_words_are_terms_or_forms(terms):
    english = {w.lower() for entry in terms for w in _english(entry)}
    missing = [w for w in MUST_INCLUDE if w not in english]
    assert not missing, f"missing as a term or form: {missing}"


def test_translations_for_common_terms(terms):
    complete = [entry["term"] for entry in terms
                if all((entry.get("translations") or {}).get(lang) for lang in LANGUAGES)]
    assert len(complete) >= 40, f"only {len(complete)} terms are translated into all of {LANGUAGES}: {complete}"


def test_loader_reads_the_file():
    from knowledge.expert import ExpertVocabulary

    vocab = ExpertVocabulary.load(PATH)
    assert len(vocab.terms()) >= 60
    assert vocab.lookup("boominess").term == "boomy"
    assert vocab.lookup("bottom end").term == "low end"
    assert vocab.lookup("chaud").term == "warm"
    thin = vocab.lookup("thin")
    assert thin.main.sign == -1 and thin.main.low_hz <= 150 and thin.main.high_hz >= 250
