"""Atomic creation of new files that never replaces an existing one."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from tools.errors import OutputExistsError


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_temp(folder: Path, name: str, write: Callable[[Path], None]) -> Path:
    """A hidden, fsynced temp file in ``folder`` filled by ``write``, with a normal new file's mode."""
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".part")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private
        with tmp.open("rb+") as fh:
            os.fsync(fh.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def write_new_file(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Create ``path`` atomically: ``write`` fills a hidden temp file in the same folder, which is
    fsynced and then hard-linked into place (fails if ``path`` exists; on file systems without
    hard links: checked, then renamed), and the folder is fsynced.

    Args:
        path: the new file.
        write: called with the temp file's path; writes the whole content there.
    Returns:
        ``path`` as a Path.
    Raises:
        FileExistsError: ``path`` exists (checked before writing, and again atomically at the end).
        FileNotFoundError: the folder does not exist.
        Whatever ``write`` raises (the temp file is removed).
    """
    path = Path(path)
    if path.exists():
        raise OutputExistsError(f"{path}: already exists; not overwriting")
    tmp = _write_temp(path.parent, path.name, write)
    try:
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise OutputExistsError(f"{path}: already exists; not overwriting") from None
        except OSError:
            if path.exists():
                raise OutputExistsError(f"{path}: already exists; not overwriting") from None
            os.replace(tmp, path)
        _fsync_folder(path.parent)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def replace_file(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Create or replace ``path`` atomically (temp file in the same folder, fsync, ``os.replace``).

    For the project's own caches and assembled files, never for a user's audio. Readers see the
    old file or the new one, never a half-written one; if ``write`` raises (e.g. a checksum
    check inside it fails), the old file is untouched and the temp file removed.

    Args:
        path: the file; its folder is created if missing.
        write: called with the temp file's path; writes the whole content there.
    Returns:
        ``path`` as a Path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _write_temp(path.parent, path.name, write)
    try:
        os.replace(tmp, path)
        _fsync_folder(path.parent)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes, read in 4 MiB blocks (for verifying assembled or converted model files).

    Raises:
        OSError: the file cannot be read.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()
