"""Voice test fixtures: the two TTS backends, loaded once per session (skipped when not installed)."""

from __future__ import annotations

import pytest

from voice import tts as tts_module


@pytest.fixture(scope="session")
def piper() -> tts_module.TextToSpeech:
    if not tts_module.piper_available():
        pytest.skip("piper-tts or the joe voice is not installed")
    return tts_module.TextToSpeech("piper", deterministic=True)  # the same audio every run


@pytest.fixture(scope="session")
def espeak() -> tts_module.TextToSpeech:
    if not tts_module.espeak_available():
        pytest.skip("espeak-ng is not installed")
    return tts_module.TextToSpeech("espeak", "en-us")
