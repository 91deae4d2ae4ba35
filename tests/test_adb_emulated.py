"""The ADB host side against the emulated Pixel 3 (tests/adbemu) with the real adb-shell
client on loopback TCP: library-level checks (quoting, faults, cool-down, sentinel) in
this process, then `plaid bench --target sd845 --adb-serial 127.0.0.1:PORT` in a
subprocess: a complete table, a phone unplugged mid-table and the rerun that resumes,
the APK runner, refusal to mix fingerprints, one-line errors."""

import json
import os
import shlex
import shutil
import sqlite3
from pathlib import Path

import pytest

from adbemu import EmulatedDevice, Faults
from conftest import run_plaid

pytestmark = pytest.mark.adb

TINY_PL1A = """
description = "tiny adb test preset"
stem = [8, 16]
resolution = [32, 32]
[[stages]]
name = "stage1"
widths = [16]
units = [1, 2]
[[stages]]
name = "stage2"
widths = [24]
units = [1, 1]
[[stages]]
name = "stage3"
widths = [32]
units = [1, 1]
"""
FAST = {"pl1a = [384, 640]": "pl1a = [32, 32]", "warmup_runs = 10": "warmup_runs = 1",
        "warmup_seconds = 0.5": "warmup_seconds = 0.0", "min_runs = 50": "min_runs = 5",
        "min_seconds = 2.0": "min_seconds = 0.05", "cooldown_poll_s = 5.0": "cooldown_poll_s = 0.2",
        "cooldown_max_wait_s = 300": "cooldown_max_wait_s = 10", "sentinel_every = 20": "sentinel_every = 2",
        # timings of micro-models on a shared host are noisy: only a large drift counts here
        "sentinel_tolerance = 0.10": "sentinel_tolerance = 5.0"}
N_UNITS = 6
SERIAL = "EMU845"


def sd845_env(tmp_path: Path, cache: Path, edits: dict[str, str] | None = None) -> dict:
    """A copy of configs/ with the tiny pl1a preset and a fast sd845 protocol (the
    sd845 counterpart of conftest.preset_env, which edits host.toml)."""
    configs = tmp_path / "configs"
    if not configs.exists():
        shutil.copytree(Path(__file__).resolve().parents[1] / "configs", configs)
        (configs / "spaces" / "pl1a.toml").write_text(TINY_PL1A)
    f = configs / "targets" / "sd845.toml"
    text = f.read_text()
    for old, new in {**FAST, **(edits or {})}.items():
        assert old in text, old
        text = text.replace(old, new)
    f.write_text(text)
    return {"PLAID_CONFIG_DIR": str(configs), "PLAID_CACHE": str(cache), "PLAID_LUT_DIR": str(tmp_path / "luts"),
            "ANDROID_USER_HOME": str(tmp_path.parent / "android"), "PLAID_ADB_AUTH_TIMEOUT": "2"}


@pytest.fixture(scope="module")
def keys_home(tmp_path_factory):
    """One ADB key for the module (RSA key generation takes a moment)."""
    home = tmp_path_factory.mktemp("android")
    old = os.environ.get("ANDROID_USER_HOME")
    os.environ["ANDROID_USER_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("ANDROID_USER_HOME", None)
    else:
        os.environ["ANDROID_USER_HOME"] = old


@pytest.fixture
def dev(tmp_path, keys_home):
    d = EmulatedDevice(root=tmp_path / "device", serial=SERIAL, faults=Faults())
    d.start()
    yield d
    d.stop()
    assert not d.errors, d.errors[0]


@pytest.fixture(scope="module")
def models(tmp_path_factory, tflite_cache):
    """The tiny preset's units as .tflite files (converted once; the CLI runs below find
    them in the same cache)."""
    from plaid.convert import tflite_many
    from plaid.lut.units import space_units
    from plaid.spaces import get_space

    tmp = tmp_path_factory.mktemp("cfg")
    env = sd845_env(tmp, tflite_cache)
    old = os.environ.get("PLAID_CONFIG_DIR")
    os.environ["PLAID_CONFIG_DIR"] = env["PLAID_CONFIG_DIR"]
    try:
        units = space_units(get_space("pl1a"), (32, 32))
        paths = tflite_many([(u.key, u.build, u.input_shape) for u in units], cache=tflite_cache)
    finally:
        if old is None:
            os.environ.pop("PLAID_CONFIG_DIR")
        else:
            os.environ["PLAID_CONFIG_DIR"] = old
    assert len(units) == N_UNITS
    return [(u.key, p) for u, p in zip(units, paths)]


def fake_binary(tmp_path: Path) -> Path:
    b = tmp_path / "bin dir" / "benchmark_model"
    b.parent.mkdir(parents=True, exist_ok=True)
    b.write_bytes(b"\x7fELF stand-in: the emulator runs any executable named benchmark_model\n")
    return b


def device_files(dev, where="data/local/tmp") -> list[str]:
    base = dev.sandbox / where
    return sorted(str(p.relative_to(base)) for p in base.rglob("*")) if base.exists() else []


def sd845(**protocol):
    from plaid.targets import load_target

    t = load_target("sd845")
    return t.with_protocol(**{"warmup_runs": 1, "warmup_seconds": 0.0, "min_runs": 5, "min_seconds": 0.05,
                              "sentinel_every": 0, **protocol})


# --------------------------------------------------------------------------- library level


def test_connection_fingerprint_quoting_and_cleanup(dev, tmp_path, models):
    from plaid.adb.connection import connect
    from plaid.adb.device import DeviceInfo
    from plaid.adb.runners import BenchmarkModelRunner

    conn = connect("python", dev.address)
    try:
        info = DeviceInfo.read(conn)
        fp = info.fingerprint()
        assert fp["model"] == "Pixel 3" and fp["board"] == "sdm845" and fp["sdk"] == "29" and fp["serial"] == SERIAL
        assert fp["cpu_governors"] == ["schedutil"] * 8 and fp["cpu_max_khz"][4:] == [2803200] * 4
        dev.temperature_c = 52.0
        temps = info.temperatures()
        assert 51 < temps["cpu_c"] <= 52.1 and 30 < temps["battery_c"] < 40

        nasty = "/data/local/tmp/it's a \"dir\" $HOME;x"
        settings = {"threads": 4, "warmup_runs": 1, "warmup_seconds": 0.0, "min_runs": 5, "min_seconds": 0.05,
                    "max_seconds": 5.0, "delegate": "xnnpack", "cpus": [4, 5, 6, 7]}
        runner = BenchmarkModelRunner(conn, settings, benchmark_binary=fake_binary(tmp_path), workdir=nasty)
        rows = []
        runner.run(models[:2], rows.append)
        assert [r["status"] for r in rows] == ["ok", "ok"], rows
        assert all(0 <= r["min_ms"] <= r["median_ms"] <= r["p90_ms"] and r["runs"] >= 5 for r in rows)
        assert dev.last_affinity == [4, 5, 6, 7]
        bench = [shlex.split(c.split(" 2>&1;")[0]) for c in dev.commands if c.startswith("taskset ")]
        assert len(bench) == 2, dev.commands
        for argv in bench:  # the device shell saw each path as one argument, unexpanded
            assert argv[:2] == ["taskset", "f0"] and argv[2].startswith(nasty + "/plaid-")
            assert argv[3].startswith("--graph=" + nasty + "/plaid-") and argv[3].endswith(".tflite")
        assert (dev.sandbox / "data/local/tmp/it's a \"dir\" $HOME;x").is_dir()
        runner.cleanup()
        assert device_files(dev) == ["it's a \"dir\" $HOME;x"]  # the run folder inside it is gone
    finally:
        conn.close()


def test_faults_map_to_one_line_errors(dev, tmp_path):
    from plaid.adb.connection import PythonConnection, connect
    from plaid.errors import PlaidError
    from plaid.lut.session import DeviceLost

    conn = connect("python", dev.address)
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(300_000))
    dev.faults.disconnect_after_push_bytes = 100_000
    with pytest.raises(DeviceLost, match="lost .*push of big.bin"):
        conn.push(big, "/data/local/tmp/big.bin", timeout=10)
    with pytest.raises(DeviceLost):  # the connection stays closed
        conn.shell("true")
    dev.faults.disconnect_after_push_bytes = None

    conn = connect("python", dev.address)
    dev.faults.hang_on_shell = r"^sleep"
    with pytest.raises(PlaidError, match=r"did not answer within 1 s: `sleep 5`"):
        conn.shell("sleep 5", timeout=1)
    dev.faults.hang_on_shell = None
    assert conn.shell("echo still here") == ("still here", 0)  # a hung command does not end the connection
    conn.close()

    dev.faults.unauthorized = True
    with pytest.raises(PlaidError, match="accept the USB debugging prompt on the phone"):
        PythonConnection(dev.address, auth_timeout_s=1)
    dev.faults.unauthorized = False
    dev.stop()
    with pytest.raises(PlaidError, match="connection refused"):
        connect("python", dev.address)
    dev.start()


def test_cooldown_waits_when_hot_and_temperatures_are_stored(dev, tmp_path, models):
    from plaid.adb.session import AdbSession

    target = sd845(cooldown_above_c=45.0, cooldown_target_c=40.0, cooldown_poll_s=0.1, cooldown_max_wait_s=20)
    dev.cooling_tau_s = 1.0  # a phone that cools in seconds, not minutes
    events = []
    session = AdbSession(target, serial=dev.address, benchmark_binary=fake_binary(tmp_path))
    try:
        dev.temperature_c = 80.0
        session.measure(models[:2], events.append, lambda *a: None)
    finally:
        session.close()
    notices = [e["message"] for e in events if e["event"] == "notice"]
    results = [e for e in events if e["event"] == "result"]
    assert notices and notices[0].startswith("cooling down: CPU at ")
    assert float(notices[0].split("CPU at ")[1].split()[0]) > 45.0
    assert len(results) == 2 and all(r["status"] == "ok" for r in results)
    first = results[0]["info"]
    assert first["cooldown_s"] > 0 and first["temp_before"]["cpu_c"] <= 40.0
    assert set(first["temp_after"]) == {"cpu_c", "battery_c"} and first["runner"] == "benchmark_model"
    assert device_files(dev) == []


def test_sentinel_drift_is_flagged_and_units_remeasured(dev, tmp_path, models):
    from plaid.adb.session import AdbSession

    target = sd845(sentinel_every=3, sentinel_tolerance=2.0)
    events = []

    def on_event(e):
        events.append(e)
        results = [x for x in events if x["event"] == "result"]
        if len(results) == 2:  # the reference and one unit measured: the phone throttles hard
            dev.slowdown = 50.0

    session = AdbSession(target, serial=dev.address, benchmark_binary=fake_binary(tmp_path))
    try:
        session.measure(models, on_event, lambda *a: None)
    finally:
        session.close()
    warnings = [e["message"] for e in events if e["event"] == "warning"]
    results = [e for e in events if e["event"] == "result"]
    assert results[0]["info"]["sentinel"] == "reference"
    assert any("sentinel drifted" in w and "re-measuring the 3 unit(s)" in w for w in warnings), warnings
    assert any("still off after the cool-down" in w for w in warnings), warnings
    again = [r for r in results if "remeasured" in r["info"]]
    first_window = [r["key"] for r in results[1:4]]
    assert [r["key"] for r in again[:3]] == first_window  # the units since the last good check, again
    assert all(r["info"]["remeasured"]["drift_before"] > 2.0 for r in again)
    assert len({r["key"] for r in results}) == N_UNITS and device_files(dev) == []


# --------------------------------------------------------------------------- the CLI


def table_rows(path: Path) -> dict[str, dict]:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {k: json.loads(x) for k, x in con.execute("SELECT key, extra FROM units")}
    finally:
        con.close()


@pytest.mark.slow
@pytest.mark.tflite
def test_bench_builds_the_table_resumes_after_unplug_and_cleans_up(dev, tmp_path, models, tflite_cache):
    env = sd845_env(tmp_path, tflite_cache)
    binary = fake_binary(tmp_path)
    cmd = ["bench", "--target", "sd845", "--adb-serial", dev.address, "--benchmark-binary", str(binary), "--json"]

    dev.faults.disconnect_after_benchmarks = 3  # sentinel + 2 units, then the cable is pulled
    first = run_plaid(*cmd, env=env)
    assert first.returncode == 1, first.stderr
    err = [ln for ln in first.stderr.splitlines() if ln.startswith("plaid: error:")]
    assert len(err) == 1 and "lost" in err[0] and "after 3 of 6 units; 3 of 6 are saved, rerun the same command " \
                                                 "to resume" in err[0], first.stderr
    assert "Traceback" not in first.stderr
    tables = list((tmp_path / "luts").glob("*.sqlite"))
    assert len(tables) == 1 and len(table_rows(tables[0])) == 3
    assert any(p.startswith("plaid-") for p in device_files(dev))  # the phone went away with its files

    dev.faults.disconnect_after_benchmarks = None
    dev.replug()
    second = run_plaid(*cmd, env=env)
    assert second.returncode == 0, second.stderr
    build = json.loads(second.stdout)["build"]
    assert build["already_measured"] == 3 and build["measured_now"] == 3 and build["units"] == N_UNITS
    rows = table_rows(tables[0])
    assert len(rows) == N_UNITS
    extra = next(iter(rows.values()))
    assert {"temp_before", "temp_after", "runner", "statistic"} <= set(extra)
    assert device_files(dev) == []  # this run's folder and the stale one are gone

    from plaid.lut.store import LatencyTable

    with LatencyTable.open(tables[0]) as t:
        fp, meta = t.meta.fingerprint, t.meta
    assert fp["model"] == "Pixel 3" and fp["board"] == "sdm845" and fp["runner"] == "benchmark_model"
    assert fp["cpu_governors"] == ["schedutil"] * 8 and meta.runtime_version.startswith("benchmark_model-")
    assert meta.settings["cpus"] == [4, 5, 6, 7] and "sentinel_every" not in meta.settings
    assert any(c.startswith("taskset f0 ") for c in dev.commands)

    # without a phone, lut show and search find the table measured on it
    shown = run_plaid("lut", "show", "--target", "sd845", "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    assert len(json.loads(shown.stdout)["rows"]) == N_UNITS
    found = run_plaid("search", "--target", "sd845", "--budget", "2", "--epochs", "1", "--train-limit", "64",
                      "--runs-dir", str(tmp_path / "runs"), "--json", env=env)
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["trained"] == 2

    # another phone (another build) gets its own table; forcing the old file is refused
    with EmulatedDevice(root=tmp_path / "other", serial=SERIAL,
                        props={"ro.build.fingerprint": "google/blueline/blueline:11/RQ3A/1:user/release-keys"}) as other:
        dry = run_plaid("bench", "--target", "sd845", "--adb-serial", other.address, "--benchmark-binary", str(binary),
                        "--dry-run", "--json", env=env)
        assert dry.returncode == 0, dry.stderr
        info = json.loads(dry.stdout)
        assert info["table"] != str(tables[0]) and not any(u["measured"] for u in info["units"])
        mixed = run_plaid(*cmd[:3], "--adb-serial", other.address, "--benchmark-binary", str(binary),
                          "--table", str(tables[0]), env=env)
        assert mixed.returncode == 2 and "refusing to mix" in mixed.stderr and "fingerprint.build" in mixed.stderr


@pytest.mark.slow
@pytest.mark.tflite
def test_a_4_thread_table_and_its_validation_run_on_the_phone(dev, tmp_path, models, tflite_cache):
    """The sd845 preset's protocol (4 threads on cores 4-7) builds the table and times the
    validation nets end to end on the (emulated) phone; the figures are the emulator's, the
    path is the phone's."""
    env = sd845_env(tmp_path, tflite_cache)
    binary = fake_binary(tmp_path)
    cmd = ["bench", "--target", "sd845", "--adb-serial", dev.address, "--benchmark-binary", str(binary), "--json"]
    small = run_plaid(*cmd, "--validate", "3", "--calibrate", "3", env=env)  # the tiny preset has 2 nets
    assert small.returncode == 2 and "only 2 distinct nets" in small.stderr, small.stderr
    (tmp_path / "configs" / "spaces" / "pl1a.toml").write_text(TINY_PL1A.replace("widths = [24]", "widths = [24, 32]")
                                                               .replace("widths = [16]", "widths = [16, 24]"))
    out = run_plaid(*cmd, "--validate", "3", "--calibrate", "3", env=env)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["build"]["measured_now"] + report["build"]["already_measured"] == report["build"]["units"]
    val = report["validation"]
    assert val["fidelity"]["n"] == 3 and len(val["validation"]) == 3 and val["calibration"]["n"] == 3
    assert all(r["measured_ms"] > 0 and r["predicted_ms"] > 0 for r in val["validation"])
    runs = [c for c in dev.commands if "benchmark_model" in c and "--graph=" in c]
    assert runs and all("--num_threads=4" in c and c.startswith("taskset f0 ") for c in runs)
    assert len(runs) >= report["build"]["units"] + 6  # the units, then 3 + 3 whole nets, all on the phone
    from plaid.lut.store import LatencyTable

    (table,) = (tmp_path / "luts").glob("*.sqlite")
    with LatencyTable.open(table) as t:
        assert t.meta.settings["threads"] == 4 and t.meta.settings["cpus"] == [4, 5, 6, 7]


@pytest.mark.slow
@pytest.mark.tflite
def test_bench_with_the_apk_runner(dev, tmp_path, models, tflite_cache):
    env = sd845_env(tmp_path, tflite_cache)
    apk = tmp_path / "plaid-bench.apk"
    apk.write_bytes(b"PK\x03\x04 stand-in apk")
    out = run_plaid("bench", "--target", "sd845", "--adb-serial", dev.address, "--runner", "apk", "--apk", str(apk),
                    "--json", env=env)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["build"]["measured_now"] == N_UNITS and report["runner"] == "apk"
    (table,) = (tmp_path / "luts").glob("*.sqlite")
    rows = table_rows(table)
    assert len(rows) == N_UNITS and all(r["runner"] == "apk" for r in rows.values())
    assert any(c.startswith("am start -S -W -n org.plaid.bench/.BenchActivity --es plan ") for c in dev.commands)
    assert "org.plaid.bench" in dev.packages
    assert device_files(dev) == [] and device_files(dev, "sdcard/Android/data/org.plaid.bench/files/plaid") == []


def test_cli_one_line_errors_and_devices(dev, tmp_path, tflite_cache):
    env = sd845_env(tmp_path, tflite_cache)
    probe = run_plaid("devices", "--adb-serial", dev.address, "--json", env=env)
    assert probe.returncode == 0, probe.stderr
    (row,) = json.loads(probe.stdout)
    assert row["state"] == "device" and row["model"] == "Pixel 3" and row["board"] == "sdm845"

    dev.faults.unauthorized = True
    out = run_plaid("bench", "--target", "sd845", "--adb-serial", dev.address, env=env)
    assert out.returncode == 1 and out.stderr.strip().splitlines()[-1].startswith("plaid: error: device ")
    assert "accept the USB debugging prompt on the phone, then retry" in out.stderr
    listed = json.loads(run_plaid("devices", "--adb-serial", dev.address, "--json", env=env).stdout)
    assert listed[0]["state"] == "unauthorized"
    dev.faults.unauthorized = False

    out = run_plaid("bench", "--target", "sd845", "--adb-serial", dev.address, env=env)  # no binary anywhere
    assert out.returncode == 2 and "--benchmark-binary" in out.stderr and "Traceback" not in out.stderr
    out = run_plaid("bench", "--target", "sd845", env=env)
    assert out.returncode == 2 and "plaid devices" in out.stderr
    out = run_plaid("bench", "--target", "sd845", "--dry-run", "--json", env=env)  # no phone needed
    assert out.returncode == 0 and len(json.loads(out.stdout)["units"]) == N_UNITS

    usb = run_plaid("devices", env=env)  # this machine: libusb may or may not be there
    assert usb.returncode == 0 or (usb.returncode == 1 and "libusb" in usb.stderr
                                   and len(usb.stderr.strip().splitlines()) == 1)


@pytest.mark.slow
@pytest.mark.tflite
def test_hung_benchmark_is_a_timeout_naming_the_unit(dev, tmp_path, models, tflite_cache):
    env = sd845_env(tmp_path, tflite_cache, {"unit_timeout_s = 120.0": "unit_timeout_s = 2.0"})
    dev.preinstall_benchmark_model()
    dev.faults.hang_on_shell = r"benchmark_model --graph"
    out = run_plaid("bench", "--target", "sd845", "--adb-serial", dev.address, env=env)
    assert out.returncode == 1, out.stderr
    line = out.stderr.strip().splitlines()[-1]
    assert line.startswith("plaid: error: benchmark_model on ") and "did not finish within 2 s" in line
    assert device_files(dev) == ["benchmark_model"]  # what plaid pushed is gone, the phone's own tool stays


@pytest.fixture
def adb_server(tmp_path):
    """A private adb server (its own port) for --adb-connection cli, killed afterwards."""
    import socket
    import subprocess

    adb = shutil.which("adb")
    if adb is None:
        pytest.fail("the adb executable is not installed (Debian package adb; `make system-deps` installs it)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {"ANDROID_ADB_SERVER_PORT": str(port), "HOME": str(tmp_path / "home")}
    (tmp_path / "home").mkdir()
    yield env
    subprocess.run([adb, "kill-server"], env={**os.environ, **env}, capture_output=True, timeout=30)


@pytest.mark.slow
@pytest.mark.tflite
def test_bench_through_the_adb_executable(dev, tmp_path, models, tflite_cache, adb_server):
    env = {**sd845_env(tmp_path, tflite_cache), **adb_server}
    out = run_plaid("bench", "--target", "sd845", "--adb-serial", dev.address, "--adb-connection", "cli",
                    "--benchmark-binary", str(fake_binary(tmp_path)), "--json", env=env)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["build"]["measured_now"] == N_UNITS
    assert device_files(dev) == []
    listed = run_plaid("devices", "--adb-transport", "cli", "--json", env=env)  # the old spelling still works
    assert listed.returncode == 0, listed.stderr
    assert {"serial": dev.address, "state": "device", "model": "Pixel 3", "board": "sdm845"}.items() <= \
        json.loads(listed.stdout)[0].items()


@pytest.mark.slow
@pytest.mark.tflite
def test_export_times_the_tflite_file_on_the_phone(dev, tmp_path, tflite_cache):
    env = sd845_env(tmp_path, tflite_cache)
    out = tmp_path / "bundle"
    proc = run_plaid("export", "pl1a:16x1-24x1-32x1", "--target", "sd845", "--format", "tflite-fp32",
                     "--resolution", "32x32", "--parity-samples", "8", "--adb-serial", dev.address,
                     "--benchmark-binary", str(fake_binary(tmp_path)), "-o", str(out), env=env)
    assert proc.returncode == 0, proc.stderr
    art = json.loads((out / "manifest.json").read_text())["artifacts"][0]
    lat = art["latency"]
    assert lat["median_ms"] > 0 and lat["threads"] == 4
    assert "Pixel 3" in lat["where"] and "benchmark_model" in lat["where"]
    assert any("--graph=" in c and c.startswith("taskset f0 ") for c in dev.commands)
    assert device_files(dev) == []  # the pushed model and binary are cleaned up
