"""The device (adbd) side of the ADB wire protocol on one TCP connection.

Every message is a 24-byte little-endian header -- command, arg0, arg1, data length,
data checksum (byte sum), magic (command ^ 0xffffffff) -- followed by the data.
Handshake: the host sends CNXN(version, maxdata, "host::..."); the device answers
AUTH(TOKEN, 20 random bytes); the host signs it (AUTH SIGNATURE) with each of its keys and,
when none is known, sends AUTH RSAPUBLICKEY (the phone then asks its user); the device
answers CNXN(version, maxdata, "device::...") once a key is accepted.
Streams: OPEN(host id, 0, "service\\0") -> OKAY(device id, host id); data flows as
WRTE(sender id, receiver id, bytes), each acknowledged by an OKAY; either side ends with CLSE.

Checksums: the byte sum is computed and checked while the negotiated version
(min of both sides) is below 0x01000001, as adbd does; adb-shell 0.4.4 announces
0x01000000, so it always gets (and checks) them.
"""

from __future__ import annotations

import base64
import hmac
import os
import select
import socket
import struct
import threading
from collections import deque

A_VERSION_MIN = 0x01000000
A_VERSION_SKIP_CHECKSUM = 0x01000001
DEVICE_VERSION = 0x01000001
DEVICE_MAX_PAYLOAD = 1024 * 1024
TOKEN_SIZE = 20
AUTH_TOKEN, AUTH_SIGNATURE, AUTH_RSAPUBLICKEY = 1, 2, 3
HEADER = struct.Struct("<6I")
POLL_S = 0.2          # how often blocked readers look at the stop flags
WRITE_ACK_TIMEOUT_S = 30.0


def cmd_id(name: bytes) -> int:
    return int.from_bytes(name, "little")


CNXN, AUTH, OPEN, OKAY, WRTE, CLSE = (cmd_id(c) for c in (b"CNXN", b"AUTH", b"OPEN", b"OKAY", b"WRTE", b"CLSE"))
KNOWN = {CNXN, AUTH, OPEN, OKAY, WRTE, CLSE, cmd_id(b"SYNC")}


class ConnectionGone(Exception):
    """The TCP connection ended (peer closed, fault injected or device stopped)."""


class StreamClosed(Exception):
    """The stream was closed by the host or its connection went away."""


def pack(cmd: int, arg0: int, arg1: int, data: bytes = b"", checksum: bool = True) -> bytes:
    crc = (sum(data) & 0xFFFFFFFF) if checksum else 0
    return HEADER.pack(cmd, arg0, arg1, len(data), crc, cmd ^ 0xFFFFFFFF) + data


# --- RSA keys in Android's format (what adbkey.pub holds, base64 + " user@host") ---------

_ANDROID_PUBKEY = struct.Struct("<II256s256sI")
_SHA1_DIGEST_INFO = bytes.fromhex("3021300906052b0e03021a05000414")


def parse_public_key(text: str | bytes) -> tuple[int, int] | None:
    """(modulus, exponent) from an adbkey.pub line, or None when it is not one."""
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("ascii", "replace")
    fields = text.replace("\0", " ").split()
    if not fields:
        return None
    try:
        raw = base64.b64decode(fields[0], validate=True)
    except ValueError:
        return None
    if len(raw) != _ANDROID_PUBKEY.size:
        return None
    words, _n0inv, modulus, _rr, exponent = _ANDROID_PUBKEY.unpack(raw)
    if words != 64:
        return None
    return int.from_bytes(modulus, "little"), exponent


def verify_signature(key: tuple[int, int], token: bytes, signature: bytes) -> bool:
    """PKCS#1 v1.5 with a SHA-1 DigestInfo around the raw token (adb signs the token
    itself as if it were a SHA-1 digest)."""
    n, e = key
    k = (n.bit_length() + 7) // 8
    if len(signature) != k:
        return False
    m = pow(int.from_bytes(signature, "big"), e, n)
    t = _SHA1_DIGEST_INFO + token
    expected = b"\x00\x01" + b"\xff" * (k - 3 - len(t)) + b"\x00" + t
    return hmac.compare_digest(m.to_bytes(k, "big"), expected)


# --- streams -------------------------------------------------------------------------------

class Stream:
    """One OPEN'ed service. The connection's reader thread feeds it; a service thread
    reads (`read`) and writes (`write`, which waits for the host's OKAY) through it."""

    def __init__(self, conn: "Connection", local_id: int, remote_id: int, auto_ack: bool = False):
        self.conn, self.local_id, self.remote_id = conn, local_id, remote_id
        self.auto_ack = auto_ack            # shell: the host's input is acknowledged and dropped
        self._cond = threading.Condition()
        self._inbox: deque[bytes] = deque()
        self._acked = True
        self._clse_sent = False
        self.closed = False                 # no more traffic either way
        self.remote_closed = threading.Event()

    # called by the reader thread
    def on_write(self, data: bytes) -> None:
        if self.auto_ack:
            self.conn.send(OKAY, self.local_id, self.remote_id)
            return
        with self._cond:
            self._inbox.append(data)
            self._cond.notify_all()

    def on_okay(self) -> None:
        with self._cond:
            self._acked = True
            self._cond.notify_all()

    def on_remote_close(self) -> None:
        with self._cond:
            reply = not self._clse_sent
            self._clse_sent = True
            self.closed = True
            self._cond.notify_all()
        self.remote_closed.set()
        if reply:
            self.conn.send_quiet(CLSE, self.local_id, self.remote_id)

    def on_connection_gone(self) -> None:
        with self._cond:
            self.closed = True
            self._clse_sent = True
            self._cond.notify_all()
        self.remote_closed.set()

    # called by the service thread
    @property
    def cancelled(self) -> bool:
        return self.closed

    def read(self, timeout: float = 30.0) -> bytes:
        """The next WRTE payload (acknowledged once taken). Raises StreamClosed at the end."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._inbox or self.closed, timeout):
                raise StreamClosed("no data from the host")
            if not self._inbox:
                raise StreamClosed("closed")
            data = self._inbox.popleft()
        self.conn.send(OKAY, self.local_id, self.remote_id)
        return data

    def write(self, data: bytes) -> None:
        step = self.conn.maxdata
        for i in range(0, len(data), step):
            with self._cond:
                if self.closed:
                    raise StreamClosed("closed")
                self._acked = False
            self.conn.send(WRTE, self.local_id, self.remote_id, data[i:i + step])
            with self._cond:
                self._cond.wait_for(lambda: self._acked or self.closed, WRITE_ACK_TIMEOUT_S)
                if not self._acked:
                    raise StreamClosed("the host did not acknowledge")

    def close(self) -> None:
        with self._cond:
            send = not self._clse_sent
            self._clse_sent = True
            self.closed = True
            self._cond.notify_all()
        if send:   # stays registered until the host's CLSE answers (remote_closed)
            self.conn.send_quiet(CLSE, self.local_id, self.remote_id)

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True when the stream closed meanwhile."""
        with self._cond:
            return self._cond.wait_for(lambda: self.closed, seconds)


# --- one TCP connection -----------------------------------------------------------------------

class Connection:
    """Reads messages on its own thread, answers the handshake and hands streams to
    the device's services (``device.open_service``)."""

    def __init__(self, device, sock: socket.socket, peer):
        self.device, self.sock, self.peer = device, sock, peer
        self.sock.settimeout(WRITE_ACK_TIMEOUT_S)   # bounds sendall; reads poll with select
        # adb-shell writes a header and its data with two send() calls; with Nagle on its
        # side, the second waits for our ACK: acknowledge at once instead of delaying.
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._quickack()
        self.version = A_VERSION_MIN
        self.maxdata = 4096
        self.online = False
        self._send_lock = threading.Lock()
        self._streams: dict[int, Stream] = {}
        self._streams_lock = threading.Lock()
        self._next_id = 1
        self._aborted = False

    # --- sending ---
    @property
    def checksum(self) -> bool:
        return self.version < A_VERSION_SKIP_CHECKSUM

    def send(self, cmd: int, arg0: int, arg1: int, data: bytes = b"") -> None:
        msg = pack(cmd, arg0, arg1, data, self.checksum)
        with self._send_lock:
            if self._aborted:
                raise StreamClosed("connection gone")
            try:
                self.sock.sendall(msg)
            except OSError as exc:
                raise StreamClosed(f"connection gone: {exc}") from None

    def send_quiet(self, cmd: int, arg0: int, arg1: int, data: bytes = b"") -> None:
        try:
            self.send(cmd, arg0, arg1, data)
        except StreamClosed:
            pass

    # --- ending ---
    def abort(self, also_write: bool = False) -> None:
        """Drop the connection abruptly (RST), like a cable pulled out. ``also_write``
        also unblocks a sender stuck on a host that stopped reading (used by stop())."""
        self._aborted = True
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.sock.shutdown(socket.SHUT_RDWR if also_write else socket.SHUT_RD)  # wakes the reader
        except OSError:
            pass

    def forget(self, stream: Stream) -> None:
        with self._streams_lock:
            self._streams.pop(stream.local_id, None)

    # --- receiving ---
    def _read_exact(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            if self._aborted or self.device.stopping:
                raise ConnectionGone("closed here")
            try:
                ready, _, _ = select.select([self.sock], [], [], POLL_S)
                if not ready:
                    continue
                chunk = self.sock.recv(n - len(buf))
            except (OSError, ValueError) as exc:
                raise ConnectionGone(str(exc)) from None
            if not chunk:
                raise ConnectionGone("closed by the host")
            self._quickack()
            buf += chunk
        return bytes(buf)

    def _quickack(self) -> None:
        try:
            self.sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, "TCP_QUICKACK", 12), 1)
        except OSError:
            pass

    def read_packet(self) -> tuple[int, int, int, bytes]:
        cmd, arg0, arg1, length, crc, magic = HEADER.unpack(self._read_exact(HEADER.size))
        if magic != cmd ^ 0xFFFFFFFF or cmd not in KNOWN:
            raise ConnectionGone(f"bad message header {cmd:#x}/{magic:#x}")
        limit = self.maxdata if self.online else DEVICE_MAX_PAYLOAD
        if length > limit:
            raise ConnectionGone(f"message of {length} bytes exceeds maxdata {limit}")
        data = self._read_exact(length) if length else b""
        if self.checksum and crc != (sum(data) & 0xFFFFFFFF):
            raise ConnectionGone("bad checksum")
        return cmd, arg0, arg1, data

    def run(self) -> None:
        try:
            if self._handshake():
                self._serve()
        except ConnectionGone:
            pass
        finally:
            self._aborted = True
            with self._streams_lock:
                streams = list(self._streams.values())
                self._streams.clear()
            for s in streams:
                s.on_connection_gone()
            got = self._send_lock.acquire(timeout=2.0)   # let a sender finish its message
            try:
                self.sock.close()
            except OSError:
                pass
            finally:
                if got:
                    self._send_lock.release()
            self.device.connection_ended(self)

    def _handshake(self) -> bool:
        dev = self.device
        while True:                       # adbd ignores everything before CNXN
            cmd, arg0, arg1, data = self.read_packet()
            if cmd == CNXN:
                break
        self.version = min(arg0, DEVICE_VERSION)
        self.maxdata = max(256, min(arg1, DEVICE_MAX_PAYLOAD))
        token = os.urandom(TOKEN_SIZE)
        self.send(AUTH, AUTH_TOKEN, 0, token)
        while True:
            cmd, arg0, arg1, data = self.read_packet()
            if cmd != AUTH:
                continue
            if arg0 == AUTH_SIGNATURE:
                if dev.signature_accepted(token, data):
                    break
                token = os.urandom(TOKEN_SIZE)
                self.send(AUTH, AUTH_TOKEN, 0, token)
            elif arg0 == AUTH_RSAPUBLICKEY:
                if dev.public_key_accepted(data):
                    break
                # the prompt on the phone is never accepted: stay silent, the host times out
        self.send(CNXN, DEVICE_VERSION, self.maxdata, dev.banner())
        self.online = True
        return True

    def _serve(self) -> None:
        while True:
            cmd, arg0, arg1, data = self.read_packet()
            if cmd == OPEN:
                self._open(arg0, data.rstrip(b"\0").decode("utf-8", "replace"))
                continue
            with self._streams_lock:
                stream = self._streams.get(arg1)
            if cmd == CNXN:
                raise ConnectionGone("host restarted the handshake")
            if stream is None or stream.remote_id != arg0:
                continue                  # late OKAY/CLSE for a stream already closed
            if cmd == OKAY:
                stream.on_okay()
            elif cmd == WRTE:
                stream.on_write(data)
            elif cmd == CLSE:
                self.forget(stream)
                stream.on_remote_close()

    def _open(self, remote_id: int, service: str) -> None:
        with self._streams_lock:
            local_id = self._next_id
            self._next_id += 1
        handler = self.device.open_service(self, service)
        if handler is None:
            self.send(CLSE, 0, remote_id)   # what adbd answers for a service it cannot open
            return
        run, auto_ack = handler
        stream = Stream(self, local_id, remote_id, auto_ack=auto_ack)
        with self._streams_lock:
            self._streams[local_id] = stream
        self.send(OKAY, local_id, remote_id)
        if run is not None:
            self.device.spawn(run, stream, name=f"adbemu-{service.split(':', 1)[0]}-{local_id}")

