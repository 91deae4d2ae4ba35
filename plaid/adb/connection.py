"""A connection to one Android device: shell, push, pull, with a timeout on every call.

Two kinds, registered by name (``--adb-connection``): ``python`` speaks the ADB
protocol itself with adb-shell (TCP for ``HOST:PORT`` serials, USB through libusb
otherwise); ``cli`` goes through the ``adb`` executable (plaid.adb.cli_connection), which
shares the device with a running adb server. Failures become one-line errors; a
connection that drops mid-command raises ``DeviceLost``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import re
import sys
from pathlib import Path

from plaid.adb.shell import sh, short, split_rc, with_rc
from plaid.errors import PlaidError, UsageError
from plaid.lut.session import DeviceLost
from plaid.registry import Registry

CONNECTIONS: Registry[type] = Registry("ADB connection")
DEFAULT_TIMEOUT_S = 30.0
_TCP = re.compile(r"^(?P<host>[A-Za-z0-9.\-]+|\[[0-9a-fA-F:]+\]):(?P<port>\d{1,5})$")


def tcp_address(serial: str) -> tuple[str, int] | None:
    """(host, port) when ``serial`` is HOST:PORT (adb's network serials), else None; a port
    outside 1..65535 is a usage error, not a phone that refuses the connection."""
    m = _TCP.match(serial)
    if not m:
        return None
    port = int(m.group("port"))
    if not 1 <= port <= 65535:
        raise UsageError(f"--adb-serial {serial}: port {port} is not a TCP port (1..65535)")
    return m.group("host").strip("[]"), port


class Connection(ABC):
    """What the runners need from a device. ``shell`` returns (output, exit status)."""

    name = ""

    def __init__(self, serial: str) -> None:
        self.serial = serial

    def shell(self, command: str, timeout: float = DEFAULT_TIMEOUT_S, what: str = "") -> tuple[str, int]:
        """(output, exit status) of ``command``; ``what`` names it in error messages."""
        what = what or f"`{short(command)}`"
        out = self._shell_raw(with_rc(command), timeout, what)
        text, rc = split_rc(out)
        if rc is None:
            raise DeviceLost(f"device {self.serial} lost (no exit status came back for {what})")
        return text, rc

    def check(self, command: str, timeout: float = DEFAULT_TIMEOUT_S, what: str = "") -> str:
        """Run ``command``; a non-zero exit status is a one-line PlaidError."""
        out, rc = self.shell(command, timeout, what)
        if rc != 0:
            last = (out.strip().splitlines() or ["(no output)"])[-1]
            raise PlaidError(f"{what or short(command)} failed on {self.serial} (exit {rc}): {last[:200]}")
        return out

    def exists(self, remote: str, timeout: float = DEFAULT_TIMEOUT_S) -> bool:
        return self.shell(sh("test", "-e", remote), timeout)[1] == 0

    @abstractmethod
    def _shell_raw(self, command: str, timeout: float, what: str) -> str:
        """The raw output of ``command`` (already carrying the exit-status marker)."""

    @abstractmethod
    def push(self, local: Path, remote: str, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        """Copy ``local`` to ``remote`` on the device."""

    @abstractmethod
    def pull(self, remote: str, local: Path, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        """Copy ``remote`` on the device to ``local``."""

    def close(self) -> None:
        pass


def auth_timeout() -> float:
    """Seconds to wait for the phone's "Allow USB debugging?" answer ($PLAID_ADB_AUTH_TIMEOUT, 30)."""
    import os

    raw = os.environ.get("PLAID_ADB_AUTH_TIMEOUT", "30")
    try:
        return max(0.1, float(raw))
    except ValueError:
        raise UsageError(f"PLAID_ADB_AUTH_TIMEOUT must be a number of seconds, got {raw!r}") from None


def connection_names() -> list[str]:
    """The registered kinds of ADB connection (``--adb-connection``), ``cli`` included."""
    import plaid.adb.cli_connection  # noqa: F401 - registers "cli"

    return CONNECTIONS.names()


def connect(kind: str, serial: str, **kw) -> Connection:
    """Open a connection of the named kind (``python`` or ``cli``)."""
    if kind == "cli":
        import plaid.adb.cli_connection  # noqa: F401 - registers "cli"
    return CONNECTIONS.get(kind)(serial, **kw)


def _adb_shell_errors():
    from adb_shell import exceptions as ex

    return ex


@CONNECTIONS.register("python")
class PythonConnection(Connection):
    """adb-shell: ``AdbDeviceTcp``-style TCP for HOST:PORT, ``AdbDeviceUsb`` otherwise."""

    name = "python"

    def __init__(self, serial: str, auth_timeout_s: float | None = None, connect_timeout_s: float = 10.0) -> None:
        super().__init__(serial)
        auth_timeout_s = auth_timeout() if auth_timeout_s is None else auth_timeout_s
        self._dev = None
        self._auth_asked = False
        self._open(auth_timeout_s, connect_timeout_s)

    # -- connecting
    def _open(self, auth_timeout_s: float, connect_timeout_s: float) -> None:
        from plaid.adb.keys import signers

        keys = signers()
        addr = tcp_address(self.serial)
        self._dev = self._tcp_device(*addr) if addr else self._usb_device()
        try:
            self._dev.connect(rsa_keys=keys, transport_timeout_s=connect_timeout_s, auth_timeout_s=auth_timeout_s,
                              read_timeout_s=connect_timeout_s, auth_callback=self._asking)
        except Exception as exc:  # noqa: BLE001 - mapped to one line below
            self._drop()
            raise self._connect_error(exc, auth_timeout_s) from None

    def _asking(self, _dev) -> None:
        self._auth_asked = True
        print(f"plaid: waiting for the phone {self.serial} to allow USB debugging from this computer "
              "(accept the prompt on its screen)", file=sys.stderr)

    @staticmethod
    def _tcp_device(host: str, port: int):
        from adb_shell.adb_device import AdbDevice
        from adb_shell.transport.tcp_transport import TcpTransport

        class EofTcpTransport(TcpTransport):
            """adb-shell's TCP transport reads an orderly close as endless empty reads;
            report it as the lost connection it is."""

            def bulk_read(self, numbytes, transport_timeout_s):
                data = super().bulk_read(numbytes, transport_timeout_s)
                if not data:
                    raise ConnectionResetError("the device closed the connection")
                return data

        return AdbDevice(EofTcpTransport(host, port))

    def _usb_device(self):
        try:
            from adb_shell.adb_device import AdbDeviceUsb

            return AdbDeviceUsb(serial=self.serial)
        except Exception as exc:  # noqa: BLE001
            raise usb_error(exc, self.serial) from None

    def _connect_error(self, exc: Exception, auth_timeout_s: float) -> PlaidError:
        ex = _adb_shell_errors()
        text = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, ex.DeviceAuthError) or self._auth_asked:
            return PlaidError(f"device {self.serial} is unauthorized: accept the USB debugging prompt on the phone, "
                              f"then retry (no answer within {auth_timeout_s:g} s)")
        if isinstance(exc, ConnectionRefusedError):
            return PlaidError(f"no ADB answer at {self.serial} (connection refused): check the address and that "
                              "the phone listens (`adb tcpip 5555` once over USB)")
        if isinstance(exc, (ex.TcpTimeoutException, TimeoutError, ex.AdbTimeoutError)):
            return PlaidError(f"device {self.serial} is offline (no answer to the ADB handshake); replug it or "
                              "restart adbd on the phone (toggle USB debugging)")
        if isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
            return PlaidError(f"device {self.serial} closed the connection during the handshake (offline or "
                              "held by another adb client); replug it and retry")
        if isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError):
            return PlaidError(f"cannot reach {self.serial}: {exc.strerror or exc}")
        return usb_error(exc, self.serial) if not tcp_address(self.serial) else PlaidError(
            f"ADB handshake with {self.serial} failed: {text[:200]}")

    # -- commands
    def _call(self, what: str, timeout: float, fn):
        if self._dev is None:
            raise DeviceLost(f"device {self.serial} lost (connection already closed)")
        ex = _adb_shell_errors()
        try:
            return fn()
        except (ex.TcpTimeoutException, ex.AdbTimeoutError, TimeoutError) as exc:
            # the connection stays usable for other commands (cleanup), like adb's
            raise PlaidError(f"device {self.serial} did not answer within {timeout:g} s: {what}") from exc
        except (ConnectionError, ex.UsbReadFailedError, ex.UsbWriteFailedError, ex.InvalidCommandError,
                ex.InvalidChecksumError, ex.InvalidResponseError) as exc:
            self._drop()
            raise DeviceLost(f"device {self.serial} lost ({_reason(exc)} during {what})") from exc
        except OSError as exc:
            self._drop()
            raise DeviceLost(f"device {self.serial} lost ({exc.strerror or exc} during {what})") from exc

    def _shell_raw(self, command: str, timeout: float, what: str) -> str:
        return self._call(what, timeout, lambda: self._dev.shell(
            command, transport_timeout_s=timeout, read_timeout_s=timeout, timeout_s=timeout))

    def push(self, local: Path, remote: str, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        ex = _adb_shell_errors()
        try:
            self._call(f"push of {Path(local).name} to {remote}", timeout, lambda: self._dev.push(
                str(local), remote, st_mode=0o100644, transport_timeout_s=timeout, read_timeout_s=timeout))
        except (ex.PushFailedError, ex.AdbCommandFailureException, ex.DevicePathInvalidError) as exc:
            raise PlaidError(f"push of {Path(local).name} to {remote} on {self.serial} failed: {exc}") from None

    def pull(self, remote: str, local: Path, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        ex = _adb_shell_errors()
        try:
            self._call(f"pull of {remote}", timeout, lambda: self._dev.pull(
                remote, str(local), transport_timeout_s=timeout, read_timeout_s=timeout))
        except (ex.AdbCommandFailureException, ex.DevicePathInvalidError) as exc:
            raise PlaidError(f"pull of {remote} from {self.serial} failed: {exc}") from None

    def _drop(self) -> None:
        dev, self._dev = self._dev, None
        if dev is not None:
            try:
                dev.close()
            except Exception:  # noqa: BLE001 - closing a broken connection
                pass

    def close(self) -> None:
        self._drop()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, BrokenPipeError):
        return "broken pipe"
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:120]


def usb_error(exc: BaseException, serial: str) -> PlaidError:
    """One line for the ways opening a USB device fails."""
    text = f"{type(exc).__name__}: {exc}"
    if "libusb" in text.lower() and ("find" in text.lower() or "load" in text.lower()) or \
            "install this package via" in text:
        return PlaidError("USB needs the system libusb-1.0, which is missing (apt-get install libusb-1.0-0); "
                          "or use --adb-connection cli (the adb executable), or a network serial HOST:PORT")
    if "BUSY" in text.upper():
        return PlaidError(f"device {serial} is held by a running adb server; stop it with `adb kill-server`, "
                          "or keep it and pass --adb-connection cli to go through it")
    if "ACCESS" in text.upper():
        return PlaidError(f"no permission to open USB device {serial}: add a udev rule for it (or run as root), "
                          "or use --adb-connection cli")
    if "UsbDeviceNotFound" in text or "No device available" in text:
        attached = ", ".join(d["serial"] for d in list_usb_safe()) or "none"
        return UsageError(f"no USB device with serial {serial!r} (attached: {attached}); see `plaid devices`")
    return PlaidError(f"cannot open USB device {serial}: {text[:200]}")


def list_usb_safe() -> list[dict]:
    from plaid.adb.usb import list_usb

    try:
        return list_usb()
    except PlaidError:
        return []
