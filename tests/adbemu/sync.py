"""The `sync:` service (file transfer), as adbd serves it.

Requests are ``id(4) + length(u32)`` followed by ``length`` bytes of path, all carried in
WRTE payloads that may hold several requests or split one:
STAT path -> STAT mode size mtime (zeros when missing);
LIST path -> DENT mode size mtime namelen name ... then DONE 0 0 0 0;
RECV path -> DATA len bytes (chunks of at most 64 KiB) ... DONE 0, or FAIL len message;
SEND "path,mode" then DATA len bytes ... DONE mtime -> OKAY 0, or FAIL len message;
QUIT ends the service. A SEND cut short (host gone) removes the partial file, as adbd does.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat as st
import struct

from .protocol import StreamClosed

SYNC_DATA_MAX = 64 * 1024
MAX_PATH = 1024
_REQ = struct.Struct("<4sI")


class _Reader:
    def __init__(self, stream):
        self.stream, self.buf = stream, bytearray()

    def take(self, n: int) -> bytes:
        while len(self.buf) < n:
            self.buf += self.stream.read()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def request(self) -> tuple[bytes, int]:
        return _REQ.unpack(self.take(_REQ.size))


def _fail(stream, message: str) -> None:
    data = message.encode()
    stream.write(_REQ.pack(b"FAIL", len(data)) + data)


def serve_sync(device, stream) -> None:
    reader = _Reader(stream)
    fs = device.fs
    try:
        while True:
            req, length = reader.request()
            if req == b"QUIT":
                break
            if req not in (b"STAT", b"LIST", b"RECV", b"SEND"):
                _fail(stream, f"unknown command {req!r}")
                break
            if length > MAX_PATH:
                _fail(stream, "path too long")
                break
            arg = reader.take(length).decode("utf-8", "surrogateescape")
            if req == b"STAT":
                stream.write(b"STAT" + struct.pack("<3I", *_stat(fs, fs.norm(arg))))
            elif req == b"LIST":
                _list(fs, stream, fs.norm(arg))
            elif req == b"RECV":
                _recv(fs, stream, fs.norm(arg))
            else:
                _send(device, stream, reader, arg)
    except StreamClosed:
        pass
    finally:
        stream.close()


def _stat(fs, path: str) -> tuple[int, int, int]:
    try:
        mode, size, mtime = fs.lookup(path).stat()
        return mode, size & 0xFFFFFFFF, mtime & 0xFFFFFFFF
    except OSError:
        return 0, 0, 0


def _list(fs, stream, path: str) -> None:
    try:
        names = [".", ".."] + fs.listdir(path)
    except OSError:
        names = []
    out = bytearray()
    for name in names:
        mode, size, mtime = _stat(fs, fs.norm(name, path))
        raw = name.encode("utf-8", "surrogateescape")
        out += b"DENT" + struct.pack("<4I", mode, size, mtime, len(raw)) + raw
    out += b"DONE" + struct.pack("<4I", 0, 0, 0, 0)
    stream.write(bytes(out))


def _recv(fs, stream, path: str) -> None:
    try:
        data = fs.read_bytes(path)
    except OSError as exc:
        _fail(stream, f"open failed: {exc.strerror}")
        return
    for i in range(0, len(data), SYNC_DATA_MAX):
        chunk = data[i:i + SYNC_DATA_MAX]
        stream.write(_REQ.pack(b"DATA", len(chunk)) + chunk)
    stream.write(_REQ.pack(b"DONE", 0))


def _open_for_send(fs, path: str, mode: int):
    if st.S_ISLNK(mode):
        raise OSError(errno.EPERM, "symlinks are not supported by the emulator", path)
    parent = posixpath.dirname(path)
    if fs.node(parent) is None:
        fs.mkdir(parent, parents=True)       # adbd creates missing parent folders
    return fs.open_write(path)


def _send(device, stream, reader: _Reader, spec: str) -> None:
    fs, faults = device.fs, device.faults
    path, comma, mode_s = spec.rpartition(",")
    if not comma:
        path, mode_s = spec, "33188"
    path = fs.norm(path)
    try:
        mode = int(mode_s)
    except ValueError:
        mode = 0o100644
    error, out, received = None, None, 0
    try:
        out = _open_for_send(fs, path, mode)
    except OSError as exc:
        error = f"couldn't create file: {exc.strerror}"
    done = False
    try:
        while True:
            req, length = reader.request()
            if req == b"DONE":
                mtime = length
                break
            if req != b"DATA" or length > SYNC_DATA_MAX:
                error = error or ("oversize data message" if req == b"DATA" else "invalid data message")
                _fail(stream, error)
                return
            chunk = reader.take(length)
            limit = faults.disconnect_after_push_bytes
            if limit is not None and received + len(chunk) >= limit:
                if out is not None:
                    out.write(chunk[:max(0, limit - received)])
                    out.close()
                    out = None
                if not faults.keep_partial_push:
                    _unlink(fs, path)
                stream.conn.abort()
                raise StreamClosed("fault: disconnect mid-push")
            received += len(chunk)
            if out is not None:
                out.write(chunk)
        done = True
    finally:
        if out is not None:
            out.close()
            if not done and error is None:
                _unlink(fs, path)            # host went away mid-transfer
    if error is not None:
        _fail(stream, error)
        return
    host = fs.host_path(path)
    os.chmod(host, mode & 0o777)
    if mtime:
        os.utime(host, (mtime, mtime))
    stream.write(_REQ.pack(b"OKAY", 0))


def _unlink(fs, path: str) -> None:
    try:
        fs.host_path(path).unlink()
    except OSError:
        pass
