"""SENSE as Wyoming services (``sense wyoming --uri tcp://127.0.0.1:10700`` or ``stdio://``).

A Home Assistant voice pipeline or a wyoming-satellite can then use SENSE for three of its stages:

- ``describe`` -> ``info``: one ASR program (Whisper base int8), one TTS program (Piper joe or
  espeak-ng) and one handle program (the room's agent);
- ``transcribe`` + ``audio-start`` / ``audio-chunk`` ... / ``audio-stop`` -> ``transcript``;
- ``synthesize`` -> ``audio-start``, ``audio-chunk`` ..., ``audio-stop``;
- ``transcript`` -> ``handled`` (the request applied to the room's speaker; the spoken sentence back) or
  ``not-handled`` (nothing understood or changed; the sentence says why).

Source: the Wyoming protocol (``wyoming`` on PyPI, OHF-Voice); event names and fields as its
``asr``, ``tts``, ``handle``, ``info`` and ``audio`` modules define them.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from functools import partial

import numpy as np
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioChunkConverter, AudioStart, AudioStop
from wyoming.event import Event
from wyoming.handle import Handled, NotHandled
from wyoming.info import (AsrModel, AsrProgram, Attribution, Describe, HandleModel, HandleProgram, Info, TtsProgram,
                          TtsVoice)
from wyoming.server import AsyncEventHandler, AsyncServer
from wyoming.tts import Synthesize

from voice.pipeline import ASR_RATE, NO_SPEECH, VoiceAssistant, speakable

log = logging.getLogger(__name__)
CHUNK_SAMPLES = 1024
"""Samples per ``audio-chunk`` of synthesized speech."""
VERSION = "0.1.0"
NOT_HANDLED_ACTIONS = frozenset({"answer", "question", "error", "nothing_playing", "not_live"})
"""Room reply actions that change nothing: answered with ``not-handled``."""
_SENSE = Attribution(name="SENSE", url="https://github.com/sense-audio/sense")


def sense_info(voice: VoiceAssistant) -> Info:
    """What ``describe`` answers: SENSE's ASR, TTS and handle programs."""
    whisper = Attribution(name="OpenAI (Whisper), SYSTRAN (faster-whisper)", url="https://github.com/SYSTRAN/faster-whisper")
    asr = AsrProgram(name="sense-asr", attribution=_SENSE, installed=True, version=VERSION,
                     description="Whisper base int8 with SENSE's domain prompt", supports_transcript_streaming=False,
                     models=[AsrModel(name="whisper-base-int8", attribution=whisper, installed=True,
                                      description="Whisper base (CTranslate2, int8)", version="1", languages=["en"])])
    name = getattr(voice.tts, "voice", None) or "en_US-joe-medium"
    tts = TtsProgram(name="sense-tts", attribution=_SENSE, installed=voice.tts is not None, version=VERSION,
                     description="SENSE's spoken answers (Piper joe, or espeak-ng)",
                     voices=[TtsVoice(name=str(name), attribution=_SENSE, installed=True, description=str(name),
                                      version="1", languages=["en-us"])])
    handle = HandleProgram(name="sense-room", attribution=_SENSE, installed=True, version=VERSION,
                           description=f"SENSE: change how the {voice.room.name}'s music sounds",
                           supports_home_control=True,
                           models=[HandleModel(name="sense-agent", attribution=_SENSE, installed=True,
                                               description="room commands and the SENSE agent", version=VERSION,
                                               languages=["en"])])
    return Info(asr=[asr], tts=[tts], handle=[handle])


class SenseEventHandler(AsyncEventHandler):
    """One Wyoming connection. Model calls run in a worker thread, one at a time across connections.

    Args:
        voice: the room's voice assistant (its ASR, TTS and room). info: the ``describe`` answer.
        lock: shared by every connection (the models are not re-entrant; the CPU has 2 cores).
    """

    def __init__(self, voice: VoiceAssistant, info: Info, lock: threading.Lock, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.voice, self.info, self.lock = voice, info, lock
        self.converter = AudioChunkConverter(rate=ASR_RATE, width=2, channels=1)
        self.audio = bytearray()

    async def _run(self, fn, *args):
        def locked():
            with self.lock:
                return fn(*args)

        return await asyncio.to_thread(locked)

    async def handle_event(self, event: Event) -> bool:
        if Describe.is_type(event.type):
            await self.write_event(self.info.event())
        elif Transcribe.is_type(event.type) or AudioStart.is_type(event.type):
            self.audio = bytearray()
        elif AudioChunk.is_type(event.type):
            self.audio += self.converter.convert(AudioChunk.from_event(event)).audio
        elif AudioStop.is_type(event.type):
            await self.write_event(Transcript(text=await self._run(self._transcribe, bytes(self.audio))).event())
            self.audio = bytearray()
        elif Synthesize.is_type(event.type):
            await self._synthesize(Synthesize.from_event(event).text)
        elif Transcript.is_type(event.type):
            await self.write_event(await self._run(self._handle, Transcript.from_event(event).text))
        return True

    def _transcribe(self, pcm: bytes) -> str:
        audio = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
        text, refusal, _ = self.voice.understand(audio)
        return "" if refusal else text

    def _handle(self, text: str) -> Event:
        if not text.strip():
            return NotHandled(text=NO_SPEECH).event()
        reply = self.voice.room.handle(text)
        self.voice.room.store.note(self.voice.room.name, "heard", f"{text!r} (wyoming) -> {reply.text}")
        sentence = speakable(reply.text)
        if reply.action in NOT_HANDLED_ACTIONS:
            return NotHandled(text=sentence).event()
        return Handled(text=sentence).event()

    async def _synthesize(self, text: str) -> None:
        fmt = dict(rate=ASR_RATE, width=2, channels=1)
        if self.voice.tts is None:
            await self.write_event(AudioStart(**fmt).event())
            await self.write_event(AudioStop().event())
            return
        speech = await self._run(self.voice.tts.synthesize, text)
        pcm = (np.clip(speech.samples, -1.0, 1.0) * 32767.0).astype("<i2")
        fmt["rate"] = int(speech.sample_rate)
        await self.write_event(AudioStart(**fmt).event())
        for start in range(0, len(pcm), CHUNK_SAMPLES):
            await self.write_event(AudioChunk(audio=pcm[start:start + CHUNK_SAMPLES].tobytes(), **fmt).event())
        await self.write_event(AudioStop().event())


async def serve(voice: VoiceAssistant, uri: str) -> None:
    """Serve ``voice`` as Wyoming services at ``uri`` (``tcp://HOST:PORT``, ``unix://PATH`` or ``stdio://``)
    until cancelled.

    Raises:
        ValueError: an unsupported URI (the wyoming package's message).
    """
    server = AsyncServer.from_uri(uri)
    info, lock = sense_info(voice), threading.Lock()
    log.info("SENSE Wyoming services on %s (room %s)", uri, voice.room.name)
    await server.run(partial(SenseEventHandler, voice, info, lock))
