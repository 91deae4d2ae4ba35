"""EmulatedDevice: a Pixel 3 (Snapdragon 845) answering the ADB wire protocol on loopback
TCP, with fault injection (``Faults``). See tests/adbemu/__init__.py for the API."""

from __future__ import annotations

import math
import re
import select
import socket
import threading
import time
import traceback
from contextlib import contextmanager
from pathlib import Path

from .fs import DeviceFS
from .protocol import POLL_S, Connection, ConnectionGone, StreamClosed, parse_public_key, verify_signature
from .sysfs import PIXEL3_PROPS, sysfs_files

_STOP_JOIN_S = 15.0


class Faults:
    """Plain mutable object; the device reads it live."""

    def __init__(self):
        self.unauthorized = False               # never accept a signature nor a public key
        self.disconnect_after_push_bytes = None  # int: drop the connection once a SEND got that many bytes
        self.keep_partial_push = False          # with the above: leave the truncated file (power loss)
        self.disconnect_on_shell = None         # regex: drop the connection when such a command arrives
        self.hang_on_shell = None               # regex: accept such a command, never answer
        self.disconnect_after_benchmarks = None  # int: unplug after N benchmark_model runs (since replug)


class EmulatedDevice:
    def __init__(self, root, serial: str = "EMU845", props: dict | None = None, faults: Faults | None = None,
                 authorized_keys: list[str] | None = None):
        self.root = Path(root)
        self.sandbox = self.root
        self.serial = serial
        self.props = {**PIXEL3_PROPS, "ro.serialno": serial, "ro.boot.serialno": serial, **(props or {})}
        self.faults = faults if faults is not None else Faults()
        self.authorized_keys = list(authorized_keys) if authorized_keys is not None else None
        self.accepted_keys: list[str] = []      # keys the "user" allowed at the prompt
        self.commands: list[str] = []
        self.errors: list[str] = []             # unexpected exceptions in device threads
        self.host, self.port = "127.0.0.1", None
        # thermal model
        self.ambient_c = 30.0
        self.heat_per_bench_s = 0.5             # degrees C per second of benchmarking
        self.cooling_tau_s = 30.0               # exponential decay toward ambient
        self._temp, self._temp_t = self.ambient_c, time.monotonic()
        self.slowdown = 1.0
        self.busy = 0                           # benchmarks running now (scaling_cur_freq)
        # state of the Android side
        self.benchmarks_run = 0                 # since start / last replug
        self.packages: set[str] = set()
        self.settings: dict = {}
        self.logcat: list[str] = []
        self.app = None
        self.last_affinity: list[int] | None = None
        self.unplugged = False
        self.stopping = False
        self._unplug_pending = False
        self._lock = threading.RLock()
        self._threads: list[threading.Thread] = []
        self._conns: set[Connection] = set()
        self._listener_stop: threading.Event | None = None
        self._accept_thread: threading.Thread | None = None
        from .commands import COMMANDS, SH_BUILTINS
        bins = sorted(set(COMMANDS) - (SH_BUILTINS - {"echo", "true", "false", "test", "["}) | {"sh", "toybox"})
        self.fs = DeviceFS(self.sandbox, lambda: sysfs_files(self), lambda: bins)

    # --- the API tests use ---
    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def temperature_c(self) -> float:
        with self._lock:
            self._cool()
            return self._temp

    @temperature_c.setter
    def temperature_c(self, value: float) -> None:
        with self._lock:
            self._temp, self._temp_t = float(value), time.monotonic()

    @property
    def battery_c(self) -> float:
        return self.ambient_c + 1.0 + 0.2 * (self.temperature_c - self.ambient_c)

    @contextmanager
    def benchmarking(self):
        """While a model is being timed: CPUs at full clock, heat building up."""
        with self._lock:
            self.busy += 1
        start = time.perf_counter()
        try:
            yield
        finally:
            with self._lock:
                self.busy -= 1
            self.heat(time.perf_counter() - start)

    def heat(self, bench_seconds: float) -> None:
        with self._lock:
            self._cool()
            self._temp += self.heat_per_bench_s * bench_seconds

    def _cool(self) -> None:
        now = time.monotonic()
        dt, self._temp_t = now - self._temp_t, now
        if dt > 0 and self.cooling_tau_s > 0:
            self._temp = self.ambient_c + (self._temp - self.ambient_c) * math.exp(-dt / self.cooling_tau_s)

    def preinstall_benchmark_model(self) -> str:
        path = self.sandbox / "data/local/tmp/benchmark_model"
        path.write_bytes(b"\x7fELF\x02\x01\x01\0adbemu benchmark_model stand-in\n")
        path.chmod(0o755)
        return "/data/local/tmp/benchmark_model"

    def log(self, level: str, tag: str, message: str) -> None:
        stamp = time.strftime("%m-%d %H:%M:%S", time.localtime()) + f".{int(time.time() * 1000) % 1000:03d}"
        with self._lock:
            self.logcat.append(f"{stamp}  4242  4251 {level} {tag}: {message}")

    def start(self) -> "EmulatedDevice":
        """Listen on 127.0.0.1: a free port the first time, the same port after stop()."""
        self.stopping = False
        self.unplugged = self._unplug_pending = False
        try:
            self._listen(self.port or 0)
        except OSError:
            self._listen(0)
        return self

    def stop(self) -> None:
        self.stopping = True
        self._stop_listening()
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            c.abort(also_write=True)
        if self.app is not None:
            self.app.stop()
        deadline = time.monotonic() + _STOP_JOIN_S
        with self._lock:
            threads = list(self._threads)
        for t in threads:
            if t is not threading.current_thread():
                t.join(max(0.0, deadline - time.monotonic()))
        alive = [t.name for t in threads if t.is_alive() and t is not threading.current_thread()]
        if alive:
            raise RuntimeError(f"adbemu: threads did not stop: {alive}")

    def unplug(self) -> None:
        """The cable is pulled: connections drop, new ones are refused until replug()."""
        self.unplugged = True
        self._stop_listening()
        self._unplug_pending = True
        self._drop_connections()

    def _drop_connections(self) -> None:
        """Complete an unplug: every connection drops (RST)."""
        with self._lock:
            if not self._unplug_pending:
                return
            self._unplug_pending = False
            conns = list(self._conns)
        for c in conns:
            c.abort()

    def replug(self) -> None:
        if not self.unplugged:
            return
        self._drop_connections()
        self.benchmarks_run = 0
        self.unplugged = False
        self._listen(self.port)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    # --- server ---
    def spawn(self, target, *args, name: str = "adbemu") -> threading.Thread:
        def guarded():
            try:
                target(*args)
            except (StreamClosed, ConnectionGone):
                pass
            except Exception:  # noqa: BLE001 - recorded for the tests to see
                self.errors.append(traceback.format_exc())
        t = threading.Thread(target=guarded, name=name, daemon=True)
        with self._lock:
            self._threads = [x for x in self._threads if x.is_alive()]
            self._threads.append(t)
        t.start()
        return t

    def _listen(self, port: int) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, port))
        sock.listen(16)
        self.port = sock.getsockname()[1]
        stop = threading.Event()
        self._listener_stop = stop
        self._accept_thread = self.spawn(self._accept_loop, sock, stop, name="adbemu-accept")

    def _stop_listening(self) -> None:
        """Close the listening socket now (connecting then gets 'connection refused')."""
        if self._listener_stop is not None:
            self._listener_stop.set()
        t = self._accept_thread
        if t is not None and t is not threading.current_thread():
            t.join(5.0)

    def _accept_loop(self, listener: socket.socket, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                ready, _, _ = select.select([listener], [], [], POLL_S)
                if not ready or stop.is_set():
                    continue
                sock, peer = listener.accept()
                conn = Connection(self, sock, peer)
                with self._lock:
                    self._conns.add(conn)
                self.spawn(conn.run, name=f"adbemu-conn-{peer[1]}")
        finally:
            listener.close()

    def connection_ended(self, conn: Connection) -> None:
        with self._lock:
            self._conns.discard(conn)

    # --- what the connections ask ---
    def banner(self) -> bytes:
        p = self.props
        return (f"device::ro.product.name={p['ro.product.name']};ro.product.model={p['ro.product.model']};"
                f"ro.product.device={p['ro.product.device']};features=").encode()

    def _known_keys(self) -> list[tuple[int, int]]:
        texts = self.accepted_keys if self.authorized_keys is None else self.authorized_keys
        return [k for k in (parse_public_key(t) for t in texts) if k is not None]

    def signature_accepted(self, token: bytes, signature: bytes) -> bool:
        if self.faults.unauthorized:
            return False
        return any(verify_signature(k, token, signature) for k in self._known_keys())

    def public_key_accepted(self, data: bytes) -> bool:
        key = parse_public_key(data)
        if self.faults.unauthorized or key is None:
            return False
        if self.authorized_keys is None:          # the user taps "Allow"
            self.accepted_keys.append(data.rstrip(b"\0").decode("ascii", "replace"))
            return True
        return key in self._known_keys()

    def open_service(self, conn: Connection, service: str):
        """(run(stream) or None, auto_ack) for a service, or None to refuse it."""
        from .sync import serve_sync

        if self._unplug_pending:                  # the benchmark that pulled the cable is done
            self._drop_connections()
            raise ConnectionGone("unplugged")
        if service.startswith(("shell:", "exec:")):
            cmd = service.split(":", 1)[1]
            with self._lock:
                self.commands.append(cmd)
            f = self.faults
            if f.disconnect_on_shell is not None and re.search(f.disconnect_on_shell, cmd):
                conn.abort()
                raise ConnectionGone("fault: disconnect on shell")
            if f.hang_on_shell is not None and re.search(f.hang_on_shell, cmd):
                return None, True                 # accepted, never answered
            return (lambda stream: self._run_shell(stream, cmd)), True
        if service == "sync:":
            return (lambda stream: serve_sync(self, stream)), False
        return None

    def _run_shell(self, stream, cmd: str) -> None:
        from .shell import Shell

        try:
            if not cmd.strip():
                stream.write(b"adbemu: an interactive shell is not emulated; send a command\n")
            else:
                Shell(self, stream.write, cancelled=lambda: stream.closed or self.stopping, wait=stream.wait).run(cmd)
        except StreamClosed:
            pass
        finally:
            stream.close()
            if self._unplug_pending:
                stream.remote_closed.wait(1.0)   # let the host read the last output first
                self._drop_connections()

    def benchmark_finished(self) -> None:
        """Count a completed benchmark_model run; the Nth one (faults.disconnect_after_benchmarks)
        unplugs the device: new connections are refused at once, the open ones drop as soon as
        this command's output has been delivered (or the host opens anything else)."""
        with self._lock:
            self.benchmarks_run += 1
            limit = self.faults.disconnect_after_benchmarks
            trigger = limit is not None and self.benchmarks_run >= limit and not self.unplugged
            if trigger:
                self._unplug_pending = True
                self.unplugged = True
        if trigger:
            self._stop_listening()

