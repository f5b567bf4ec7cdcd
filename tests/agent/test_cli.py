"""`sense run` on bad input: one clear line, no traceback, nothing written, input untouched."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf


def sense(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "agent.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=600)


def _bad_files(tmp: Path, excerpt: Path) -> dict[str, Path]:
    text = tmp / "notes.wav"
    text.write_text("this is not audio\n" * 50)
    truncated = tmp / "truncated.wav"
    truncated.write_bytes(excerpt.read_bytes()[: excerpt.stat().st_size // 2])
    empty = tmp / "empty.wav"
    sf.write(empty, np.zeros((0, 2), dtype=np.float32), 44100)
    return {"missing": tmp / "nope.wav", "not audio": text, "truncated": truncated, "zero-length": empty}


@pytest.mark.parametrize("case", ["missing", "not audio", "truncated", "zero-length"])
def test_bad_input_one_line_error_nothing_written(tmp_path, excerpt, case):
    path = _bad_files(tmp_path, excerpt)[case]
    before = sorted(p.name for p in tmp_path.iterdir())
    digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None
    proc = sense("run", str(path), "--request", "less harsh", "--no-llm", cwd=tmp_path)
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert path.name in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    if digest:
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


def test_help_describes_run():
    proc = subprocess.run([sys.executable, "-m", "agent.cli", "run", "--help"], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0
    for option in ("--request", "--output", "--user", "--listening-device", "--llm-url"):
        assert option in proc.stdout
