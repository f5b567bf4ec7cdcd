"""The voice loop: wake word -> end of speech -> speech-to-text -> the room's agent -> a spoken answer.

The shape is Home Assistant Assist's (each stage a separate piece, as Wyoming services are):
:class:`voice.wake.WakeWordDetector` (pymicro-wakeword) opens the mic, :class:`voice.vad.Endpointer`
(Silero VAD) decides the request ended after 0.7 s of silence, :class:`voice.asr.SpeechToText`
(Whisper base int8) transcribes it with a domain prompt, :meth:`speaker.service.Room.handle` does it
in the room (a room command or the agent; the result is applied live), and
:class:`voice.tts.TextToSpeech` (Piper joe, or espeak-ng) says one sentence while the music is ducked.

Bad input never changes the room: no speech after the wake word, a cough, an empty or very unsure
transcript, a non-English sentence each get a one-sentence answer, and the room's agent answers
off-topic requests ("what's the weather") and requests while nothing plays without changing anything.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from speaker.service import Room, RoomReply

ASR_RATE = 16000
NO_SPEECH = "I didn't hear a request."
NOT_CAUGHT = "Sorry, I didn't catch that."
NOT_ENGLISH = "Sorry, I only understand English."
NO_SPEECH_PROB = 0.6
"""A transcript whose Whisper no-speech probability is above this (with little text) is not a request."""
NOT_ENGLISH_PROB = 0.4
"""Whisper's language probability above which a non-English detection of an unreadable transcript is believed
(espeak-ng German measured 0.43-0.45)."""
DUCK_DB = -12.0
"""How far the music is lowered under a spoken answer, dB."""
PAD_S = 0.5
"""Audio kept before and after the VAD's speech segment for Whisper, s (measured: exact transcripts over music
rose from 51 to 68 of 90 renders with 0.5 s against none)."""
PROMPT = ("Okay Nabu. Undo. Louder. Quieter. Turn it up. Less boomy. It's too harsh. Less muddy. Warmer. Brighter. "
          "Darker. More bass. More treble. Louder vocals. Next song. Pause. Resume. What's playing? "
          "Make it sound like my AirPods.")
"""Whisper's domain prompt: spoken commands in the style people say them (a command-style prompt beat a word list
of sound words and every device name, 65 vs 57 of 90 exact; the device names follow from the FR store)."""
PROMPT_BRANDS = 6
"""Device names added to the prompt: the store's most common brands' best-known models."""


def _amount(db: float) -> str:
    """A dB amount as said: whole dB from 1 dB up, one decimal below ("0.6")."""
    return f"{db:.1f}" if db < 0.95 else str(round(db))


def speakable(text: str) -> str:
    """The reply's first sentence, made sayable: no parentheses, units and signs in words, numbers rounded.

    >>> speakable("Less boomy: bass (60 Hz–250 Hz) -5.9 dB, sub bass (20 Hz–60 Hz) -3.3 dB. More.")
    'Less boomy: bass minus 6 decibels, sub bass minus 3 decibels.'
    """
    first = re.split(r"(?<=[.!?])\s+(?=[A-Z])", text.strip(), maxsplit=1)[0]
    first = re.sub(r"\s*\([^)]*\)", "", first)
    first = re.sub(r"([+-−])?(\d+(?:\.\d+)?)\s*dB\b",
                   lambda m: f"{'minus ' if m[1] in ('-', '−') else 'plus ' if m[1] == '+' else ''}"
                             f"{_amount(float(m[2]))} decibels", first)
    first = re.sub(r"(\d+(?:\.\d+)?)\s*kHz\b", r"\1 kilohertz", first)
    first = re.sub(r"(\d+)\s*Hz\b", r"\1 hertz", first)
    first = first.replace("%", " percent").replace("→", "to").replace("–", " to ")
    return " ".join(first.split())


def domain_prompt(room: Room) -> str:
    """:data:`PROMPT` plus a few device names the agent knows (one per brand, for the brands with most models)."""
    from collections import Counter

    try:
        devices = room.engine.rt.store.devices()
    except Exception:  # noqa: BLE001 - a prompt without device names still works
        devices = []
    brands = Counter(d.split()[0] for d in devices)
    names = [next(d for d in devices if d.split()[0] == b) for b, _ in brands.most_common(PROMPT_BRANDS)]
    return PROMPT + (" " + ", ".join(names) + "." if names else "")


@dataclass(frozen=True)
class VoiceTurn:
    """One spoken request and what came of it.

    Attributes:
        transcript: what speech-to-text heard ("" when there was no speech).
        answer_text: the sentence said back.
        reply: the room's reply (None when the request never reached the room: no speech, not English).
        answer: the synthesized answer (``voice.tts.Speech``), or None when not spoken.
        latency_s: seconds: ``endpointing`` (end of speech -> endpoint, stream time), ``speech_to_text``,
            ``understanding``, ``filter_applied`` (incl. one block of output latency), ``to_changed_audio``
            (their sum), ``answer_first_audio`` (after the filter, until the answer's first sample).
        heard_at_s: where the speech started and ended in the input stream, seconds (None when unknown).
    """

    transcript: str
    answer_text: str
    reply: RoomReply | None = None
    answer: object | None = None
    latency_s: dict[str, float] = field(default_factory=dict)
    heard_at_s: tuple[float, float] | None = None

    @property
    def changed(self) -> bool:
        """Whether the room's sound changed."""
        return self.reply is not None and self.reply.changed


class VoiceAssistant:
    """The voice front end of one room.

    Args:
        room: the room whose sound the requests change.
        asr: a loaded :class:`voice.asr.SpeechToText`.
        tts: a :class:`voice.tts.TextToSpeech`, or None to answer in text only.
        wake: a :class:`voice.wake.WakeWordDetector`, or None (push-to-talk / ``--no-wake``: every
            utterance is a request).
        on_answer: called with each synthesized answer (e.g. write it to a WAV or play it), or None.
        duck_db: music level under the answer, dB relative to the room's volume (<= 0).
    """

    def __init__(self, room: Room, asr, tts=None, *, wake=None, on_answer: Callable[[object], None] | None = None,
                 duck_db: float = DUCK_DB) -> None:
        self.room, self.asr, self.tts, self.wake = room, asr, tts, wake
        self.on_answer, self.duck_db = on_answer, min(0.0, float(duck_db))
        self._prompt: str | None = None
        self._sounds_like = None

    @property
    def prompt(self) -> str:
        """Whisper's domain prompt (built once by :func:`domain_prompt`)."""
        if self._prompt is None:
            self._prompt = domain_prompt(self.room)
        return self._prompt

    def prepare(self) -> VoiceAssistant:
        """Load what the first request would otherwise wait for (the prompt, the sounds-like phrases, the planner's
        first answer: ~6 s)."""
        from agent.understand import warm_up
        from voice.vocabulary import room_sounds_like

        _ = self.prompt
        self.room.vocabulary()
        if self._sounds_like is None:
            self._sounds_like = room_sounds_like(self.room.engine.rt)
            warm_up(self.room.engine.rt.llm)
        return self

    def readable(self, text: str) -> bool:
        """Whether the room's commands or the agent's closed vocabulary read ``text`` as it is (no LLM)."""
        from agent.rules import parse as rules_parse
        from speaker.commands import parse as command

        if command(text) is not None:
            return True
        vocab = self.room.vocabulary()
        intent = rules_parse(text, vocab)
        if intent.action == "follow_up":
            return True
        known = intent.adjustments and all(vocab.plausible(a.descriptor) for a in intent.adjustments)
        device = intent.target_device is not None and vocab.device_known(intent.target_device)
        stems = any(e.operation != "tone" for e in intent.stem_edits)  # a "tone" edit without adjustments says nothing
        return intent.action == "process" and bool(known or device or intent.band_edits or stems)

    def corrected(self, text: str) -> str:
        """``text``, or the phrase it sounds like when neither the room nor the agent's vocabulary reads it
        (:mod:`voice.vocabulary`: "and do that" -> "undo that", "less booby please" -> "less boomy please")."""
        if not text.strip() or self.readable(text):
            return text
        return self._sounds_like_phrase(text)

    def _sounds_like_phrase(self, text: str) -> str:
        """The known phrase ``text`` sounds like, or ``text`` when none is close (no readability check)."""
        if self._sounds_like is None:
            from voice.vocabulary import room_sounds_like

            self._sounds_like = room_sounds_like(self.room.engine.rt)
        match = self._sounds_like.match(text)
        return match.phrase if match is not None else text

    def _reading(self, audio: np.ndarray, heard: str) -> tuple[str, str | None]:
        """What an utterance most likely said when its transcript ``heard`` is not readable, and a refusal or None:
        the phrase ``heard`` sounds like; else, unless Whisper's language identification finds another language
        (refused with :data:`NOT_ENGLISH`), the first of Whisper's runner-up readings
        (:meth:`voice.asr.SpeechToText.alternatives`) that is readable or sounds like a phrase; else ``heard``."""
        phrase = self._sounds_like_phrase(heard)
        if phrase != heard:
            return phrase, None
        second = self.asr.alternatives(audio, prompt=self.prompt)
        if second.language != "en" and second.language_probability >= NOT_ENGLISH_PROB:
            return heard, NOT_ENGLISH
        readings = second.texts
        for reading in readings:
            if self.readable(reading):
                return reading, None
        for reading in readings:
            phrase = self._sounds_like_phrase(reading)
            if phrase != reading:
                return phrase, None
        return heard, None

    def understand(self, audio: np.ndarray) -> tuple[str, str | None, float]:
        """Transcribe one utterance (16 kHz mono) as English with the domain prompt, and make it readable.

        A transcript neither the room nor the agent's vocabulary reads is replaced by the phrase it sounds
        like (:meth:`corrected`); when nothing sounds close, Whisper's language identification decides
        whether it was another language (refused with :data:`NOT_ENGLISH`), and otherwise the first of
        Whisper's runner-up readings that is readable (or sounds like a phrase) is taken (one more encoder
        pass and a beam search for both, ~0.8 s, spent only then); failing that it goes to the agent as heard.

        Returns:
            (transcript, a refusal sentence or None, seconds).
        """
        t0 = time.perf_counter()
        heard = self.asr.transcribe(audio, prompt=self.prompt, language="en")
        text, refusal = heard.text.strip(), None
        if not re.search(r"[A-Za-z]{2}", text) or (heard.no_speech_prob > NO_SPEECH_PROB and len(text) < 12):
            refusal = NOT_CAUGHT
        elif not self.readable(text):
            text, refusal = self._reading(audio, text)
        return text, refusal, time.perf_counter() - t0

    def utterance(self, audio: np.ndarray, *, endpointing_s: float = 0.0,
                  heard_at_s: tuple[float, float] | None = None) -> VoiceTurn:
        """Handle one utterance that has already been cut at its end of speech.

        Args:
            audio: float32 (samples,), 16 kHz mono.
            endpointing_s: how long the endpointer waited after the speech, s (for the latency table).
            heard_at_s: where it was in the stream, s.
        Returns:
            The :class:`VoiceTurn` (logged in the room as ``heard``).
        """
        text, refusal, stt_s = self.understand(audio)
        latency = {"endpointing": endpointing_s, "speech_to_text": stt_s}
        reply = None
        if refusal is None:
            reply = self.room.handle(text)
            latency |= {"understanding": reply.timings_s.get("understanding", 0.0),
                        "filter_applied": reply.timings_s.get("filter_applied", 0.0) + self.room.output_latency_s}
        else:
            latency |= {"understanding": 0.0, "filter_applied": 0.0}
        latency["to_changed_audio"] = sum(latency[k] for k in ("endpointing", "speech_to_text", "understanding",
                                                                "filter_applied"))
        answer_text = refusal or speakable(reply.text)
        self.room.store.note(self.room.name, "heard", f"{text!r} -> {answer_text}")
        answer, first_s = self.say(answer_text)
        if first_s is not None:
            latency["answer_first_audio"] = first_s
        return VoiceTurn(text, answer_text, reply, answer, latency, heard_at_s)

    def say(self, text: str) -> tuple[object | None, float | None]:
        """Synthesize ``text``, duck the music for its length, hand it to ``on_answer``.

        Returns:
            (the speech or None without TTS, seconds until its first audio or None).
        """
        if self.tts is None:
            return None, None
        speech = self.tts.synthesize(text)
        first = float(getattr(speech, "first_audio_s", speech.seconds))
        self.room.duck(self.duck_db, len(speech.samples) / speech.sample_rate)
        if self.on_answer is not None:
            self.on_answer(speech)
        return speech, first

    def hear(self, audio: np.ndarray, *, offset_s: float = 0.0) -> VoiceTurn | None:
        """One recorded request (a WAV, a push-to-talk clip): wake word (unless there is no detector), end of
        speech, then :meth:`utterance`.

        Args:
            audio: float32 (samples,), 16 kHz mono. offset_s: where the clip starts in the input stream, s.
        Returns:
            The :class:`VoiceTurn`; with a wake-word detector, None when the wake word was not heard (a
            speaker stays silent then). No speech after it gets the answer :data:`NO_SPEECH`.
        """
        from voice.vad import find_speech

        start = 0
        if self.wake is not None:
            self.wake.reset()
            woke = self.wake.detect(audio)
            if woke is None:
                return None
            start = int(woke * ASR_RATE)
        speech = find_speech(audio[start:])
        if speech is None:
            answer, first = self.say(NO_SPEECH)
            self.room.store.note(self.room.name, "heard", f"(no speech) -> {NO_SPEECH}")
            return VoiceTurn("", NO_SPEECH, None, answer, {"answer_first_audio": first or 0.0})
        a = start + max(0, int((speech.start_s - PAD_S) * ASR_RATE))
        b = start + int((speech.end_s + PAD_S) * ASR_RATE)
        return self.utterance(audio[a:b], endpointing_s=speech.endpoint_s - speech.end_s,
                              heard_at_s=(offset_s + a / ASR_RATE, offset_s + b / ASR_RATE))

    def listen(self, chunks: Iterable[np.ndarray], *, wake_timeout_s: float = 5.0) -> Iterator[VoiceTurn]:
        """The always-on loop over a live input: wake word, then one request until its end of speech.

        Args:
            chunks: 16 kHz mono float32 (or int16) blocks, e.g. 100 ms each from a microphone.
            wake_timeout_s: after the wake word, how long to wait for speech to start, s.
        Yields:
            One :class:`VoiceTurn` per request (and a :data:`NO_SPEECH` turn when the wake word is followed
            by silence).
        """
        from voice.audio import to_float32
        from voice.vad import Endpointer

        endpointer, heard, awake_at, total = Endpointer(), [], None if self.wake else 0.0, 0
        for chunk in chunks:
            x = to_float32(chunk)
            total += len(x)
            if awake_at is None:
                if self.wake.process(x) is not None:
                    awake_at, heard = total / ASR_RATE, []
                    endpointer.reset()
                continue
            heard.append(x)
            for event in endpointer.process(x):
                if event.kind == "end":
                    seg, audio = event.segment, np.concatenate(heard)
                    clip = audio[max(0, int((seg.start_s - PAD_S) * ASR_RATE)):int((seg.end_s + PAD_S) * ASR_RATE)]
                    yield self.utterance(clip, endpointing_s=seg.endpoint_s - seg.end_s,
                                         heard_at_s=(awake_at + seg.start_s, awake_at + seg.end_s))
                    awake_at, heard = (None, []) if self.wake else (total / ASR_RATE, [])
                    endpointer.reset()
            if self.wake and awake_at is not None and not endpointer.in_speech \
                    and total / ASR_RATE - awake_at > wake_timeout_s:
                answer, first = self.say(NO_SPEECH)
                yield VoiceTurn("", NO_SPEECH, None, answer, {"answer_first_audio": first or 0.0})
                awake_at, heard = None, []
