"""Crashes and faults: SIGKILL during preference writes, a full disk, an --llm-url server that fails, one planner
server shared by several app processes.

The full kill run is ``python -m eval.killtest --rounds 300``; here a 10-round slice.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from agent.llm import LLMError, OpenAICompatBackend
from agent.schemas import intent_json_schema
from agent.understand import understand
from eval import killtest

ROOT = Path(__file__).resolve().parents[2]
#: The deadline the fault tests give the backend, and the slack allowed on top (thread start, the rule parser).
DEADLINE_S, SLACK_S = 2.0, 1.5
#: Not on the fast path (the rule parser cannot explain every word), so the planner is asked; the rules read
#: "less harsh" when it fails.
REQUEST = "could you make this feel a bit less harsh on the ears, like an old radio in a kitchen"
_WARM = {"action": "process", "target_device": None, "listening_device": None,
         "adjustments": [{"descriptor": "harsh", "direction": "less", "amount": None}], "follow_up": "none"}


# --- kill -9 during preference writes --------------------------------------------------------------------------


def test_kill_rounds_leave_the_store_intact_and_lose_no_committed_row(tmp_path):
    report = killtest.run(10, tmp_path, max_delay_s=0.25, seed=16)
    assert report.failures == []
    assert (report.integrity_errors, report.lost_rows, report.broken) == (0, 0, 0)
    assert report.acked_rows > 10  # the writers did commit (and were killed while writing)
    assert report.rows_committed >= report.acked_rows + 10  # + one row per check: the store still takes writes


def test_killtest_detects_a_lost_row(tmp_path):
    """The checker is not vacuous: a committed row deleted behind its back is reported as lost."""
    import sqlite3

    checker = killtest.Checker()
    path = tmp_path / "p.sqlite"
    checker.check(path, 0)  # creates the file with the checker's own row
    conn = sqlite3.connect(path)
    checker.acked[1] = (-1, 0)
    conn.execute("DELETE FROM records WHERE id = 1")
    conn.commit()
    conn.close()
    result = checker.check(path, 1)
    assert result.integrity == "ok" and result.lost == ["record 1 (round -1, n 0) missing"]


# --- a full disk -------------------------------------------------------------------------------------------------


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _music_folder(tmp_path: Path, excerpt: Path) -> tuple[Path, Path]:
    """A folder with a real track and an earlier result of it (``track-sense.wav/.json/.png``)."""
    folder = tmp_path / "music"
    folder.mkdir()
    track = folder / "track.wav"
    shutil.copyfile(excerpt, track)
    for suffix, data in ((".wav", b"RIFF earlier result"), (".json", b'{"earlier": true}'), (".png", b"\x89PNG earlier")):
        (folder / f"track-sense{suffix}").write_bytes(data)
    return folder, track


def _sense_run(track: Path, *args: str, preexec=None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sense_cli", "run", str(track), *args], cwd=ROOT, env=os.environ.copy(),
                          capture_output=True, text=True, timeout=timeout, preexec_fn=preexec)


def _assert_one_clear_error(proc: subprocess.CompletedProcess, pattern: str) -> None:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and re.search(pattern, errors[0], re.I), proc.stderr


def _file_size_limit(limit: int):
    def limit_writes() -> None:  # in the child: writes past `limit` bytes fail with EFBIG instead of killing it
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return limit_writes


def test_file_size_limit_gives_one_clear_error_and_touches_nothing(tmp_path, excerpt, rt_rules):
    """RLIMIT_FSIZE (no root needed): the 24-bit result (~5 MB) cannot be written past 1 MB."""
    folder, track = _music_folder(tmp_path, excerpt)  # rt_rules: SENSE_HOME's index caches exist before the limit
    before = _digests(folder)
    proc = _sense_run(track, "-r", "less harsh", "--no-llm", preexec=_file_size_limit(1 << 20))
    _assert_one_clear_error(proc, r"(no space|too large|full).*track-sense-1\.wav|track-sense-1\.wav.*(no space|too large|full)")
    assert _digests(folder) == before  # input and earlier outputs unchanged, no partial or temp file


def test_full_tmpfs_gives_one_clear_error_and_touches_nothing(tmp_path, excerpt, rt_rules):
    """A real full file system: a tmpfs 1 MB larger than its contents (needs root to mount; skipped otherwise)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "small"
    mount.mkdir()
    size_kb = excerpt.stat().st_size // 1024 + 1024
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        folder, track = _music_folder(mount, excerpt)
        before = _digests(folder)
        proc = _sense_run(track, "-r", "less harsh", "--no-llm")
        _assert_one_clear_error(proc, r"no space")
        assert _digests(folder) == before
    finally:
        subprocess.run(["umount", str(mount)], check=True)


# --- an --llm-url server that fails ------------------------------------------------------------------------------


def _chat_body(content: str) -> bytes:
    return json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()


class _Fault(BaseHTTPRequestHandler):
    """Answers /v1/chat/completions the way ``server.fault`` says."""

    def do_POST(self):  # noqa: N802 (http.server's name)
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        fault, stop = self.server.fault, self.server.stop
        if fault == "json-object-only":  # llama_cpp.server 0.3: response_format type must be text | json_object
            self.server.formats.append(request["response_format"]["type"])
            ok = request["response_format"] == {"type": "json_object", "schema": intent_json_schema()}
            body = _chat_body(json.dumps(_WARM)) if ok else b'{"error": {"message": "response_format.type: Input ' \
                b'should be \'text\' or \'json_object\'"}}'
            self._head(200 if ok else 500, "application/json", len(body))
            self.wfile.write(body)
            return
        if fault == "hang":
            stop.wait(60)
            return
        if fault == "trickle":  # a byte a second of a valid reply: never a read timeout, never done in time
            body = _chat_body('{"action": "process"}')
            self._head(200, "application/json", len(body))
            for byte in body:
                if stop.wait(1.0):
                    return
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
            return
        status, kind, body = {
            "html": (200, "text/html", b"<html><body><h1>502 Bad Gateway</h1></body></html>"),
            "invalid-json": (200, "application/json", b'{"choices": [{"message": {"content": "{\\"act'),
            "500": (500, "application/json", b'{"error": "model crashed"}'),
            "huge": (200, "application/json", _chat_body("x" * (8 << 20))),
            "not-an-intent": (200, "application/json", _chat_body("Sure! I'd make it warmer. <b>Enjoy</b>")),
        }[fault]
        self._head(status, kind, len(body))
        self.wfile.write(body)

    def _head(self, status: int, kind: str, length: int) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(length))
        self.end_headers()

    def log_message(self, *args):
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # the client hung up on a hanging/huge reply: expected
        pass


@pytest.fixture()
def fault_server():
    """``start(fault) -> base URL`` of a loopback server with that fault; all stopped at the end."""
    servers = []

    def start(fault: str) -> str:
        httpd = _Server(("127.0.0.1", 0), _Fault)
        httpd.fault, httpd.stop, httpd.formats = fault, threading.Event(), []
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}"

    yield start, servers
    for httpd in servers:
        httpd.stop.set()
        httpd.shutdown()
        httpd.server_close()


def _closed_port_url() -> str:
    with socket.socket() as s:  # a free loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


FAULTS = ["refuse", "hang", "trickle", "html", "invalid-json", "500", "huge", "not-an-intent"]


@pytest.mark.parametrize("fault", FAULTS)
def test_failing_server_falls_back_to_the_rules_in_bounded_time(fault, fault_server):
    url = _closed_port_url() if fault == "refuse" else fault_server[0](fault)
    backend = OpenAICompatBackend(url, timeout_s=DEADLINE_S)
    start = time.perf_counter()
    u = understand(REQUEST, backend)
    seconds = time.perf_counter() - start
    budget = (2 if fault == "not-an-intent" else 1) * DEADLINE_S + SLACK_S  # a reply that is no intent gets one repair
    assert seconds <= budget, f"{fault}: {seconds:.1f} s"
    assert u.path == "rules" and [(a.descriptor, a.direction) for a in u.intent.adjustments] == [("harsh", "less")]
    assert u.fallback is not None and u.fallback.startswith("The planner was unavailable")
    assert "rule-based parser" in u.fallback and "\n" not in u.fallback


@pytest.mark.parametrize("fault", ["hang", "trickle"])
def test_slow_server_meets_the_deadline_exactly_once_then_is_skipped(fault, fault_server):
    backend = OpenAICompatBackend(fault_server[0](fault), timeout_s=DEADLINE_S)
    start = time.perf_counter()
    with pytest.raises(LLMError, match=rf"no complete reply within {DEADLINE_S:g} s"):
        backend.complete_json([{"role": "user", "content": "hi"}], {})
    first = time.perf_counter() - start
    assert DEADLINE_S - 0.1 <= first <= DEADLINE_S + 0.5
    start = time.perf_counter()
    with pytest.raises(LLMError, match="not retried"):  # the next turn does not wait again
        backend.complete_json([{"role": "user", "content": "hi"}], {})
    assert time.perf_counter() - start < 0.1


def test_server_that_takes_only_json_object_gets_the_schema_that_way(fault_server):
    """llama_cpp.server refuses OpenAI's json_schema form: the schema goes as json_object + schema, once asked."""
    start, servers = fault_server
    backend = OpenAICompatBackend(start("json-object-only"), timeout_s=DEADLINE_S)
    first, second = understand(REQUEST, backend), understand(REQUEST, backend)
    assert first.path == second.path == "llm" and first.fallback is None
    assert servers[0].formats == ["json_schema", "json_object", "json_object"]


def test_timeout_is_configurable(monkeypatch):
    monkeypatch.setenv("SENSE_LLM_TIMEOUT", "7.5")
    assert OpenAICompatBackend("http://127.0.0.1:9").timeout_s == 7.5
    monkeypatch.setenv("SENSE_LLM_TIMEOUT", "soon")
    with pytest.raises(LLMError, match="SENSE_LLM_TIMEOUT"):
        OpenAICompatBackend("http://127.0.0.1:9")
    monkeypatch.delenv("SENSE_LLM_TIMEOUT")
    assert OpenAICompatBackend("http://127.0.0.1:9").timeout_s == 20.0


def test_engine_turn_through_a_hanging_server_says_the_rules_were_used(tmp_path, excerpt, rt_rules, fault_server):
    """A whole turn (understand → … → respond, files written) with the planner at a server that never answers."""
    from agent.engine import Engine

    engine = Engine(replace(rt_rules, llm=OpenAICompatBackend(fault_server[0]("hang"), timeout_s=DEADLINE_S)))
    start = time.perf_counter()
    outcome = engine.turn("t", REQUEST, excerpt, output_path=tmp_path / "out.wav")
    understanding_s = outcome.timings_s["understand"]
    assert time.perf_counter() - start > understanding_s >= DEADLINE_S - 0.1
    assert understanding_s <= DEADLINE_S + SLACK_S
    assert outcome.status == "processed" and outcome.understood.path == "rules"
    lines = outcome.reply.split("\n")
    assert "harsh" in lines[0].lower()
    assert lines[1].startswith("The planner was unavailable (LLM server") and "rule-based parser" in lines[1]
    trace = json.loads(Path(outcome.outputs["trace"]).read_text())
    assert trace["intent_path"] == "rules" and trace["reasoning"] == outcome.reply
    assert any(n.startswith("LLM unavailable: ") and "no complete reply" in n for n in trace["llm_notes"])


def test_question_through_a_refusing_server_says_the_planner_was_unavailable(excerpt, rt_rules):
    """A question the closed vocabulary cannot read needs the LLM's tool choice: the reply says it was down."""
    from agent.engine import Engine

    engine = Engine(replace(rt_rules, llm=OpenAICompatBackend(_closed_port_url(), timeout_s=DEADLINE_S)))
    outcome = engine.turn("q", "how do open-back cans from Sennheiser usually compare for soundstage?", excerpt)
    assert outcome.status == "answer" and outcome.understood.path == "rules" and not outcome.outputs
    lines = outcome.reply.split("\n")
    assert len(lines) == 2 and lines[1].startswith("The planner was unavailable (LLM server")
    assert "Connection refused" in lines[1]


# --- one planner server shared by several app processes ----------------------------------------------------------


def _wait_for_server(url: str, proc: subprocess.Popen, log: Path, seconds: float) -> None:
    import httpx

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if proc.poll() is not None:
            pytest.fail(f"llama_cpp.server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/v1/models", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.5)
    pytest.fail(f"llama_cpp.server did not answer within {seconds:.0f} s")


@pytest.fixture(scope="module")
def planner_server(tmp_path_factory):
    """``python -m llama_cpp.server`` with the 0.5B planner on a free loopback port (OpenAI-compatible)."""
    pytest.importorskip("llama_cpp.server.app", reason="needs llama-cpp-python[server]")
    from agent.models import ModelMissingError, model_path

    try:
        model = model_path("qwen2.5-coder-0.5b")
    except ModelMissingError as exc:
        pytest.skip(str(exc))
    url = _closed_port_url()
    port = url.rsplit(":", 1)[1]
    log = tmp_path_factory.mktemp("planner") / "server.log"  # llama.cpp logs ~200 kB: a pipe would fill and block
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
                                 "--port", port, "--n_threads", "2", "--n_ctx", "4096"], stdout=out, stderr=out)
    try:
        _wait_for_server(url, proc, log, 180)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.mark.slow
def test_one_planner_server_serves_two_app_processes(tmp_path, excerpt, planner_server, rt_rules):
    """Two separate ``sense run --llm-url`` processes at once against one llama_cpp.server: both understood by it."""
    env = {**os.environ, "SENSE_LLM_TIMEOUT": "120"}
    runs = []
    for i in range(2):
        out = tmp_path / f"app{i}" / "out.wav"
        runs.append((out, subprocess.Popen(
            [sys.executable, "-m", "sense_cli", "run", str(excerpt), "-r", REQUEST, "--llm-url", planner_server,
             "--output", str(out)], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
    for out, proc in runs:
        stdout, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, stderr[-2000:]
        trace = json.loads(out.with_suffix(".json").read_text())
        assert trace["llm"] == f"openai-compatible:{planner_server}"
        assert trace["intent_path"] in ("llm", "llm-repair"), trace["llm_notes"]
        assert "planner was unavailable" not in stdout
        assert any(a["descriptor"] == "harsh" and a["direction"] == "less" for a in trace["intent"]["adjustments"])
