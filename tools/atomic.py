"""Atomic creation of new files that never replaces an existing one."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


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
        raise FileExistsError(f"{path}: already exists; not overwriting")
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; give it a normal new file's mode
        with tmp.open("rb+") as fh:
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise FileExistsError(f"{path}: already exists; not overwriting") from None
        except OSError:
            if path.exists():
                raise FileExistsError(f"{path}: already exists; not overwriting") from None
            os.replace(tmp, path)
        _fsync_folder(path.parent)
    finally:
        tmp.unlink(missing_ok=True)
    return path
