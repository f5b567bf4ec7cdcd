"""CamillaDSP export: a room's filter as a CamillaDSP v2/v3 config, and pushing it to a running engine.

CamillaDSP (https://github.com/HEnquist/camilladsp) is an IIR/FIR engine for Linux, macOS and Windows; a
home speaker can run it between the player and the sound card. Its config (README, sections Devices,
Filters, Pipeline; v2.0 and v3.0 read the same filter syntax) is YAML or JSON::

    devices:   {samplerate: 48000, chunksize: 1024, capture: {type: Stdin, ...}, playback: {...}}
    filters:
      preamp:  {type: Gain, parameters: {gain: -6.1, scale: dB}}
      room_fir: {type: Conv, parameters: {type: Wav, filename: /path/room.wav}}
      eq_01:   {type: Biquad, parameters: {type: Peaking, freq: 1000.0, gain: -3.0, q: 1.41}}
    pipeline:
      - {type: Filter, channels: [0], names: [preamp, room_fir, eq_01]}   # v3 (v2: channel: 0)

Filter types, :class:`tools.eq.Filter` -> CamillaDSP Biquad: peaking -> ``Peaking``, low_shelf ->
``Lowshelf``, high_shelf -> ``Highshelf`` (both with ``q``: CamillaDSP's biquad.rs uses the RBJ
cookbook's shelf with Q, as tools.eq does), low_pass -> ``Lowpass``, high_pass -> ``Highpass`` (freq, q).

The preamp is AutoEq's rule as in :func:`tools.export.preamp_db`: minus the largest boost of everything
the config applies (biquads plus the FIR), rounded down to 0.1 dB, so a full-scale input never clips.

Websocket control (CamillaDSP's websocket.md, v1-v4): a command with an argument is ``{"Name": argument}``
as a JSON text frame; the reply is ``{"Name": {"result": "Ok" | "Error", "value": ...}}``.
``SetConfigJson`` takes the whole config as a JSON string and applies it at once (CamillaDSP validates it
first and answers Error if it is invalid); ``Reload`` would re-read the config *file* from disk, undoing
the pushed config, so :func:`push_config` never sends it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.signal
import soundfile as sf
import yaml

from tools.atomic import replace_file, write_new_file
from tools.eq import Filter
from tools.errors import SenseError
from tools.export import EVAL_GRID_HZ, combined_response_db

BIQUAD_TYPES: dict[str, str] = {
    "peaking": "Peaking", "low_shelf": "Lowshelf", "high_shelf": "Highshelf",
    "low_pass": "Lowpass", "high_pass": "Highpass",
}
"""tools.eq filter type -> CamillaDSP Biquad ``parameters.type``."""
DEFAULT_CHUNKSIZE = 1024
"""CamillaDSP's suggested chunk size at 44.1/48 kHz (21 ms)."""
PREAMP_NAME, FIR_NAME = "sense_preamp", "sense_room_fir"


class CamillaDspError(SenseError, RuntimeError):
    """CamillaDSP refused a command (its reason in the message when it gives one)."""


class CamillaDspUnreachableError(CamillaDspError):
    """No CamillaDSP websocket answered at the URL (not running, wrong port, no ``-p`` option, timeout)."""


def fir_response_db(fir: np.ndarray, sample_rate: float, frequency_hz: np.ndarray = EVAL_GRID_HZ) -> np.ndarray:
    """Magnitude response of an FIR, dB, at ``frequency_hz`` (held at Nyquist above it), float64 same shape.

    Source: scipy.signal.freqz.
    """
    freqs = np.minimum(np.asarray(frequency_hz, dtype=np.float64), sample_rate / 2)
    _, h = scipy.signal.freqz(np.asarray(fir, dtype=np.float64), worN=freqs.ravel(), fs=sample_rate)
    return 20.0 * np.log10(np.maximum(np.abs(h), 1e-30)).reshape(freqs.shape)


def config_preamp_db(filters: list[Filter], sample_rate: float, fir: np.ndarray | None = None) -> float:
    """``-max(0, largest boost of filters + FIR)``, rounded down to 0.1 dB (tools.export's rule, at ``sample_rate``).

    Evaluated on :data:`tools.export.EVAL_GRID_HZ` (2000 log-spaced points, 20 Hz-20 kHz).
    """
    graphic = None if fir is None else (EVAL_GRID_HZ, fir_response_db(fir, sample_rate))
    peak = float(np.max(combined_response_db(filters, graphic, EVAL_GRID_HZ, sample_rate)))
    return -math.ceil(max(peak, 0.0) * 10.0 - 1e-9) / 10.0 + 0.0


def biquad_filter(flt: Filter) -> dict[str, Any]:
    """One CamillaDSP Biquad filter definition, e.g. ``{"type": "Biquad", "parameters": {"type": "Peaking",
    "freq": 1000.0, "gain": -3.0, "q": 1.41}}`` (pass filters have no gain)."""
    params: dict[str, Any] = {"type": BIQUAD_TYPES[flt.type], "freq": float(flt.frequency_hz)}
    if flt.type not in ("low_pass", "high_pass"):
        params["gain"] = float(flt.gain_db)
    params["q"] = float(flt.q)
    return {"type": "Biquad", "description": flt.describe(), "parameters": params}


def _device(given: dict[str, Any] | None, kind: str, channels: int) -> dict[str, Any]:
    """A capture/playback device dict: ``given`` (channels filled in when missing) or stdio, FLOAT32LE."""
    if given is None:
        return {"type": kind, "channels": channels, "format": "FLOAT32LE"}
    return {"channels": channels, **given}


def camilladsp_config(filters: list[Filter], sample_rate: float, *, fir_path: str | Path | None = None,
                      fir: np.ndarray | None = None, channels: int = 2, gain_db: float = 0.0,
                      capture: dict[str, Any] | None = None, playback: dict[str, Any] | None = None,
                      chunksize: int = DEFAULT_CHUNKSIZE, version: Literal[2, 3] = 3,
                      title: str = "SENSE room EQ") -> dict[str, Any]:
    """A CamillaDSP config that applies a room's filter to every channel.

    Per channel, in order: a Gain filter (the preamp plus ``gain_db``), the device-transfer FIR (a ``Conv``
    filter of type ``Wav`` reading ``fir_path``) when given, then one Biquad per band. Bands at or above
    Nyquist are left out, as tools.eq.design_sos does.

    Args:
        filters: the EQ bands, applied in order.
        sample_rate: Hz (``devices.samplerate``).
        fir_path: a WAV file holding the device-transfer FIR (see :func:`write_fir_wav`); an absolute path
            is safest (CamillaDSP resolves a relative one against its own working folder). None: no FIR.
        fir: the FIR's taps, float array (taps,), for the preamp; when None and ``fir_path`` is given, the
            file is read (it must then exist).
        channels: capture and playback channels.
        gain_db: an extra trim, dB, <= 0 (a boost could clip).
        capture, playback: CamillaDSP device dicts, e.g. ``{"type": "Alsa", "device": "hw:0", "format":
            "S32LE"}`` (``channels`` filled in when missing); default ``Stdin`` / ``Stdout`` FLOAT32LE.
        chunksize: samples per chunk (``devices.chunksize``).
        version: 3 (pipeline steps say ``channels: [n]``) or 2 (``channel: n``).
        title: the config's title.
    Returns:
        The config as a dict of plain types (JSON and YAML ready): title, description, devices, mixers
        (empty), filters, pipeline.
    Raises:
        ValueError: gain_db > 0, channels < 1, or a version other than 2 or 3.
        soundfile.LibsndfileError: fir is None and fir_path cannot be read.
    """
    if gain_db > 0 or channels < 1 or version not in (2, 3):
        raise ValueError("need gain_db <= 0, channels >= 1 and version 2 or 3")
    if fir is None and fir_path is not None:
        fir = sf.read(str(fir_path), dtype="float64", always_2d=True)[0][:, 0]
    bands = [f for f in filters if f.frequency_hz < sample_rate / 2]
    preamp = config_preamp_db(bands, sample_rate, fir if fir_path is not None else None)
    defs: dict[str, Any] = {PREAMP_NAME: {"type": "Gain", "description": "SENSE preamp: no clipping",
                                          "parameters": {"gain": float(preamp + gain_db), "scale": "dB"}}}
    if fir_path is not None:
        defs[FIR_NAME] = {"type": "Conv", "description": "SENSE device transfer",
                          "parameters": {"type": "Wav", "filename": str(fir_path), "channel": 0}}
    defs |= {f"sense_eq_{i:02d}": biquad_filter(flt) for i, flt in enumerate(bands, 1)}
    names = list(defs)
    key = (lambda ch: {"channels": [ch]}) if version == 3 else (lambda ch: {"channel": ch})
    pipeline = [{"type": "Filter", **key(ch), "names": names} for ch in range(channels)]
    devices = {"samplerate": int(round(sample_rate)), "chunksize": int(chunksize),
               "capture": _device(capture, "Stdin", channels), "playback": _device(playback, "Stdout", channels)}
    return {"title": title, "description": f"{len(bands)} EQ bands, preamp {preamp:.1f} dB",
            "devices": devices, "mixers": {}, "filters": defs, "pipeline": pipeline}


def config_yaml(config: dict[str, Any]) -> str:
    """The config as CamillaDSP's YAML file text (keys in the dict's order; ``yaml.safe_load`` reads it back equal)."""
    return yaml.safe_dump(config, sort_keys=False, default_flow_style=False, allow_unicode=True)


def write_fir_wav(fir: np.ndarray, path: str | Path, sample_rate: float, *, overwrite: bool = False) -> Path:
    """Write an FIR as a mono 32-bit float WAV, the coefficient file a ``Conv`` filter of type ``Wav`` reads.

    Atomic (temp file, fsync, link/rename: CamillaDSP never reads a half-written file).

    Args:
        fir: float array (taps,).
        path: the .wav file.
        sample_rate: Hz, written in the header (CamillaDSP ignores it; it documents the rate the FIR is for).
        overwrite: replace an existing file (a room's filter updated); False refuses to.
    Returns:
        ``path`` as a Path.
    Raises:
        ValueError: fir not 1-D, empty or non-finite.
        OutputExistsError: the file exists and ``overwrite`` is False.
    """
    taps = np.asarray(fir, dtype=np.float64)
    if taps.ndim != 1 or taps.size == 0 or not np.isfinite(taps).all():
        raise ValueError(f"fir must be a non-empty, finite 1-D array, got shape {taps.shape}")

    def write(tmp: Path) -> None:
        sf.write(str(tmp), taps.astype(np.float32), int(round(sample_rate)), subtype="FLOAT", format="WAV")

    return (replace_file if overwrite else write_new_file)(path, write)


def _reply_error(reply: Any, command: str) -> str | None:
    """None when ``reply`` says ``command`` succeeded, else the reason (result plus any value/message)."""
    if isinstance(reply, dict) and isinstance(reply.get(command), dict):
        body = reply[command]  # v1-v4: {"SetConfigJson": {"result": "Ok"}}
    elif isinstance(reply, dict) and reply.get("reply") == command:
        body = reply  # newer: {"reply": "SetConfigJson", "result": "Ok"}
    else:
        return f"unexpected reply {json.dumps(reply)[:200]}"
    result = body.get("result")
    if result == "Ok":
        return None
    detail = body.get("message") or body.get("value")
    return f"{result}: {detail}" if detail else f"{result} (CamillaDSP's log says why)"


def _command(url: str, command: str, argument: Any, timeout_s: float) -> dict:
    """Send one command over a new websocket connection and return its reply (parsed), checked Ok."""
    from websockets.exceptions import InvalidURI, WebSocketException
    from websockets.sync.client import connect

    message = json.dumps(command if argument is None else {command: argument})
    try:
        with connect(url, open_timeout=timeout_s, close_timeout=timeout_s) as ws:
            ws.send(message)
            raw = ws.recv(timeout=timeout_s)
    except InvalidURI as exc:
        raise CamillaDspUnreachableError(f"{url!r} is not a websocket URL (e.g. ws://127.0.0.1:1234): {exc}") from exc
    except (OSError, TimeoutError, WebSocketException) as exc:
        raise CamillaDspUnreachableError(
            f"cannot reach CamillaDSP at {url} ({type(exc).__name__}: {exc}); is it running with "
            "its websocket server on (-p PORT)?") from exc
    try:
        reply = json.loads(raw)
    except (TypeError, ValueError) as exc:
        raise CamillaDspError(f"CamillaDSP at {url} sent a reply that is not JSON: {str(raw)[:200]!r}") from exc
    error = _reply_error(reply, command)
    if error is not None:
        raise CamillaDspError(f"CamillaDSP at {url} refused {command}: {error}")
    return reply


def push_config(url: str, config: dict[str, Any], timeout_s: float = 5.0) -> None:
    """Apply a config to a running CamillaDSP: one ``SetConfigJson`` command, never followed by ``Reload``.

    Args:
        url: CamillaDSP's websocket, e.g. ``ws://127.0.0.1:1234`` (camilladsp -p 1234).
        config: a config dict (:func:`camilladsp_config`).
        timeout_s: limit for connecting and for the reply, seconds.
    Raises:
        CamillaDspUnreachableError: nothing answered (refused, timeout, not a websocket, bad URL).
        CamillaDspError: the reply is not Ok (CamillaDSP found the config invalid; its reason when given).
    Source: CamillaDSP websocket.md, "SetConfigJson: Provide a new config as a JSON string. Applied directly."
    """
    _command(url, "SetConfigJson", json.dumps(config), timeout_s)


def get_config(url: str, timeout_s: float = 5.0) -> dict[str, Any] | None:
    """The config a running CamillaDSP applies (``GetConfigJson``), as a dict; None when it has none.

    Raises:
        CamillaDspUnreachableError, CamillaDspError: as :func:`push_config`.
    """
    reply = _command(url, "GetConfigJson", None, timeout_s)
    body = reply.get("GetConfigJson", reply)
    value = body.get("value")
    return json.loads(value) if isinstance(value, str) and value.strip() else None
