"""Which text may follow a partial JSON reply under a schema, and which text *must* follow.

The LLM's reply is constrained to a JSON schema. Most of a reply is fixed by the schema alone:
in ``{"action":"process","target_device":null,...}`` every key, colon, comma and bracket is
forced, and only the values are the model's choice. :class:`JsonPrefix` tells a decoder, for
the text so far, whether it is still a prefix of some valid reply, whether it is complete, and
which characters every valid completion starts with (the *forced* continuation). A decoder
appends forced text without sampling ("jump-forward" decoding, as in SGLang's compressed
finite-state machines), which saves most of the per-token decoding steps of a typical reply.

Only compact JSON is accepted (no whitespace between tokens), with every object's keys in the
schema's order; :func:`agent.schemas.llm_json_schema` makes every property required, so each
key appears exactly once.

Source: JSON (RFC 8259) grammar; jump-forward idea from Zheng et al., "SGLang: Efficient
Execution of Structured Language Model Programs" (2024).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass

from tools.errors import SenseError


class SchemaNotSupported(SenseError, ValueError):
    """The schema uses a construct :class:`JsonPrefix` does not follow (the caller decodes another way)."""


#: A partial number that may still become a valid JSON number / integer.
_NUMBER_PREFIX = re.compile(r"-?(0|[1-9][0-9]*)?(\.[0-9]*)?([eE][+-]?[0-9]*)?")
_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_INTEGER_PREFIX = re.compile(r"-?(0|[1-9][0-9]*)?")
_INTEGER = re.compile(r"-?(0|[1-9][0-9]*)")
_ESCAPES = frozenset('"\\/bfnrt')
_HEX = frozenset("0123456789abcdefABCDEF")

# An outcome of matching a value that starts at some position: ("end", j) the value ends at text[j];
# ("more", forced) the text ran out inside the value and every completion starts with ``forced``.
Outcome = tuple[str, "int | str"]


@dataclass(frozen=True)
class Prefix:
    """What the schema says of a partial reply.

    valid: the text is a prefix of some reply the schema allows (compact JSON).
    complete: the text is a whole reply.
    forced: the characters every valid completion starts with ('' at a free choice or when complete).
    """

    valid: bool
    complete: bool
    forced: str


class JsonPrefix:
    """Follows partial compact JSON text against a JSON schema (the subset pydantic writes).

    Supports objects whose properties are all required (written in declared order), arrays with
    ``items``/``minItems``/``maxItems``, strings, numbers, integers, booleans, null, ``enum``,
    ``const``, ``anyOf``/``oneOf`` and local ``$ref``.

    Args:
        schema: a JSON schema dict, as :func:`agent.schemas.llm_json_schema` returns.
    Raises:
        SchemaNotSupported: an object with optional properties, or a keyword outside the subset.
    """

    def __init__(self, schema: dict):
        self._defs = schema.get("$defs", {})
        self._root = schema
        self._check(schema, set())

    def _resolve(self, schema: dict) -> dict:
        while "$ref" in schema:
            schema = self._defs[schema["$ref"].rsplit("/", 1)[-1]]
        return schema

    def _check(self, schema: dict, seen: set[str]) -> None:
        """Raise :class:`SchemaNotSupported` unless every part of ``schema`` is in the subset."""
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            if not schema["$ref"].startswith("#/$defs/") or name not in self._defs:
                raise SchemaNotSupported(f"reference {schema['$ref']!r} is not a local definition")
            if name not in seen:
                self._check(self._defs[name], seen | {name})
            return
        alternatives = schema.get("anyOf") or schema.get("oneOf")
        if alternatives:
            for alternative in alternatives:
                self._check(alternative, seen)
            return
        kind = schema.get("type")
        if "enum" in schema or "const" in schema or kind in ("string", "number", "integer", "boolean", "null"):
            return
        if kind == "array" and isinstance(schema.get("items"), dict):
            self._check(schema["items"], seen)
            return
        if kind == "object" and list(schema.get("required", [])) == list(schema.get("properties", {})):
            for value in schema.get("properties", {}).values():
                self._check(value, seen)
            return
        raise SchemaNotSupported(f"schema part not supported for jump-forward decoding: {json.dumps(schema)[:120]}")

    def state(self, text: str) -> Prefix:
        """Whether ``text`` can still become a valid reply, whether it is one, and what must follow."""
        outcomes = list(self._match(self._root, text, 0))
        if any(kind == "end" and at == len(text) for kind, at in outcomes):
            return Prefix(valid=True, complete=True, forced="")
        forced = [at for kind, at in outcomes if kind == "more"]
        if not forced:
            return Prefix(valid=False, complete=False, forced="")
        return Prefix(valid=True, complete=False, forced=os.path.commonprefix(forced))

    def forced_run(self, text: str) -> str:
        """All text forced after ``text`` up to the next free choice or the end of the reply ('' if none)."""
        run = ""
        while True:
            forced = self.state(text + run).forced
            if not forced:
                return run
            run += forced

    def _match(self, schema: dict, text: str, i: int) -> Iterator[Outcome]:
        schema = self._resolve(schema)
        alternatives = schema.get("anyOf") or schema.get("oneOf")
        if alternatives:
            for alternative in alternatives:
                yield from self._match(alternative, text, i)
        elif "const" in schema:
            yield from _literal(json.dumps(schema["const"]), text, i)
        elif "enum" in schema:
            for value in schema["enum"]:
                yield from _literal(json.dumps(value), text, i)
        else:
            yield from self._match_type(schema, text, i)

    def _match_type(self, schema: dict, text: str, i: int) -> Iterator[Outcome]:
        kind = schema.get("type")
        if kind == "object":
            parts: list[str | dict] = ["{"]
            for n, (key, value) in enumerate(schema.get("properties", {}).items()):
                parts += [("," if n else "") + json.dumps(key) + ":", value]
            yield from self._sequence([*parts, "}"], text, i)
        elif kind == "array":
            for kind_, at in _literal("[", text, i):
                yield from [(kind_, at)] if kind_ == "more" else self._items(schema, text, at, 0)
        elif kind == "string":
            yield from _string(text, i)
        elif kind in ("number", "integer"):
            yield from _number(text, i, kind == "integer")
        elif kind == "boolean":
            yield from _literal("true", text, i)
            yield from _literal("false", text, i)
        elif kind == "null":
            yield from _literal("null", text, i)

    def _sequence(self, parts: list, text: str, i: int) -> Iterator[Outcome]:
        """Literal strings and value schemas, one after another."""
        if not parts:
            yield ("end", i)
            return
        head = parts[0]
        for kind, at in _literal(head, text, i) if isinstance(head, str) else self._match(head, text, i):
            if kind == "more":
                yield (kind, at)
            else:
                yield from self._sequence(parts[1:], text, at)

    def _items(self, schema: dict, text: str, i: int, count: int) -> Iterator[Outcome]:
        """The rest of an array after ``count`` items: ``]``, or (``,``) and one more item."""
        if count >= schema.get("minItems", 0):
            yield from _literal("]", text, i)
        if count >= schema.get("maxItems", float("inf")):
            return
        starts = _literal(",", text, i) if count else iter([("end", i)])
        for kind, at in starts:
            if kind == "more":
                yield (kind, at)
                continue
            for kind_, end in self._match(schema["items"], text, at):
                yield from [(kind_, end)] if kind_ == "more" else self._items(schema, text, end, count + 1)


def _literal(literal: str, text: str, i: int) -> Iterator[Outcome]:
    rest = text[i:]
    if rest.startswith(literal):
        yield ("end", i + len(literal))
    elif literal.startswith(rest):
        yield ("more", literal[len(rest):])


def _string(text: str, i: int) -> Iterator[Outcome]:
    if i == len(text):
        yield ("more", '"')
        return
    if text[i] != '"':
        return
    j = i + 1
    while j < len(text):
        char = text[j]
        if char == '"':
            yield ("end", j + 1)
            return
        if ord(char) < 0x20:
            return
        if char == "\\":
            escape = text[j + 1: j + 2]
            hex_digits = text[j + 2: j + 6] if escape == "u" else ""
            if escape and escape not in _ESCAPES and escape != "u" or not set(hex_digits) <= _HEX:
                return
            if not escape or escape == "u" and len(hex_digits) < 4:
                break  # the text ends inside the escape
            j += 6 if escape == "u" else 2
            continue
        j += 1
    yield ("more", "")


def _number(text: str, i: int, integer: bool) -> Iterator[Outcome]:
    j = i
    while j < len(text) and text[j] in "0123456789+-.eE":
        j += 1
    candidate = text[i:j]
    whole = (_INTEGER if integer else _NUMBER).fullmatch(candidate) is not None
    if j == len(text) and (_INTEGER_PREFIX if integer else _NUMBER_PREFIX).fullmatch(candidate):
        yield ("more", "")
    if whole:
        yield ("end", j)
