"""Writing and hashing files safely.

Every file plaid writes goes through :func:`atomic_open` (or :func:`atomic_path` for writers
that want a file name, such as ``torch.save``): the data goes to a temp file with an
unpredictable name, created with ``O_CREAT|O_EXCL`` next to the destination, is fsynced,
and is then renamed over the destination. A reader never sees half a file, a link planted
at a guessable name (``out.csv.part``) is never followed, and a destination that exists but
is not a regular file (a symbolic link, a FIFO, a device, a folder) is refused with one
clear line instead of being written through or silently replaced. On any error the temp
file is removed. Files written as they grow (a child's stdout and stderr) are made with
:func:`create_new`, which never opens a name that already exists."""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
from pathlib import Path
from typing import IO, Iterator

from plaid.errors import UsageError

_KINDS = ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def check_destination(path: str | os.PathLike) -> None:
    """Raise UsageError if ``path`` exists and is not a regular file (links are not followed)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISREG(mode):
        return
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    raise UsageError(f"refusing to write {str(path)!r}: it exists and is {kind}, not a regular file")


def _new_file_mode() -> int:
    """The mode ``open(path, "w")`` would give a new file (0666 less the umask)."""
    mask = os.umask(0o077)  # a restrictive value for the instant it is set
    os.umask(mask)
    return 0o666 & ~mask


def fsync_dir(folder: str | os.PathLike) -> None:
    """Make a rename in ``folder`` durable (where the platform can fsync a folder)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _mkstemp(path: Path) -> tuple[int, Path]:
    check_destination(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _new_file_mode())
    except BaseException:
        os.close(fd)
        os.unlink(name)
        raise
    return fd, Path(name)


def _commit(tmp: Path, path: Path) -> None:
    check_destination(path)  # again: it may have appeared while we wrote
    os.replace(tmp, path)  # a rename replaces a link itself, never its target
    fsync_dir(path.parent)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs) -> Iterator[IO]:
    """Open a temp file for writing (``mode`` "w" or "wb", ``kwargs`` as for ``open``);
    on a clean exit it is fsynced and renamed over ``path``, on an error it is removed."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open mode must be 'w' or 'wb', not {mode!r}")
    path = Path(path)
    fd, tmp = _mkstemp(path)
    try:
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        _commit(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """The name of a fresh, empty temp file next to ``path``, for writers that take a file
    name (``torch.save``, ``shutil.copyfile``); on a clean exit it is fsynced and renamed
    over ``path``, on an error it is removed."""
    path = Path(path)
    fd, tmp = _mkstemp(path)
    os.close(fd)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        _commit(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> None:
    with atomic_open(path, "w", encoding=encoding) as fh:
        fh.write(text)


def create_new(path: str | os.PathLike, mode: str = "wb", **kwargs) -> IO:
    """Create ``path`` and open it for writing (``mode`` "w" or "wb"), for files that are
    written as they grow (a child's stdout). ``O_CREAT|O_EXCL|O_NOFOLLOW``: anything already
    at that name (a regular file, a folder, a FIFO, a symbolic link, even a dangling one) is
    never written through; it raises FileExistsError, so the caller can pick another name."""
    if mode not in ("w", "wb"):
        raise ValueError(f"create_new mode must be 'w' or 'wb', not {mode!r}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, 0o666)  # the umask applies, as with open()
    try:
        return os.fdopen(fd, mode, **kwargs)
    except BaseException:
        os.close(fd)
        raise


def file_hash(path: str | os.PathLike, algo: str = "sha256"):
    """A hashlib object fed with the content of ``path``, read in blocks."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, algo)


def file_digest(path: str | os.PathLike, algo: str = "sha256") -> str:
    """Hex digest of the content of ``path``, read in blocks."""
    return file_hash(path, algo).hexdigest()
