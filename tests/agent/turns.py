"""One turn through the engine, for the agent tests."""

from __future__ import annotations

import uuid

import soundfile as sf


def run_turn(engine, request, audio, thread=None, **kw):
    """Run ``request`` on ``audio`` in ``thread`` (a fresh one by default); returns the TurnOutcome."""
    return engine.turn(thread or uuid.uuid4().hex, request, audio, **kw)


def read(path):
    """(samples (channels, n) float32, rate) of a written file."""
    samples, rate = sf.read(path, dtype="float32", always_2d=True)
    return samples.T, rate


def words(outcome):
    """[(descriptor, direction)] of the whole-mix tone words that apply after the turn."""
    return [(m.descriptor, m.direction) for m in outcome.settings.adjustments] if outcome.settings else []
