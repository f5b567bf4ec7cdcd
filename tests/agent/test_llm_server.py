"""The OpenAI-compatible backend against a local HTTP server (loopback only)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from agent.llm import LLMError, OpenAICompatBackend
from agent.schemas import intent_json_schema
from agent.understand import understand

REPLY = {"action": "process", "target_device": None, "listening_device": None,
         "adjustments": [{"descriptor": "warm", "direction": "more", "amount": None}], "follow_up": "none"}


@pytest.fixture()
def server():
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append((self.path, self.headers.get("Authorization"), body))
            data = json.dumps({"choices": [{"message": {"role": "assistant", "content": json.dumps(REPLY)}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    httpd.shutdown()


def test_server_gets_schema_and_reply_is_used(server):
    url, seen = server
    u = understand("make it warmer", OpenAICompatBackend(url, api_key="k"))
    assert u.path == "llm" and u.intent.adjustments[0].descriptor == "warm"
    path, auth, body = seen[0]
    assert path == "/v1/chat/completions" and auth == "Bearer k"
    assert body["response_format"]["json_schema"]["schema"] == intent_json_schema()
    assert body["messages"][-1] == {"role": "user", "content": "make it warmer"}


def test_unreachable_server_raises_llm_error_and_rules_take_over():
    import socket

    with socket.socket() as s:  # a free loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    backend = OpenAICompatBackend(f"http://127.0.0.1:{port}", timeout_s=2)
    with pytest.raises(LLMError):
        backend.complete_json([{"role": "user", "content": "hi"}], {})
    u = understand("less harsh", backend)
    assert u.path == "rules" and u.intent.adjustments[0].direction == "less"
