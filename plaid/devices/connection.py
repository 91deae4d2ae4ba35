"""What every link to a device offers: ``shell`` (output and exit status), ``check``,
``exists``, ``push``, ``pull``, each with a timeout. A link that drops mid-command raises
``DeviceLost``; other failures are one-line ``PlaidError``s naming the device."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

from plaid.devices.shell import sh, short, split_rc, with_rc
from plaid.errors import DeviceLost, PlaidError

DEFAULT_TIMEOUT_S = 30.0


class Connection(ABC):
    """``address`` names the device in messages (an ADB serial, ``user@host:port``)."""

    name = ""
    noun = "device"

    def __init__(self, address: str) -> None:
        self.address = address

    def shell(self, command: str, timeout: float = DEFAULT_TIMEOUT_S, what: str = "") -> tuple[str, int]:
        """(output, exit status) of ``command``; ``what`` names it in error messages."""
        what = what or f"`{short(command)}`"
        text, rc = split_rc(self._shell_raw(with_rc(command), timeout, what))
        if rc is None:
            raise DeviceLost(f"{self.noun} {self.address} lost (no exit status came back for {what})")
        return text, rc

    def check(self, command: str, timeout: float = DEFAULT_TIMEOUT_S, what: str = "") -> str:
        """Run ``command``; a non-zero exit status is a one-line PlaidError."""
        out, rc = self.shell(command, timeout, what)
        if rc != 0:
            last = (out.strip().splitlines() or ["(no output)"])[-1]
            raise PlaidError(f"{what or short(command)} failed on {self.address} (exit {rc}): {last[:200]}")
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
