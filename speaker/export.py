"""A room's current filter as a CamillaDSP config (YAML file, or pushed live over its websocket).

The EQ bands become CamillaDSP ``Biquad`` filters; the device curve becomes a ``Conv`` filter of type
``Wav`` reading a minimum-phase FIR written next to the config (``ROOM-<hash>.wav``, the hash of the
curve and the sample rate, so a running CamillaDSP never reads a file that changes under it). The push
is ``SetConfigJson`` only, never followed by ``Reload`` (see :mod:`tools.camilladsp`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from speaker.room import RoomState
from tools.atomic import replace_file
from tools.camilladsp import camilladsp_config, config_yaml, push_config, write_fir_wav
from tools.transfer import minimum_phase_fir


def fir_folder() -> Path:
    """``SENSE_HOME/camilladsp``: where room FIR files are written."""
    from knowledge.config import sense_home

    return sense_home() / "camilladsp"


def room_config(state: RoomState, sample_rate: float, folder: Path | None = None, **devices: Any) -> dict[str, Any]:
    """The CamillaDSP config of ``state`` (bands, device curve as a FIR file, a preamp that never clips).

    Args:
        state: the room. sample_rate: Hz of the CamillaDSP pipeline.
        folder: where the FIR WAV goes (default :func:`fir_folder`); written only when the room has a curve.
        devices: ``capture=`` / ``playback=`` CamillaDSP device dicts (default Stdin / Stdout).
    Returns:
        The config dict (see :func:`tools.camilladsp.camilladsp_config`).
    """
    fir_path, fir = None, None
    if state.fir_db is not None:
        fir = minimum_phase_fir(np.asarray(state.fir_db.frequency_hz), np.asarray(state.fir_db.gain_db), sample_rate)
        digest = hashlib.sha256(fir.tobytes() + str(sample_rate).encode()).hexdigest()[:12]
        fir_path = (folder or fir_folder()) / f"{state.room}-{digest}.wav"
        if not fir_path.exists():
            fir_path.parent.mkdir(parents=True, exist_ok=True)
            write_fir_wav(fir, fir_path, sample_rate)
        fir_path = fir_path.resolve()
    return camilladsp_config(state.filters, sample_rate, fir_path=fir_path, fir=fir,
                             title=f"SENSE room {state.room}", **devices)


def write_room_yaml(state: RoomState, sample_rate: float, path: Path, *, overwrite: bool = False) -> Path:
    """Write :func:`room_config` as a CamillaDSP YAML file (atomically; the FIR beside it).

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is False.
    """
    from tools.atomic import write_new_file

    text = config_yaml(room_config(state, sample_rate, Path(path).parent))
    write = (lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return replace_file(Path(path), write) if overwrite else write_new_file(Path(path), write)


def push_room(state: RoomState, sample_rate: float, url: str, timeout_s: float = 5.0) -> None:
    """Send ``state`` to the CamillaDSP at ``url`` (``ws://host:port``) with ``SetConfigJson``.

    Raises:
        CamillaDspUnreachableError / CamillaDspError: see :func:`tools.camilladsp.push_config`.
    """
    push_config(url, room_config(state, sample_rate), timeout_s)
