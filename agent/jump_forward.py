"""Greedy JSON decoding with llama.cpp that skips the tokens a schema forces ("jump-forward").

A planner reply such as ``{"action":"process","target_device":null,...,"follow_up":"none"}`` is
~35–50 tokens, and ~3/4 of them (keys, colons, commas, brackets) follow from the schema alone.
llama.cpp's grammar sampler decodes each of them one by one (~90 ms a token on 2 cores, ~25 ms
of it in the grammar check over the 152k-token vocabulary). This decoder asks the model only at
the free choices: forced text (from :class:`agent.json_prefix.JsonPrefix`) is appended and
evaluated in one batch with the model's last choice, and each choice is the highest-logit token
whose text keeps the reply a valid prefix, which is what a grammar-constrained greedy decoder
picks (up to whitespace, which this one never writes).

Source: Zheng et al., "SGLang: Efficient Execution of Structured Language Model Programs" (2024),
jump-forward decoding with a compressed finite-state machine; llama-cpp-python's ``Llama.eval``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from agent.json_prefix import JsonPrefix

if TYPE_CHECKING:
    from llama_cpp import Llama

#: Candidates looked at per choice before sorting the whole vocabulary (nearly always enough).
TOP_CANDIDATES = 64


class JumpForwardDecoder:
    """Greedy, schema-constrained decoding of one chat reply on a loaded llama.cpp model.

    Args:
        llm: a loaded ``llama_cpp.Llama``; its KV cache is reused across calls (longest common prefix).
    Source: the model's own chat template (GGUF ``tokenizer.chat_template``), rendered as llama-cpp-python does.
    """

    def __init__(self, llm: "Llama"):
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self._llm = llm
        model = llm._model
        eos, bos = llm.token_eos(), llm.token_bos()
        self._formatter = Jinja2ChatFormatter(
            template=llm.metadata["tokenizer.chat_template"],
            eos_token=model.token_get_text(eos) if eos != -1 else "",
            bos_token=model.token_get_text(bos) if bos != -1 else "")
        self._pieces: dict[int, bytes] = {}
        #: choices the model made and tokens evaluated in the last call (for tests and benchmarks)
        self.last_choices = 0
        self.last_tokens = 0

    def prompt_tokens(self, messages: list[dict]) -> list[int]:
        """The chat prompt's tokens, ending with the assistant turn's header."""
        result = self._formatter(messages=messages)
        return self._llm.tokenize(result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True)

    def complete(self, messages: list[dict], schema: JsonPrefix, max_tokens: int) -> str:
        """The reply text: valid compact JSON for ``schema`` unless ``max_tokens`` ran out first.

        Raises:
            ValueError: the prompt and ``max_tokens`` do not fit the context window.
            RuntimeError: llama.cpp failed to evaluate a batch.
        """
        tokens = self.prompt_tokens(messages)
        if len(tokens) + max_tokens > self._llm.n_ctx():
            raise ValueError(f"prompt of {len(tokens)} tokens + {max_tokens} do not fit n_ctx={self._llm.n_ctx()}")
        reply, text, used, choices = b"", "", 0, 0
        while used < max_tokens:
            new = self._forced_tokens(text, schema)
            if new:
                reply += b"".join(self._piece(token) for token in new)
                tokens, text, used = tokens + new, reply.decode("utf-8"), used + len(new)
            if schema.state(text).complete:
                break
            token = self._choose(self._logits_after(tokens), reply, schema)
            if token is None:
                break  # no token continues the reply (cannot happen with a well-formed schema)
            piece = self._pieces[token]
            tokens, reply, used, choices = tokens + [token], reply + piece, used + 1, choices + 1
            text = reply.decode("utf-8")
        self.last_choices, self.last_tokens = choices, used
        return text

    def _forced_tokens(self, text: str, schema: JsonPrefix) -> list[int]:
        """The tokens of the text forced after ``text``, less the last one unless it ends the reply.

        The last forced token is left to the model ("token healing"): forced ``"target_device":`` ends
        in the token ``":``, after which the model has rarely seen a string start (it writes ``":"`` as
        one token), so it chose ``null`` for every device; choosing that token itself, the model writes
        ``":"`` and goes on with the name.
        """
        forced = schema.forced_run(text)
        if not forced:
            return []
        new = self._llm.tokenize(forced.encode("utf-8"), add_bos=False, special=False)
        if schema.state(text + forced).complete:
            return new
        try:
            b"".join(self._piece(token) for token in new[:-1]).decode("utf-8")
        except UnicodeDecodeError:
            return []
        return new[:-1]

    def _logits_after(self, tokens: list[int]) -> np.ndarray:
        """Next-token logits after ``tokens``, evaluating only what the KV cache does not hold yet."""
        llm = self._llm
        held = llm.input_ids[: llm.n_tokens]
        common = int(np.argmin(np.append(held[: len(tokens)] == tokens[: len(held)], False)))
        common = min(common, len(tokens) - 1)  # evaluate at least one token to have its logits
        llm.n_tokens = common
        llm.eval(tokens[common:])
        return np.ctypeslib.as_array(llm._ctx.get_logits_ith(-1), shape=(llm.n_vocab(),))

    def _choose(self, logits: np.ndarray, reply: bytes, schema: JsonPrefix) -> int | None:
        """The highest-logit token whose text keeps ``reply`` a valid prefix, or None."""
        top = np.argpartition(-logits, TOP_CANDIDATES)[:TOP_CANDIDATES]
        orders = (lambda: top[np.argsort(-logits[top])], lambda: np.argsort(-logits))  # the whole sort only if needed
        for order in orders:
            for token in order().tolist():
                piece = self._piece(token)
                if not piece:
                    continue  # end of turn and other control tokens: the reply ends by the schema only
                try:
                    text = (reply + piece).decode("utf-8")
                except UnicodeDecodeError:
                    continue  # part of a character: skipped, a whole-character token is taken instead
                if schema.state(text).valid:
                    return token
        return None

    def _piece(self, token: int) -> bytes:
        piece = self._pieces.get(token)
        if piece is None:
            piece = self._pieces[token] = self._llm.detokenize([token], special=False)
        return piece
