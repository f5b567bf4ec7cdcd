"""LLM backends behind one interface: local llama.cpp (default) or an OpenAI-compatible server.

Both return the raw text of one chat completion constrained by a JSON schema; parsing and
validation happen in :mod:`agent.understand`.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import threading
import time
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import httpx
import numpy as np

from agent.json_prefix import JsonPrefix, SchemaNotSupported
from agent.jump_forward import JumpForwardDecoder
from tools.atomic import replace_file
from tools.errors import SenseError, one_line


if TYPE_CHECKING:
    from llama_cpp.llama import LlamaState

_IN_MEMORY = Path("<memory>")  # the key folder of states not written to disk
KEEP_PREFIXES = 4  # saved prompt-prefix states kept, in memory and in the state folder


class LLMError(SenseError, RuntimeError):
    """The LLM backend could not be reached or loaded (one-line message)."""


class LLMBackend(Protocol):
    """A chat model that answers with JSON following a schema."""

    name: str
    load_seconds: float

    def complete_json(self, messages: list[dict], schema: dict, max_tokens: int = 200) -> str:
        """Return the model's reply text for ``messages`` (OpenAI chat format), constrained by ``schema``."""


class LlamaCppBackend:
    """A local GGUF model through llama-cpp-python, with grammar-constrained JSON output.

    Args:
        model_path: path of a GGUF file (e.g. from :func:`agent.models.model_path`).
        n_ctx: context window, tokens.
        n_threads: CPU threads (default: all cores).
        seed: sampling seed; decoding is greedy (temperature 0) so results repeat.
        state_dir: where to keep the KV state of the fixed prompt prefix (system text + worked
            examples) after the first request, keyed by model, context size, llama-cpp version and
            the prefix itself; switching between prompts (planner, question tools) or a later process
            restores it instead of evaluating ~800 tokens again. The 4 latest are kept. None: keep
            states in memory only.
        jump_forward: decode schemas :class:`agent.json_prefix.JsonPrefix` follows with
            :class:`agent.jump_forward.JumpForwardDecoder` (the model is asked only where the schema
            leaves a choice; ~2x faster on planner replies, same replies); False, or another schema: llama.cpp's
            grammar sampler.
    Raises:
        LLMError: if the file cannot be loaded.
    Source: llama-cpp-python ``Llama.create_chat_completion(response_format={"type": "json_object", "schema": ...})``.
    """

    def __init__(self, model_path: Path, n_ctx: int = 4096, n_threads: int | None = None, seed: int = 0,
                 state_dir: Path | None = None, jump_forward: bool = True):
        from llama_cpp import Llama

        self.name = f"llama.cpp:{Path(model_path).name}"
        start = time.perf_counter()
        try:
            self._llm = Llama(
                model_path=str(model_path),
                n_ctx=n_ctx,
                n_threads=n_threads or os.cpu_count(),
                seed=seed,
                verbose=False,
            )
        except (ValueError, OSError) as exc:
            raise LLMError(f"cannot load {model_path}: {exc}") from exc
        self.load_seconds = time.perf_counter() - start
        self._state_dir = state_dir
        self._model_size = Path(model_path).stat().st_size
        self._states: dict[Path, LlamaState] = {}  # prompt prefix -> KV state, oldest first
        self._prefix: Path | None = None  # the prefix whose state the model holds now
        self.jump_forward = jump_forward
        self._prefixes: dict[str, JsonPrefix | None] = {}  # schema (as JSON) -> its prefix follower
        self._jump: JumpForwardDecoder | None = None

    def _state_path(self, messages: list[dict]) -> Path:
        """File of the saved KV state for this model and this fixed prompt prefix (all but the last message)."""
        import llama_cpp

        key = json.dumps([self.name, self._model_size, self._llm.n_ctx(), llama_cpp.__version__, messages[:-1]],
                         sort_keys=True)
        return (self._state_dir or _IN_MEMORY) / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.npz"

    def _read_state(self, path: Path) -> "LlamaState | None":
        """A saved KV state from disk, or None when missing, stale or broken (then deleted)."""
        from llama_cpp.llama import LlamaState

        if not path.is_file():
            return None
        try:
            with np.load(path) as saved:
                n_tokens = int(saved["n_tokens"])
                return self._compact(LlamaState(
                    input_ids=saved["input_ids"][:n_tokens], scores=np.zeros((1, 1), np.single), n_tokens=n_tokens,
                    llama_state=saved["llama_state"].tobytes(), llama_state_size=int(saved["llama_state"].size),
                    seed=int(saved["seed"])))
        except (OSError, KeyError, ValueError):
            path.unlink(missing_ok=True)
            return None

    def _compact(self, state: "LlamaState") -> "LlamaState":
        """The state without its logits (~300 MB, not needed to continue a prompt), token buffer of n_ctx.

        Llama.load_state adopts input_ids as its token buffer, which must hold n_ctx tokens: a buffer of
        only the saved tokens made every later, longer prompt fail with "could not broadcast input array
        from shape (N,) into shape (0,)".
        """
        from llama_cpp.llama import LlamaState

        input_ids = np.zeros(self._llm.n_ctx(), dtype=np.intc)
        input_ids[: state.n_tokens] = state.input_ids[: state.n_tokens]
        return LlamaState(input_ids=input_ids, scores=np.zeros((1, self._llm.n_vocab()), np.single),
                          n_tokens=state.n_tokens, llama_state=state.llama_state,
                          llama_state_size=state.llama_state_size, seed=state.seed)

    def _switch_prefix(self, path: Path | None) -> None:
        """Load the KV state of this prompt prefix unless it is the one evaluated last.

        The planner and the question tools use different fixed prefixes; without a state per prefix,
        each switch evaluates ~800 tokens again (~20 s on 2 cores).
        """
        if path is None or path == self._prefix:
            return
        state = self._states.get(path) or self._read_state(path)
        if state is None:
            return
        try:
            self._llm.load_state(state)
            self._states[path] = state
        except (ValueError, RuntimeError):
            self._states.pop(path, None)
            path.unlink(missing_ok=True)  # stale or broken: evaluate the prefix as usual

    def _keep_prefix(self, path: Path) -> None:
        """Keep the state after a completion (input ids + llama.cpp state) in memory and on disk."""
        state = self._compact(self._llm.save_state())
        self._states[path] = state
        while len(self._states) > KEEP_PREFIXES:
            self._states.pop(next(iter(self._states)))
        if self._state_dir is None or path.is_file():
            return

        def write(tmp: Path) -> None:
            with tmp.open("wb") as f:
                np.savez(f, input_ids=state.input_ids[: state.n_tokens], n_tokens=state.n_tokens, seed=state.seed,
                         llama_state=np.frombuffer(state.llama_state, dtype=np.uint8))

        replace_file(path, write)
        for old in sorted(path.parent.glob("*.npz"), key=lambda p: p.stat().st_mtime)[:-KEEP_PREFIXES]:
            old.unlink(missing_ok=True)  # prompts that changed since

    def complete_json(self, messages: list[dict], schema: dict, max_tokens: int = 200) -> str:
        state_path = self._state_path(messages)
        self._switch_prefix(state_path)
        prefix = self._json_prefix(schema)
        try:
            if prefix is not None:
                text = self._decoder().complete(messages, prefix, max_tokens)
            else:
                out = self._llm.create_chat_completion(
                    messages=messages,
                    response_format={"type": "json_object", "schema": schema},
                    temperature=0.0,
                    max_tokens=max_tokens,
                )
                text = out["choices"][0]["message"]["content"] or ""
        except (ValueError, RuntimeError, IndexError) as exc:  # llama.cpp failed inside: the caller falls back
            self._llm.reset()
            self._prefix = None
            raise LLMError(f"llama.cpp failed on this prompt: {exc}") from exc
        if state_path is not None and state_path not in self._states:
            self._keep_prefix(state_path)
        self._prefix = state_path
        return text

    def _json_prefix(self, schema: dict) -> JsonPrefix | None:
        """The schema's prefix follower for jump-forward decoding, or None (llama.cpp's grammar decodes it)."""
        if not self.jump_forward:
            return None
        key = json.dumps(schema, sort_keys=True)
        if key not in self._prefixes:
            try:
                self._prefixes[key] = JsonPrefix(schema)
            except SchemaNotSupported:
                self._prefixes[key] = None
        return self._prefixes[key]

    def _decoder(self) -> JumpForwardDecoder:
        if self._jump is None:
            self._jump = JumpForwardDecoder(self._llm)
        return self._jump


#: Seconds one request to an ``--llm-url`` server may take in all (connect, wait, the whole body), unless
#: ``SENSE_LLM_TIMEOUT`` or ``timeout_s`` says otherwise. A small planner on a CPU server answers in 1–10 s.
DEFAULT_TIMEOUT_S = 20.0
#: After a failed request the server is skipped (rules at once) for this long, so a turn that needs the
#: LLM twice (understanding, then a question's tool choice) or a chat session waits once, not every time.
RETRY_AFTER_S = 30.0
#: A chat completion of a few hundred tokens is a few kB; a longer body is not a planner's reply.
MAX_REPLY_BYTES = 1 << 20


def _timeout_from_env() -> float:
    """``SENSE_LLM_TIMEOUT`` as seconds (> 0), else :data:`DEFAULT_TIMEOUT_S`.

    Raises:
        LLMError: the variable is set but is not a positive number.
    """
    text = os.environ.get("SENSE_LLM_TIMEOUT", "").strip()
    if not text:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise LLMError(f"SENSE_LLM_TIMEOUT={text!r} is not a positive number of seconds")
    return value


class _FormatRejected(LLMError):
    """The server refused the request's ``response_format`` (it knows another form)."""


def _reply_text(status: int, content_type: str, data: bytes) -> str:
    """The message text of an OpenAI chat-completion body.

    Raises:
        LLMError: a non-2xx status, a body that is not JSON, or JSON without ``choices[0].message.content``
            (:class:`_FormatRejected` when an error names ``response_format``).
    """
    start = " ".join(data[:60].decode("utf-8", "replace").split())
    if not 200 <= status < 300:
        rejected = status in (400, 422, 500) and b"response_format" in data[:4000]
        raise (_FormatRejected if rejected else LLMError)(f"HTTP {status}: {start!r}")
    try:
        content = json.loads(data)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise LLMError(f"the reply is not a chat completion ({content_type or 'no content type'}): {start!r}") from None
    if content is not None and not isinstance(content, str):
        raise LLMError(f"the reply's message content is {type(content).__name__}, not text")
    return content or ""


class OpenAICompatBackend:
    """Any OpenAI-compatible chat server (llama.cpp server, vLLM, Ollama, LM Studio …).

    Every request has one total deadline (``timeout_s``: connecting, waiting for the reply and reading all
    of it, however slowly the bytes trickle in); a server that refuses, hangs, trickles, answers with an
    error status or with something that is not a chat completion (HTML, broken JSON, more than
    :data:`MAX_REPLY_BYTES`) raises :class:`LLMError` within that time, and the callers fall back to the
    rule-based parser. After a failure the server is skipped for ``retry_after_s`` (an immediate LLMError).

    The schema goes as OpenAI's ``response_format: {type: json_schema, json_schema: {schema}}``; a server that
    refuses that form (llama-cpp-python's ``llama_cpp.server`` 0.3 takes only ``text`` | ``json_object``) gets
    ``{type: json_object, schema}`` instead, within the same deadline, and keeps getting it.

    Args:
        url: base URL, e.g. ``http://127.0.0.1:8080`` (``/v1/chat/completions`` is appended).
        model: model name the server expects.
        api_key: sent as a bearer token when given (else ``SENSE_LLM_API_KEY``).
        timeout_s: total deadline per request, seconds (default ``SENSE_LLM_TIMEOUT``, else
            :data:`DEFAULT_TIMEOUT_S`).
        retry_after_s: seconds to skip the server after a failed request (0: never skip).
    Raises:
        LLMError: ``SENSE_LLM_TIMEOUT`` is not a positive number.
    """

    def __init__(self, url: str, model: str = "local", api_key: str | None = None, timeout_s: float | None = None,
                 retry_after_s: float = RETRY_AFTER_S):
        self.name = f"openai-compatible:{url}"
        self.load_seconds = 0.0
        self._url = url.rstrip("/") + ("/chat/completions" if url.rstrip("/").endswith("/v1") else "/v1/chat/completions")
        self._model = model
        key = api_key or os.environ.get("SENSE_LLM_API_KEY")
        self._headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.timeout_s = float(timeout_s) if timeout_s is not None else _timeout_from_env()
        self._retry_after = retry_after_s
        self._failed: tuple[float, str] | None = None  # (monotonic time, message) of the last failure
        self._schema_form = "json_schema"  # or "json_object" once the server refused the OpenAI form

    def complete_json(self, messages: list[dict], schema: dict, max_tokens: int = 200) -> str:
        """The reply text; raises :class:`LLMError` (one line) within ``timeout_s`` when the server fails."""
        if self._failed is not None and time.monotonic() - self._failed[0] < self._retry_after:
            raise LLMError(f"{self._failed[1]} (not retried for {self._retry_after:g} s)")
        body = {"model": self._model, "messages": messages, "temperature": 0.0, "max_tokens": max_tokens}
        deadline = time.monotonic() + self.timeout_s
        try:
            try:
                text = self._post({**body, "response_format": self._response_format(schema)}, deadline)
            except _FormatRejected:
                if self._schema_form != "json_schema":
                    raise
                self._schema_form = "json_object"
                text = self._post({**body, "response_format": self._response_format(schema)}, deadline)
        except LLMError as exc:
            message = f"LLM server {self._url} failed: {exc}"
            self._failed = (time.monotonic(), message)
            raise LLMError(message) from exc
        self._failed = None
        return text

    def _response_format(self, schema: dict) -> dict:
        if self._schema_form == "json_object":
            return {"type": "json_object", "schema": schema}
        return {"type": "json_schema", "json_schema": {"name": "intent", "schema": schema}}

    def _post(self, body: dict, deadline: float) -> str:
        """POST ``body`` in a worker thread and wait for it until ``deadline`` (monotonic; httpx's timeouts are
        per read, so a server trickling a byte a second would never trip them)."""
        done: queue.Queue = queue.Queue(maxsize=1)

        def work() -> None:
            try:
                done.put(_reply_text(*self._fetch(body, deadline)))
            except Exception as exc:  # noqa: BLE001 (handed to the caller's thread)
                done.put(exc)

        threading.Thread(target=work, name="sense-llm-request", daemon=True).start()
        try:
            result = done.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise LLMError(f"no complete reply within {self.timeout_s:g} s") from None
        if isinstance(result, LLMError):
            raise result
        if isinstance(result, (httpx.HTTPError, OSError)):
            raise LLMError(one_line(result)) from result
        if isinstance(result, Exception):
            raise result
        return result

    def _fetch(self, body: dict, deadline: float) -> tuple[int, str, bytes]:
        """(status, content type, body) of one POST; stops reading at ``deadline`` or :data:`MAX_REPLY_BYTES`."""
        with httpx.Client(timeout=self.timeout_s) as client:
            with client.stream("POST", self._url, json=body, headers=self._headers) as reply:
                data = bytearray()
                for chunk in reply.iter_bytes():
                    data += chunk
                    if len(data) > MAX_REPLY_BYTES:
                        raise LLMError(f"the reply is longer than {MAX_REPLY_BYTES} bytes")
                    if time.monotonic() > deadline:
                        raise LLMError(f"no complete reply within {self.timeout_s:g} s")
                return reply.status_code, reply.headers.get("content-type", ""), bytes(data)


@lru_cache(maxsize=2)
def load_backend(model: str | None = None, llm_url: str | None = None) -> LLMBackend:
    """The backend for the command-line options: ``--llm-url`` wins, else a local GGUF.

    Args:
        model: a model name from :data:`agent.models.MODELS` or a path to a GGUF file
            (default: the 1.5B planner, or ``SENSE_MODEL`` when set).
        llm_url: base URL of an OpenAI-compatible server.
    Raises:
        LLMError, agent.models.ModelMissingError: with a one-line message.
    """
    from agent.models import DEFAULT_PLANNER, model_path

    if llm_url:
        return OpenAICompatBackend(llm_url)
    model = model or os.environ.get("SENSE_MODEL") or DEFAULT_PLANNER
    path = Path(model) if model.endswith(".gguf") else model_path(model)
    if not path.is_file():
        raise LLMError(f"model file {path} not found")
    from knowledge.config import cache_dir

    return LlamaCppBackend(path, state_dir=cache_dir() / "llm-state")
