"""Live audio input for ``sense voice``: the microphone (sounddevice, optional) or raw PCM on stdin."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import numpy as np

from tools.errors import SenseError

RATE = 16000
BLOCK = 1600
"""Samples per block (100 ms), as Home Assistant's satellites send them."""


def listen_microphone(device: str | int | None = None) -> Iterator[np.ndarray]:
    """16 kHz mono float32 blocks of 100 ms from the default (or given) input device, forever.

    Raises:
        SenseError: sounddevice / PortAudio is not installed, or no input device works.
    """
    try:
        import sounddevice as sd
    except (ImportError, OSError) as exc:
        raise SenseError(f"the microphone needs sounddevice and PortAudio ({exc}); run `pip install sounddevice` "
                         "and `apt-get install libportaudio2`, or use --request FILE / --stdin") from None
    try:
        with sd.InputStream(samplerate=RATE, channels=1, dtype="float32", blocksize=BLOCK, device=device) as stream:
            while True:
                block, _ = stream.read(BLOCK)
                yield block[:, 0].copy()
    except sd.PortAudioError as exc:
        raise SenseError(f"cannot open the microphone: {exc}") from None


def listen_stdin() -> Iterator[np.ndarray]:
    """16 kHz mono s16le PCM blocks from stdin (e.g. ``arecord -r 16000 -f S16_LE -c 1 | sense voice --stdin``)."""
    while block := sys.stdin.buffer.read(BLOCK * 2):
        yield np.frombuffer(block[: len(block) // 2 * 2], dtype="<i2").astype(np.float32) / 32768.0
