"""One planner completion at a time: a first-come-first-served queue in front of an LLM backend.

llama.cpp already uses every core for one completion; two completions at once (two web sessions
asking the planner together) only make both slower and double the memory traffic. :class:`PlannerQueue`
wraps any :class:`agent.llm.LLMBackend` so the threads of one process take turns in arrival order,
and tells a waiting caller how many requests are ahead of it (the web UI shows "waiting for the
planner: n ahead" in its progress).

    llm = PlannerQueue(load_backend())
    with llm.watch(lambda ahead: print(f"{ahead} ahead")):
        text = llm.complete_json(messages, schema)

It serialises completions inside one process only; separate processes (a CLI next to the web app)
each have their own model and their own queue.
"""

from __future__ import annotations

import itertools
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from agent.llm import LLMBackend

#: ``report(ahead)``: called in the waiting thread when the number of requests ahead of it changes.
PositionReport = Callable[[int], None]


@dataclass
class QueueStats:
    """What the queue has seen since it was made.

    Attributes:
        completions: completions finished (successfully or not).
        max_pending: the most requests in the queue at once (the running one included).
        waits_s: for each completion, seconds between arrival and the start of its completion.
        busy_s: seconds a completion was running, summed.
    """

    completions: int = 0
    max_pending: int = 0
    waits_s: list[float] = field(default_factory=list)
    busy_s: float = 0.0


class PlannerQueue:
    """An :class:`~agent.llm.LLMBackend` that runs one completion at a time across threads, in arrival order.

    Args:
        backend: the real backend (llama.cpp or an OpenAI-compatible server).
    Attributes:
        name, load_seconds: those of ``backend`` (so traces and benchmarks read the same).
        stats: a :class:`QueueStats`.
    """

    def __init__(self, backend: LLMBackend):
        self.backend = backend
        self.name = backend.name
        self.load_seconds = backend.load_seconds
        self.stats = QueueStats()
        self._cond = threading.Condition()
        self._line: deque[int] = deque()  # tickets in arrival order; the first one is running
        self._tickets = itertools.count()
        self._local = threading.local()

    def __getattr__(self, name: str):
        """Anything else (e.g. a backend's own options) is the wrapped backend's."""
        if name == "backend":  # not yet set: avoid recursion while unpickling or half-built
            raise AttributeError(name)
        return getattr(self.backend, name)

    @property
    def pending(self) -> int:
        """Requests in the queue now: the running one and those waiting."""
        with self._cond:
            return len(self._line)

    def ahead(self) -> int | None:
        """How many requests are ahead of the calling thread's (0: it is running), or None when it has none."""
        ticket = getattr(self._local, "ticket", None)
        with self._cond:
            return self._line.index(ticket) if ticket in self._line else None

    @contextmanager
    def watch(self, report: PositionReport) -> Iterator[None]:
        """Within the block, ``report(ahead)`` is called in this thread whenever its request waits: with the
        number ahead each time it changes, and with 0 when its completion starts after a wait.
        A request that finds the queue empty reports nothing."""
        previous = getattr(self._local, "report", None)
        self._local.report = report
        try:
            yield
        finally:
            self._local.report = previous

    def complete_json(self, messages: list[dict], schema: dict, max_tokens: int = 200) -> str:
        """The backend's :meth:`~agent.llm.LLMBackend.complete_json`, after every request that arrived earlier.

        Raises:
            Whatever the backend raises (:class:`agent.llm.LLMError`); the next request then runs.
        """
        arrived = time.perf_counter()
        with self._cond:
            ticket = next(self._tickets)
            self._line.append(ticket)
            self.stats.max_pending = max(self.stats.max_pending, len(self._line))
        self._local.ticket = ticket
        try:
            self._wait_for_turn(ticket)
            started = time.perf_counter()
            try:
                return self.backend.complete_json(messages, schema, max_tokens)
            finally:
                self._record(arrived, started)
        finally:
            with self._cond:
                self._line.remove(ticket)
                self._cond.notify_all()
            self._local.ticket = None

    def _wait_for_turn(self, ticket: int) -> None:
        """Block until ``ticket`` heads the line, reporting its position (outside the lock) as it moves."""
        report: PositionReport | None = getattr(self._local, "report", None)
        last: int | None = None
        while True:
            with self._cond:
                ahead = self._line.index(ticket)
                if ahead == last:
                    self._cond.wait()
                    continue
            if report is not None and (ahead > 0 or last is not None):
                report(ahead)
            if ahead == 0:
                return
            last = ahead

    def _record(self, arrived: float, started: float) -> None:
        with self._cond:
            self.stats.completions += 1
            self.stats.waits_s.append(started - arrived)
            self.stats.busy_s += time.perf_counter() - started


_QUEUES: "weakref.WeakKeyDictionary[LLMBackend, PlannerQueue]" = weakref.WeakKeyDictionary()
_QUEUES_LOCK = threading.Lock()


def queued(backend: LLMBackend | None) -> LLMBackend | None:
    """``backend`` behind its :class:`PlannerQueue`: one queue per backend object (the model is loaded once
    per process, so every runtime that shares it shares the queue); None stays None; a queue is returned as is."""
    if backend is None or isinstance(backend, PlannerQueue):
        return backend
    with _QUEUES_LOCK:
        queue = _QUEUES.get(backend)
        if queue is None:
            queue = _QUEUES[backend] = PlannerQueue(backend)
        return queue
