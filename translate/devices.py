"""The devices a translation report renders through: every headphone model of the FR store and every
loudspeaker model of the ASR spinorama set, with the product's DSP transfer curve and DeMT response.

- A headphone's DSP curve is the one ``sense run`` applies when it renders a device without a
  listening device (agent.toolbox.TransferTool, plan from agent.planner): the model's mean
  measurement relative to its class target (:meth:`knowledge.fr_store.FRStore.target_for`),
  :func:`tools.transfer.transfer_curve` with 1/6-octave smoothing and boosts soft-limited to
  +6 dB, then clipped to [-30, +12] dB as the agent's finalize stage does.
- A loudspeaker's DSP curve is its listening-window response (anechoic: flat is neutral, so the
  reference is 0 dB) through the same :func:`transfer_curve` and clip. The agent cannot render
  loudspeakers by name yet; this is the DeMT definition of a speaker's response (demt.devices).
- A device's DeMT response is :class:`demt.devices.Device` ``catalogue_db`` (what
  :func:`demt.infer.device_response` returns for the name).

:func:`load_catalogue` is cached per process: a Dask worker loads the FR data once, then every
task on it reuses the catalogue and the FIR filters it has designed.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
from rapidfuzz import process

from agent.planner import TRANSFER_MAX_BOOST_DB, TRANSFER_SMOOTHING_OCTAVES
from agent.toolbox import MAX_CUT_DB
from knowledge.fr_store import FR_GRID_HZ, FRStore
from tools.eq import MAX_GAIN_DB
from tools.errors import SenseError
from tools.transfer import minimum_phase_fir, transfer_curve

#: The agent's transfer settings (the smoothing rounded as the plan stores it) and its filter limits.
SMOOTHING_OCTAVES = round(TRANSFER_SMOOTHING_OCTAVES, 4)
MAX_BOOST_DB = TRANSFER_MAX_BOOST_DB
CLIP_DB = (MAX_CUT_DB, MAX_GAIN_DB)

DeviceKind = Literal["headphone", "speaker"]
_LOADS = {"count": 0}  # how many catalogues this process has loaded (tests check: once per worker)
_LOCK = threading.Lock()


class UnknownDeviceError(SenseError, ValueError):
    """A device name in ``--devices`` matches no headphone or loudspeaker model."""


@dataclass(frozen=True)
class DeviceRef:
    """One device model to render through.

    Attributes:
        name: model name as stored ('Sony WH-1000XM4', 'KEF LS50').
        kind: 'headphone' | 'speaker'.
        type: 'in-ear' | 'earbud' | 'over-ear' | 'speaker'.
    """

    name: str
    kind: DeviceKind
    type: str


@dataclass(eq=False)
class Catalogue:
    """Loaded device data of one data folder.

    Attributes:
        root: the data folder (holds fr/autoeq and fr/speakers_asr).
        store: the headphone FR store.
        refs: every device, headphones then speakers, each sorted by name.
        demt_db: name -> DeMT response (``demt.devices.Device.catalogue_db``), float64 (481,) dB on
            FR_GRID_HZ; for a speaker also its DSP target (listening window, mean of its units).
    """

    root: Path
    store: FRStore
    refs: list[DeviceRef]
    demt_db: dict[str, np.ndarray] = field(repr=False)
    _firs: dict[tuple[str, int], np.ndarray] = field(default_factory=dict, repr=False)

    def ref(self, name: str) -> DeviceRef:
        """The device named exactly (case-insensitive). Raises UnknownDeviceError naming the closest."""
        folded = {r.name.casefold(): r for r in self.refs}
        found = folded.get(name.strip().casefold())
        if found is None:
            close = [m for m, _, _ in process.extract(name, [r.name for r in self.refs], limit=3)]
            raise UnknownDeviceError(f"unknown device {name!r}; closest: {', '.join(close)} "
                                     "(see `sense devices list`, or use --devices all|headphones|speakers)")
        return found

    def resolve(self, spec: str) -> list[DeviceRef]:
        """``all`` | ``headphones`` | ``speakers`` | comma-separated model names -> devices, in that order.

        Raises:
            UnknownDeviceError: a name matches no model, or the list is empty.
        """
        key = spec.strip().casefold()
        if key == "all":
            return list(self.refs)
        if key in ("headphones", "speakers"):
            return [r for r in self.refs if r.kind == key[:-1]]
        names = [n for n in (part.strip() for part in spec.split(",")) if n]
        if not names:
            raise UnknownDeviceError("no device named; use --devices all|headphones|speakers|NAME,NAME")
        return list(dict.fromkeys(self.ref(n) for n in names))

    def dsp_curve(self, ref: DeviceRef) -> np.ndarray:
        """The DSP transfer curve the product applies for this device, float64 (481,) dB on FR_GRID_HZ."""
        if ref.kind == "speaker":
            target, reference = self.demt_db[ref.name], np.zeros_like(FR_GRID_HZ)
        else:
            target, reference = self.store.curve(ref.name).db, self.store.target_for(ref.name).db
        curve = transfer_curve(FR_GRID_HZ, target, reference, smoothing=SMOOTHING_OCTAVES, max_boost_db=MAX_BOOST_DB)
        return np.clip(curve, *CLIP_DB)

    def fir(self, ref: DeviceRef, sample_rate: int) -> np.ndarray:
        """The minimum-phase FIR of :meth:`dsp_curve` at ``sample_rate`` (designed once per process)."""
        key = (ref.name, int(sample_rate))
        with _LOCK:
            cached = self._firs.get(key)
        if cached is None:
            cached = minimum_phase_fir(FR_GRID_HZ, self.dsp_curve(ref), sample_rate)
            with _LOCK:
                self._firs[key] = cached
        return cached


def _speakers(root: Path, store: FRStore):
    from demt.devices import load_devices
    from demt.speakers import load_speakers

    return load_devices(store, load_speakers(root / "fr" / "speakers_asr"))


@lru_cache(maxsize=2)
def load_catalogue(root: str) -> Catalogue:
    """Every headphone model (``root/fr/autoeq``) and loudspeaker model (``root/fr/speakers_asr``).

    Cached per process and folder: a worker pays the load (about a second) once.

    Args:
        root: the data folder (``knowledge.config.data_dir()``), as a string.
    Raises:
        DataMissingError: either folder is missing or unreadable.
    """
    path = Path(root)
    store = FRStore.load(path / "fr" / "autoeq")
    devices = _speakers(path, store)
    refs = [DeviceRef(d.name, "headphone", d.type) for d in devices if d.kind == "headphone"]
    refs += [DeviceRef(d.name, "speaker", "speaker") for d in devices if d.kind == "speaker"]
    _LOADS["count"] += 1
    return Catalogue(path, store, refs, {d.name: d.catalogue_db for d in devices})


def catalogue_loads() -> int:
    """How many catalogues this process has loaded (a worker that reuses its cache reports 1)."""
    return _LOADS["count"]
