"""A real OpenSSH server on loopback for tests: throwaway host and user keys in a tmp
folder, the test user = the current user, its own sshd_config (``UsePAM no``, a free high
port) and a client config that keeps ``ssh`` off ~/.ssh and /etc/ssh (OpenSSH reads ~/.ssh
from the passwd home, not $HOME)."""

import getpass
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from plaid.devices.ssh import SshAddress, SshConnection, SshOptions

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
needs_sshd = pytest.mark.skipif(not os.path.exists(SSHD), reason="needs openssh-server (make system-deps)")


def keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sshd:
    def __init__(self, d: Path) -> None:
        self.dir, self.port = d, free_port()
        self.host_key, self.user_key = keygen(d / "host_key"), keygen(d / "user_key")
        (d / "authorized_keys").write_text((d / "user_key.pub").read_text())
        (d / "authorized_keys").chmod(0o600)
        (d / "sshd_config").write_text(f"""Port {self.port}
ListenAddress 127.0.0.1
HostKey {self.host_key}
AuthorizedKeysFile {d}/authorized_keys
PidFile {d}/sshd.pid
UsePAM no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
StrictModes no
LogLevel ERROR
""")
        self.known_hosts = d / "known_hosts"
        self.known_hosts.write_text("")
        self.config = d / "ssh_config"  # keeps the client off ~/.ssh and /etc/ssh
        self.config.write_text(f"Host *\n  UserKnownHostsFile {self.known_hosts}\n  GlobalKnownHostsFile {d}/none\n"
                               "  IdentityAgent none\n")
        self.proc = None

    def start(self) -> None:
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation folder
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.dir / "sshd_config")],
                                     stderr=open(self.dir / "sshd.log", "w"))
        deadline = time.time() + 10
        while time.time() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("sshd did not start: " + (self.dir / "sshd.log").read_text())

    def kill(self) -> None:
        """The server and every session it forked (each in its own session)."""
        import psutil

        if self.proc is None or self.proc.poll() is not None:
            return
        p = psutil.Process(self.proc.pid)
        for c in [p, *p.children(recursive=True)]:
            try:
                c.kill()
            except psutil.NoSuchProcess:
                pass
        self.proc.wait()

    def address(self) -> SshAddress:
        return SshAddress.parse(self.spec())

    def spec(self) -> str:
        """``USER@127.0.0.1:PORT``, as given to --ssh."""
        return f"{getpass.getuser()}@127.0.0.1:{self.port}"

    def connect(self, key=None, accept=False) -> SshConnection:
        return SshConnection(self.address(), SshOptions(key=key or self.user_key, config=self.config,
                                                        accept_new_host_key=accept, connect_timeout_s=5))


@pytest.fixture
def sshd(tmp_path):
    """A running server (killed at the end)."""
    s = Sshd(tmp_path)
    s.start()
    yield s
    s.kill()
