"""Fetch the part of the shared data set the main job needs, from its public upstream.

Used by :func:`knowledge.config.data_dir` when neither ``SENSE_DATA_DIR`` nor ``../shared/data``
exists (a user's own machine). Every file is a byte-for-byte upstream copy, pinned to a commit
and checked against its sha256 by pooch; the result is laid out like the data dir, without
``fr/autoeq/index.csv`` (not upstream: :meth:`FRStore.load` walks the folder instead).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pooch
import requests

from tools.errors import DataMissingError

log = logging.getLogger(__name__)

AUTOEQ = "jaakkopasanen/AutoEq"
AUDEALIZE = "interactiveaudiolab/audealize_api"
LIBROSA_DATA = "librosa/data"


@dataclass(frozen=True)
class DataFile:
    """One file of the data set: where it goes, where it comes from, what it must hash to."""

    relpath: str  # path under the data dir
    repo: str  # GitHub owner/name
    commit: str  # commit (full or abbreviated) the file is pinned to
    upstream_path: str  # path inside the repository
    sha256: str


def _autoeq(relpath: str, commit: str, sha256: str, upstream: str | None = None) -> DataFile:
    """An AutoEq file; ``measurements/<source>/<type>/x.csv`` is under ``measurements/<source>/data/`` upstream."""
    if upstream is None:
        _, source, rest = relpath.split("/", 2)
        upstream = f"measurements/{source}/data/{rest}"
    return DataFile(f"fr/autoeq/{relpath}", AUTOEQ, commit, upstream, sha256)


_A1, _A2, _A3 = (
    "f624f4f7d0cfaf702fb206827abb5a54cf6be6ba",
    "95ec2dab9abfce486e1dfcfdbb5e9827b9b953a8",
    "8616bed4a616c4c0a2dbeb9ff67907cf2e521b39",
)

MANIFEST: tuple[DataFile, ...] = (
    _autoeq("measurements/oratory1990/earbud/Apple AirPods.csv", _A1,
            "0e3949018ffc0893424ab69ddacc588bbb34ef1835dc5f28af7df94e4a75df38"),
    _autoeq("measurements/oratory1990/in-ear/Samsung Galaxy Buds2 Pro.csv", "d00f69e53ea57b16582b80e17622ad263a03abe0",
            "434bfc0eaee5cfe264dcc79dafb25dc1d99f54d5a22718bdcccd1e015ca92ef7"),
    _autoeq("measurements/oratory1990/in-ear/Sony WF-1000XM4.csv", _A1,
            "161ac97a97f6ac29c6392ea7339b02199c4c0f0973285d93fd4c8fc1560c39eb"),
    _autoeq("measurements/oratory1990/over-ear/Sony WH-1000XM4.csv", _A1,
            "ef4c58f55935930a0a69eb8f50d25cee5ec474c329deb3c15e8d48d365d512c5"),
    _autoeq("measurements/rtings/in-ear/Apple AirPods Pro (2nd generation).csv", _A2,
            "73381ac86195f56679117811c8e1b8ac948ccf41ef5cfe2cc15a63ece21ed002"),
    _autoeq("measurements/rtings/in-ear/Apple AirPods Pro.csv", _A2,
            "35a6d95d582d3876e5f8eb28390a6db0ccdfd4ddba46ca1b1d2c0e66592e59f4"),
    _autoeq("measurements/rtings/in-ear/Google Pixel Buds Pro.csv", _A1,
            "babd66a2f0443a882b341cb07bd7be9dd7a92f32805fb0bf6127d321dfce550e"),
    _autoeq("measurements/rtings/over-ear/Apple AirPods Max.csv", _A1,
            "427356e6bea85fc298590b78911fd586c76313ee3803ada905fd8008ee5950c4"),
    _autoeq("measurements/rtings/over-ear/Bose QuietComfort 35 II.csv", _A1,
            "0a5e4232e157a7791b99ca56acdd9ba99d5258ee89ac9ddbfb32684e5cc685a1"),
    _autoeq("measurements/rtings/over-ear/Sony WH-1000XM4.csv", _A2,
            "38fac6748b04f021f08ed1bed83a91764ac44193e0ae70fe046cec1571897ef5"),
    _autoeq("targets/Harman in-ear 2019v2.csv", "e6a7b6cd03d7b0fd55b3ee91fa865252e943f5c3",
            "9f7acab72e1f7507889a13d4278390089d495ccedcfd3aa48df939a6c7491139", "targets/harman_in-ear_2019v2.csv"),
    _autoeq("targets/Harman over-ear 2018.csv", _A3,
            "12797010a78a693adeaa3e91f961e88cca3d25abc7883d144369915fc7c18f7c", "targets/Harman over-ear 2018.csv"),
    _autoeq("targets/Rtings Harman over-ear 2018.csv", _A3,
            "b0e22d6a1157f4fab3c7a50f307a41d5d5a340b0e0ffe968bd43b2519c2febc8",
            "targets/Rtings Harman over-ear 2018.csv"),
    DataFile("prefs/audealize/eqdescriptors.json", AUDEALIZE, "01c59eaf", "static/data/eqdescriptors.json",
             "640c196665e251b72df9e199ead06dfa1f352a5f09de28de2de7e1e8f9fb7353"),
    DataFile("music/Kevin_MacLeod_-_Vibe_Ace.hq.ogg", LIBROSA_DATA, "450cdd8a", "audio/Kevin_MacLeod_-_Vibe_Ace.hq.ogg",
             "73d6443ef90a7c022f164e5aa90e56c2291585930b39b1656d0765abbc1f1779"),
)
"""The files fetched (commits from the data's SOURCES.md, and for AutoEq the commit each file was taken from)."""


def upstream_url(item: DataFile, base_urls: Mapping[str, str] | None = None) -> str:
    """URL of one file: ``<base><commit>/<upstream path>``, base default ``https://github.com/<repo>/raw/``."""
    base = (base_urls or {}).get(item.repo, f"https://github.com/{item.repo}/raw/")
    return f"{base.rstrip('/')}/{item.commit}/{quote(item.upstream_path)}"


def fetch_data(dest: Path, base_urls: Mapping[str, str] | None = None) -> Path:
    """Download (or reuse) every MANIFEST file, checking its sha256, into ``dest``.

    Args:
        dest: target data dir (knowledge.config uses ``cache_dir()/data``). Files already there with the right
            hash are not downloaded again.
        base_urls: per repository ("owner/name") URL prefix replacing ``https://github.com/<repo>/raw/``
            (a mirror, or a local server in tests); the commit and upstream path are appended.
    Returns:
        ``dest``, laid out like the shared data dir (``fr/autoeq/...``, ``prefs/audealize/...``, ``music/...``).
    Raises:
        DataMissingError: a file could not be downloaded or its hash did not match (one line naming
            the file and how to set SENSE_DATA_DIR).
    """
    dest = Path(dest)
    downloader = pooch.HTTPDownloader(progressbar=False, timeout=30)
    pooch.get_logger().setLevel(logging.WARNING)  # one line on failure, nothing per file on success
    for item in MANIFEST:
        url = upstream_url(item, base_urls)
        target = dest / item.relpath
        try:
            pooch.retrieve(
                url, known_hash=f"sha256:{item.sha256}", fname=target.name, path=target.parent,
                downloader=downloader, progressbar=False,
            )
        except (requests.RequestException, ValueError, OSError) as exc:
            reason = ("no network connection" if isinstance(exc, requests.ConnectionError)
                      else " ".join(str(exc).split())[:160])
            raise DataMissingError(
                f"shared data file {item.relpath} is missing and could not be fetched ({reason}); "
                "set SENSE_DATA_DIR to a folder holding fr/, music/ and prefs/ (see the data README)"
            ) from exc
    return dest
