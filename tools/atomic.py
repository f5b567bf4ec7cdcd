"""Atomic creation of new files that never replaces an existing one."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from tools.errors import OutputExistsError, SenseError

try:
    import resource
except ImportError:  # not on Windows
    resource = None

#: errno values that mean the file system (or this process's file size limit) took no more bytes.
_FULL = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
         errno.EFBIG: "file too large (the file size limit is reached)"}


class OutputWriteError(SenseError, OSError):
    """A new file could not be written because the disk is full (or a quota or file size limit is reached);
    nothing was left behind and no existing file was touched (one-line message)."""


def _why_full(exc: BaseException, tmp: Path) -> str | None:
    """Why ``write`` failed, when it was a full disk: its errno, or (libraries such as libsndfile report a
    failed write without one) a file system with no space left or a temp file at this process's size limit."""
    if isinstance(exc, OSError) and exc.errno in _FULL:
        return _FULL[exc.errno]
    try:
        size, free = tmp.stat().st_size, shutil.disk_usage(tmp.parent).free
    except OSError:
        return None
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0] if resource is not None else -1
    if limit not in (-1, getattr(resource, "RLIM_INFINITY", -1)) and size >= limit:
        return f"file too large (this process may write files of at most {limit} bytes)"
    if free < (1 << 20):
        return f"{_FULL[errno.ENOSPC]} ({free} bytes free)"
    return None


def fsync_folder(folder: Path) -> None:
    """fsync ``folder`` so a rename or link in it survives a power cut; a no-op where folders cannot be opened."""
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


#: Longest stem (bytes, UTF-8) SENSE derives a new file name from: room for "-NN", a suffix, and the
#: temp file's ".NAME.XXXXXXXX.part" under the usual 255-byte file-name limit.
MAX_STEM_BYTES = 200


def fit_stem(stem: str, max_bytes: int = MAX_STEM_BYTES) -> str:
    """``stem`` cut to at most ``max_bytes`` bytes of UTF-8 (never inside a character), so a name derived
    from a long input name (``STEM-sense.wav``, ``STEM-stems``) still fits the file system."""
    return stem.encode("utf-8", "surrogateescape")[:max_bytes].decode("utf-8", "ignore")


def new_temp(folder: Path, name: str) -> Path:
    """An empty hidden temp file ``.NAME.XXXXXXXX.part`` in ``folder``, for a file that becomes ``folder/name``
    (:func:`publish`)."""
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{fit_stem(name, 100)}.", suffix=".part")
    os.close(fd)
    return Path(tmp_name)


def finish_temp(tmp: Path) -> None:
    """Give the written temp file a normal new file's mode (mkstemp makes it private) and fsync it."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    with tmp.open("rb+") as fh:
        os.fsync(fh.fileno())


def publish(tmp: Path, path: Path, overwrite: bool) -> None:
    """Move the finished temp file ``tmp`` to ``path`` and fsync the folder; ``tmp`` is gone afterwards either way.

    ``overwrite``: ``os.replace``. Otherwise hard-linked into place, so an existing ``path`` is never replaced (on
    file systems without hard links: checked, then renamed).

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is False.
    """
    try:
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise OutputExistsError(f"{path}: already exists; not overwriting") from None
            except OSError:
                if path.exists():
                    raise OutputExistsError(f"{path}: already exists; not overwriting") from None
                os.replace(tmp, path)
        fsync_folder(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def _write_temp(folder: Path, name: str, write: Callable[[Path], None]) -> Path:
    """A hidden, fsynced temp file in ``folder`` filled by ``write``, with a normal new file's mode."""
    tmp = new_temp(folder, name)
    try:
        write(tmp)
        finish_temp(tmp)
    except BaseException as exc:
        why = _why_full(exc, tmp) if isinstance(exc, Exception) else None
        tmp.unlink(missing_ok=True)
        if why is not None:
            raise OutputWriteError(f"cannot write {folder / name}: {why}; nothing was written") from exc
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
        OutputWriteError: the disk is full or a quota or file size limit is reached (the temp file is removed).
        Whatever else ``write`` raises (the temp file is removed).
    """
    path = Path(path)
    if path.exists():
        raise OutputExistsError(f"{path}: already exists; not overwriting")
    publish(_write_temp(path.parent, path.name, write), path, overwrite=False)
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
    publish(_write_temp(path.parent, path.name, write), path, overwrite=True)
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
