"""`sense speaker serve` as a process: its control API, and `kill -9` + restart keep the room's settings."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(tmp_path: Path, vibe_ace: Path, port: int, out: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "sense_cli", "speaker", "serve", str(vibe_ace), "--room", "kitchen", "--db",
           str(tmp_path / "rooms.sqlite"), "--output", str(tmp_path / out), "--realtime", "--no-llm", "--port", str(port)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=os.environ.copy())
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/rooms/kitchen", timeout=1).json()["playing"]:
                return proc
        except (httpx.HTTPError, KeyError):
            time.sleep(0.2)
    proc.kill()
    pytest.fail(f"the service did not start: {proc.stdout.read().decode()[-2000:]}")


def test_kill_9_and_restart_bring_back_settings_and_volume(tmp_path, vibe_ace):
    port = free_port()
    api = f"http://127.0.0.1:{port}/rooms/kitchen"
    proc = start(tmp_path, vibe_ace, port, "first.wav")
    try:
        time.sleep(1.5)  # some music in the room's input
        tone = httpx.post(f"{api}/request", json={"text": "less harsh"}, timeout=60).json()
        volume = httpx.post(f"{api}/volume", json={"volume_db": -15.5}, timeout=10).json()
        before = httpx.get(api, timeout=10).json()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert tone["action"] == "tone" and volume["state"]["volume_db"] == -15.5
    assert not (tmp_path / "first.wav").exists()  # a killed stream leaves no half file under the final name
    proc = start(tmp_path, vibe_ace, port, "second.wav")
    try:
        after = httpx.get(api, timeout=10).json()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert after["settings"]["filters"] == before["settings"]["filters"] != []
    assert after["settings"]["volume_db"] == before["settings"]["volume_db"] == -15.5
    assert after["curve"] == before["curve"]
