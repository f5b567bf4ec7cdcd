"""Tone words as people say them: a phrasing test set generated from the expert vocabulary, run through
the conversation engine (the real planner) on real music, each request scored by the band it must move.

Forms: complaints ("it's too boomy"), imperatives ("make it less harsh", "more air"), comparatives
("a bit warmer"), negations ("warmer but not muddy": the part of the first word's band outside the
second's moves, the second's does not rise), band words without numbers ("clean up the low mids"), verbs ("tame the sibilance"), and
German, French, Spanish and Italian ("weniger scharf", "plus chaud", "menos graves", "più caldo").

Measure: the output's level change in the word's main region minus its mean change over 100 Hz–16 kHz,
dB (the ratio of the long-term spectra after/before on the FR grid, :func:`knowledge.words.region_level_db`).
A request passes when that moves the right way by ≥ :data:`PASS_DB`; a turn that changes nothing and
asks nothing is a *silent no-op*.

Run: ``python -m eval.words [--no-llm] [--out docs/EVALUATION.md] [--json out/words.json]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from knowledge.expert import ExpertTerm, ExpertVocabulary, Region
from knowledge.fr_store import FR_GRID_HZ
from knowledge.words import region_level_db, trimmed

PASS_DB = 1.0
TRACK = "Kevin_MacLeod_-_Vibe_Ace.hq.ogg"
CLIP_S = (20.0, 10.0)
START, END = "<!-- words:start -->", "<!-- words:end -->"
#: Natural comparatives of the terms people use them with.
COMPARATIVES = {"warm": "warmer", "bright": "brighter", "dark": "darker", "punchy": "punchier", "airy": "airier",
                "muddy": "muddier", "boomy": "boomier", "crisp": "crisper", "clear": "clearer", "smooth": "smoother",
                "deep": "deeper", "thin": "thinner", "full": "fuller", "rich": "richer", "mellow": "mellower",
                "heavy": "heavier", "thick": "thicker", "fat": "fatter", "harsh": "harsher", "dull": "duller",
                "sweet": "sweeter", "round": "rounder", "open": "more open", "present": "more present"}
#: "make it <first> but not <second>" candidates; the test set keeps the first 10 where some of the first word's
#: main region lies outside the second's (a band cannot rise and stay put: "punchier but not boomy" names
#: 80-250 Hz inside 60-250 Hz). Such a request must move that part, and the second word's region must not rise.
NEGATIONS = [("warm", "muddy"), ("bright", "harsh"), ("punchy", "muddy"), ("airy", "sibilant"), ("full", "muddy"),
             ("clear", "thin"), ("warm", "dull"), ("deep", "muddy"), ("crisp", "harsh"), ("sparkly", "harsh"),
             ("punchy", "boomy"), ("full", "boomy"), ("present", "boomy"), ("bright", "thin"), ("airy", "harsh")]
BAND_PHRASES = [("cut the {w}", -1), ("a bit more {w}", +1), ("clean up the {w}", -1), ("bring out the {w}", +1),
                ("less {w} please", -1), ("give me more {w}", +1), ("tame the {w}", -1), ("lift the {w}", +1)]
VERBS = [("tame the {n}", -1), ("pull back the {n}", -1), ("clean up the {n}", -1), ("bring out the {n}", +1)]
#: Request templates per language: (template, sign) — {w} is the term's translation.
LANGUAGES = {"de": [("weniger {w}, bitte", -1), ("mehr {w}", +1)], "fr": [("moins {w}", -1), ("plus {w}, s'il vous plaît", +1)],
             "es": [("menos {w}, por favor", -1), ("más {w}", +1)], "it": [("meno {w}", -1), ("più {w}, per favore", +1)]}


@dataclass
class Case:
    """One request of the test set: its words, grammar form, language, the region it must move and how."""

    request: str
    form: str
    language: str
    term: str
    region: tuple[float, float]
    sign: int  # +1: the region must rise, -1: fall
    limit_term: str | None = None
    limit_region: tuple[float, float] | None = None
    limit_sign: int = 1  # the energy the limiting word means in its region (its region must not move that way)


def _case(request: str, form: str, term: ExpertTerm, sign: int, language: str = "en", **kw) -> Case:
    return Case(request, form, language, term.term, (term.main.low_hz, term.main.high_hz), sign * term.main.sign, **kw)


def generate(vocab: ExpertVocabulary) -> list[Case]:
    """The phrasing test set, deterministic: per term a complaint and an imperative, then comparatives,
    negations, band words, verbs and the four other languages."""
    cases: list[Case] = []
    terms = {t.term: t for t in vocab.terms()}
    bands = [t for t in vocab.terms() if " " in t.term or t.term in ("mids", "midrange", "presence", "air", "treble", "highs")]
    for i, t in enumerate(vocab.terms()):
        if t in bands:
            continue
        cases.append(_case(["it's too {w}", "the mix sounds really {w}", "this is way too {w}"][i % 3].format(w=t.term),
                           "complaint", t, -1))
        cases.append(_case(["make it less {w}", "make it more {w}", "a little more {w} please"][i % 3].format(w=t.term),
                           "imperative", t, -1 if i % 3 == 0 else +1))
    for word, comparative in COMPARATIVES.items():
        if word in terms:
            cases.append(_case(f"make it a bit {comparative}", "comparative", terms[word], +1))
    negations = 0
    for first, second in NEGATIONS:
        if first in terms and second in terms and negations < 10:
            a, b = terms[first], terms[second]
            part = trimmed(a.main, (b.main,))
            if part is None:
                continue
            negations += 1
            cases.append(Case(f"make it {COMPARATIVES.get(first, 'more ' + first)} but not {second}", "negation", "en",
                              a.term, (part.low_hz, part.high_hz), a.main.sign, limit_term=b.term,
                              limit_region=(b.main.low_hz, b.main.high_hz), limit_sign=b.main.sign))
    for j, t in enumerate(bands):
        for template, sign in (BAND_PHRASES[(2 * j) % len(BAND_PHRASES)], BAND_PHRASES[(2 * j + 1) % len(BAND_PHRASES)]):
            cases.append(_case(template.format(w=t.term), "band word", t, sign))
    for noun, word in (("harshness", "harsh"), ("sibilance", "sibilant"), ("boominess", "boomy"), ("mud", "muddy"),
                       ("sparkle", "sparkly"), ("punch", "punchy"), ("warmth", "warm"), ("brightness", "bright")):
        if word in terms:
            template, sign = VERBS[len(cases) % len(VERBS)]
            cases.append(_case(template.format(n=noun), "verb", terms[word], sign))
    for lang, templates in LANGUAGES.items():
        translated = [t for t in vocab.terms() if t.translations.get(lang)][:8]
        for k, t in enumerate(translated):
            template, sign = templates[k % 2]
            cases.append(_case(template.format(w=t.translations[lang][0]), "other language", t, sign, language=lang))
    return cases


def measured_change_db(before: np.ndarray, after: np.ndarray, rate: int, region: tuple[float, float]) -> float:
    """The output's level change in ``region`` minus its mean change over 100 Hz–16 kHz, dB."""
    from tools.analysis import long_term_spectrum

    f, a = long_term_spectrum(before, rate)
    _, b = long_term_spectrum(after, rate)
    ratio = np.interp(np.log(FR_GRID_HZ), np.log(np.maximum(f, 1e-3)), b - a)
    return region_level_db(ratio, Region(region[0], region[1], 1))


@dataclass
class Result:
    case: Case
    status: str
    path: str | None
    change_db: float | None
    limit_change_db: float | None
    passed: bool
    silent: bool
    words: str


def run(engine, cases: list[Case], clip: Path, progress: bool = True) -> list[Result]:
    """Each case on a fresh conversation through ``engine`` on ``clip``; scored by :func:`measured_change_db`."""
    from tqdm import tqdm

    from tools.audio_io import load_audio

    source = load_audio(clip)
    out_dir = Path(tempfile.mkdtemp(prefix="sense-words-"))
    results = []
    for case in tqdm(cases, disable=not progress, unit="request", desc="words"):
        out = engine.turn(uuid.uuid4().hex, case.request, clip, user="words-eval", output_path=out_dir / "o.wav")
        change = limit = None
        if out.status == "processed":
            processed = load_audio(out.outputs["audio"])
            change = measured_change_db(source.samples, processed.samples, source.sample_rate, case.region)
            if case.limit_region:
                limit = measured_change_db(source.samples, processed.samples, source.sample_rate, case.limit_region)
            for path in out.outputs.values():
                Path(path).unlink(missing_ok=True)
        ok = change is not None and case.sign * change >= PASS_DB and (limit is None or limit * case.limit_sign <= 0.5)
        results.append(Result(case, out.status, out.understood.path if out.understood else None,
                              None if change is None else round(change, 2), None if limit is None else round(limit, 2),
                              ok, out.status == "answer", out.settings.summary() if out.settings else ""))
    return results


def table(results: list[Result]) -> str:
    """Markdown: pass rate per grammar form and per language, silent no-ops, then every failure."""
    lines = ["| form | language | requests | passed | pass rate | median move toward the word, dB |", "|---|---|---|---|---|---|"]
    groups: dict[tuple[str, str], list[Result]] = {}
    for r in results:
        groups.setdefault((r.case.form, r.case.language), []).append(r)
    for (form, lang), rs in sorted(groups.items()):
        moves = [r.case.sign * r.change_db for r in rs if r.change_db is not None]
        lines.append(f"| {form} | {lang} | {len(rs)} | {sum(r.passed for r in rs)} | "
                     f"{100 * sum(r.passed for r in rs) / len(rs):.0f} % | "
                     f"{statistics.median(moves):+.1f} |" if moves else f"| {form} | {lang} | {len(rs)} | 0 | 0 % | – |")
    passed = sum(r.passed for r in results)
    lines += ["", f"**All: {passed}/{len(results)} ({100 * passed / len(results):.1f} %) move the right band the right "
                  f"way by ≥ {PASS_DB:g} dB; silent no-ops: {sum(r.silent for r in results)}.**"]
    failed = [r for r in results if not r.passed]
    if failed:
        lines += ["", "Failures:", ""] + [
            f"- \"{r.case.request}\" ({r.case.form}, {r.case.language}; {r.case.term} {r.case.region[0]:g}–"
            f"{r.case.region[1]:g} Hz must go {'up' if r.case.sign > 0 else 'down'}): {r.status}, "
            f"{'no output' if r.change_db is None else f'{r.change_db:+.1f} dB'}"
            + (f", limit {r.limit_change_db:+.1f} dB" if r.limit_change_db is not None else "")
            + f" — {r.words or 'nothing applied'} (path {r.path})" for r in failed]
    return "\n".join(lines)


def write_section(path: Path, text: str, facts: str) -> None:
    """Replace the words section of ``path`` (between START and END), or append it."""
    body = f"{START}\n{facts}\n\n{text}\n{END}"
    old = path.read_text(encoding="utf-8") if path.is_file() else ""
    if START in old and END in old:
        new = old[: old.index(START)] + body + old[old.index(END) + len(END):]
    else:
        new = old.rstrip() + "\n\n## Tone words as people say them (`python -m eval.words`)\n\n" + body + "\n"
    path.write_text(new, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-llm", action="store_true", help="rule-based parser only")
    parser.add_argument("--out", type=Path, default=None, help="markdown file to update (docs/EVALUATION.md)")
    parser.add_argument("--json", type=Path, default=None, help="write every result as JSON here")
    args = parser.parse_args(argv)
    import soundfile as sf

    from agent.engine import Engine
    from agent.runtime import Runtime
    from knowledge.config import data_dir
    from tools.audio_io import load_audio

    rt = Runtime.load(use_llm=not args.no_llm, prefs_path=Path(tempfile.mkdtemp()) / "prefs.sqlite")
    audio = load_audio(data_dir() / "music" / TRACK)
    a, n = int(CLIP_S[0] * audio.sample_rate), int(CLIP_S[1] * audio.sample_rate)
    clip = Path(tempfile.mkdtemp()) / "clip.wav"
    sf.write(clip, audio.samples[:, a:a + n].T, audio.sample_rate, subtype="FLOAT")
    cases = generate(rt.words.vocabulary)
    results = run(Engine(rt), cases, clip)
    text = table(results)
    print(text)
    planner = getattr(rt.llm, "name", None) or "rule-based parser"
    paths = {}
    for r in results:
        paths[r.path] = paths.get(r.path, 0) + 1
    facts = (f"{len(cases)} requests generated from `knowledge/expert_terms.yaml` (not copied from the eval suite), "
             f"each on a fresh conversation, planner {planner}, on {CLIP_S[1]:g} s of \"{TRACK}\" from {CLIP_S[0]:g} s. "
             f"Understanding paths: " + ", ".join(f"{k} {v}" for k, v in sorted(paths.items(), key=lambda kv: -kv[1])) + ".")
    if args.out:
        write_section(args.out, text, facts)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1, default=str), encoding="utf-8")
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
