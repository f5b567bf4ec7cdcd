"""The CI slice of the hostile-audio fuzz suite (eval.fuzz): every corpus file and every special path
(folder, FIFO, /dev/zero, missing, broken and looping links) through the entry points, plus a few
dozen hypothesis-drawn cases with a fixed derandomized seed. Each case must be processed correctly or
refused with one line naming the file; no traceback, no hang past eval.fuzz.CASE_TIMEOUT_S, and the
input byte-identical afterwards. The full run: ``python -m eval.fuzz --cases 2000 --seed 0``.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings

from eval import fuzz

CORPUS_MANIFEST = json.loads((fuzz.DEFAULT_CORPUS / "manifest.json").read_text())
CLI_ENTRIES = ("run", "separate", "chat")


@pytest.fixture(scope="session")
def harness(rt_rules):
    return fuzz.Harness(rt=rt_rules)


@pytest.fixture(scope="session")
def web_harness():
    return fuzz.Harness()


def _assert_ok(result: fuzz.CaseResult) -> None:
    spec = result.spec
    where = f"{spec.entry} {spec.source} {spec.corpus_file or spec.fmt} {spec.name}"
    assert result.outcome in fuzz.OK_OUTCOMES, f"{where}: {result.outcome}: {result.detail}"
    assert not result.modified, f"{where}: the input changed"


def test_corpus_is_small_and_regenerates_identically(tmp_path):
    files = [p for p in fuzz.DEFAULT_CORPUS.iterdir() if p.name != "manifest.json"]
    assert sum(p.stat().st_size for p in files) < 300_000
    assert {p.name for p in files} == set(CORPUS_MANIFEST) == set(fuzz.CORPUS_SPECS)
    digests = fuzz.write_corpus(tmp_path)
    assert digests == {name: item["sha256"] for name, item in CORPUS_MANIFEST.items()}


@pytest.mark.parametrize("spec", fuzz.corpus_specs(entries=("web",)), ids=lambda s: f"{s.corpus_file}-{s.name}")
def test_corpus_web_upload(web_harness, spec, tmp_path):
    result = web_harness.run_case(spec, tmp_path)
    _assert_ok(result)
    assert result.outcome == ("accepted" if CORPUS_MANIFEST[spec.corpus_file]["expect"] == "accept"
                              else result.outcome)


@pytest.mark.parametrize("entry", CLI_ENTRIES)
def test_corpus_cli(harness, entry, tmp_path):
    results = [harness.run_case(spec, tmp_path) for spec in fuzz.corpus_specs(entries=(entry,))]
    for result in results:
        _assert_ok(result)
    decided = {r.spec.corpus_file: r.outcome for r in results if r.spec.name == "plain"}
    # measured decisions: damaged and too-short files refused, odd-but-valid audio processed
    assert decided["nan-float32.wav"] == decided["one-sample.wav"] == decided["1hz.wav"] == "rejected-clear"
    assert decided["8ch.wav"] == ("accepted" if entry == "separate" else "rejected-clear")  # BS.1770 takes 5
    assert decided["5ch.wav"] == decided["384k.wav"] == decided["square-fullscale.wav"] == "accepted"
    assert decided["8bit.wav"] == decided["dc.flac"] == decided["float32.wav"] == "accepted"


@pytest.mark.parametrize("name", ["long", "long-unicode"])
def test_long_input_name_gets_a_default_output(harness, name, tmp_path):
    spec = fuzz.CaseSpec(entry="chat-arg", source="corpus", corpus_file="8bit.wav", name=name)
    _assert_ok(harness.run_case(spec, tmp_path))


def test_separate_default_method(harness, tmp_path):
    specs = [s for s in fuzz.corpus_specs(entries=("separate-auto",))
             if s.corpus_file in ("8ch.flac", "truncated.flac", "mono.ogg") and s.name == "plain"]
    for spec in specs:
        _assert_ok(harness.run_case(spec, tmp_path))


@pytest.mark.parametrize("spec", fuzz.special_cases(), ids=lambda s: f"{s.entry}-{s.source}")
def test_special_paths_refused_with_one_line(harness, spec, tmp_path):
    result = harness.run_case(spec, tmp_path)
    _assert_ok(result)
    assert result.outcome == "rejected-clear", result.detail
    assert result.seconds < fuzz.CASE_TIMEOUT_S


@settings(max_examples=30, derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(spec=fuzz.case_specs())
def test_generated_cases(harness, tmp_path, spec):
    _assert_ok(harness.run_case(spec, tmp_path))
