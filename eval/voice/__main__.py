"""``python -m eval.voice``: the spoken-command evaluation (see :mod:`eval.voice`)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Run it; print the tables; exit 1 when the intent rate is below ``--min-intent``."""
    from eval.report import write_markdown_section
    from eval.voice import COMMANDS, load_commands, load_voices
    from eval.voice.run import evaluate, markdown, summarise, write_report
    from knowledge.config import data_dir

    p = argparse.ArgumentParser(prog="python -m eval.voice", description=__doc__)
    p.add_argument("--no-llm", action="store_true", help="the agent without its planner LLM (rules and fast path)")
    p.add_argument("--voices", nargs="*", help="only these voices (names in eval/voice/voices.yaml)")
    p.add_argument("--set", default="commands", choices=["commands", "paraphrases"],
                   help="the command set: eval/voice/commands.yaml (default) or paraphrases.yaml (phrasings no "
                        "rule reads: the LLM path); its tables go to the voice-eval or voice-paraphrases markers")
    p.add_argument("--commands", nargs="*", help="only these command ids")
    p.add_argument("--track", type=Path, default=None, help="the music the room plays (default: Vibe Ace)")
    p.add_argument("--report", type=Path, default=Path("out/voice"), help="folder for report.json")
    p.add_argument("--out", type=Path, default=None, help="Markdown file whose voice-eval markers get the tables")
    p.add_argument("--min-intent", type=float, default=0.9, help="exit 1 below this intent rate")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    commands = [c for c in load_commands(COMMANDS.with_name(f"{args.set}.yaml"))
                if not args.commands or c.id in args.commands]
    voices = [v for v in load_voices() if not args.voices or v.name in args.voices]
    track = args.track or data_dir() / "music" / "Kevin_MacLeod_-_Vibe_Ace.hq.ogg"
    t0 = time.perf_counter()
    results = evaluate(commands, voices, use_llm=not args.no_llm, track=track, seed=args.seed)
    summary = summarise(results, llm=not args.no_llm)
    text = markdown(summary, time.perf_counter() - t0)
    print(text)
    for line in summary["failures"]:
        print("  ✗", line)
    print(f"report: {write_report(args.report, results, summary)}")
    if args.out is not None:
        write_markdown_section(args.out, "voice-eval" if args.set == "commands" else "voice-paraphrases", text)
    return 0 if summary["intent_rate"] >= args.min_intent else 1


if __name__ == "__main__":
    sys.exit(main())
