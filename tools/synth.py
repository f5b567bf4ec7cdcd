"""Render MIDI to audio with FluidSynth and a General MIDI soundfont.

Used to make multitrack music with known stems (separation evaluation on Slakh MIDI, DeMT
training data). FluidSynth and the FluidR3 GM soundfont are Debian packages (`fluidsynth`,
`fluid-soundfont-gm`), installed by scripts/setup.sh.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from tools.errors import SenseError

DEFAULT_SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")


class SynthUnavailable(SenseError, RuntimeError):
    """FluidSynth or the soundfont is missing."""


def soundfont_path() -> Path:
    """The General MIDI soundfont: $SENSE_SOUNDFONT, else Debian's FluidR3_GM.sf2.

    Raises: SynthUnavailable if fluidsynth is not on PATH or the soundfont file is missing.
    """
    path = Path(os.environ.get("SENSE_SOUNDFONT", DEFAULT_SOUNDFONT))
    if shutil.which("fluidsynth") is None or not path.is_file():
        raise SynthUnavailable(
            "rendering MIDI needs FluidSynth and a General MIDI soundfont: "
            "`apt-get install fluidsynth fluid-soundfont-gm` (or set SENSE_SOUNDFONT=/path/to/gm.sf2)")
    return path


def render_midi(midi_path: str | os.PathLike, sample_rate: int = 44100, *, gain: float = 0.5,
                seconds: float | None = None, offset_seconds: float = 0.0) -> np.ndarray:
    """Render a MIDI file to stereo audio.

    Args:
        midi_path: a Standard MIDI File.
        sample_rate: Hz.
        gain: FluidSynth master gain (its default 0.2 is quiet; 0.5 keeps dense GM mixes below 0 dBFS).
        seconds: keep this many seconds from `offset_seconds` (None: to the end).
        offset_seconds: seconds skipped at the start.

    Returns: float32 array, shape (2, samples), nominally in [-1, 1]; zero-padded to `seconds`
        when the rendering is shorter.

    Raises: SynthUnavailable if FluidSynth or the soundfont is missing; RuntimeError if FluidSynth fails.
    """
    soundfont = soundfont_path()
    with tempfile.TemporaryDirectory(prefix="sense-synth-") as folder:
        out = Path(folder) / "render.wav"
        done = subprocess.run(
            ["fluidsynth", "-ni", "-q", "-g", str(gain), "-r", str(sample_rate), "-O", "float",
             "-F", str(out), str(soundfont), str(midi_path)],
            capture_output=True, text=True)
        if done.returncode != 0 or not out.is_file():
            raise RuntimeError(f"fluidsynth failed on {midi_path}: {done.stderr.strip()[-300:]}")
        start = int(round(offset_seconds * sample_rate))
        stop = None if seconds is None else start + int(round(seconds * sample_rate))
        audio, _ = sf.read(out, start=start, stop=stop, dtype="float32", always_2d=True)
    audio = audio.T
    if seconds is not None and audio.shape[1] < stop - start:
        audio = np.pad(audio, ((0, 0), (0, stop - start - audio.shape[1])))
    return np.ascontiguousarray(audio)
