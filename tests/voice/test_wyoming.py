"""`sense wyoming`: describe, transcribe + audio, synthesize, and transcript -> handled, over stdio:// and TCP
loopback, driven by the `wyoming` package's own client code, with the real models (Whisper base, the TTS, the
room's agent without the LLM) in a separate process, as Home Assistant would use it."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

import numpy as np
import pytest
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.event import async_read_event, async_write_event
from wyoming.handle import Handled, NotHandled
from wyoming.info import Describe, Info
from wyoming.tts import Synthesize

ROOT = Path(__file__).resolve().parents[2]
RATE = 16000


def spoken(text: str) -> np.ndarray:
    """``text`` said by espeak-ng, 16 kHz int16 (the test's own voice, not the server's)."""
    import soxr

    from voice.tts import TextToSpeech

    speech = TextToSpeech(backend="espeak").synthesize(text)
    audio = soxr.resample(speech.samples, speech.sample_rate, RATE)
    return (np.clip(audio, -1, 1) * 32767).astype("<i2")


def command(tmp_path: Path, vibe_ace: Path, uri: str) -> list[str]:
    return [sys.executable, "-m", "sense_cli", "wyoming", "--uri", uri, "--room", "lab", "--db",
            str(tmp_path / "rooms.sqlite"), "--no-llm", "--play", str(vibe_ace), "--output", str(tmp_path / "out.wav")]


async def exchange(reader, writer, events) -> list:
    """Send ``events``; read until an event of the last-expected kind arrives."""
    for event in events:
        await async_write_event(event, writer)
    return await async_read_event(reader)


async def transcribe(read, write, pcm: np.ndarray) -> str:
    fmt = dict(rate=RATE, width=2, channels=1)
    await write(Transcribe(language="en").event())
    await write(AudioStart(**fmt).event())
    for i in range(0, len(pcm), 1600):
        await write(AudioChunk(audio=pcm[i:i + 1600].tobytes(), **fmt).event())
    await write(AudioStop().event())
    event = await read()
    assert Transcript.is_type(event.type)
    return Transcript.from_event(event).text


async def synthesize(read, write, text: str) -> float:
    await write(Synthesize(text=text).event())
    start = await read()
    assert AudioStart.is_type(start.type)
    samples, rate = 0, AudioStart.from_event(start).rate
    while True:
        event = await read()
        if AudioStop.is_type(event.type):
            return samples / rate
        chunk = AudioChunk.from_event(event)
        samples += len(chunk.audio) // chunk.width


async def session(read, write) -> dict:
    await write(Describe().event())
    info = Info.from_event(await read())
    heard = await transcribe(read, write, spoken("make it less harsh"))
    seconds = await synthesize(read, write, "Less harsh: presence down 2 decibels.")
    await write(Transcript(text="less harsh").event())
    handled = await read()
    await write(Transcript(text="what's the weather").event())
    not_handled = await read()
    return {"info": info, "heard": heard, "seconds": seconds, "handled": handled, "not_handled": not_handled}


def run_in_own_loop(make_coroutine) -> dict:
    """Run the coroutine in a fresh event loop on its own thread (an earlier test may leave this thread's loop
    running, and asyncio.run refuses to nest)."""
    import threading

    box: dict = {}

    def target():
        try:
            box["result"] = asyncio.run(make_coroutine())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            box["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["result"]


def check(result: dict) -> None:
    info = result["info"]
    assert info.asr[0].models[0].name == "whisper-base-int8" and info.tts[0].voices and info.handle
    assert "harsh" in result["heard"].lower()
    assert 1.0 < result["seconds"] < 8.0
    assert Handled.is_type(result["handled"].type)
    assert Handled.from_event(result["handled"]).text.startswith("Less harsh")
    assert NotHandled.is_type(result["not_handled"].type)


@pytest.fixture
def env(tmp_path):
    """The server's own SENSE_HOME: preferences other tests recorded for the default user stay out of it."""
    return {**os.environ, "PYTHONUNBUFFERED": "1", "SENSE_HOME": str(tmp_path / "home")}


def test_wyoming_over_stdio(tmp_path, vibe_ace, env):
    async def run() -> dict:
        proc = await asyncio.create_subprocess_exec(*command(tmp_path, vibe_ace, "stdio://"), cwd=ROOT, env=env,
                                                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.DEVNULL, limit=1 << 24)
        try:
            read = lambda: asyncio.wait_for(async_read_event(proc.stdout), 180)  # noqa: E731
            write = lambda event: async_write_event(event, proc.stdin)  # noqa: E731
            return await session(read, write)
        finally:
            proc.kill()
            await proc.wait()

    check(run_in_own_loop(run))


def test_wyoming_over_tcp(tmp_path, vibe_ace, env):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def run() -> dict:
        proc = await asyncio.create_subprocess_exec(*command(tmp_path, vibe_ace, f"tcp://127.0.0.1:{port}"), cwd=ROOT,
                                                    env=env, stdout=asyncio.subprocess.DEVNULL,
                                                    stderr=asyncio.subprocess.DEVNULL)
        try:
            for _ in range(600):
                try:
                    client = AsyncTcpClient("127.0.0.1", port)
                    await client.connect()
                    break
                except OSError:
                    await asyncio.sleep(0.2)
            else:
                pytest.fail("sense wyoming did not listen within 120 s")
            read = lambda: asyncio.wait_for(client.read_event(), 180)  # noqa: E731
            try:
                return await session(read, client.write_event)
            finally:
                await client.disconnect()
        finally:
            proc.kill()
            await proc.wait()

    check(run_in_own_loop(run))
