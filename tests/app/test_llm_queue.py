"""The planner queue: one completion at a time, in arrival order, with each waiter's position reported."""

from __future__ import annotations

import threading
import time

from agent.llm import LLMError
from agent.llm_queue import PlannerQueue, queued


class SlowBackend:
    """A fake backend: holds the first completion until released, then takes ``seconds`` per completion and
    records which requests overlapped."""

    name = "fake:slow"
    load_seconds = 0.0

    def __init__(self, seconds: float = 0.02, fail_on: str | None = None):
        self.seconds = seconds
        self.fail_on = fail_on
        self.release = threading.Event()
        self.order: list[str] = []
        self.running = 0
        self.most_running = 0
        self._lock = threading.Lock()

    def complete_json(self, messages, schema, max_tokens=200):
        with self._lock:
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        try:
            self.release.wait(10)
            time.sleep(self.seconds)
            text = messages[-1]["content"]
            self.order.append(text)
            if text == self.fail_on:
                raise LLMError("the fake model failed")
            return '{"ok": true}'
        finally:
            with self._lock:
                self.running -= 1


def _start_in_order(queue: PlannerQueue, names: list[str], reports: dict, errors: dict) -> list[threading.Thread]:
    """One thread per name, each started only once the previous one is in the queue (a known arrival order)."""
    threads = []
    for k, name in enumerate(names):
        reports[name] = []

        def ask(name=name):
            with queue.watch(reports[name].append):
                try:
                    queue.complete_json([{"role": "user", "content": name}], {})
                except LLMError as exc:
                    errors[name] = str(exc)

        thread = threading.Thread(target=ask)
        thread.start()
        threads.append(thread)
        deadline = time.time() + 5
        while queue.pending < k + 1 and time.time() < deadline:
            time.sleep(0.002)
    return threads


def test_one_at_a_time_in_arrival_order_with_positions():
    backend = SlowBackend()
    queue = PlannerQueue(backend)
    names = ["a", "b", "c", "d", "e"]
    reports: dict[str, list[int]] = {}
    threads = _start_in_order(queue, names, reports, {})
    assert queue.pending == 5  # a runs (held), b…e wait
    backend.release.set()
    for thread in threads:
        thread.join(10)
    assert backend.order == names  # FIFO
    assert backend.most_running == 1  # never two completions at once
    assert reports["a"] == []  # found the queue empty: nothing to report
    for k, name in enumerate(names[1:], start=1):
        assert reports[name] == list(range(k, -1, -1)), name  # k ahead, counting down to 0 (its turn)
    assert queue.stats.completions == 5 and queue.stats.max_pending == 5
    waits = queue.stats.waits_s
    assert all(later >= earlier - 0.005 for earlier, later in zip(waits[1:], waits[2:]))  # later arrivals wait longer
    assert queue.pending == 0 and queue.ahead() is None


def test_a_failed_completion_lets_the_next_run():
    backend = SlowBackend(fail_on="b")
    queue = PlannerQueue(backend)
    errors: dict[str, str] = {}
    threads = _start_in_order(queue, ["a", "b", "c"], {}, errors)
    backend.release.set()
    for thread in threads:
        thread.join(10)
    assert backend.order == ["a", "b", "c"] and list(errors) == ["b"]
    assert queue.pending == 0 and queue.stats.completions == 3


def test_queued_wraps_once_per_backend():
    backend = SlowBackend()
    backend.release.set()
    queue = queued(backend)
    assert isinstance(queue, PlannerQueue) and queued(backend) is queue and queued(queue) is queue
    assert queued(None) is None
    assert queue.name == "fake:slow" and queue.complete_json([{"role": "user", "content": "x"}], {}) == '{"ok": true}'


def test_ahead_inside_a_completion_is_zero():
    seen = []

    class Probe(SlowBackend):
        def complete_json(self, messages, schema, max_tokens=200):
            seen.append(queue.ahead())
            return "{}"

    queue = PlannerQueue(Probe())
    queue.complete_json([{"role": "user", "content": "x"}], {})
    assert seen == [0] and queue.ahead() is None
