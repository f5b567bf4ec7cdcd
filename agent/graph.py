"""The SENSE agent as a LangGraph ``StateGraph``: understand → retrieve → plan → act → check → respond.

One function per node; the wiring is in :func:`build_graph`. A checkpointer keeps the
conversation (current settings, undo stack, a pending clarifying question) per ``thread_id``, so
"a bit more", "undo" and "now brighter" are read against the last result.

Audio never goes into the graph state (checkpoints would copy it every step): the input and
processed arrays live in a small per-process cache keyed by path.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from rapidfuzz import fuzz, process

from agent import executor, outputs, planner, rules
from agent.reasoning import explain
from agent.runtime import Runtime
from agent.schemas import Intent, ToolCall
from agent.understand import understand
from knowledge.descriptors import EMBEDDING_CONFIDENT
from tools.analysis import long_term_spectrum
from tools.audio_io import Audio, load_audio

OFF_TOPIC_REPLY = ("I'm SENSE, an audio assistant: I can make your audio sound like it's on a given headphone or "
                   "earbud, or change its tone (\"less harsh\", \"warmer\", \"more bass\"). I can't help with that one.")
EMPTY_REPLY = ("Tell me how it should sound: a device (\"like it's on my AirPods\") or a tone "
               "(\"less harsh\", \"warmer\", \"more bass\").")


class SenseState(TypedDict, total=False):
    """Graph state. Per-turn keys are reset by :func:`turn_input`; the rest is conversation memory."""

    # this turn's input
    request: str
    input_path: str | None
    output_path: str | None
    user: str
    listening_device: str | None
    # this turn's products
    understanding: dict | None
    plan: list[dict] | None
    facts: dict | None
    measurements: dict | None
    checks: list[dict] | None
    outputs: dict | None
    reply: str | None
    status: str | None  # processed | question | answer | error
    timings_s: dict | None
    # conversation memory
    settings: dict | None
    undo_stack: list[dict]
    pending: dict | None
    record_id: int | None
    last_result: dict | None
    turns: int


def turn_input(request: str, input_path: str | Path | None, *, user: str = "default",
               output_path: str | Path | None = None, listening_device: str | None = None) -> dict:
    """The input of one turn: the request plus every per-turn key reset."""
    return {
        "request": request, "input_path": str(input_path) if input_path else None,
        "output_path": str(output_path) if output_path else None, "user": user,
        "listening_device": listening_device, "understanding": None, "plan": None, "facts": None,
        "measurements": None, "checks": None, "outputs": None, "reply": None, "status": None, "timings_s": {},
    }


class _AudioCache:
    """The few arrays a process works on, by path (input files keyed with their mtime)."""

    def __init__(self, max_items: int = 6):
        self._items: OrderedDict[str, Audio] = OrderedDict()
        self._max = max_items

    def load(self, path: str) -> Audio:
        key = f"{path}:{Path(path).stat().st_mtime_ns}"
        if key not in self._items:
            self.put(key, load_audio(path))
        self._items.move_to_end(key)
        return self._items[key]

    def put(self, key: str, audio: Audio) -> None:
        self._items[key] = audio
        while len(self._items) > self._max:
            self._items.popitem(last=False)

    def get(self, key: str) -> Audio:
        return self._items[key]


def _timed(state: SenseState, name: str, start: float) -> dict:
    return {**(state.get("timings_s") or {}), name: round(time.perf_counter() - start, 4)}


def _resolve_device(rt: Runtime, name: str, user: str) -> tuple[dict | None, str | None]:
    """(device dict, None) when resolved, else (None, clarifying question)."""
    res = rt.devices.resolve(name, owned=rt.prefs.owned_devices(user))
    if res.status != "resolved":
        return None, res.question
    return {"name": res.device, "type": rt.store.device_type(res.device), "query": name, "via": res.via,
            "alternatives": res.alternatives,
            "sources": sorted({c.source for c in rt.store.measurements(res.device)})}, None


def _answer_to_pending(request: str, pending: dict) -> str | None:
    """The candidate a reply to a clarifying question picks ("the headphones", "WH-1000XM4", "the first one")."""
    names = pending["candidates"]
    ordinals = {"first": 0, "1": 0, "second": 1, "2": 1, "third": 2, "3": 2}
    for word, i in ordinals.items():
        if re.search(rf"\b{word}\b", request.lower()) and i < len(names):
            return names[i]
    labels = [f"{n} {pending['types'].get(n, '')}" for n in names]
    best = process.extractOne(request, labels, scorer=fuzz.WRatio)
    return names[best[2]] if best and best[1] >= 60 else None


def _compare_reply(state: SenseState) -> str:
    """Where the original and the last result are, and that they are loudness-matched for an A/B."""
    last = state.get("last_result")
    if not last:
        original = state.get("input_path")
        return f"Nothing is processed yet; the original is {original}." if original else "Nothing is processed yet."
    return (f"Original: {last['input']}\nLast result: {last['audio']}\nThey are loudness-matched "
            f"({last['lufs_in']:.1f} and {last['lufs_out']:.1f} LUFS), so switching between them compares the "
            "tone, not the level. Say \"undo\" or \"reset\" to go back.")


def build_graph(rt: Runtime, checkpointer: Any | None = None):
    """Compile the agent graph.

    Args:
        rt: loaded runtime (stores, LLM).
        checkpointer: LangGraph checkpointer (default: in-memory, one conversation per ``thread_id``).
    Returns:
        A compiled graph; call ``invoke(turn_input(...), {"configurable": {"thread_id": ...}})``.
    """
    audio = _AudioCache()

    def understand_node(state: SenseState) -> dict:
        start = time.perf_counter()
        u = understand(state["request"], rt.llm)
        return {"understanding": {"intent": u.intent.model_dump(), "path": u.path, "notes": u.notes, "raw": u.raw,
                                  "llm": getattr(rt.llm, "name", None), "seconds": round(u.seconds, 3)},
                "timings_s": _timed(state, "understand", start)}

    def retrieve_node(state: SenseState) -> dict:
        start = time.perf_counter()
        intent = Intent.model_validate(state["understanding"]["intent"])
        user = state["user"]
        previous = state.get("settings")
        undo_stack = list(state.get("undo_stack") or [])
        update: dict[str, Any] = {}

        def finish(**kw) -> dict:
            return {**update, **kw, "timings_s": _timed(state, "retrieve", start)}

        pending = state.get("pending")
        if pending and intent.action != "off_topic" and not intent.adjustments and intent.follow_up == "none":
            choice = _answer_to_pending(state["request"], pending)
            if choice is not None:
                intent = Intent.model_validate(pending["intent"])
                intent = intent.model_copy(update={pending["role"]: choice})
                update["understanding"] = {**state["understanding"], "answered_question": choice}
        update["pending"] = None

        method = rules.transfer_method(state["request"])
        device_named = intent.target_device and not rules.transfer_method(intent.target_device)  # "the neural model" is no device
        if method and previous is not None and previous["target"] is not None and not device_named \
                and not intent.adjustments and not intent.band_edits and not intent.stem_edits:
            # "use the neural model" / "back to the DSP filter": same settings, other transfer method
            return finish(settings={**previous, "transfer_method": method, "request": state["request"]},
                          undo_stack=[*undo_stack, previous])
        if intent.action == "off_topic":
            return finish(status="answer", reply=OFF_TOPIC_REPLY)
        if intent.action == "follow_up":
            if intent.follow_up == "reset":
                return finish(status="answer", settings=None, undo_stack=[*undo_stack, previous] if previous else undo_stack,
                              reply="Back to the original: nothing is applied now. Tell me what to change.")
            if intent.follow_up == "undo":
                if not undo_stack:
                    return finish(status="answer", reply="There is nothing to undo.")
                settings = undo_stack.pop()
                if settings is None:
                    return finish(status="answer", settings=None, undo_stack=undo_stack,
                                  reply="Undone: back to the original.")
                return finish(settings=settings, undo_stack=undo_stack)
            if intent.follow_up == "compare":
                return finish(status="answer", reply=_compare_reply(state))
            if previous is not None and (previous["adjustments"] or previous.get("band_edits") or previous.get("stems")):
                return finish(settings=planner.scale_settings(previous, intent.follow_up),
                              undo_stack=[*undo_stack, previous])
            reread = rules.parse(state["request"])  # "it's too boomy" is no follow-up when nothing came before
            if reread.action != "process" or not (reread.adjustments or reread.band_edits or reread.stem_edits):
                return finish(status="answer", reply="There is no tone change to make stronger or weaker yet. " + EMPTY_REPLY)
            intent = reread
            update["understanding"] = {**state["understanding"], "intent": intent.model_dump(),
                                       "notes": [*state["understanding"]["notes"],
                                                 "nothing to follow up yet: re-read with the rule-based parser"]}

        target = listening = None
        if intent.target_device:
            target, question = _resolve_device(rt, intent.target_device, user)
            if question:
                cands = [c.name for c in rt.devices.resolve(intent.target_device).candidates[:3]]
                return finish(status="question", reply=question, pending={
                    "intent": intent.model_dump(), "role": "target_device", "candidates": cands,
                    "types": {n: rt.store.device_type(n) for n in cands}})
        listening_name = state.get("listening_device") or intent.listening_device
        if listening_name:
            listening, question = _resolve_device(rt, listening_name, user)
            if question:
                return finish(status="question", reply=question)
        if target is not None and listening is None and (previous is None or previous["listening"] is None):
            try:
                rt.store.target_for(target["name"])
            except (KeyError, ValueError) as exc:
                return finish(status="answer", reply=(
                    f"I can't render {target['name']} without knowing what you listen on: the device store has no "
                    f"neutral target for it ({exc}). Name your listening device (--listening-device), or use a "
                    "store that has AutoEq's targets/ folder."))
        adjustments = planner.adjustment_settings(rt, user, state["request"], intent.adjustments)
        unsure = [a for a in adjustments if a["match_via"] == "embedding" and a["match_score"] < EMBEDDING_CONFIDENT]
        if unsure:
            return finish(status="question", reply=" ".join(
                f"I don't know \"{a['asked']}\" as a sound word; the closest I know is \"{a['descriptor']}\"." for a in unsure)
                + " Is that what you mean? Say it with that word, or describe it another way (warmer, brighter, less harsh …).")
        band_edits = planner.band_edit_settings(intent.band_edits)
        on_stems = any(e.operation == "tone" for e in intent.stem_edits)  # the words are about those stems only
        stems = planner.stem_settings(intent.stem_edits, adjustments if on_stems else [])
        if on_stems:
            adjustments = []
        if target is None and not adjustments and listening is None and not band_edits and not stems:
            return finish(status="answer", reply=EMPTY_REPLY)
        settings = {**planner.merge_settings(previous, intent, target, listening, adjustments, band_edits, stems),
                    "request": state["request"]}
        settings["transfer_method"] = method or (previous or {}).get("transfer_method", "dsp")
        if not planner.has_changes(settings):
            return finish(status="answer", reply=EMPTY_REPLY)
        return finish(settings=settings, undo_stack=[*undo_stack, previous])

    def route_after_retrieve(state: SenseState) -> str:
        if state.get("status"):
            return "respond"
        return "plan" if state.get("input_path") else "no_audio"

    def no_audio_node(state: SenseState) -> dict:
        return {"status": "answer", "reply": "Understood. Now give me an audio file to apply it to."}

    def plan_node(state: SenseState) -> dict:
        start = time.perf_counter()
        plan = planner.build_plan(rt, state["settings"])
        return {"plan": [c.model_dump() for c in plan], "timings_s": _timed(state, "plan", start)}

    def act_node(state: SenseState) -> dict:
        start = time.perf_counter()
        source = audio.load(state["input_path"])
        plan = [ToolCall.model_validate(c) for c in state["plan"]]
        ex = executor.execute(rt, plan, source.samples, source.sample_rate)
        paths = outputs.output_paths(state["input_path"], state.get("output_path"))
        outputs.write_audio_output(paths["audio"], ex.samples, source.sample_rate)
        audio.put(f"out:{paths['audio']}", Audio(ex.samples, source.sample_rate, paths["audio"]))
        facts = {"tools": ex.facts, "seconds": ex.seconds,
                 "stage_curves": {k: v.tolist() for k, v in ex.stage_curves.items()},
                 "fr_curves": {k: v.tolist() for k, v in ex.fr_curves.items()},
                 "applied_db": ex.applied_db.tolist(), "sample_rate": source.sample_rate,
                 "duration_s": source.duration_s}
        return {"facts": facts, "outputs": {k: str(v) for k, v in paths.items()}, "status": "processed",
                "timings_s": _timed(state, "act", start)}

    def check_node(state: SenseState) -> dict:
        start = time.perf_counter()
        source = audio.load(state["input_path"])
        out = audio.get(f"out:{state['outputs']['audio']}")
        ex = executor.Execution(out.samples, {k: np.asarray(v) for k, v in state["facts"]["stage_curves"].items()},
                                {}, np.asarray(state["facts"]["applied_db"]), state["facts"]["tools"])
        measurements, checks = executor.check(ex, source.samples, source.sample_rate,
                                               state["plan"][-1]["args"]["ceiling_dbtp"])
        return {"measurements": measurements, "checks": checks, "timings_s": _timed(state, "check", start)}

    def respond_node(state: SenseState) -> dict:
        start = time.perf_counter()
        turns = (state.get("turns") or 0) + 1
        if state.get("status") != "processed":
            return {"turns": turns, "timings_s": _timed(state, "respond", start)}
        facts = state["facts"]
        stage_curves = {k: np.asarray(v) for k, v in facts["stage_curves"].items()}
        reasoning = explain(state["settings"], state["plan"], facts["tools"], stage_curves,
                            state["measurements"], state["checks"])
        source = audio.load(state["input_path"])
        out = audio.get(f"out:{state['outputs']['audio']}")
        outputs.write_plot(
            Path(state["outputs"]["plot"]), fr_curves={k: np.asarray(v) for k, v in facts["fr_curves"].items()},
            stage_curves=stage_curves, applied_db=np.asarray(facts["applied_db"]),
            spectrum_before=long_term_spectrum(source.samples, source.sample_rate),
            spectrum_after=long_term_spectrum(out.samples, out.sample_rate),
            title=f"SENSE: \"{state['request']}\"")
        settings = state["settings"]
        params = {"target": settings["target"]["name"] if settings["target"] else None,
                  "listening": settings["listening"]["name"] if settings["listening"] else None,
                  "adjustments": [{k: a[k] for k in ("descriptor", "direction", "amount")} for a in settings["adjustments"]],
                  "band_edits": [{k: e[k] for k in ("label", "gain_db")} for e in settings.get("band_edits", [])],
                  "stems": {stem: {"gain_db": st["gain_db"], "mute": st["mute"], "solo": st["solo"],
                                   "adjustments": [{k: a[k] for k in ("descriptor", "direction", "amount")}
                                                   for a in st["adjustments"]]}
                            for stem, st in settings.get("stems", {}).items()}}
        request = state["request"]
        if state["understanding"]["intent"]["action"] == "follow_up":  # "a bit more" alone is no request to match later
            request = f"{settings['request']} → {request}"
        record_id = rt.prefs.add(state["user"], request, state["understanding"]["intent"], state["plan"], params)
        timings = _timed(state, "respond", start)
        trace = outputs.trace(state, reasoning, record_id, timings, rt.store)
        outputs.write_json(Path(state["outputs"]["trace"]), trace)
        last = {"input": state["input_path"], "audio": state["outputs"]["audio"],
                "lufs_in": state["measurements"]["lufs_in"], "lufs_out": state["measurements"]["lufs_out"]}
        return {"reply": reasoning, "record_id": record_id, "last_result": last, "turns": turns, "timings_s": timings}

    graph = StateGraph(SenseState)
    for name, fn in [("understand", understand_node), ("retrieve", retrieve_node), ("plan", plan_node),
                     ("no_audio", no_audio_node), ("act", act_node), ("check", check_node), ("respond", respond_node)]:
        graph.add_node(name, fn)
    graph.add_edge(START, "understand")
    graph.add_edge("understand", "retrieve")
    graph.add_conditional_edges("retrieve", route_after_retrieve, ["plan", "no_audio", "respond"])
    graph.add_edge("no_audio", "respond")
    graph.add_edge("plan", "act")
    graph.add_edge("act", "check")
    graph.add_edge("check", "respond")
    graph.add_edge("respond", END)
    return graph.compile(checkpointer=checkpointer or InMemorySaver())
