"""The graph's nodes: top-level functions of (state, runtime), their dependencies in the runtime context.

understand → dialogue → plan → act → check → respond. Each reads the typed state, returns its
update; none holds audio in the state (the :class:`Workspace` keeps the arrays of this process).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypedDict

import numpy as np
from langgraph.runtime import Runtime as GraphRuntime
from pydantic import BaseModel

from agent import answers, dialogue, executor, planner, questions, reasoning, variants
from agent.answers import QuestionCall
from agent.dialogue import Conversation, LastResult, TurnInput
from agent.executor import Execution
from agent.plan import ToolCall, dump_plan
from agent.runtime import Runtime
from agent.settings import Settings
from agent.rules import Vocabulary
from agent.schemas import Intent
from agent.sinks import Delivery, FileSink, Sink
from agent.understand import Understanding, understand
from agent.variants import VariantSet
from knowledge.fr_store import FR_GRID_HZ
from tools.analysis import long_term_spectrum
from tools.audio_io import Audio, load_audio
from tools.plot import plot_result

Status = Literal["processed", "question", "answer"]


class TurnRequest(BaseModel):
    """One turn's input: the words, the audio, where the result goes, who asks, what they listen on."""

    request: str
    input_path: str | None = None
    output_path: str | None = None
    user: str = "default"
    listening_device: str | None = None
    turn_id: str = ""


class Understood(BaseModel):
    """The understand step's result, as kept in the state (and the trace); ``calls``: the read-only tools a
    question needs, when the closed vocabulary read them."""

    intent: Intent
    path: str
    notes: list[str] = []
    raw: list[str] = []
    llm: str | None = None
    seconds: float = 0.0
    calls: list[QuestionCall] = []
    told: list[str] = []  # sentences the reply carries after its lead (a multi-step request's ranking)
    fallback: str | None = None  # the LLM was asked but failed: the reply says the rules read the request


class Processed(BaseModel):
    """What act/check produced for this turn: where it went, what was measured."""

    outputs: dict[str, str]
    measurements: dict = {}
    checks: list[dict] = []
    facts: dict = {}
    duration_s: float = 0.0


class SenseState(TypedDict, total=False):
    """Graph state: ``turn`` and the per-turn results (reset by every input), and the conversation."""

    turn: TurnRequest
    understood: Understood | None
    status: Status | None
    reply: str | None
    notes: list[str]
    plan: list[ToolCall] | None
    asked: list[dict] | None
    processed: Processed | None
    record_id: int | None
    timings_s: dict[str, float]
    conversation: Conversation
    variants: VariantSet | None


@dataclass
class Workspace:
    """This process's arrays: input audio by path (with mtime) and each turn's execution, a few at a time."""

    max_items: int = 6
    audio: OrderedDict[str, Audio] = field(default_factory=OrderedDict)
    executions: OrderedDict[str, Execution] = field(default_factory=OrderedDict)

    def load(self, path: str) -> Audio:
        key = f"{path}:{Path(path).stat().st_mtime_ns}"
        if key not in self.audio:
            self._put(self.audio, key, load_audio(path))
        self.audio.move_to_end(key)
        return self.audio[key]

    def keep(self, turn_id: str, execution: Execution) -> None:
        self._put(self.executions, turn_id, execution)

    def _put(self, items: OrderedDict, key: str, value) -> None:
        items[key] = value
        while len(items) > self.max_items:
            items.popitem(last=False)


@dataclass
class Deps:
    """What the nodes need, passed as LangGraph's runtime context."""

    rt: Runtime
    workspace: Workspace = field(default_factory=Workspace)
    sink: Sink = field(default_factory=FileSink)
    vocab: Vocabulary | None = None
    offer_variants: bool = True
    run_stems: bool = True


def _timed(state: SenseState, name: str, start: float) -> dict[str, float]:
    return {**(state.get("timings_s") or {}), name: round(time.perf_counter() - start, 4)}


def _conversation(state: SenseState) -> Conversation:
    return state.get("conversation") or Conversation()


def understand_node(state: SenseState, runtime: GraphRuntime[Deps]) -> dict:
    """A reply to a pending question completes it (no LLM); else the fast path, the LLM or the rules."""
    start = time.perf_counter()
    deps, turn, conv = runtime.context, state["turn"], _conversation(state)
    reply = dialogue.reply_to_pending(turn.request, conv.pending, deps.rt, turn.user)
    llm = getattr(deps.rt.llm, "name", None)
    if reply.kind == "choice":
        intent = dialogue.answered_intent(conv.pending, reply.choice)
        u = Understood(intent=intent, path="answer", notes=[f"answer to the pending question: {reply.choice}"], llm=llm)
    elif reply.kind == "narrow":
        conv, question = dialogue.narrowed(conv, reply.candidates)
        u = Understood(intent=conv.pending.intent, path="answer", notes=["the answer fits several candidates"], llm=llm)
        return {"understood": u, "status": "question", "reply": question, "conversation": conv,
                "timings_s": _timed(state, "understand", start)}
    elif reply.kind == "cancel":
        found = understand(reply.rest, deps.rt.llm, deps.vocab) if reply.rest else None
        intent = dialogue.after_cancel(conv.pending, found.intent if found else None, reply.rest, deps.rt, turn.user)
        u = Understood(intent=intent, path=found.path if found else "answer", raw=found.raw if found else [], llm=llm,
                       notes=["the pending question was dropped", *(found.notes if found else [])],
                       fallback=found.fallback if found else None)
        if not dialogue.changes_something(intent):
            return {"understood": u, "status": "answer", "reply": "Fine, I've dropped that. What should change?",
                    "conversation": conv.model_copy(update={"pending": None}),
                    "timings_s": _timed(state, "understand", start)}
    elif conv.last is not None and conv.last.variants is not None and \
            variants.pick_of(turn.request, 1 + len(conv.last.variants.options)) is not None:
        u = Understood(intent=Intent(action="process"), path="variant", llm=llm, notes=["a pick of an offered variant"])
    else:
        u = _understood(turn, deps, conv, llm)
    return {"understood": u, "timings_s": _timed(state, "understand", start)}


def ask_context(deps: Deps, turn: TurnRequest, conv: Conversation) -> answers.AskContext:
    """What the question tools may read for this turn."""
    last = conv.last
    curves = [(label, np.interp(np.log(FR_GRID_HZ), np.log(dialogue.THIRD_OCTAVES_HZ), values))
              for label, values in (last.stages.items() if last else [])]
    return answers.AskContext(deps.rt, turn.user, turn.input_path, last.steps if last else [],
                              last.summary if last else None, curves, turn.request)


def _understood(turn: TurnRequest, deps: Deps, conv: Conversation, llm: str | None) -> Understood:
    """A question the closed vocabulary reads (its tools); a multi-step request ("whichever of my headphones
    has the most bass": the ranking first, then the request with the winner named); else :func:`understand`."""
    asking = questions.is_question(turn.request)
    if asking:
        calls = questions.rule_calls(turn.request, conv.answered)
        if calls:
            return Understood(intent=Intent(action="question"), path="fast", calls=calls, llm=llm,
                              notes=["a question the closed vocabulary reads: " + ", ".join(c.tool for c in calls)])
    request, notes = questions.follow_answer(turn.request, conv.answered, conv.suggested), []
    if request != turn.request:
        notes.append(f"read as \"{request}\": from my last answer")
    multi = None if asking else questions.whichever(request, ask_context(deps, turn, conv))
    if multi is not None and multi[0]:
        request = multi[0]
        notes = [f"step 1: rank_devices → {multi[1].short}", f"step 2: \"{request}\""]
    found: Understanding = understand(request, deps.rt.llm, deps.vocab)
    intent = found.intent
    if intent.action == "off_topic" and asking and questions.about_sound(turn.request, deps.rt.store.brands()):
        # a question the closed vocabulary cannot read is not off-topic: the question tools' LLM reads it
        notes.append("a question the closed vocabulary cannot read: the LLM chooses its tools")
        intent = intent.model_copy(update={"action": "question"})
    return Understood(intent=intent, path=found.path, notes=[*notes, *found.notes], raw=found.raw, llm=llm,
                      seconds=round(found.seconds, 3), told=[multi[1].short] if multi is not None and multi[0] else [],
                      fallback=found.fallback)


def route_after_understand(state: SenseState) -> str:
    u = state.get("understood")
    return "ask" if u is not None and u.intent.action == "question" and not state.get("status") else "dialogue"


def ask_node(state: SenseState, runtime: GraphRuntime[Deps]) -> dict:
    """A question: the read-only tools it needs (read by the closed vocabulary or chosen by the LLM), run within
    :data:`agent.questions.STEP_LIMIT`; the reply leads with the short answer, then numbers and sources. The
    calls, their arguments and what each found go to the answer's trace (``OUT-answer.json``)."""
    start = time.perf_counter()
    deps, turn, u, conv = runtime.context, state["turn"], state["understood"], _conversation(state)
    calls, notes, raw = list(u.calls), [], []
    if not calls and deps.rt.llm is not None:
        calls = questions.llm_calls(turn.request, deps.rt.llm, notes, raw, conv.answered) or []
    ctx = ask_context(deps, turn, conv)
    found = [(call, answers.run(call, ctx)) for call in calls[:questions.STEP_LIMIT]]
    reply = "\n".join([" ".join(ans.short for _, ans in found), *(line for _, ans in found for line in ans.details)]) \
        if found else questions.REFUSAL
    if u.fallback is None:  # (else respond says it)
        reply = _after_lead(reply, questions.fallback_line(notes))
    asked = [{"tool": call.tool, "args": call.model_dump(exclude={"tool"}), "facts": ans.facts} for call, ans in found]
    timings = _timed(state, "ask", start)
    trace = reasoning.answer_trace(state, reply, asked, [*u.notes, *notes], [*u.raw, *raw], timings)
    outputs = _answer_files(deps, turn, next((ans.plot for _, ans in found if ans.plot), None), trace) if found else {}
    pointed = next((ans.devices for _, ans in reversed(found) if ans.devices), [])
    suggested = next((ans.suggest for _, ans in reversed(found) if ans.suggest), None)
    return {"status": "answer", "reply": reply, "asked": asked, "notes": notes,
            "conversation": conv.model_copy(update={"answered": pointed, "suggested": suggested}),
            "processed": Processed(outputs=outputs) if outputs else None, "timings_s": timings}


def _answer_files(deps: Deps, turn: TurnRequest, draw, trace: dict) -> dict[str, str]:
    """The answer's trace and plot, through the sink (none when the sink takes none; no plot when the
    answer has none)."""
    where = deps.sink.answer_place(turn.input_path, turn.output_path)
    if not where:
        return {}
    if draw is None:
        where.pop("plot", None)
    else:
        deps.sink.write_plot(where, draw)
    deps.sink.write_trace(where, {**trace, "outputs": where})
    return where


def dialogue_node(state: SenseState, runtime: GraphRuntime[Deps]) -> dict:
    """Read the turn against the conversation: new settings to apply, or an answer or a question."""
    start = time.perf_counter()
    if state.get("status"):  # answered already (a dropped question)
        return {"timings_s": _timed(state, "dialogue", start)}
    turn = state["turn"]
    decision = dialogue.read_turn(
        runtime.context.rt, _conversation(state), state["understood"].intent,
        TurnInput(turn.request, turn.user, turn.listening_device, has_audio=bool(turn.input_path)), turn.input_path)
    if decision.picked is not None:
        pick = decision.picked
        runtime.context.rt.prefs.add_pick(turn.user, pick.word, pick.direction, pick.chosen_db, pick.rejected_db,
                                          record_id=pick.record_id)
    update = {"conversation": decision.conversation, "notes": decision.notes, "timings_s": _timed(state, "dialogue", start)}
    if decision.status != "apply":
        update.update(status=decision.status, reply=decision.reply)
    return update


def route_after_dialogue(state: SenseState) -> str:
    return "respond" if state.get("status") else "plan"


STEMS_NOT_RUN = ("That needs the whole track separated into stems, which this input does not allow; "
                 "nothing changed.")


def plan_node(state: SenseState, runtime: GraphRuntime[Deps]) -> dict:
    """The plan of the conversation's settings; a per-stem plan ends the turn here when stems may not run."""
    start = time.perf_counter()
    plan = planner.build_plan(runtime.context.rt, state["conversation"].settings)
    if not runtime.context.run_stems and planner.needs_stems(plan):
        return {"plan": plan, "status": "answer", "reply": STEMS_NOT_RUN, "timings_s": _timed(state, "plan", start)}
    return {"plan": plan, "timings_s": _timed(state, "plan", start)}


def route_after_plan(state: SenseState) -> str:
    return "respond" if state.get("status") else "act"


def act_node(state: SenseState, runtime: GraphRuntime[Deps]) -> dict:
    """Run the plan on the input and hand the result to the sink."""
    start = time.perf_counter()
    deps, turn = runtime.context, state["turn"]
    source = deps.workspace.load(turn.input_path)
    ex = executor.execute(deps.rt, state["plan"], source.samples, source.sample_rate)
    deps.workspace.keep(turn.turn_id, ex)
    where = deps.sink.deliver(Delivery(turn.request, turn.input_path, turn.output_path, ex.samples,
                                       source.sample_rate, ex.applied_db))
    return {"processed": Processed(outputs=where, facts=ex.facts, duration_s=source.duration_s), "status": "processed",
            "timings_s": _timed(state, "act", start)}


def check_node(state: SenseState, runtime: GraphRuntime[Deps]) -> dict:
    """Measure the output against what the plan meant (loudness, true peak, each stage's main band)."""
    start = time.perf_counter()
    deps, turn = runtime.context, state["turn"]
    source = deps.workspace.load(turn.input_path)
    ex = deps.workspace.executions[turn.turn_id]
    measurements, checks = executor.check(ex, source.samples, source.sample_rate, state["plan"][-1].args.ceiling_dbtp)
    processed = state["processed"].model_copy(update={"measurements": measurements, "checks": checks})
    return {"processed": processed, "timings_s": _timed(state, "check", start)}


def variants_node(state: SenseState, runtime: GraphRuntime[Deps]) -> dict:
    """Alternatives to a new tone request's result when the word's distribution has distinct modes
    (:func:`agent.variants.offer`), each processed like the result (loudness-matched) and delivered beside it."""
    start = time.perf_counter()
    deps, turn, u = runtime.context, state["turn"], state["understood"]
    settings = _conversation(state).settings
    if not deps.offer_variants or u.path == "variant" or u.intent.action != "process" or not u.intent.adjustments:
        return {"variants": None, "timings_s": _timed(state, "variants", start)}
    offered = variants.offer(deps.rt, turn.user, settings)
    if offered is not None:
        source = deps.workspace.load(turn.input_path)
        main = state["processed"].outputs.get("audio")
        for option in offered.options:
            ex = executor.execute(deps.rt, planner.build_plan(deps.rt, option.settings), source.samples, source.sample_rate)
            where = deps.sink.deliver(Delivery(turn.request, turn.input_path, variants.variant_path(main, option.letter)
                                               if main else None, ex.samples, source.sample_rate, ex.applied_db))
            option.audio = where.get("audio", "")
    return {"variants": offered, "timings_s": _timed(state, "variants", start)}


def _plot(path: Path, ex: Execution, source: Audio, request: str) -> Path:
    return plot_result(path, frequency_hz=FR_GRID_HZ, curves=ex.fr_curves, stages=ex.stage_curves,
                       applied_db=ex.applied_db, spectrum_before=long_term_spectrum(source.samples, source.sample_rate),
                       spectrum_after=long_term_spectrum(ex.samples, source.sample_rate), title=f"SENSE: \"{request}\"")


def _after_lead(reply: str, line: str | None) -> str:
    """``reply`` with ``line`` (e.g. "the planner was unavailable …") after its first line; unchanged when None."""
    if not line:
        return reply
    lead, _, rest = reply.partition("\n")
    return "\n".join(part for part in (lead, line, rest) if part)


def respond_node(state: SenseState, runtime: GraphRuntime[Deps]) -> dict:
    """The reply; for a processed turn also the plot, the trace, the preference record and the last result."""
    start = time.perf_counter()
    conv = _conversation(state)
    conv = conv.model_copy(update={"turns": conv.turns + 1})
    fallback = state["understood"].fallback if state.get("understood") else None
    if state.get("status") != "processed":
        return {"conversation": conv, "reply": _after_lead(state.get("reply") or "", fallback),
                "timings_s": _timed(state, "respond", start)}
    deps, turn, processed = runtime.context, state["turn"], state["processed"]
    ex, settings = deps.workspace.executions[turn.turn_id], conv.settings
    told = [*state["understood"].told, *([fallback] if fallback else [])]
    offered = state.get("variants")
    if offered is not None:  # after what earlier steps found, before the details
        told.append(variants.offer_line(offered))
    reply = reasoning.explain(settings, state["plan"], ex, processed.measurements, processed.checks, told)
    source = deps.workspace.load(turn.input_path)
    deps.sink.write_plot(processed.outputs, lambda path: _plot(path, ex, source, turn.request))
    request = turn.request if state["understood"].intent.action != "follow_up" else f"{settings.request} → {turn.request}"
    record_id = deps.rt.prefs.add(turn.user, request, state["understood"].intent.model_dump(), dump_plan(state["plan"]),
                                  settings.record())
    timings = _timed(state, "respond", start)
    deps.sink.write_trace(processed.outputs, reasoning.trace(state, reply, record_id, timings))
    last = LastResult(input=turn.input_path, audio=processed.outputs.get("audio", ""), record_id=record_id,
                      lufs_in=processed.measurements["lufs_in"], lufs_out=processed.measurements["lufs_out"],
                      summary=reply.split("\n", 1)[0], steps=reply.split("\n")[1:],
                      stages={s.label: [round(float(v), 2) for v in np.interp(
                          np.log(dialogue.THIRD_OCTAVES_HZ), np.log(FR_GRID_HZ), s.curve)] for s in ex.stages},
                      variants=offered)
    return {"reply": reply, "record_id": record_id, "conversation": conv.model_copy(update={"last": last}),
            "timings_s": timings}


__all__ = ["SenseState", "TurnRequest", "Understood", "Processed", "Deps", "Workspace", "Settings",
           "understand_node", "ask_node", "dialogue_node", "plan_node", "act_node", "check_node", "variants_node",
           "respond_node",
           "route_after_understand", "route_after_dialogue"]
