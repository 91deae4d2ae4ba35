"""A Linux board over SSH through the OpenSSH client (``ssh``), so ``~/.ssh/config``,
keys, the agent and known_hosts work as OpenSSH users expect. One master connection per
board (ControlMaster, socket in a private scratch folder); every command rides on it with
a timeout. Host keys are checked strictly: an unknown or changed key is refused in one
line naming ``--accept-new-host-key`` (which trusts a *new* key, never a changed one)."""

from __future__ import annotations

import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from plaid.devices.connection import DEFAULT_TIMEOUT_S, Connection
from plaid.devices.shell import sh
from plaid.errors import DeviceLost, PlaidError, UsageError

_ADDRESS = re.compile(r"^(?:(?P<user>[^@\s:]+)@)?(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.\-]+)(?::(?P<port>\d{1,5}))?$")
ACCEPT_FLAG = "--accept-new-host-key"


@dataclass(frozen=True)
class SshAddress:
    host: str
    user: str | None = None
    port: int | None = None

    @classmethod
    def parse(cls, text: str) -> SshAddress:
        m = _ADDRESS.match(text.strip())
        if not m:
            raise UsageError(f"--ssh {text!r}: expected [USER@]HOST[:PORT]")
        port = int(m.group("port")) if m.group("port") else None
        if port is not None and not 1 <= port <= 65535:
            raise UsageError(f"--ssh {text}: port {port} is not a TCP port (1..65535)")
        return cls(m.group("host").strip("[]"), m.group("user"), port)

    def __str__(self) -> str:
        return f"{self.user + '@' if self.user else ''}{self.host}{':' + str(self.port) if self.port else ''}"


@dataclass(frozen=True)
class SshOptions:
    key: Path | None = None  # --ssh-key
    config: Path | None = None  # --ssh-config (default: OpenSSH's own, ~/.ssh/config)
    accept_new_host_key: bool = False
    connect_timeout_s: float = 10.0


class SshConnection(Connection):
    name = "ssh"
    noun = "board"

    def __init__(self, address: SshAddress, options: SshOptions = SshOptions(), ssh: str | None = None) -> None:
        super().__init__(str(address))
        self.target, self.options = address, options
        self.ssh = ssh or shutil.which("ssh")
        if not self.ssh:
            raise UsageError("--ssh needs the OpenSSH client (`ssh`) on PATH (apt-get install openssh-client)")
        for flag, path in (("--ssh-key", options.key), ("--ssh-config", options.config)):
            if path is not None and not Path(path).is_file():
                raise UsageError(f"{flag} {path}: no such file")
        from plaid.procs import Group, scratch_dir

        self._scratch = scratch_dir("plaid-ssh-")
        self._dir = Path(self._scratch.name)
        self._master: subprocess.Popen | None = None
        self._group: Group | None = Group()  # the master (and so every command on it) dies with plaid, kill -9 too
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    # -- arguments
    def _args(self, master: bool = False) -> list[str]:
        o = self.options
        args = [self.ssh, "-o", "BatchMode=yes", "-o", f"ConnectTimeout={o.connect_timeout_s:g}",
                "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3",
                "-o", f"StrictHostKeyChecking={'accept-new' if o.accept_new_host_key else 'yes'}",
                "-o", f"ControlPath={self._dir}/%C", "-o", f"ControlMaster={'yes' if master else 'no'}"]
        if o.config is not None:
            args += ["-F", str(o.config)]
        if o.key is not None:
            args += ["-i", str(o.key), "-o", "IdentitiesOnly=yes"]
        if self.target.port:
            args += ["-p", str(self.target.port)]
        if self.target.user:
            args += ["-l", self.target.user]
        return args + ["--", self.target.host]

    # -- connecting
    def _open(self) -> None:
        log = self._dir / "master.log"
        with open(log, "w") as err:
            self._master = self._group.popen([*self._args(master=True)[:-2], "-N", "-o", "ControlPersist=no",
                                              "--", self.target.host], stdin=subprocess.DEVNULL,
                                             stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + 2 * self.options.connect_timeout_s + 5
        while time.monotonic() < deadline:
            if self._master.poll() is not None:
                raise self._connect_error(log.read_text(errors="replace"))
            if any(p.name != "master.log" for p in self._dir.iterdir()):  # the control socket: logged in
                for line in log.read_text(errors="replace").splitlines():
                    if "Permanently added" in line:
                        print(f"plaid: ssh: {line.strip()}", file=sys.stderr)
                return
            time.sleep(0.02)
        raise PlaidError(f"board {self.address} did not finish the SSH login within "
                         f"{2 * self.options.connect_timeout_s + 5:g} s")

    def _connect_error(self, text: str) -> PlaidError:
        low = text.lower()
        last = _last(text)
        at = self.address
        if "identification has changed" in low or "has changed and you have requested strict" in low:
            fp = re.search(r"SHA256:[A-Za-z0-9+/=]+", text)
            return PlaidError(f"the host key of {at} has CHANGED{' (now ' + fp.group(0) + ')' if fp else ''}: if the "
                              f"board was reinstalled, remove the old key (`ssh-keygen -R {self.target.host}`) and "
                              f"rerun with {ACCEPT_FLAG}; otherwise someone may be in between")
        if "host key verification failed" in low or "no " in low and "host key is known" in low:
            return PlaidError(f"the host key of {at} is not known (not in known_hosts): check it, then rerun with "
                              f"{ACCEPT_FLAG} to trust and record it")
        if "permission denied" in low or "too many authentication failures" in low:
            return PlaidError(f"{at} refused the login ({last}): pass --ssh-key PATH or add your public key to the "
                              "board's ~/.ssh/authorized_keys")
        if "connection refused" in low:
            return PlaidError(f"no SSH server answers at {at} (connection refused): check the address and port, "
                              "and that sshd runs on the board")
        if "could not resolve" in low:
            return UsageError(f"cannot resolve the host of --ssh {at}: {last}")
        if "timed out" in low or "no route" in low or "unreachable" in low:
            return PlaidError(f"board {at} is unreachable ({last})")
        return PlaidError(f"ssh to {at} failed: {last}")

    # -- commands
    def _run(self, command: str, timeout: float, what: str, stdin=None, binary: bool = False):
        if self._master is None or self._master.poll() is not None:
            raise DeviceLost(f"board {self.address} lost (the SSH connection is closed) during {what}")
        try:
            proc = subprocess.run([*self._args(), command], stdin=stdin if stdin is not None else subprocess.DEVNULL,
                                  capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise PlaidError(f"board {self.address} did not answer within {timeout:g} s: {what}") from None
        if proc.returncode == 255:
            raise DeviceLost(f"board {self.address} lost ({_last(proc.stderr.decode(errors='replace')).rstrip('.')} "
                             f"during {what})")  # plaid.lut.bench adds what is saved and that a rerun resumes
        return proc

    def _shell_raw(self, command: str, timeout: float, what: str) -> str:
        return self._run(command, timeout, what).stdout.decode(errors="replace")

    def stream(self, command: str, on_line: Callable[[str], None], idle_timeout: float, what: str) -> tuple[int, str]:
        """Run ``command``, handing each line of its output to ``on_line`` the moment it
        arrives; returns (exit status, last line of its stderr). No line for
        ``idle_timeout`` seconds is a hang (PlaidError); the link dropping is DeviceLost.
        If ``on_line`` raises, the command is stopped and the error goes on."""
        if self._master is None or self._master.poll() is not None:
            raise DeviceLost(f"board {self.address} lost (the SSH connection is closed) during {what}")
        lines: queue.Queue = queue.Queue()
        with open(self._dir / "stream.err", "w+b") as err:
            proc = subprocess.Popen([*self._args(), command], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=err, start_new_session=True)
            assert proc.stdout is not None
            reader = threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True)
            reader.start()
            try:
                while True:
                    try:
                        line = lines.get(timeout=idle_timeout)
                    except queue.Empty:
                        raise PlaidError(f"board {self.address} sent nothing for {idle_timeout:g} s during {what} "
                                         "(a hang?)") from None
                    if line is None:
                        break
                    on_line(line)
                try:
                    rc = proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    raise PlaidError(f"ssh to board {self.address} did not end after {what}") from None
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                reader.join(5)
                proc.stdout.close()
            err.seek(0)
            tail = _last(err.read().decode(errors="replace"))
        if rc == 255:
            raise DeviceLost(f"board {self.address} lost ({tail.rstrip('.')} during {what})")
        return rc, tail

    def push(self, local: Path, remote: str, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        what = f"push of {Path(local).name} to {remote}"
        with open(local, "rb") as fh:
            proc = self._run(f"cat > {sh(remote)}", timeout, what, stdin=fh)
        if proc.returncode != 0:
            raise PlaidError(f"{what} on {self.address} failed: {_last(proc.stderr.decode(errors='replace'))}")

    def pull(self, remote: str, local: Path, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        what = f"pull of {remote}"
        proc = self._run(sh("cat", remote), timeout, what)
        if proc.returncode != 0:
            raise PlaidError(f"{what} from {self.address} failed: {_last(proc.stderr.decode(errors='replace'))}")
        Path(local).write_bytes(proc.stdout)

    def close(self) -> None:
        master, self._master = self._master, None
        if master is not None and master.poll() is None:
            master.terminate()
            try:
                master.wait(5)
            except subprocess.TimeoutExpired:
                master.kill()
                master.wait()
        group, self._group = self._group, None
        if group is not None:
            group.close()
        self._scratch.cleanup()


def _pump(stream, lines: queue.Queue) -> None:
    """Lines of ``stream`` into ``lines``, then None at its end."""
    try:
        for raw in stream:
            lines.put(raw.decode(errors="replace").rstrip("\n"))
    except (OSError, ValueError):  # closed under us: the command was stopped
        pass
    lines.put(None)


def _last(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip() and not ln.startswith("@")]
    return (lines[-1] if lines else "connection closed")[:200]
