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
import threading
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
    assert not [t.name for t in threading.enumerate() if t.name.startswith("adbemu")]


def connect(dev, keys, which="mine", read_timeout_s=5.0):
    adb = AdbDeviceTcp(dev.host, dev.port, default_transport_timeout_s=read_timeout_s)
    try:
        assert adb.connect(rsa_keys=[keys[which][0]], auth_timeout_s=1.0, read_timeout_s=read_timeout_s)
    except BaseException:
        adb.close()
        raise
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


# --- authentication -----------------------------------------------------------------------------

def test_auth_accepts_known_keys_and_refuses_others(tmp_path, keys):
    mine, other = keys["mine"][1], keys["other"][1]
    with EmulatedDevice(root=tmp_path / "a", authorized_keys=[mine]) as dev:
        adb = connect(dev, keys, "mine")             # signature verified against adbkey.pub
        assert sh(adb, "echo ok") == "ok\n"
        adb.close()
        start = time.monotonic()
        with pytest.raises(adb_exc.TcpTimeoutException):   # prompt never accepted: silence
            connect(dev, keys, "other")
        assert time.monotonic() - start < 5
        keyless = AdbDeviceTcp(dev.host, dev.port, default_transport_timeout_s=2)
        with pytest.raises(adb_exc.DeviceAuthError):
            keyless.connect(rsa_keys=[])
        keyless.close()
    with EmulatedDevice(root=tmp_path / "b", authorized_keys=None) as dev:
        adb = connect(dev, keys, "other")            # unknown key: the user taps "allow"
        adb.close()
        assert dev.accepted_keys and dev.accepted_keys[0].split()[0] == other.split()[0]
        connect(dev, keys, "other").close()          # now known: the signature is enough
        dev.faults.unauthorized = True
        with pytest.raises(adb_exc.TcpTimeoutException):
            connect(dev, keys, "other")
        assert dev.errors == []


# --- faults ---------------------------------------------------------------------------------------

def test_disconnect_mid_push_leaves_no_complete_file(device, keys, tmp_path):
    local = tmp_path / "big.bin"
    local.write_bytes(os.urandom(500_000))
    remote = f"{TMP}/big.bin"
    device.faults.disconnect_after_push_bytes = 200_000
    adb = connect(device, keys, read_timeout_s=2.0)
    with pytest.raises((ConnectionError, adb_exc.AdbTimeoutError, adb_exc.TcpTimeoutException)):
        adb.push(str(local), remote)
    adb.close()
    assert not (device.sandbox / remote.lstrip("/")).exists()        # adbd removes a cut transfer
    device.faults.keep_partial_push = True                            # ... unless power was lost
    adb = connect(device, keys, read_timeout_s=2.0)
    with pytest.raises((ConnectionError, adb_exc.AdbTimeoutError, adb_exc.TcpTimeoutException)):
        adb.push(str(local), remote)
    adb.close()
    assert (device.sandbox / remote.lstrip("/")).stat().st_size == 200_000
    device.faults.disconnect_after_push_bytes = None
    adb = connect(device, keys)
    assert adb.stat(remote)[1] == 200_000                             # visible as what it is: short
    adb.push(str(local), remote)
    assert adb.stat(remote)[1] == 500_000
    adb.close()


def test_hang_and_disconnect_on_shell(device, keys):
    device.faults.hang_on_shell = r"^sleepy"
    device.faults.disconnect_on_shell = r"cat /proc/cpuinfo"
    adb = connect(device, keys)
    start = time.monotonic()
    with pytest.raises((adb_exc.AdbTimeoutError, adb_exc.TcpTimeoutException)):
        adb.shell("sleepy forever", transport_timeout_s=0.5, read_timeout_s=0.5)
    assert time.monotonic() - start < 3
    assert sh(adb, "echo still alive") == "still alive\n"             # only that command hangs
    with pytest.raises((ConnectionError, adb_exc.AdbTimeoutError, adb_exc.TcpTimeoutException)):
        adb.shell("cat /proc/cpuinfo", read_timeout_s=1.0)
    adb.close()
    assert "cat /proc/cpuinfo" in device.commands
    adb = connect(device, keys)                                       # a new connection works
    assert sh(adb, "echo back") == "back\n"
    adb.close()


# --- benchmark_model stand-in -------------------------------------------------------------------

_MAKE_TFLITE = """
import sys
import numpy as np
import tensorflow as tf
w = tf.constant(np.random.default_rng(0).standard_normal((3, 3, 8, 16)).astype("float32"))
@tf.function(input_signature=[tf.TensorSpec([1, 16, 16, 8], tf.float32)])
def f(x):
    return tf.nn.relu(tf.nn.conv2d(x, w, 1, "SAME"))
conv = tf.lite.TFLiteConverter.from_concrete_functions([f.get_concrete_function()], f)
open(sys.argv[1], "wb").write(conv.convert())
"""


@pytest.fixture(scope="session")
def tiny_tflite(tmp_path_factory):
    """A real one-conv TFLite model (TF's converter, in a subprocess: ~5 s once)."""
    path = tmp_path_factory.mktemp("tflite") / "tiny conv.tflite"
    subprocess.run([sys.executable, "-c", _MAKE_TFLITE, str(path)], check=True, capture_output=True, timeout=120,
                   env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert path.read_bytes()[4:8] == b"TFL3"
    return path


STAT_RE = r"INFO: count=(\d+) first=(\d+) curr=(\d+) min=(\d+) max=(\d+) avg=([\d.e+]+) std=(\d+)"


def run_bench(adb, graph, *flags, binary=f"{TMP}/benchmark_model"):
    cmd = " ".join(shlex.quote(a) for a in ["taskset", "f0", binary, f"--graph={graph}", *flags])
    out = sh(adb, cmd + '; echo "__RC=$?"', read_timeout_s=30.0)
    body, rc = out.rsplit("__RC=", 1)
    return body, int(rc)


def test_benchmark_model_prints_the_official_format(device, keys, tiny_tflite):
    adb = connect(device, keys)
    device.preinstall_benchmark_model()
    graph = f"{TMP}/plaid units/{tiny_tflite.name}"
    adb.push(str(tiny_tflite), graph)
    out, rc = run_bench(adb, graph, "--num_threads=2", "--warmup_runs=3", "--num_runs=25", "--min_secs=0.01",
                        "--warmup_min_secs=0", "--max_secs=5", "--use_xnnpack=true", "--no_such_flag=1")
    assert rc == 0, out
    lines = out.splitlines()
    assert lines[0] == "INFO: STARTING!"
    for expected in ("WARN: Unconsumed cmdline flags: --no_such_flag=1", "INFO: Num threads: [2]",
                     "INFO: #threads used for CPU inference: [2]", "INFO: Min num runs: [25]",
                     "INFO: Min warmup runs: [3]", f"INFO: Graph: [{graph}]", "INFO: Use xnnpack: [1]",
                     f"INFO: Loaded model {graph}"):
        assert expected in lines, expected
    size = float(re.search(r"INFO: The input model file size \(MB\): ([\d.e+-]+)\n", out).group(1))
    assert size == pytest.approx(tiny_tflite.stat().st_size / 1e6, rel=1e-3)
    assert re.search(r"INFO: Initialized session in [\d.]+ms\.\n", out)
    assert ("INFO: Running benchmark for at least 3 iterations and at least 0 seconds but terminate if "
            "exceeding 5 seconds.") in lines
    assert ("INFO: Running benchmark for at least 25 iterations and at least 0.01 seconds but terminate if "
            "exceeding 5 seconds.") in lines
    (warm, regular) = [tuple(map(float, m)) for m in re.findall(STAT_RE, out)]
    for count, first, curr, lo, hi, avg, std in (warm, regular):
        assert lo <= avg <= hi and lo <= first <= hi and lo <= curr <= hi and 0 < hi < 1e6
    assert warm[0] >= 3 and regular[0] >= 25
    timings = re.search(r"INFO: Inference timings in us: Init: (\d+), First inference: (\d+), "
                        r"Warmup \(avg\): ([\d.e+]+), Inference \(avg\): ([\d.e+]+)\n", out)
    assert timings and float(timings.group(4)) == regular[5] and int(timings.group(2)) == warm[1]
    assert re.search(r"Memory footprint delta from the start of the tool \(MB\): init=[\d.]+ overall=[\d.]+", out)
    assert device.last_affinity == [4, 5, 6, 7]
    # throttling: reported times scale with dev.slowdown; heat builds up while benchmarking
    device.slowdown, device.heat_per_bench_s, device.cooling_tau_s = 50.0, 200.0, 1e9
    before = device.temperature_c
    slow, rc = run_bench(adb, graph, "--num_runs=25", "--min_secs=0.01", "--warmup_min_secs=0", "--num_threads=1")
    assert rc == 0 and device.temperature_c > before
    assert tuple(map(float, re.findall(STAT_RE, slow)[-1]))[3] >= 10 * regular[3]
    device.slowdown = 1.0
    # errors as the real tool reports them
    out, rc = run_bench(adb, f"{TMP}/missing.tflite")
    assert rc == 1 and f"ERROR: Failed to mmap model {TMP}/missing.tflite" in out
    assert out.rstrip().endswith("ERROR: Benchmarking failed.")
    out, rc = run_bench(adb, graph, "--num_runs=many")
    assert rc == 1 and "ERROR: Failed to parse flag 'num_runs' against argv '--num_runs=many'" in out
    not_a_model = f"{TMP}/notes.txt"
    sh(adb, f"echo hello > {not_a_model}")
    out, rc = run_bench(adb, not_a_model)
    assert rc == 1 and "Failed to mmap model" in out
    sh(adb, f"chmod 644 {TMP}/benchmark_model")
    out, rc = run_bench(adb, graph)
    assert rc == 126 and "can't execute: Permission denied" in out
    out, rc = run_bench(adb, graph, binary="benchmark_model")       # not on PATH
    assert rc == 127 and "benchmark_model: not found" in out
    adb.close()


def test_unplug_after_benchmarks_and_replug(device, keys, tiny_tflite):
    adb = connect(device, keys)
    binary = device.preinstall_benchmark_model()
    adb.push(str(tiny_tflite), f"{TMP}/m.tflite")
    device.faults.disconnect_after_benchmarks = 2
    flags = ("--num_runs=3", "--min_secs=0", "--warmup_min_secs=0")
    for _ in range(2):                     # both runs deliver their output, then the cable goes
        out, rc = run_bench(adb, f"{TMP}/m.tflite", *flags, binary=binary)
        assert rc == 0 and "Inference timings in us" in out
    with pytest.raises(ConnectionError):
        sh(adb, "echo anyone")
    adb.close()
    with pytest.raises(ConnectionRefusedError):
        connect(device, keys)
    device.faults.disconnect_after_benchmarks = None
    device.replug()
    adb = connect(device, keys)
    out, rc = run_bench(adb, f"{TMP}/m.tflite", *flags, binary=binary)
    assert rc == 0
    adb.close()


# --- APK stand-in ---------------------------------------------------------------------------------

def test_apk_stand_in_runs_a_plan(device, keys, tiny_tflite, tmp_path):
    from device_bench.schema import PLAN_SCHEMA, validate_results

    adb = connect(device, keys)
    work = f"{APP}/plaid"
    plan = {"schema": PLAN_SCHEMA, "runtime": "tflite",
            "settings": {"threads": 1, "warmup_runs": 1, "min_runs": 5, "min_seconds": 0.01, "max_seconds": 5.0},
            "models": [{"key": "conv-16x16x8", "path": "units/tiny conv.tflite"},
                       {"key": "gone", "path": "units/missing.tflite"}]}
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    (tmp_path / "plaid.apk").write_bytes(b"PK\x03\x04 stand-in apk")
    adb.push(str(tmp_path / "plan.json"), f"{work}/plan.json")
    adb.push(str(tiny_tflite), f"{work}/units/tiny conv.tflite")
    adb.push(str(tmp_path / "plaid.apk"), f"{TMP}/plaid.apk")
    out = f"{work}/results.json"
    start = (f"am start -S -W -n org.plaid.bench/.BenchActivity --es plan {shlex.quote(work + '/plan.json')} "
             f"--es out {shlex.quote(out)}")
    assert "Error: Activity class {org.plaid.bench/org.plaid.bench.BenchActivity} does not exist." in sh(adb, start)
    assert sh(adb, f"pm install -r -g {TMP}/plaid.apk") == "Success\n"
    assert sh(adb, "pm list packages plaid; pm path org.plaid.bench; echo $?").splitlines()[::2] == [
        "package:org.plaid.bench", "0"]
    started = sh(adb, start)
    assert "Status: ok" in started and "Complete" in started
    deadline = time.monotonic() + 30
    while sh(adb, f"test -f {shlex.quote(out)}; echo $?") != "0\n":
        assert time.monotonic() < deadline, sh(adb, "logcat -d -s plaid-bench")
        time.sleep(0.05)
    adb.pull(out, str(tmp_path / "results.json"))
    doc = validate_results(json.loads((tmp_path / "results.json").read_text()))
    ok, gone = doc["results"]
    assert ok["key"] == "conv-16x16x8" and ok["status"] == "ok" and ok["runs"] >= 5 and 0 < ok["median_ms"] < 100
    assert gone["status"] == "error" and "not found" in gone["error"]
    assert doc["device"]["model"] == "Pixel 3" and doc["device"]["board"] == "sdm845"
    events = [json.loads(line) for line in sh(adb, f"cat {shlex.quote(out + '.events.jsonl')}").splitlines()]
    assert [e["event"] for e in events] == ["result", "result"] and events[0]["key"] == "conv-16x16x8"
    assert "I plaid-bench: done 2 models" in sh(adb, "logcat -d -s plaid-bench")
    assert sh(adb, "pidof org.plaid.bench; echo $?") == "1\n"     # finished
    # a plan the app cannot read (outside its folder) ends as an error document
    adb.push(str(tmp_path / "plan.json"), f"{TMP}/plan.json")
    sh(adb, f"rm {shlex.quote(out)}; am start -S -n org.plaid.bench/.BenchActivity --es plan {TMP}/plan.json "
            f"--es out {shlex.quote(out)}")
    deadline = time.monotonic() + 10
    while sh(adb, f"test -f {shlex.quote(out)}; echo $?") != "0\n":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert "Permission denied" in json.loads(sh(adb, f"cat {shlex.quote(out)}"))["error"]
    assert sh(adb, "am force-stop org.plaid.bench; pm uninstall org.plaid.bench; pm path org.plaid.bench; echo $?") \
        == "Success\n1\n"
    adb.close()
