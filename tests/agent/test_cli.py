"""The command line's one error boundary: every error a user can cause in `sense run`, `chat`, `eval`,
`demt` and `separate` ends in one clear line (no traceback), nothing written, input untouched."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf


def sense(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "sense_cli", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=600, input=stdin)


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
    proc = subprocess.run([sys.executable, "-m", "sense_cli", "run", "--help"], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0
    for option in ("--request", "--output", "--user", "--listening-device", "--llm-url"):
        assert option in proc.stdout


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    """The one ``error:`` line of a failed command (asserting there is exactly one and no traceback)."""
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    return lines[0]


def test_missing_demt_checkpoint_is_one_line(tmp_path):
    line = one_error_line(sense("demt", "eval", "--checkpoint", str(tmp_path / "nowhere"), cwd=tmp_path))
    assert "no DeMT checkpoint" in line and "nowhere" in line
    line = one_error_line(sense("demt", "export", str(tmp_path / "last.pt"), cwd=tmp_path))
    assert "no training checkpoint" in line


def test_bad_conversation_file_is_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("- id: x\n  category: c\n  audio: nope.ogg\n  turns: []\n")
    proc = sense("eval", str(bad), "--report", str(tmp_path / "r"), cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr + proc.stdout
    assert "bad.yaml" in proc.stdout + proc.stderr


def test_separate_refuses_to_overwrite_in_one_line(tmp_path, excerpt):
    folder = tmp_path / "stems"
    folder.mkdir()
    (folder / "vocals.wav").write_bytes(b"mine")
    line = one_error_line(sense("separate", str(excerpt), "--output-dir", str(folder), cwd=tmp_path))
    assert "already exist" in line and (folder / "vocals.wav").read_bytes() == b"mine"


def test_chat_bad_audio_is_one_line_and_the_chat_goes_on(tmp_path):
    text = tmp_path / "notes.wav"
    text.write_text("not audio")
    proc = sense("chat", "--no-llm", cwd=tmp_path, stdin=f"/audio {text}\n/quit\n")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr + proc.stdout
    assert [line for line in proc.stderr.splitlines() if line.startswith("error:")] and "notes.wav" in proc.stderr
