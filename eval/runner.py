"""Running scripted conversations against the conversation engine (:class:`agent.engine.Engine`), turn by turn.

Each conversation is played like a person would: a fresh LangGraph thread and a fresh user, the
same audio every turn, the requests in order. Every turn is timed and scored
(:mod:`eval.scoring`); :func:`run_conversations` collects the results and writes the report
(:mod:`eval.report`).

:func:`_outcome` is the one place that reads the engine's output (a ``TurnOutcome``): everything
else works on its :class:`_Outcome`.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eval.report import Report, summary, write_report
from eval.scoring import (Check, equalize_amounts, measure_output, plan_summary, score_audio, score_facts,
                          score_plan, score_reply)
from eval.suite import Conversation, Turn, load_conversations, music_dir

_TRACES_MARKER = ".sense-eval-traces"


@dataclass
class TurnResult:
    """One scored turn.

    Attributes:
        index: 1-based turn number.
        say: the request.
        status: ``processed``, ``question`` or ``answer``; None when the agent raised.
        reply: the agent's reply text.
        seconds: wall time of the turn, s.
        checks: every scored expectation.
        plan_summary: the plan on one line (:func:`eval.scoring.plan_summary`).
        device: the resolved target device, or None.
        intent, intent_path: the understood intent (a dict) and how (``llm``, ``rules`` …), or None.
        measured: audio measurements (:func:`eval.scoring.measure_output`); empty without output.
        timings_s: the agent's per-stage timings, s.
        trace: the kept JSON trace file (under the report's traces folder), or None.
        error: ``"Type: message"`` when the turn raised, else None.
    """

    index: int
    say: str
    status: str | None
    reply: str
    seconds: float
    checks: list[Check]
    plan_summary: str
    device: str | None
    intent: dict | None
    intent_path: str | None
    measured: dict
    timings_s: dict
    trace: str | None
    error: str | None = None

    @property
    def passed(self) -> bool:
        """No error and every check held."""
        return self.error is None and all(c.ok for c in self.checks)


@dataclass
class ConversationResult:
    """One conversation's turns and where it came from (id, category, source file, audio, fast)."""

    id: str
    category: str
    source: str
    audio: str
    fast: bool
    turns: list[TurnResult]

    @property
    def passed(self) -> bool:
        """Every turn passed."""
        return all(t.passed for t in self.turns)


@dataclass(frozen=True)
class _Outcome:
    """What one turn of the agent produced, as the harness needs it.

    Attributes:
        status: ``processed``, ``question``, ``answer``, or None (nothing ran).
        reply: the reply text ("" when none).
        plan: the tool calls, ``[{"tool": name, "args": {...}}]`` (empty without a plan).
        has_settings: False when the conversation has no settings (a reset or undo to the original).
        device: the resolved target device's name, or None.
        intent, intent_path: the understood intent (dict) and how it was understood, or None.
        audio: the written output file when the turn processed audio and it exists, else None.
        files: other outputs by kind (``trace``, ``plot``) → path, only those named.
        timings_s: the agent's per-stage timings, s.
    """

    status: str | None = None
    reply: str = ""
    plan: list[dict] = field(default_factory=list)
    has_settings: bool = False
    device: str | None = None
    intent: dict | None = None
    intent_path: str | None = None
    audio: Path | None = None
    files: dict[str, Path] = field(default_factory=dict)
    timings_s: dict = field(default_factory=dict)


def _outcome(turn) -> _Outcome:
    """Read what the engine returned for a turn (an :class:`agent.engine.TurnOutcome`, or None when it raised).

    The only function that knows the engine's outcome type.
    """
    if turn is None:
        return _Outcome()
    from agent.plan import dump_plan

    understood = turn.understood
    audio = Path(turn.outputs["audio"]) if turn.status == "processed" and turn.outputs.get("audio") else None
    return _Outcome(
        status=turn.status, reply=turn.reply, plan=dump_plan(turn.plan), has_settings=turn.settings is not None,
        device=turn.device, intent=understood.intent.model_dump() if understood else None,
        intent_path=understood.path if understood else None,
        audio=audio if audio is not None and audio.is_file() else None,
        files={k: Path(turn.outputs[k]) for k in ("trace", "plot") if turn.outputs.get(k)},
        timings_s=dict(turn.timings_s))


def _read_audio(path: str | Path):
    from tools.audio_io import load_audio

    return load_audio(path)


def _prepare_input(conv: Conversation, work: Path, max_audio_s: float | None) -> Path:
    """The file every turn of ``conv`` processes: the track, or its clip as a float WAV in ``work``.

    Raises:
        FileNotFoundError: the conversation's audio is missing.
        ValueError: the clip lies outside the track (less than 0.1 s left).
    """
    import soundfile as sf

    source = music_dir() / conv.audio
    if not source.is_file():
        raise FileNotFoundError(f"{conv.source}: conversation {conv.id}: no audio file {source}")
    start, dur = conv.clip if conv.clip else (0.0, None)
    if max_audio_s is not None:
        dur = min(dur, max_audio_s) if dur is not None else max_audio_s
    if conv.clip is None and dur is None:
        return source
    audio = _read_audio(source)
    rate = audio.sample_rate
    a = int(round(start * rate))
    b = audio.samples.shape[-1] if dur is None else min(audio.samples.shape[-1], a + int(round(dur * rate)))
    if b - a < rate // 10:
        raise ValueError(f"{conv.source}: conversation {conv.id}: clip {conv.clip} is outside {conv.audio} "
                         f"({audio.samples.shape[-1] / rate:.1f} s)")
    path = work / f"{conv.id}-input.wav"
    sf.write(path, audio.samples[:, a:b].T, rate, subtype="FLOAT")
    return path


def _fresh_user(conv: Conversation, run_id: str) -> str:
    return f"{conv.user or 'eval'}~{conv.id}~{run_id}"


@dataclass
class _Context:
    """What every turn of one conversation shares."""

    engine: Any
    thread: str
    conv: Conversation
    input_path: Path
    input_audio: Any
    work: Path
    user: str
    traces_dir: Path
    previous: dict = field(default_factory=dict)  # "audio": last processed output, "amounts": its EQ amounts


def _invoke(ctx: _Context, index: int, turn: Turn) -> tuple[_Outcome, float, str | None]:
    """Run one turn through the engine: (outcome, seconds, error text or None)."""
    output = ctx.work / ctx.conv.id / f"turn{index + 1:02d}.wav"
    output.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    error, result = None, None
    try:
        result = ctx.engine.turn(ctx.thread, turn.say, ctx.input_path, user=ctx.user, output_path=output,
                                 listening_device=ctx.conv.listening_device)
    except Exception as exc:  # noqa: BLE001 - a crash is a failed turn, not a failed run
        error = f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - start
    return _outcome(result), seconds, error


def _run_turn(ctx: _Context, index: int, turn: Turn) -> TurnResult:
    """Run, measure and score one turn; moves its trace and plot into the traces folder."""
    expect = turn.expect
    out, seconds, error = _invoke(ctx, index, turn)
    checks = [Check("agent ran", "no exception", error, False)] if error else []
    checks += score_plan(expect, out.status, out.plan, out.device, ctx.previous.get("amounts", {}))
    measured: dict[str, Any] = {}
    out_audio = None
    if out.audio is not None:
        out_audio = _read_audio(out.audio)
        measured = measure_output(ctx.input_audio, out_audio, ctx.previous.get("audio"))
    if expect.audio is not None and not expect.audio.empty():
        if out_audio is None:
            checks.append(Check("audio output", "a processed output to measure",
                                f"none (status {out.status})" if not error else "none (agent raised)", False))
        else:
            checks += score_audio(expect.audio, measured, ctx.input_audio, out_audio, ctx.previous.get("audio"))
    checks += score_reply(expect, out.reply)
    checks += score_facts(expect, out.reply, ctx.input_audio)
    trace_path = None
    if out_audio is not None:
        ctx.previous["audio"], ctx.previous["amounts"] = out_audio, equalize_amounts(out.plan)
        trace_path = _keep_files(out, ctx.traces_dir / ctx.conv.id, index)
    elif error is None and not out.has_settings and ctx.previous.get("audio") is not None:
        ctx.previous["audio"], ctx.previous["amounts"] = ctx.input_audio, {}  # undo/reset back to the original
    return TurnResult(
        index=index + 1, say=turn.say, status=out.status, reply=out.reply, seconds=round(seconds, 3), checks=checks,
        plan_summary=plan_summary(out.plan), device=out.device, intent=out.intent, intent_path=out.intent_path,
        measured=measured, timings_s=out.timings_s, trace=trace_path, error=error)


def _keep_files(out: _Outcome, dest: Path, index: int) -> str | None:
    """Move a processed turn's trace and plot to ``dest/turnNN.*`` and delete its (measured) audio.

    Returns:
        The kept trace's path, or None when the turn wrote none.
    """
    dest.mkdir(parents=True, exist_ok=True)
    trace_path = None
    for key in ("trace", "plot"):
        src = out.files.get(key)
        if src is not None and src.is_file():
            target = dest / f"turn{index + 1:02d}{src.suffix}"
            shutil.move(str(src), target)
            if key == "trace":
                trace_path = str(target)
    out.audio.unlink(missing_ok=True)  # measured; WAVs of a full run would be hundreds of MB
    return trace_path


def _failed_conversation(conv: Conversation, error: str) -> ConversationResult:
    """A conversation whose input audio could not be read: every turn fails with ``error``."""
    turns = [TurnResult(i + 1, turn.say, None, "", 0.0, [Check("input audio", "readable", error, False)],
                        "(no plan)", None, None, None, {}, {}, None, error) for i, turn in enumerate(conv.turns)]
    return ConversationResult(conv.id, conv.category, conv.source, conv.audio, conv.fast, turns)


def _run_conversation(engine, runtime, conv: Conversation, *, run_id: str, work: Path, traces_dir: Path,
                      max_audio_s: float | None, bar) -> ConversationResult:
    """All turns of one conversation on a fresh thread and user (profile devices registered first)."""
    user = _fresh_user(conv, run_id)
    for device in (conv.profile.owns if conv.profile else []):
        runtime.prefs.own_device(user, device)
    thread = f"eval-{conv.id}-{run_id}"
    try:
        input_path = _prepare_input(conv, work, max_audio_s)
        input_audio = _read_audio(input_path)
    except Exception as exc:  # noqa: BLE001 - score the conversation as failed, keep going
        bar.update(len(conv.turns))
        return _failed_conversation(conv, f"{type(exc).__name__}: {exc}")
    ctx = _Context(engine, thread, conv, input_path, input_audio, work, user, traces_dir)
    turns: list[TurnResult] = []
    for i, turn in enumerate(conv.turns):
        turns.append(_run_turn(ctx, i, turn))
        bar.update(1)
    return ConversationResult(conv.id, conv.category, conv.source, conv.audio, conv.fast, turns)


def _traces_folder(report_dir: Path, run_id: str) -> Path:
    """A fresh ``traces/`` folder (replacing the previous run's), or ``traces-<run id>`` beside someone else's."""
    traces_dir = report_dir / "traces"
    if (traces_dir / _TRACES_MARKER).is_file():
        shutil.rmtree(traces_dir)  # the previous run's traces (the marker says the harness made the folder)
    elif traces_dir.exists():
        traces_dir = report_dir / f"traces-{run_id}"  # someone else's folder: leave it alone
    traces_dir.mkdir(parents=True)
    (traces_dir / _TRACES_MARKER).write_text("traces of one `sense eval` run; replaced by the next run\n")
    return traces_dir


def run_conversations(paths: list[str | Path] | None = None, *, runtime, report_dir: str | Path,
                      min_pass: float = 0.8, fast_only: bool = False, progress: bool = True,
                      max_audio_s: float | None = None, conversations: list[Conversation] | None = None) -> Report:
    """Run conversations against the agent and write the report.

    Args:
        paths: conversation files or folders (default: ``eval/conversations``).
        runtime: a loaded :class:`agent.runtime.Runtime` (its LLM, or none, is what is evaluated).
        report_dir: where ``report.json``, ``report.md``, ``report.png`` and ``traces/`` go (created).
        min_pass: turn pass rate the run needs; stated in the report (see :meth:`Report.exit_code`).
        fast_only: only the conversations marked ``fast: true``.
        progress: show a progress bar over turns (tqdm, on stderr).
        max_audio_s: cap every conversation's audio to this many seconds (from its clip start).
        conversations: already loaded conversations (``paths`` is then ignored).
    Returns:
        The :class:`Report`.
    Raises:
        SuiteError: invalid conversation files.
    """
    from tqdm import tqdm

    from agent.engine import Engine

    if conversations is None:
        conversations = load_conversations(paths, fast_only=fast_only)
    elif fast_only:
        conversations = [c for c in conversations if c.fast]
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    run_id = uuid.uuid4().hex[:8]
    traces_dir = _traces_folder(report_dir, run_id)
    engine = Engine(runtime)
    results: list[ConversationResult] = []
    started = time.perf_counter()
    bar = tqdm(total=sum(len(c.turns) for c in conversations), unit="turn", disable=not progress,
               desc="eval", dynamic_ncols=True)
    try:
        with tempfile.TemporaryDirectory(prefix="run-", dir=report_dir) as tmp:
            for conv in conversations:
                bar.set_postfix_str(conv.id)
                results.append(_run_conversation(engine, runtime, conv, run_id=run_id, work=Path(tmp),
                                                 traces_dir=traces_dir, max_audio_s=max_audio_s, bar=bar))
    finally:
        bar.close()
    report = Report(results, summary(results, runtime, min_pass=min_pass, fast_only=fast_only,
                                     max_audio_s=max_audio_s, wall_s=time.perf_counter() - started), report_dir)
    write_report(report)
    return report
