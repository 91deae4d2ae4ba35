"""The ``cli`` ADB connection: the ``adb`` executable (Android platform-tools or Debian's
``adb`` package) through subprocess with argument lists. It goes through the running adb
server, so it works while that server holds the USB device."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from plaid.adb.connection import CONNECTIONS, DEFAULT_TIMEOUT_S, Connection, auth_timeout, tcp_address
from plaid.errors import PlaidError, UsageError
from plaid.lut.session import DeviceLost

_LOST = ("not found", "offline", "no devices", "closed", "device still connecting", "connection reset",
         "protocol fault", "broken pipe")


@CONNECTIONS.register("cli")
class CliConnection(Connection):
    name = "cli"

    def __init__(self, serial: str, adb: str | None = None, auth_timeout_s: float | None = None) -> None:
        super().__init__(serial)
        self.adb = adb or shutil.which("adb")
        if not self.adb:
            raise UsageError("--adb-connection cli needs the adb executable on PATH (Android platform-tools, or "
                             "apt-get install adb); or use --adb-connection python")
        if tcp_address(serial):
            out = self._run(["connect", serial], DEFAULT_TIMEOUT_S, "adb connect", check=False, serial=False)
            if "cannot connect" in out or "refused" in out.lower():
                raise PlaidError(f"no ADB answer at {serial} ({_last(out)}): check the address and that the phone "
                                 "listens (`adb tcpip 5555` once over USB)")
        # a new key makes the phone ask first: poll its state while the prompt is answered
        deadline = time.monotonic() + (auth_timeout_s if auth_timeout_s is not None else auth_timeout())
        while True:
            state = self._run(["get-state"], DEFAULT_TIMEOUT_S, "adb get-state", check=False)
            if state.strip() == "device":
                break
            if time.monotonic() > deadline or not any(s in state for s in ("unauthorized", "authorizing",
                                                                              "connecting", "offline")):
                raise _state_error(serial, state)
            time.sleep(0.3)

    def devices(self) -> str:
        return self._run(["devices", "-l"], DEFAULT_TIMEOUT_S, "adb devices", serial=False)

    def _run(self, args: list[str], timeout: float, what: str, check: bool = True, serial: bool = True) -> str:
        cmd = [self.adb, *(["-s", self.serial] if serial else []), *args]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, errors="replace")
        except subprocess.TimeoutExpired:
            raise PlaidError(f"device {self.serial} did not answer within {timeout:g} s: {what}") from None
        out = (proc.stdout or "") + (proc.stderr or "")
        if check and proc.returncode != 0:
            low = out.lower()
            if "unauthorized" in low:
                raise _state_error(self.serial, "unauthorized")
            if any(s in low for s in _LOST):
                raise DeviceLost(f"device {self.serial} lost ({_last(out)} during {what})")
            raise PlaidError(f"{what} failed on {self.serial}: {_last(out)}")
        return out

    def _shell_raw(self, command: str, timeout: float, what: str) -> str:
        # adb joins its arguments with spaces for the device shell: one pre-quoted string
        return self._run(["shell", command], timeout, what)

    def push(self, local: Path, remote: str, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self._run(["push", str(local), remote], timeout, f"push of {Path(local).name} to {remote}")

    def pull(self, remote: str, local: Path, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self._run(["pull", remote, str(local)], timeout, f"pull of {remote}")


def _last(out: str) -> str:
    lines = [ln.strip() for ln in out.strip().splitlines() if ln.strip()]
    return (lines[-1] if lines else "(no output)")[:200]


def _state_error(serial: str, state: str) -> PlaidError:
    low = state.lower()
    if "unauthorized" in low:
        return PlaidError(f"device {serial} is unauthorized: accept the USB debugging prompt on the phone, "
                          "then retry")
    if "offline" in low:
        return PlaidError(f"device {serial} is offline; replug it or restart adbd on the phone "
                          "(toggle USB debugging)")
    if "not found" in low or "no devices" in low:
        return UsageError(f"adb does not know device {serial!r}; `adb devices -l` (or `plaid devices "
                          "--adb-connection cli`) lists the attached ones")
    return PlaidError(f"device {serial} is not ready: {_last(state)}")


def adb_devices() -> list[dict]:
    """`adb devices -l` as rows {serial, state, model, board, detail}."""
    adb = shutil.which("adb")
    if not adb:
        raise UsageError("--adb-connection cli needs the adb executable on PATH (Android platform-tools, or "
                         "apt-get install adb)")
    try:
        proc = subprocess.run([adb, "devices", "-l"], capture_output=True, text=True, timeout=DEFAULT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise PlaidError(f"`adb devices -l` did not answer within {DEFAULT_TIMEOUT_S:g} s") from None
    if proc.returncode != 0:
        raise PlaidError(f"`adb devices -l` failed: {_last(proc.stdout + proc.stderr)}")
    rows = []
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) < 2 or line.startswith(("List of devices", "*")):
            continue
        extra = dict(p.split(":", 1) for p in parts[2:] if ":" in p)
        rows.append({"serial": parts[0], "state": parts[1], "model": extra.get("model", "").replace("_", " "),
                     "board": "", "detail": ""})
    return rows
