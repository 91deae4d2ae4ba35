"""The SSH link (plaid.devices.ssh) against a real OpenSSH server on loopback: throwaway
host and user keys in the tmp dir, the test user = the current user. Quoting of a remote
folder with spaces and quotes, push/pull, an unknown / changed host key refused with one
line naming --accept-new-host-key, a wrong key, a refused port, a server killed mid-run."""

from pathlib import Path

import pytest

from plaid.devices.shell import sh
from plaid.devices.ssh import SshAddress, SshConnection, SshOptions
from plaid.errors import DeviceLost, PlaidError, UsageError
from sshd import free_port, keygen, needs_sshd, sshd  # noqa: F401 - sshd: the fixture (tests/sshd.py)

pytestmark = needs_sshd


def test_address_parsing():
    assert SshAddress.parse("pi@board.local:2222") == SshAddress("board.local", "pi", 2222)
    assert SshAddress.parse("board") == SshAddress("board")
    assert SshAddress.parse("[::1]:22") == SshAddress("::1", None, 22)
    for bad in ("", "a b", "pi@host:99999", "@host"):
        with pytest.raises(UsageError):
            SshAddress.parse(bad)


def test_unknown_host_key_then_accept_then_quoting(sshd, tmp_path):
    with pytest.raises(PlaidError, match="not known.*--accept-new-host-key") as exc:
        sshd.connect()
    assert "\n" not in str(exc.value)
    conn = sshd.connect(accept=True)
    try:
        assert "127.0.0.1" in sshd.known_hosts.read_text()
        folder = str(tmp_path / "remote dir with 'single' and \"double\" quotes $HOME")
        conn.check(sh("mkdir", "-p", folder))
        local = tmp_path / "model file.bin"
        local.write_bytes(bytes(range(256)) * 100)
        conn.push(local, folder + "/m 1.bin")
        assert Path(folder, "m 1.bin").read_bytes() == local.read_bytes()
        back = tmp_path / "back.bin"
        conn.pull(folder + "/m 1.bin", back)
        assert back.read_bytes() == local.read_bytes()
        out, rc = conn.shell(sh("ls", folder))
        assert rc == 0 and out.strip() == "m 1.bin"
        assert conn.shell(sh("sh", "-c", "exit 3"))[1] == 3
    finally:
        conn.close()
    sshd.connect().close()  # the recorded key is trusted from now on


def test_changed_host_key_is_refused_even_with_accept(sshd, tmp_path):
    other = keygen(tmp_path / "other_host")
    sshd.known_hosts.write_text(f"[127.0.0.1]:{sshd.port} " + " ".join(other.with_suffix(".pub").read_text().split()[:2])
                                + "\n")
    for accept in (False, True):
        with pytest.raises(PlaidError, match="CHANGED.*--accept-new-host-key"):
            sshd.connect(accept=accept)


def test_wrong_key_and_refused_port(sshd, tmp_path):
    wrong = keygen(tmp_path / "wrong_key")
    with pytest.raises(PlaidError, match="refused the login.*--ssh-key"):
        sshd.connect(key=wrong, accept=True)
    closed = SshAddress.parse(f"127.0.0.1:{free_port()}")
    with pytest.raises(PlaidError, match="connection refused"):
        SshConnection(closed, SshOptions(key=sshd.user_key, config=sshd.config, connect_timeout_s=3))
    with pytest.raises(UsageError, match="--ssh-key .*no such file"):
        SshConnection(sshd.address(), SshOptions(key=tmp_path / "nope", config=sshd.config))


def test_server_killed_mid_command_is_device_lost(sshd):
    conn = sshd.connect(accept=True)
    try:
        import threading

        threading.Timer(0.5, sshd.kill).start()
        with pytest.raises(DeviceLost, match=r"board .* lost \(.* during a long unit\)"):
            conn.shell("sleep 10", timeout=20, what="a long unit")
        with pytest.raises(DeviceLost):
            conn.shell("true")
    finally:
        conn.close()


def test_master_connection_dies_with_a_killed_plaid(sshd):
    """kill -9 runs no cleanup: the master ssh (its own process group) must end anyway."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import psutil

    sshd.connect(accept=True).close()  # record the host key
    script = ("import sys, time; sys.path.insert(0, 'tests'); from sshd import Sshd; from pathlib import Path\n"
              "from plaid.devices.ssh import SshConnection, SshOptions, SshAddress\n"
              f"c = SshConnection(SshAddress.parse({sshd.spec()!r}), SshOptions(key=Path({str(sshd.user_key)!r}), "
              f"config=Path({str(sshd.config)!r})))\n"
              "print(c._dir, flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[1])
    control_dir = proc.stdout.readline().strip()
    assert control_dir

    def masters():
        return [p for p in psutil.process_iter(["cmdline"]) if any(control_dir in a for a in p.info["cmdline"] or [])]

    assert masters(), "the master ssh is running"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 10
    while masters() and time.time() < deadline:
        time.sleep(0.1)
    assert not masters()
