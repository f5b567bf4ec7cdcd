"""Scripted-conversation evaluation: YAML conversations run turn by turn against the real agent.

Each conversation is played like a person would: a fresh LangGraph thread and a fresh user, the
same audio every turn, the requests in order. Every turn is timed and scored against what a
person would expect (status, plan, resolved device, plan arguments, measured audio, reply text);
a report says what passed (``report.json``, ``report.md``, ``report.png``).

This module is the command; the work is done by one module per job:

- :mod:`eval.suite`: the conversation files' YAML schema and :func:`load_conversations`;
- :mod:`eval.scoring`: the checks of one turn (:class:`Check`, :func:`plan_summary`);
- :mod:`eval.runner`: running conversations against the conversation engine (:func:`run_conversations`);
- :mod:`eval.report`: summary, ``report.md`` / ``report.json`` / ``report.png`` (:class:`Report`).

Their public names are re-exported here, so ``from eval.harness import ...`` keeps working.

Use
---
``eval_command(paths, llm_url, model, report_dir, min_pass, fast)`` (what ``sense eval`` calls)
loads the runtime with a preference store inside ``report_dir`` and returns an exit code;
``run_conversations(paths, runtime=..., report_dir=...)`` runs with an already loaded runtime;
``python -m eval.harness [FILES] [--fast] [--no-llm] [--report-dir DIR]`` from a shell.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from eval.report import (EXIT_BAD_SUITE, EXIT_BELOW_MIN_PASS, EXIT_OK, Report, render_markdown, sec, summary,
                         write_report)
from eval.runner import ConversationResult, TurnResult, run_conversations
from eval.scoring import TRUE_PEAK_TOLERANCE_DB, Check, plan_summary
from eval.suite import (CONVERSATIONS_DIR, AudioExpect, BandChanges, Conversation, Expect, FilterConstraint,
                        Profile, Range, Status, SuiteError, Turn, load_conversations)
from tools.errors import SenseError, one_line

__all__ = [
    "CONVERSATIONS_DIR", "DEFAULT_REPORT_DIR", "EXIT_BAD_SUITE", "EXIT_BELOW_MIN_PASS", "EXIT_OK",
    "TRUE_PEAK_TOLERANCE_DB", "AudioExpect", "BandChanges", "Check", "Conversation", "ConversationResult",
    "Expect", "FilterConstraint", "Profile", "Range", "Report", "Status", "SuiteError", "Turn", "TurnResult",
    "eval_command", "load_conversations", "main", "plan_summary", "render_markdown", "run_conversations",
    "summary", "write_report",
]

DEFAULT_REPORT_DIR = Path("out/eval")


def eval_command(paths: list[str | Path] | None = None, llm_url: str | None = None, model: str | None = None,
                 report_dir: str | Path = DEFAULT_REPORT_DIR, min_pass: float = 0.8, fast: bool = False, *,
                 use_llm: bool = True, max_audio_s: float | None = None, progress: bool = True,
                 runtime=None, echo=print) -> int:
    """``sense eval``: run the conversations, write the report, print a summary, return an exit code.

    Args:
        paths: conversation files or folders (None or empty: all of ``eval/conversations``).
        llm_url: OpenAI-compatible server instead of the local model.
        model: planner model name or GGUF path (default: the project's default model).
        report_dir: report folder; its ``prefs.sqlite`` holds the eval users' history (never ``~/.sense``).
        min_pass: turn pass rate needed for exit code 0.
        fast: only the conversations marked ``fast: true``.
        use_llm: False for the rule-based parser only.
        max_audio_s: cap each conversation's audio to this many seconds.
        progress: progress bar on stderr.
        runtime: an already loaded runtime (then ``llm_url``, ``model``, ``use_llm`` are not used).
        echo: where the summary lines go.
    Returns:
        0 when the turn pass rate ≥ ``min_pass``, 1 when below, 2 when the conversation files are
        invalid or the data/model cannot be loaded.
    """
    report_dir = Path(report_dir)
    try:  # the harness's one error boundary: a bad suite, missing data or model is one line, exit code 2
        conversations = load_conversations(paths, fast_only=fast, check_audio=True)
    except SenseError as exc:  # SuiteError, DataMissingError …
        echo(f"error: {one_line(exc)}")
        return EXIT_BAD_SUITE
    if not conversations:
        echo("error: no conversations selected" + (" (none is marked fast: true)" if fast else ""))
        return EXIT_BAD_SUITE
    if runtime is None:
        from agent.runtime import Runtime

        report_dir.mkdir(parents=True, exist_ok=True)
        try:
            runtime = Runtime.load(model=model, llm_url=llm_url, use_llm=use_llm,
                                   prefs_path=report_dir / "prefs.sqlite")
        except SenseError as exc:  # DataMissingError, ModelMissingError, LLMError
            echo(f"error: {one_line(exc)}")
            return EXIT_BAD_SUITE
    report = run_conversations(runtime=runtime, report_dir=report_dir, min_pass=min_pass, fast_only=False,
                               progress=progress, max_audio_s=max_audio_s, conversations=conversations)
    s = report.summary
    echo(f"turns passed {s['turns']['passed']}/{s['turns']['total']} ({100 * s['turns']['pass_rate']:.1f} %), "
         f"conversations {s['conversations']['passed']}/{s['conversations']['total']}; "
         f"latency p50 {sec(s['latency_s']['turn_p50'])}, p95 {sec(s['latency_s']['turn_p95'])}")
    for name, c in s["categories"].items():
        echo(f"  {name:<18} {c['turns_passed']:>3}/{c['turns']:<3} {100 * c['turn_pass_rate']:5.1f} %")
    echo(f"report: {report.files['md']} ({'PASS' if s['passed'] else 'FAIL'}: needed {100 * min_pass:.0f} %)")
    return report.exit_code(min_pass)


def main(argv: list[str] | None = None) -> int:
    """``python -m eval.harness [FILES...] [--fast] [--no-llm] [--model M] [--llm-url U] [--report-dir D]``."""
    parser = argparse.ArgumentParser(prog="python -m eval.harness", description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="*", help="conversation files or folders (default: eval/conversations)")
    parser.add_argument("--llm-url", default=None)
    parser.add_argument("--model", default=None)
    parser.add_argument("--no-llm", action="store_true", help="rule-based parser only")
    parser.add_argument("--report-dir", default=str(DEFAULT_REPORT_DIR))
    parser.add_argument("--min-pass", type=float, default=0.8)
    parser.add_argument("--fast", action="store_true", help="only conversations marked fast: true")
    parser.add_argument("--max-audio-s", type=float, default=None, help="cap each conversation's audio (seconds)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the temporary audio folder is removed
    return eval_command(args.paths or None, args.llm_url, args.model, args.report_dir, args.min_pass, args.fast,
                        use_llm=not args.no_llm, max_audio_s=args.max_audio_s, progress=not args.no_progress)


if __name__ == "__main__":
    sys.exit(main())
