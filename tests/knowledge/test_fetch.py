"""knowledge.fetch against a local HTTP server laid out like GitHub (never a non-loopback address)."""

from __future__ import annotations

import functools
import hashlib
import http.server
import shutil
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

from knowledge.config import DataMissingError
from knowledge.fetch import MANIFEST, fetch_data, upstream_url
from knowledge.fr_store import FRStore


def _closed_port() -> int:
    """A loopback port that was free a moment ago and has nothing listening now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def upstream(tmp_path, shared_data, monkeypatch):
    """Serve <repo>/<commit>/<upstream path> copies of the shared files on 127.0.0.1; yields (root, base_urls)."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    root = tmp_path / "upstream"
    for item in MANIFEST:
        dst = root / item.repo / item.commit / item.upstream_path
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shared_data / item.relpath, dst)
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    yield root, {item.repo: f"http://127.0.0.1:{port}/{item.repo}/" for item in MANIFEST}
    server.shutdown()
    server.server_close()


def test_manifest_hashes_match_the_shared_copies(shared_data):
    assert len(MANIFEST) == 15  # 13 AutoEq CSVs, eqdescriptors.json, Vibe Ace
    for item in MANIFEST:
        assert hashlib.sha256((shared_data / item.relpath).read_bytes()).hexdigest() == item.sha256, item.relpath


def test_default_urls_point_at_github_commits():
    item = next(i for i in MANIFEST if i.relpath.endswith("Apple AirPods Pro (2nd generation).csv"))
    assert upstream_url(item) == (
        "https://github.com/jaakkopasanen/AutoEq/raw/95ec2dab9abfce486e1dfcfdbb5e9827b9b953a8/"
        "measurements/rtings/data/in-ear/Apple%20AirPods%20Pro%20%282nd%20generation%29.csv"
    )


def test_fetch_lays_out_a_usable_data_dir(upstream, tmp_path, shared_data):
    _, base_urls = upstream
    dest = fetch_data(tmp_path / "data", base_urls=base_urls)
    for item in MANIFEST:
        assert (dest / item.relpath).read_bytes() == (shared_data / item.relpath).read_bytes()
    assert not (dest / "fr" / "autoeq" / "index.csv").exists()
    store = FRStore.load(dest / "fr" / "autoeq")  # folder walk, no index.csv
    shared = FRStore.load(shared_data / "fr" / "autoeq")
    fetched = {Path(i.relpath).stem for i in MANIFEST if i.relpath.startswith("fr/autoeq/measurements/")}
    assert store.devices() == sorted(fetched) and set(fetched) <= set(shared.devices())
    for name in store.devices():  # each fetched file gives the curve of the shared copy
        assert store.device_type(name) == shared.device_type(name)
        for m in store.measurements(name):
            twin = next(s for s in shared.measurements(name) if s.source == m.source)
            np.testing.assert_allclose(m.db, twin.db)
    assert store.target_for("Apple AirPods Max").device == "Rtings Harman over-ear 2018"


def test_second_fetch_reuses_files_without_network(upstream, tmp_path):
    _, base_urls = upstream
    dest = fetch_data(tmp_path / "data", base_urls=base_urls)
    dead = {repo: f"http://127.0.0.1:{_closed_port()}/" for repo in base_urls}
    assert fetch_data(dest, base_urls=dead) == dest


def test_checksum_mismatch_is_one_clear_line(upstream, tmp_path):
    root, base_urls = upstream
    item = MANIFEST[3]
    (root / item.repo / item.commit / item.upstream_path).write_text("frequency,raw\n20,0\n20000,0\n")
    with pytest.raises(DataMissingError) as err:
        fetch_data(tmp_path / "data", base_urls=base_urls)
    message = str(err.value)
    assert "\n" not in message and item.relpath in message and "SENSE_DATA_DIR" in message
    assert not (tmp_path / "data" / item.relpath).exists()  # no corrupt file left behind


def test_unreachable_server_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    closed = {item.repo: f"http://127.0.0.1:{_closed_port()}/" for item in MANIFEST}
    with pytest.raises(DataMissingError) as err:
        fetch_data(tmp_path / "data", base_urls=closed)
    assert "\n" not in str(err.value) and "SENSE_DATA_DIR" in str(err.value)
    assert MANIFEST[0].relpath in str(err.value)
