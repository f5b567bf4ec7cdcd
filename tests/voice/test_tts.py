"""voice.tts: Piper (joe) and espeak-ng, real synthesis."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tools.errors import SenseError
from voice import tts as tts_module
from voice.tts import Speech, TextToSpeech, TtsUnavailableError, espeak_voices

needs_piper = pytest.mark.skipif(not tts_module.piper_available(), reason="piper-tts or the joe voice is not installed")
needs_espeak = pytest.mark.skipif(not tts_module.espeak_available(), reason="espeak-ng is not installed")
TWO_SENTENCES = "Less boomy: bass minus 6 decibels. Say undo to go back."


def _check(speech: Speech, backend: str, min_s: float, max_s: float) -> None:
    assert speech.backend == backend
    assert speech.samples.dtype == np.float32 and speech.samples.ndim == 1
    assert speech.sample_rate == 22050
    assert min_s < speech.duration_s < max_s
    assert 0.05 < float(np.abs(speech.samples).max()) <= 1.0
    assert 0 < speech.first_audio_s <= speech.seconds


@needs_piper
def test_piper_speaks_with_the_joe_voice(piper):
    speech = piper.synthesize("make it less boomy")
    _check(speech, "piper", 0.6, 3.0)
    assert speech.voice == piper.voice_name == "en_US-joe-medium"
    assert speech.seconds < 2.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        speech.voice = "x"  # type: ignore[misc]


@needs_piper
def test_piper_streams_one_chunk_per_sentence(piper):
    chunks = list(piper.stream(TWO_SENTENCES))
    assert len(chunks) == 2 and all(c.dtype == np.float32 and len(c) > 0 for c in chunks)
    speech = piper.synthesize(TWO_SENTENCES)
    assert speech.first_audio_s < speech.seconds  # the first sentence is ready before the whole answer
    assert piper.synthesize("").samples.size == 0


@needs_piper
def test_auto_picks_piper_and_rate_changes_the_length(piper):
    assert TextToSpeech().backend == "piper"
    slow = TextToSpeech("piper", rate=0.8, deterministic=True).synthesize("turn the volume down").duration_s
    fast = TextToSpeech("piper", rate=1.25, deterministic=True).synthesize("turn the volume down").duration_s
    assert slow > fast * 1.15  # measured 1.25 s vs 1.02 s (pauses and noise do not scale)


@needs_piper
def test_deterministic_piper_repeats_itself_and_sampling_does_not():
    same = [TextToSpeech("piper", deterministic=True).synthesize("okay nabu").samples for _ in range(2)]
    assert np.array_equal(*same)
    sampled = TextToSpeech("piper")
    assert not np.array_equal(sampled.synthesize("okay nabu").samples, sampled.synthesize("okay nabu").samples)


@needs_espeak
def test_espeak_speaks_every_test_voice():
    voices = espeak_voices()
    assert ("en-us", 1.0) in voices and ("en-gb", 1.0) in voices and ("en-us+f3", 1.0) in voices
    for voice, rate in voices:
        speech = TextToSpeech("espeak", voice, rate).synthesize("turn the volume down")
        _check(speech, "espeak", 0.5, 3.5)
        assert speech.voice == voice
    chunks = list(TextToSpeech("espeak").stream(TWO_SENTENCES))
    assert len(chunks) == 2


@needs_espeak
def test_espeak_unknown_voice_is_a_sense_error():
    with pytest.raises(TtsUnavailableError, match="does not exist"):
        TextToSpeech("espeak", "xx-no-such-voice").synthesize("hello")


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown TTS backend"):
        TextToSpeech("festival")
    with pytest.raises(ValueError, match="rate"):
        TextToSpeech("espeak", rate=0)


def test_neither_backend_is_a_clear_sense_error(monkeypatch):
    monkeypatch.setattr(tts_module, "piper_available", lambda: False)
    monkeypatch.setattr(tts_module, "espeak_available", lambda: False)
    with pytest.raises(SenseError, match="make setup"):
        TextToSpeech()
    with pytest.raises(TtsUnavailableError, match="Piper TTS is not available"):
        TextToSpeech("piper", voice="/nonexistent/voice.onnx")
