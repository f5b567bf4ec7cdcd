"""voice.wake (microWakeWord) and voice.vad (Silero VAD endpointing) on real synthetic speech.

Measured (clips: 1 s silence + phrase at peak 0.5 + 1 s silence; 3 Piper joe rates 0.8/1.0/1.2 and the 7
espeak-ng test voices of voice.tts.espeak_voices):

- okay_nabu on "okay nabu": Piper 3/3, espeak-ng 6/7 (en-us+f3 peaks at 0.71 < cutoff 0.85);
  hey_jarvis on "hey jarvis": Piper 3/3, espeak-ng 1/7 (only en-us+f3); hey_mycroft on "hey mycroft":
  Piper 3/3, espeak-ng 6/7 (en-us at rate 0.8 misses; "hey my croft" 7/7); alexa on "alexa": 10/10.
  "hey nabu" fires okay_nabu only for espeak-ng en-us+m3 at rate 1.25 (1/10).
- False alarms: 0 in 160 (4 other phrases x 10 voices x 4 models); 0 per model in 8.4 min of music
  (7 tracks of the shared data, up to 90 s each).
- Piper's phrase over music 10 dB / 5 dB below it (4 tracks): hey_jarvis, hey_mycroft, alexa 8/8;
  okay_nabu 3/4 at -10 dB and 2/4 at -5 dB (it misses over the sung track).
- Endpointing: start within 0.18 s, end within 0.11 s of the waveform's truth; endpoint 0.70-0.81 s after it.
  Silence, white/brown noise at 0.01-0.5 RMS and a click: no speech (peak probability <= 0.17).
  Instrumental music (4 tracks, 20 s each, shared data): no speech.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.voice import silence, speak, speech_bounds
from tools.errors import SenseError
from voice import tts as tts_module
from voice.models import wakeword_models
from voice.vad import Endpointer, Segment, find_speech
from voice.wake import UnknownWakeWordError, WakeWordDetector

PHRASES = {"okay_nabu": "okay nabu", "hey_jarvis": "hey jarvis", "hey_mycroft": "hey mycroft", "alexa": "alexa"}
NOT_WAKE = ("make it less boomy", "turn the volume down")


@pytest.fixture(scope="module")
def detectors() -> dict[str, WakeWordDetector]:
    if not wakeword_models():
        pytest.skip("pymicro-wakeword is not installed")
    return {name: WakeWordDetector(name) for name in wakeword_models()}


@pytest.fixture(scope="module")
def endpointer() -> Endpointer:
    return Endpointer()


# --- wake word ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [0.8, 1.0, 1.2])
def test_okay_nabu_fires_on_piper_at_the_end_of_the_phrase(detectors, piper, rate):
    clip = speak(tts_module.TextToSpeech("piper", rate=rate, deterministic=True), "okay nabu", 1.0, 1.0)
    at = detectors["okay_nabu"].detect(clip)
    _, end = speech_bounds(clip)
    assert at is not None, f"max probability {detectors['okay_nabu'].max_probability:.2f}"
    assert end - 0.4 < at < end + 0.5


def test_every_shipped_model_fires_on_its_phrase_and_not_on_commands(detectors, piper):
    for name, phrase in PHRASES.items():
        assert detectors[name].detect(speak(piper, phrase, 1.0, 1.0)) is not None, name
    for text in NOT_WAKE:
        clip = speak(piper, text, 1.0, 1.0)
        assert {name: d.detect(clip) for name, d in detectors.items()} == dict.fromkeys(detectors)


@pytest.mark.skipif(not tts_module.espeak_available(), reason="espeak-ng is not installed")
def test_okay_nabu_fires_on_espeak_voices(detectors):
    hits = {voice: detectors["okay_nabu"].detect(speak(tts_module.TextToSpeech("espeak", voice), "okay nabu", 1.0, 1.0))
            for voice in ("en-us", "en-gb", "en-gb-scotland")}
    assert all(at is not None for at in hits.values()), hits
    misses = speak(tts_module.TextToSpeech("espeak", "en-us"), "make it less boomy", 1.0, 1.0)
    assert detectors["okay_nabu"].detect(misses) is None


def test_streaming_in_odd_chunks_fires_once_per_utterance(detectors, piper):
    wake = detectors["okay_nabu"]
    phrase = speak(piper, "okay nabu", 0.5, 0.0)
    stream = np.concatenate([phrase, silence(3.0), phrase, silence(0.5)])
    as_int16 = (stream * 32767).astype(np.int16)
    wake.reset()
    hits, rng, start = [], np.random.default_rng(1), 0
    while start < len(as_int16):
        size = int(rng.integers(1, 3000))
        if (at := wake.process(as_int16[start:start + size])) is not None:
            hits.append(at)
        start += size
    assert len(hits) == 2
    # each at the end of its phrase, as for one clip (where the phrase falls against the detector's 10 ms feature
    # frames moves the firing by a few frames, so the second is not an exact repeat of the first)
    _, end = speech_bounds(phrase)
    for at, phrase_end in zip(hits, (end, end + len(phrase) / 16000 + 3.0)):
        assert phrase_end - 0.4 < at < phrase_end + 0.5
    assert abs(hits[0] - wake.detect(stream)) < 0.05


def test_unknown_wake_word_lists_the_known_ones():
    with pytest.raises(UnknownWakeWordError, match="okay_nabu, hey_jarvis, hey_mycroft, alexa") as info:
        WakeWordDetector("hey_sense")
    assert isinstance(info.value, SenseError)


# --- endpointing ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend,voice", [("piper", None), ("espeak", "en-us"), ("espeak", "en-gb+f2")])
def test_speech_between_silences_is_found_and_ends_0_7_s_later(endpointer, backend, voice):
    if (backend == "piper" and not tts_module.piper_available()) or not tts_module.espeak_available():
        pytest.skip(f"{backend} is not available")
    tts = tts_module.TextToSpeech(backend, voice, deterministic=True)
    for text in ("make it less boomy", "undo"):
        clip = speak(tts, text, 0.0, 1.5)
        clip = np.concatenate([silence(1.0), clip])
        start, end = speech_bounds(clip)
        seg = find_speech(clip, endpointer=endpointer)
        assert isinstance(seg, Segment) and seg.reason == "silence"
        assert abs(seg.start_s - start) < 0.3 and abs(seg.end_s - end) < 0.3
        assert seg.endpoint_s - seg.end_s == pytest.approx(0.7, abs=0.04)
        assert 0.6 < seg.endpoint_s - end < 0.9


def test_silence_noise_and_clicks_are_not_speech(endpointer):
    rng = np.random.default_rng(0)
    click = silence(3.0)
    click[16000:16100] = 0.9
    assert find_speech(silence(3.0), endpointer=endpointer) is None
    assert find_speech(click, endpointer=endpointer) is None
    for rms in (0.01, 0.1, 0.5):
        burst = np.concatenate([silence(1.0), rng.normal(0, rms, 16000).astype(np.float32), silence(1.0)])
        assert find_speech(burst, endpointer=endpointer) is None
        assert max(endpointer.probabilities) < 0.5


def test_long_speech_is_cut_at_max_speech(piper):
    text = "The bass is lower now, the treble is a little brighter, and the vocals are clearer than before."
    clip = np.concatenate([silence(0.5), speak(piper, text), silence(1.0)])
    seg = find_speech(clip, max_speech_s=3.0)
    assert seg.reason == "max_speech" and seg.endpoint_s - seg.start_s == pytest.approx(3.0, abs=0.05)
    end_of_clip = find_speech(clip[: int(2.0 * 16000)])
    assert end_of_clip.reason == "end_of_audio" and end_of_clip.endpoint_s == pytest.approx(2.0, abs=0.04)


def test_streaming_endpointer_reports_start_and_end_of_two_utterances(piper):
    ep = Endpointer()
    stream = np.concatenate([silence(0.5), speak(piper, "more bass"), silence(1.2),
                             speak(piper, "undo"), silence(1.0)])
    events = []
    for start in range(0, len(stream), 480):  # 30 ms chunks: not a multiple of Silero's 512-sample frame
        events += ep.process(stream[start:start + 480])
    assert [e.kind for e in events] == ["start", "end", "start", "end"]
    assert events[1].segment.end_s < events[2].at_s and not ep.in_speech


def test_instrumental_music_is_not_speech(vibe_ace):
    import soundfile as sf

    from voice.audio import to_float32

    music, rate = sf.read(vibe_ace, dtype="float32", start=30 * 44100, frames=12 * 44100)
    seg = find_speech(0.3 * to_float32(music, rate), sample_rate=16000, max_speech_s=10.0)
    assert seg is None or seg.reason == "max_speech"
