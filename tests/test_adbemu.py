"""The emulated Android device (tests/adbemu) against the real adb-shell 0.4.4 client:
handshake and RSA auth, shell subset, sync push/pull/stat, Pixel 3 values, fault
injection, the benchmark_model stand-in and the APK stand-in."""

import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import time

import pytest
from adb_shell import exceptions as adb_exc
from adb_shell.adb_device import AdbDeviceTcp
from adb_shell.auth.keygen import keygen
from adb_shell.auth.sign_pythonrsa import PythonRSASigner

from adbemu import EmulatedDevice, Faults

pytestmark = pytest.mark.adb

TMP = "/data/local/tmp"
APP = "/sdcard/Android/data/org.plaid.bench/files"
ODD_NAME = "model v2 'quoted' \"double\".bin"


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """Two key pairs in adbkey/adbkey.pub form, made with adb-shell's keygen."""
    d = tmp_path_factory.mktemp("keys")
    out = {}
    for name in ("mine", "other"):
        keygen(str(d / name))
        out[name] = (PythonRSASigner.FromRSAKeyPath(str(d / name)), (d / f"{name}.pub").read_text())
    return out


@pytest.fixture
def device(tmp_path):
    dev = EmulatedDevice(root=tmp_path / "phone", serial="EMU845", faults=Faults())
    dev.start()
    yield dev
    dev.stop()
    assert dev.errors == []


def connect(dev, keys, which="mine", read_timeout_s=5.0):
    adb = AdbDeviceTcp(dev.host, dev.port, default_transport_timeout_s=read_timeout_s)
    assert adb.connect(rsa_keys=[keys[which][0]], auth_timeout_s=1.0, read_timeout_s=read_timeout_s)
    return adb


def sh(adb, cmd, **kw):
    return adb.shell(cmd, read_timeout_s=kw.pop("read_timeout_s", 10.0), **kw)


def test_connect_shell_and_exit_codes(device, keys):
    adb = connect(device, keys)
    assert device.address == f"127.0.0.1:{device.port}"
    assert sh(adb, "echo hello world") == "hello world\n"
    assert sh(adb, 'false; echo "__RC=$?"') == "__RC=1\n"
    assert sh(adb, "true && echo yes || echo no; false && echo yes || echo no") == "yes\nno\n"
    out = sh(adb, "frobnicate --now; echo $?")
    assert out == "/system/bin/sh: frobnicate: not found\n127\n"
    assert sh(adb, "cat /data/local/tmp/missing; echo $?") == (
        "cat: /data/local/tmp/missing: No such file or directory\n1\n")
    assert sh(adb, "cat /data/local/tmp/missing 2>/dev/null; echo $?") == "1\n"
    assert sh(adb, "echo '$?' \"$?\" a\\ b") == "$? 0 a b\n"
    assert sh(adb, f"echo one > {TMP}/f.txt && echo two >> {TMP}/f.txt; cat {TMP}/f.txt; stat -c %s {TMP}/f.txt") \
        == "one\ntwo\n8\n"
    assert sh(adb, f"[ -f {TMP}/f.txt ] && echo file; test -d {TMP} && echo dir; [ -x {TMP}/f.txt ]; echo $?") \
        == "file\ndir\n1\n"
    assert sh(adb, "echo a | cat; echo $?").startswith("adbemu: ")     # beyond the subset: said loudly
    assert sh(adb, "id; uname -m; getenforce; which ls; command -v echo").splitlines()[1:] == [
        "aarch64", "Enforcing", "/system/bin/ls", "echo"]
    assert sh(adb, "ls /data; echo $?") == "ls: /data: Permission denied\n1\n"
    assert sh(adb, "touch /system/x 2>&1; echo hi > /system/x; echo $?") == (
        "/system/bin/sh: touch: not found\n/system/bin/sh: can't create /system/x: Read-only file system\n1\n")
    assert "echo hello world" in device.commands
    adb.close()


def test_getprop_and_sysfs_values(device, keys):
    adb = connect(device, keys)
    props = {k: sh(adb, f"getprop {k}").strip() for k in (
        "ro.product.model", "ro.product.manufacturer", "ro.board.platform", "ro.build.version.sdk",
        "ro.serialno", "ro.product.cpu.abi", "no.such.prop")}
    assert props == {"ro.product.model": "Pixel 3", "ro.product.manufacturer": "Google",
                     "ro.board.platform": "sdm845", "ro.build.version.sdk": "29", "ro.serialno": "EMU845",
                     "ro.product.cpu.abi": "arm64-v8a", "no.such.prop": ""}
    assert "[ro.hardware]: [blueline]\n" in sh(adb, "getprop")
    cpu = "/sys/devices/system/cpu"
    freqs = sh(adb, " ; ".join(f"cat {cpu}/cpu{c}/cpufreq/cpuinfo_max_freq" for c in range(8))).split()
    assert freqs == ["1766400"] * 4 + ["2803200"] * 4
    assert sh(adb, f"cat {cpu}/online {cpu}/cpu4/cpufreq/scaling_governor") == "0-7\nschedutil\n"
    device.temperature_c = 47.5
    zones = {}
    for n in range(12):
        out = sh(adb, f"cat /sys/class/thermal/thermal_zone{n}/type /sys/class/thermal/thermal_zone{n}/temp")
        kind, temp = out.split()
        zones[kind] = int(temp)
    assert 47000 <= zones["cpu4-gold-usr"] <= 47500 and "cpu0-silver-usr" in zones
    battery = int(sh(adb, "cat /sys/class/power_supply/battery/temp"))
    assert 300 < battery < 400 and abs(zones["battery"] - battery * 100) <= 100
    assert f"  temperature: {battery}\n" in sh(adb, "dumpsys battery")
    assert "Qualcomm Technologies, Inc SDM845" in sh(adb, "cat /proc/cpuinfo")
    assert sh(adb, "echo 1 > /sys/class/thermal/thermal_zone0/temp; echo $?").endswith("1\n")
    adb.close()


def test_push_pull_stat_round_trip(device, keys, tmp_path):
    adb = connect(device, keys)
    data = os.urandom(700_000)                      # several 64 KiB sync chunks, several WRTEs
    local = tmp_path / ODD_NAME
    local.write_bytes(data)
    remote = f"{TMP}/sub dir/{ODD_NAME}"
    sh(adb, f"mkdir -p {shlex.quote(TMP + '/sub dir')}")
    adb.push(str(local), remote, st_mode=0o100644, mtime=1_600_000_000)
    assert (device.sandbox / remote.lstrip("/")).read_bytes() == data
    mode, size, mtime = adb.stat(remote)
    assert (mode & 0o777, size, mtime) == (0o644, len(data), 1_600_000_000)
    assert adb.stat(f"{TMP}/nothing-here") == (0, 0, 0)
    q = shlex.quote(remote)
    assert sh(adb, f"stat -c %s {q}; md5sum {q}") == f"{len(data)}\n{hashlib.md5(data).hexdigest()}  {remote}\n"
    assert sh(adb, f"ls {shlex.quote(TMP + '/sub dir')}") == ODD_NAME + "\n"
    back = tmp_path / "back.bin"
    adb.pull(remote, str(back))
    assert back.read_bytes() == data
    names = sorted(f.filename.decode() for f in adb.list(f"{TMP}/sub dir"))
    assert names == [".", "..", ODD_NAME]
    with pytest.raises(adb_exc.AdbCommandFailureException, match="No such file or directory"):
        adb.pull(f"{TMP}/absent.bin", str(tmp_path / "absent.bin"))
    with pytest.raises(adb_exc.PushFailedError, match="Read-only file system"):
        adb.push(str(local), "/system/bin/evil")
    # the sandbox cannot be left: '..' stops at the device root, host files outside are invisible
    (tmp_path / "phone").parent.joinpath("host-file.txt").write_text("HOST-ONLY-CONTENT")
    out = sh(adb, f"cat {TMP}/../../../../host-file.txt /../host-file.txt; echo $?")
    assert "HOST-ONLY-CONTENT" not in out and out.endswith("No such file or directory\n1\n")
    with pytest.raises(adb_exc.AdbCommandFailureException):
        adb.pull("/../host-file.txt", str(tmp_path / "stolen.txt"))
    assert sh(adb, f"rm -r {shlex.quote(TMP + '/sub dir')}; ls {TMP}") == ""
    adb.close()
