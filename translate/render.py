"""One track through one device: render it as the product does and measure what the device changed.

The DSP render is the agent's ``device_transfer`` + ``finalize`` stages for a device without a
listening device (see :mod:`translate.devices`): the device's transfer curve as one minimum-phase
FIR, then loudness matched to the track (ITU-R BS.1770) and true-peak limited to -1 dBTP. The DeMT
render (``method="demt"``) replaces the filter by :func:`demt.infer.apply_demt` with the device's
response, as the agent does for "use the neural model". Both are deterministic: the same track
and device give bit-identical numbers in any process.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from tools.analysis import band_energy_change_db
from tools.audio_io import load_audio
from tools.errors import SenseError
from tools.loudness import finalize
from tools.transfer import apply_fir
from translate.devices import DeviceKind, DeviceRef, load_catalogue

Method = Literal["dsp", "demt"]
CEILING_DBTP = -1.0  # agent.plan.FinalizeArgs.ceiling_dbtp
OCTAVE_CENTRES_HZ = (31.5, 63.0, 125.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0, 16000.0)


def _band_label(centre_hz: float) -> str:
    return f"{centre_hz / 1000:g}k" if centre_hz >= 1000 else f"{centre_hz:g}"


OCTAVE_BANDS_HZ: dict[str, tuple[float, float]] = {
    _band_label(c): (c / 2 ** 0.5, c * 2 ** 0.5) for c in OCTAVE_CENTRES_HZ}
"""Octave bands (IEC 61260 nominal centres 31.5 Hz-16 kHz, edges centre/sqrt(2)..centre*sqrt(2)), label -> Hz."""


class ExcerptError(SenseError, ValueError):
    """``--seconds``/``--start`` ask for an excerpt the track does not hold."""


@dataclass(eq=False)
class Track:
    """A track (or an excerpt of it) to render.

    Attributes:
        name: file name, e.g. 'Kevin_MacLeod_-_Vibe_Ace.hq.ogg'.
        samples: float32 (channels, n), [-1, 1].
        sample_rate: Hz.
        start_s: where the excerpt starts in the file, seconds.
    """

    name: str
    samples: np.ndarray
    sample_rate: int
    start_s: float = 0.0

    @property
    def duration_s(self) -> float:
        return self.samples.shape[-1] / self.sample_rate


def load_track(path: str | os.PathLike, seconds: float | None = None, start_s: float = 0.0) -> Track:
    """Read a track with :func:`tools.audio_io.load_audio`; optionally keep ``seconds`` from ``start_s``.

    Raises:
        tools.audio_io.AudioError: unreadable audio (one line naming the file).
        ExcerptError: ``seconds`` <= 0, ``start_s`` < 0, or ``start_s`` past the end.
    """
    audio = load_audio(path)
    if (seconds is not None and seconds <= 0) or start_s < 0:
        raise ExcerptError(f"{path}: --seconds must be > 0 and --start >= 0 (got {seconds}, {start_s})")
    first = int(round(start_s * audio.sample_rate))
    if first >= audio.samples.shape[-1]:
        raise ExcerptError(f"{path}: starts at {start_s:g} s but is only "
                           f"{audio.samples.shape[-1] / audio.sample_rate:.1f} s long")
    last = None if seconds is None else first + int(round(seconds * audio.sample_rate))
    samples = np.ascontiguousarray(audio.samples[:, first:last])
    return Track(Path(path).name, samples, audio.sample_rate, start_s)


class RenderResult(BaseModel):
    """What one device does to one track (after the product's loudness match and limiter).

    Attributes:
        track, device: names; kind: headphone | speaker; type: in-ear | earbud | over-ear | speaker.
        method: dsp | demt.  duration_s: audio rendered, seconds.
        band_balance_db: octave band label (OCTAVE_BANDS_HZ) -> energy change, dB, output vs the
            original, relative to the median band's change (a pure level change reads 0 dB).
        lufs_in: the track, LUFS.  lufs_device: the device render before the loudness match (its
            transfer is 0 dB over 300 Hz-3 kHz), LUFS.  lufs_out: the result, LUFS.
        true_peak_in_dbtp: the track.  true_peak_device_dbtp: after the loudness match, before the
            limiter.  true_peak_dbtp: the result (<= -1 dBTP).  limiter_gain_reduction_db: >= 0.
        render_s: wall time of this render, seconds.  worker: host:pid that rendered it.
    """

    model_config = ConfigDict(frozen=True, ser_json_inf_nan="constants")

    track: str
    device: str
    kind: DeviceKind
    type: str
    method: Method
    duration_s: float
    band_balance_db: dict[str, float]
    lufs_in: float
    lufs_device: float
    lufs_out: float
    true_peak_in_dbtp: float
    true_peak_device_dbtp: float
    true_peak_dbtp: float
    limiter_gain_reduction_db: float
    render_s: float
    worker: str

    def numbers(self) -> dict:
        """Every measured field (not the timing or the worker): equal for equal renders."""
        return self.model_dump(exclude={"render_s", "worker"})


def _device_audio(track: Track, ref: DeviceRef, method: Method, data_root: str) -> np.ndarray:
    catalogue = load_catalogue(data_root)
    if method == "demt":
        from demt.infer import apply_demt, load_checkpoint

        return apply_demt(track.samples, track.sample_rate, catalogue.demt_db[ref.name], load_checkpoint())
    return apply_fir(track.samples, catalogue.fir(ref, track.sample_rate))


def render(track: Track, ref: DeviceRef, method: Method, data_root: str) -> RenderResult:
    """Render ``track`` through ``ref`` and measure band balance, loudness and true peak.

    Args:
        track: the audio (float32 (channels, n)).
        ref: the device.
        method: 'dsp' (the product's FIR transfer) or 'demt' (the learned model).
        data_root: the data folder holding fr/ (loaded once per process).
    Returns:
        RenderResult.
    Raises:
        DataMissingError, demt.infer.CheckpointMissingError.
    """
    start = time.perf_counter()
    rendered = _device_audio(track, ref, method, data_root)
    out, facts = finalize(rendered, track.samples, track.sample_rate, ceiling_dbtp=CEILING_DBTP)
    balance = band_energy_change_db(track.samples, out, track.sample_rate, bands=OCTAVE_BANDS_HZ)
    return RenderResult(
        track=track.name, device=ref.name, kind=ref.kind, type=ref.type, method=method,
        duration_s=track.duration_s, band_balance_db=balance,
        lufs_in=facts["lufs_in"], lufs_device=facts["lufs_processed"], lufs_out=facts["lufs_out"],
        true_peak_in_dbtp=facts["true_peak_in_dbtp"], true_peak_device_dbtp=facts["true_peak_limiter_in_dbtp"],
        true_peak_dbtp=facts["true_peak_dbtp"], limiter_gain_reduction_db=facts["limiter_gain_reduction_max_db"],
        render_s=time.perf_counter() - start, worker=f"{socket.gethostname()}:{os.getpid()}")
