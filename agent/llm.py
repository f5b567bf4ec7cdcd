"""LLM backends behind one interface: local llama.cpp (default) or an OpenAI-compatible server.

Both return the raw text of one chat completion constrained by a JSON schema; parsing and
validation happen in :mod:`agent.understand`.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import httpx
import numpy as np

from tools.atomic import replace_file
from tools.errors import SenseError


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
            the prefix itself; a later process restores it instead of evaluating ~700 tokens again.
            None: no saved state.
    Raises:
        LLMError: if the file cannot be loaded.
    Source: llama-cpp-python ``Llama.create_chat_completion(response_format={"type": "json_object", "schema": ...})``.
    """

    def __init__(self, model_path: Path, n_ctx: int = 4096, n_threads: int | None = None, seed: int = 0,
                 state_dir: Path | None = None):
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
        self._state_saved = False

    def _state_path(self, messages: list[dict]) -> Path | None:
        """File of the saved KV state for this model and this fixed prompt prefix (all but the last message)."""
        if self._state_dir is None:
            return None
        import llama_cpp

        key = json.dumps([self.name, self._model_size, self._llm.n_ctx(), llama_cpp.__version__, messages[:-1]],
                         sort_keys=True)
        return self._state_dir / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.npz"

    def _restore_prefix(self, path: Path) -> None:
        """Load a saved KV state so the shared prompt prefix is not evaluated again (~13 s on 2 cores)."""
        from llama_cpp.llama import LlamaState

        try:
            with np.load(path) as saved:
                # Llama.load_state adopts input_ids as its token buffer, which must hold n_ctx tokens:
                # a buffer of only the saved tokens made every later prompt longer than the saved one
                # fail with "could not broadcast input array from shape (N,) into shape (0,)".
                n_tokens = int(saved["n_tokens"])
                input_ids = np.zeros(self._llm.n_ctx(), dtype=np.intc)
                input_ids[:n_tokens] = saved["input_ids"][:n_tokens]
                state = LlamaState(input_ids=input_ids, scores=np.zeros((1, self._llm.n_vocab()), np.single),
                                   n_tokens=int(saved["n_tokens"]), llama_state=saved["llama_state"].tobytes(),
                                   llama_state_size=int(saved["llama_state"].size), seed=int(saved["seed"]))
            self._llm.load_state(state)
        except (OSError, KeyError, ValueError, RuntimeError):
            path.unlink(missing_ok=True)  # stale or broken: evaluate the prefix as usual

    def _save_prefix(self, path: Path) -> None:
        """Save the KV state after a completion (input ids + llama.cpp state; logits are not needed)."""
        state = self._llm.save_state()

        def write(tmp: Path) -> None:
            with tmp.open("wb") as f:
                np.savez(f, input_ids=state.input_ids[: state.n_tokens], n_tokens=state.n_tokens, seed=state.seed,
                         llama_state=np.frombuffer(state.llama_state, dtype=np.uint8))

        replace_file(path, write)

    def complete_json(self, messages: list[dict], schema: dict, max_tokens: int = 200) -> str:
        state_path = self._state_path(messages)
        first = not self._state_saved
        if first and state_path is not None and state_path.is_file():
            self._restore_prefix(state_path)
        try:
            out = self._llm.create_chat_completion(
                messages=messages,
                response_format={"type": "json_object", "schema": schema},
                temperature=0.0,
                max_tokens=max_tokens,
            )
        except (ValueError, RuntimeError, IndexError) as exc:  # llama.cpp failed inside: the caller falls back
            self._llm.reset()
            raise LLMError(f"llama.cpp failed on this prompt: {exc}") from exc
        if first and state_path is not None and not state_path.is_file():
            self._save_prefix(state_path)
        self._state_saved = True
        return out["choices"][0]["message"]["content"] or ""


class OpenAICompatBackend:
    """Any OpenAI-compatible chat server (llama.cpp server, vLLM, Ollama, LM Studio …).

    Args:
        url: base URL, e.g. ``http://127.0.0.1:8080`` (``/v1/chat/completions`` is appended).
        model: model name the server expects.
        api_key: sent as a bearer token when given (else ``SENSE_LLM_API_KEY``).
        timeout_s: per-request timeout, seconds.
    Raises:
        LLMError: on connection errors or non-2xx replies.
    """

    def __init__(self, url: str, model: str = "local", api_key: str | None = None, timeout_s: float = 60.0):
        self.name = f"openai-compatible:{url}"
        self.load_seconds = 0.0
        self._url = url.rstrip("/") + ("/chat/completions" if url.rstrip("/").endswith("/v1") else "/v1/chat/completions")
        self._model = model
        key = api_key or os.environ.get("SENSE_LLM_API_KEY")
        self._headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._timeout = timeout_s

    def complete_json(self, messages: list[dict], schema: dict, max_tokens: int = 200) -> str:
        body = {
            "model": self._model,
            "messages": messages,
            "temperature": 0.0,
            "max_tokens": max_tokens,
            "response_format": {"type": "json_schema", "json_schema": {"name": "intent", "schema": schema}},
        }
        try:
            reply = httpx.post(self._url, json=body, headers=self._headers, timeout=self._timeout)
            reply.raise_for_status()
            return reply.json()["choices"][0]["message"]["content"] or ""
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            raise LLMError(f"LLM server {self._url} failed: {exc}") from exc


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
