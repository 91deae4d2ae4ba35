"""The device's file system as the `shell` user sees it.

Two writable areas are backed by folders under the sandbox on the host
(``/data/local/tmp/x`` -> ``sandbox/data/local/tmp/x``); ``/sys``, ``/proc/cpuinfo`` and
``/system/bin`` are read-only virtual files produced by the device; the folders above
them exist; everything else is missing. Paths are normalised POSIX-style first, so
``..`` can never leave the device root, and the host path is checked to stay inside
the sandbox (no symlink escapes).
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat as st
from pathlib import Path
from typing import Callable

WRITABLE_ROOTS = ("/data/local/tmp", "/sdcard/Android/data/org.plaid.bench/files")
UNLISTABLE = {"/data", "/data/local", "/sdcard/Android/data"}   # exist, but `ls` is refused
READ_ONLY_FS = ("/system", "/vendor", "/product", "/apex")


def fs_error(code: int, path: str) -> OSError:
    return OSError(code, os.strerror(code), path)


def under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


class Node:
    """What a device path is: kind "file"/"dir"/"dev"; ``host`` for sandbox-backed ones."""

    def __init__(self, path: str, kind: str, host: Path | None = None, content: Callable[[], bytes] | None = None,
                 mode: int = 0o444):
        self.path, self.kind, self.host, self.content, self.mode = path, kind, host, content, mode

    @property
    def is_dir(self) -> bool:
        return self.kind == "dir"

    def stat(self) -> tuple[int, int, int]:
        """(st_mode, size, mtime) as adbd's sync STAT reports them."""
        if self.host is not None:
            s = self.host.stat()
            return s.st_mode, s.st_size, int(s.st_mtime)
        if self.kind == "dir":
            return st.S_IFDIR | 0o755, 4096, 0
        if self.kind == "dev":
            return st.S_IFCHR | 0o666, 0, 0
        size = 4096 if self.path.startswith("/sys/") else (0 if self.path.startswith("/proc/") else len(self.content()))
        return st.S_IFREG | self.mode, size, 0

    @property
    def executable(self) -> bool:
        return self.kind == "file" and bool(self.stat()[0] & 0o111)


class DeviceFS:
    def __init__(self, sandbox: Path, virtual: Callable[[], dict[str, Callable[[], bytes]]],
                 executables: Callable[[], list[str]]):
        self.sandbox = sandbox
        self._virtual = virtual          # device path -> content, read-only files
        self._executables = executables  # /system/bin/NAME files (content irrelevant)
        self._sandbox_real = sandbox.resolve()
        for root in WRITABLE_ROOTS:
            (sandbox / root.lstrip("/")).mkdir(parents=True, exist_ok=True)

    # --- names ---
    @staticmethod
    def norm(path: str, cwd: str = "/") -> str:
        p = posixpath.normpath(posixpath.join(cwd, path))
        return "/" + p.lstrip("/")       # normpath keeps a leading "//"

    def host_path(self, path: str) -> Path:
        """The sandbox file behind a writable device path (raises EACCES outside)."""
        if not any(under(path, r) for r in WRITABLE_ROOTS):
            raise fs_error(errno.EROFS if path.startswith(READ_ONLY_FS) else errno.EACCES, path)
        host = self.sandbox / path.lstrip("/")
        real = host.resolve()
        if real != self._sandbox_real and self._sandbox_real not in real.parents:
            raise fs_error(errno.EACCES, path)
        return host

    def _virtual_files(self) -> dict[str, Callable[[], bytes]]:
        files = dict(self._virtual())
        for name in self._executables():
            files[f"/system/bin/{name}"] = lambda: b"\x7fELF"
        return files

    def _virtual_dirs(self, files) -> set[str]:
        dirs = {"/", "/dev"}
        for p in list(files) + list(WRITABLE_ROOTS) + list(UNLISTABLE):
            while p != "/":
                p = posixpath.dirname(p)
                dirs.add(p)
        return dirs

    # --- lookup ---
    def node(self, path: str) -> Node | None:
        if any(under(path, r) for r in WRITABLE_ROOTS):
            host = self.host_path(path)
            if host.is_dir():
                return Node(path, "dir", host)
            if host.exists():
                return Node(path, "file", host)
            return None
        if path == "/dev/null":
            return Node(path, "dev")
        files = self._virtual_files()
        if path in files:
            mode = 0o755 if path.startswith("/system/bin/") else 0o444
            return Node(path, "file", content=files[path], mode=mode)
        if path in self._virtual_dirs(files) or path in UNLISTABLE:
            return Node(path, "dir")
        return None

    def lookup(self, path: str) -> Node:
        node = self.node(path)
        if node is None:
            parent = posixpath.dirname(path)
            pnode = self.node(parent) if parent != path else None
            if pnode is not None and not pnode.is_dir:
                raise fs_error(errno.ENOTDIR, path)
            raise fs_error(errno.ENOENT, path)
        return node

    # --- reading ---
    def read_bytes(self, path: str) -> bytes:
        node = self.lookup(path)
        if node.is_dir:
            raise fs_error(errno.EISDIR, path)
        if node.kind == "dev":
            return b""
        if node.host is not None:
            if not node.stat()[0] & 0o400:       # the shell user owns what it created
                raise fs_error(errno.EACCES, path)
            return node.host.read_bytes()
        return node.content()

    def listdir(self, path: str) -> list[str]:
        node = self.lookup(path)
        if not node.is_dir:
            raise fs_error(errno.ENOTDIR, path)
        if node.host is not None:
            return sorted(os.listdir(node.host))
        if path in UNLISTABLE:
            raise fs_error(errno.EACCES, path)
        files = self._virtual_files()
        names = {p for p in list(files) + sorted(self._virtual_dirs(files)) + list(WRITABLE_ROOTS)
                 if posixpath.dirname(p) == path and p != path}
        if path == "/dev":
            names.add("/dev/null")
        return sorted(posixpath.basename(p) for p in names)

    # --- writing (only inside the writable roots) ---
    def open_write(self, path: str, append: bool = False):
        if path == "/dev/null":
            return open(os.devnull, "ab")
        host = self.host_path(path)
        if host.is_dir():
            raise fs_error(errno.EISDIR, path)
        if not host.parent.is_dir():
            raise fs_error(errno.ENOENT, path)
        if (host.exists() and not host.stat().st_mode & 0o200) or not host.parent.stat().st_mode & 0o200:
            raise fs_error(errno.EACCES, path)
        return open(host, "ab" if append else "wb")

    def mkdir(self, path: str, parents: bool = False) -> None:
        node = self.node(path)
        if node is not None:
            if parents and node.is_dir:
                return
            raise fs_error(errno.EEXIST, path)
        host = self.host_path(path)
        if not parents and not host.parent.is_dir():
            raise fs_error(errno.ENOENT, path)
        host.mkdir(parents=parents, exist_ok=parents)

    def remove(self, path: str, recursive: bool = False) -> None:
        node = self.lookup(path)
        if any(path == r for r in WRITABLE_ROOTS) or node.host is None:
            raise fs_error(errno.EROFS if path.startswith(READ_ONLY_FS) else errno.EACCES, path)
        if node.is_dir:
            if not recursive:
                raise fs_error(errno.EISDIR, path)
            for child in self.listdir(path):
                self.remove(posixpath.join(path, child), recursive=True)
            node.host.rmdir()
        else:
            node.host.unlink()

    def chmod(self, path: str, mode: int) -> None:
        node = self.lookup(path)
        if node.host is None:
            raise fs_error(errno.EROFS if path.startswith(READ_ONLY_FS) else errno.EPERM, path)
        os.chmod(node.host, mode & 0o7777)
