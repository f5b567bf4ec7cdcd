"""One conversation engine for every front end: the CLI, the web UI, the eval harness (and voice next).

    engine = Engine(Runtime.load())
    outcome = engine.turn("thread-1", "make it sound like my AirPods, less harsh", "song.wav")
    print(outcome.reply)          # lead sentence, then details
    outcome = engine.turn("thread-1", "a bit more", "song.wav")

A turn goes through the graph (:mod:`agent.graph`) with this engine's dependencies (runtime,
workspace, sink); what comes back is a typed :class:`TurnOutcome`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from agent.dialogue import Conversation
from agent.executor import Execution
from agent.graph import FIRST_STEP, STEPS, build_graph
from agent.nodes import Deps, Processed, TurnRequest, Understood, Workspace
from agent.plan import ToolCall
from agent.runtime import Runtime
from agent.settings import Settings
from agent.variants import VariantSet
from agent.sinks import FileSink, Sink
from agent.rules import Vocabulary
from knowledge.descriptors import EMBEDDING_CONFIDENT

#: A tone word the fast path may take without the LLM: an expert term (or its form, inflection, translation), or
#: a word the crowd prior knows by itself, a translation, jargon or a suffix rule.
EXACT_VIA = frozenset({"expert", "exact", "translation", "jargon", "rule"})

Progress = Callable[[float, str], object]


@dataclass
class TurnOutcome:
    """What one turn did.

    Attributes:
        status: "processed" (audio written), "question" (a clarifying question), "answer" (nothing processed).
        reply: the lead sentence, then the details (one per line).
        request: the words of the turn.
        input_path: the audio it worked on, or None.
        outputs: where the result went (``audio``, ``trace``, ``plot`` paths for the file sink).
        settings: what applies after the turn (None: the original).
        plan: the tool calls planned this turn (run when processed; a per-stem plan is kept but not run by an
            engine with ``run_stems=False``; empty when the turn did not get to planning).
        understood: the intent and how it was read (fast | llm | llm-repair | rules | answer).
        measurements: LUFS in/out, true peak, band changes (processed turns).
        checks: ``{name, expected, measured, ok}`` (processed turns).
        record_id: the preference record (processed turns).
        timings_s: seconds per node.
        notes: how the dialogue manager read the turn.
        execution: the arrays of a processed turn (stages, curves, output), for exports and evaluation.
        asked: a question's tool calls and what each found (``{tool, args, facts}``), else [].
        variants: alternatives offered with a processed result (files, labels), or None (:mod:`agent.variants`).
    """

    status: str
    reply: str
    request: str
    input_path: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    settings: Settings | None = None
    plan: list[ToolCall] = field(default_factory=list)
    understood: Understood | None = None
    measurements: dict = field(default_factory=dict)
    checks: list[dict] = field(default_factory=list)
    record_id: int | None = None
    timings_s: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    execution: Execution | None = None
    asked: list[dict] = field(default_factory=list)
    variants: VariantSet | None = None

    @property
    def summary(self) -> str:
        """The reply's first line."""
        return self.reply.split("\n", 1)[0]

    @property
    def details(self) -> str:
        """The reply after its first line."""
        return self.reply.split("\n", 1)[1] if "\n" in self.reply else ""

    @property
    def device(self) -> str | None:
        """The target device that applies after the turn, if any."""
        return self.settings.target.name if self.settings is not None and self.settings.target else None


def vocabulary(rt: Runtime) -> Vocabulary:
    """The closed vocabulary of ``rt``'s words (expert vocabulary and crowd prior; cached per word)."""

    @lru_cache(maxsize=4096)
    def match(word: str):
        word = word.strip().lower()
        return rt.words.lookup(word) if word and word.replace("-", "").replace(" ", "").isalpha() else None

    def word_key(word: str) -> str | None:
        m = match(word)
        return m.word if m is not None and m.via in EXACT_VIA else None

    def plausible(word: str) -> bool:
        m = match(word)
        return m is not None and (m.via in EXACT_VIA or m.score >= EMBEDDING_CONFIDENT)

    @lru_cache(maxsize=1024)
    def device_known(name: str) -> bool:
        return rt.devices.resolve(name).status != "unknown"

    return Vocabulary(word_key, plausible, device_known, tuple(rt.words.vocabulary.phrases()))


class Engine:
    """The conversation engine over one loaded :class:`Runtime`.

    Args:
        rt: knowledge stores and the planner LLM (or None for rules only).
        sink: where results go (default: files next to the input or at ``output_path``).
        checkpoint: a LangGraph checkpointer (default: in memory).
        fast_path: read closed-vocabulary requests without the LLM (default True).
        variants: offer (and render) alternatives when a tone word's distribution has distinct modes (default True).
        run_stems: run per-stem plans (default True). False (a live stream, which has no whole track to
            separate): such a turn ends after planning with status ``answer`` and the plan in the outcome,
            instead of separating the input first (~2.5 s on 20 s of audio) for nothing.
    """

    def __init__(self, rt: Runtime, *, sink: Sink | None = None, checkpoint=None, fast_path: bool = True,
                 variants: bool = True, run_stems: bool = True):
        self.rt = rt
        self.graph = build_graph(checkpoint)
        self.deps = Deps(rt, Workspace(), sink or FileSink(), vocabulary(rt) if fast_path else None, variants,
                         run_stems)

    def turn(self, thread: str, request: str, input_path: str | Path | None = None, *, user: str = "default",
             output_path: str | Path | None = None, listening_device: str | None = None,
             progress: Progress | None = None) -> TurnOutcome:
        """Run one turn of conversation ``thread``.

        Args:
            thread: conversation id (settings, undo stack and pending question live per thread).
            request: the person's words.
            input_path: the audio to work on (None: nothing to process yet).
            user: whose preferences and devices.
            output_path: where the audio goes (default ``INPUT-sense.wav``; never overwritten).
            listening_device: the device the person listens on (for every turn of the thread).
            progress: called with (fraction 0…1, what happens next) after each step.
        Returns:
            The :class:`TurnOutcome`.
        Raises:
            SenseError subclasses for what the user can fix (unreadable audio, a missing model …).
        """
        turn = TurnRequest(request=request, input_path=str(input_path) if input_path else None,
                           output_path=str(output_path) if output_path else None, user=user,
                           listening_device=listening_device, turn_id=uuid.uuid4().hex)
        config = {"configurable": {"thread_id": thread}}
        reset = {"turn": turn, "understood": None, "status": None, "reply": None, "notes": [], "plan": None,
                 "asked": None, "processed": None, "record_id": None, "timings_s": {}, "variants": None}
        if progress:
            progress(0.05, FIRST_STEP)
        for update in self.graph.stream(reset, config, stream_mode="updates", context=self.deps):
            node = next(iter(update))
            if progress and node in STEPS:
                progress(*STEPS[node])
        return self._outcome(self.graph.get_state(config).values, turn)

    def _outcome(self, values: dict, turn: TurnRequest) -> TurnOutcome:
        conv: Conversation = values.get("conversation") or Conversation()
        processed: Processed | None = values.get("processed")
        status = values.get("status") or "answer"
        return TurnOutcome(
            status=status, reply=values.get("reply") or "", request=turn.request, input_path=turn.input_path,
            outputs=dict(processed.outputs) if processed else {}, settings=conv.settings,
            plan=list(values.get("plan") or []), understood=values.get("understood"),
            measurements=processed.measurements if processed else {}, checks=processed.checks if processed else [],
            record_id=values.get("record_id"), timings_s=dict(values.get("timings_s") or {}),
            notes=list(values.get("notes") or []), asked=list(values.get("asked") or []),
            variants=values.get("variants") if status == "processed" else None,
            execution=self.deps.workspace.executions.get(turn.turn_id) if status == "processed" else None)

    def conversation(self, thread: str) -> Conversation:
        """The conversation's state (settings, undo stack, pending question, last result)."""
        values = self.graph.get_state({"configurable": {"thread_id": thread}}).values
        return values.get("conversation") or Conversation()

    def forget(self, thread: str) -> None:
        """Drop a conversation (its checkpoints)."""
        self.graph.checkpointer.delete_thread(thread)
