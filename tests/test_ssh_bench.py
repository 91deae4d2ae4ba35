"""`plaid bench --target rpi5 --ssh USER@127.0.0.1:PORT` against a real OpenSSH server on
loopback (tests/sshd.py): device_bench is copied to a per-run folder "on the board" and run
there with the real TFLite interpreter, on the tiny DF preset of test_bench_e2e (6 units,
64x64: converted once per test session, shared with that test). Faults: an unknown host
key, a wrong key, an interpreter without numpy, the server killed mid-table and a rerun
that resumes without re-measuring; the remote folders have spaces, quotes, $ and
backquotes in their names. The run folder's life: stale ones removed, its own removed at
the end."""

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import edit_file, run_plaid
from sshd import keygen, needs_sshd, sshd  # noqa: F401 - sshd: the fixture (tests/sshd.py)
from test_bench_e2e import TINY_DF

pytestmark = needs_sshd

RPI5_EDITS = {  # the preset, shrunk: ~0.7 s per unit, no cool-down waits on this machine
    "df = [224, 224]": "df = [64, 64]",
    "threads = 4": "threads = 1",
    "min_runs = 50": "min_runs = 5",
    "max_runs = 2000": "max_runs = 100000000",
    "min_seconds = 2.0": "min_seconds = 0.7",
    "cooldown_above_c = 70.0 ": "# cooldown_above_c = 70.0 ",
    "sentinel_every = 20": "sentinel_every = 10",  # a reference, one run of device_bench, one check
    "sentinel_tolerance = 0.10": "sentinel_tolerance = 100.0",  # a loaded CI machine drifts; not under test here
}


@pytest.fixture
def env(tmp_path, tflite_cache):
    import shutil

    configs = tmp_path / "configs"
    shutil.copytree(Path(__file__).resolve().parents[1] / "configs", configs)
    (configs / "spaces" / "df.toml").write_text(TINY_DF)
    edit_file(configs / "targets" / "rpi5.toml", RPI5_EDITS)
    return {"PLAID_CONFIG_DIR": str(configs), "PLAID_CACHE": str(tflite_cache), "PLAID_LUT_DIR": str(tmp_path / "luts")}


def bench_args(sshd, remote_dir: Path, *extra: str, key=None, python=sys.executable) -> list[str]:
    return ["bench", "--target", "rpi5", "--space", "df", "--ssh", sshd.spec(), "--ssh-key", str(key or sshd.user_key),
            "--ssh-config", str(sshd.config), "--remote-python", python, "--remote-dir", str(remote_dir), *extra]


def rows(path: Path) -> dict[str, str]:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return dict(con.execute("SELECT key, measured_at FROM units"))
    except sqlite3.OperationalError:
        return {}
    finally:
        con.close()


def test_hottest_cpu_zone():
    from plaid.devices.board import hottest_cpu_zone

    assert hottest_cpu_zone("cpu-thermal 52650\n") == {"cpu_c": 52.6}  # a Raspberry Pi 5
    jetson = "CPU-therm 41500\nGPU-therm 39000\nPMIC-Die 100000\nthermal-fan-est 40700\n"
    assert hottest_cpu_zone(jetson) == {"cpu_c": 41.5}  # PMIC-Die reads a fixed 100 °C on a TX2
    assert hottest_cpu_zone("acpitz 27800\n") == {"cpu_c": 27.8}  # no CPU zone: the hottest one
    assert hottest_cpu_zone("") == {} and hottest_cpu_zone("cpu-thermal \n") == {}


def one_line(err: str) -> str:
    err = err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("plaid: error: ")
    return err


def plaid_here(monkeypatch, capsys, env: dict, *args: str) -> tuple[int, str]:
    """The CLI in this process (these runs end before any unit is converted): (exit code, stderr)."""
    from plaid.cli.main import main

    for k, v in env.items():
        monkeypatch.setenv(k, v)
    capsys.readouterr()
    rc = main(list(args))
    return rc, capsys.readouterr().err


def test_refusals_before_any_measurement(sshd, env, tmp_path, monkeypatch, capsys):
    remote = tmp_path / "board"

    def bench(*args, **kw):
        return plaid_here(monkeypatch, capsys, env, *bench_args(sshd, remote, *args, **kw))

    rc, err = bench()
    assert rc == 1 and "not known" in one_line(err) and "--accept-new-host-key" in err
    assert "127.0.0.1" not in sshd.known_hosts.read_text()

    rc, err = bench("--accept-new-host-key", key=keygen(tmp_path / "wrong"))
    assert rc == 1 and "refused the login" in one_line(err) and "--ssh-key" in err

    bare = tmp_path / "bare python"  # the interpreter without its site-packages: no numpy
    bare.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "$@"\n')
    bare.chmod(0o755)
    rc, err = bench("--accept-new-host-key", python=str(bare))
    assert rc == 1 and "numpy is missing" in err.splitlines()[-1] and "pip install numpy" in err, err
    rc, err = bench(python="/no/such/python")
    assert rc == 1 and "--remote-python" in one_line(err)
    assert [p.name for p in remote.iterdir()] == [], "a refused run leaves its folder behind"

    # usage mistakes: exit 2, one line, no connection attempted
    for args, says in [(["--ssh", "pi@host:99999"], "not a TCP port"),
                       (["--ssh", sshd.spec(), "--ssh-key", str(tmp_path / "nope")], "no such file"),
                       (["--remote-python", "python3"], "need --ssh"),
                       (["--target", "host", "--ssh", sshd.spec()], "only make sense for targets measured over SSH"),
                       ([], "--ssh [USER@]HOST[:PORT]")]:
        rc, err = plaid_here(monkeypatch, capsys, env, "bench", "--target", "rpi5", "--space", "df", *args)
        assert rc == 2 and says in one_line(err), (args, err)


@pytest.mark.slow
@pytest.mark.tflite
def test_table_over_ssh_killed_mid_table_then_resumed(sshd, env, tmp_path):
    remote = tmp_path / "board's \"runs\" $HOME `x`"  # quotes, spaces, $ and backquotes: nothing is interpreted
    args = bench_args(sshd, remote, "--accept-new-host-key", "--json")
    lut_dir = Path(env["PLAID_LUT_DIR"])

    proc = subprocess.Popen([sys.executable, "-m", "plaid", *args], env={**os.environ, **env}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline, table = time.time() + 240, None
    while time.time() < deadline and proc.poll() is None:
        tables = list(lut_dir.glob("rpi5-*.sqlite"))
        if tables and len(rows(tables[0])) >= 2:
            table = tables[0]
            break
        time.sleep(0.05)
    assert table is not None, proc.communicate()
    runs = [p for p in remote.iterdir() if p.name.startswith("plaid-")]
    assert len(runs) == 1 and (runs[0] / "device_bench" / "runner.py").is_file()
    sshd.kill()  # the board goes away mid-table
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("plaid: error: board ") and "lost" in last and "rerun" in last, err
    before = rows(table)
    assert 2 <= len(before) < 6

    sshd.start()  # back: the rerun measures only what is missing, and leaves the board clean
    again = run_plaid(*bench_args(sshd, remote, "--json"), env=env)
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    build = report["build"]
    assert build["table"] == str(table) and build["already_measured"] == len(before)
    assert build["measured_now"] == 6 - len(before) and not build["failed"]
    after = rows(table)
    assert len(after) == 6 and all(after[k] == v for k, v in before.items())
    assert list(remote.iterdir()) == [], "the run folders (the killed one too) are removed"
    assert report["runner"] == "device_bench" and report["runtime_version"].startswith("ai-edge-litert ")

    con = sqlite3.connect(f"file:{table}?mode=ro", uri=True)
    try:
        info = [json.loads(i) for (i,) in con.execute("SELECT extra FROM units")]
    finally:
        con.close()
    assert all(i["runner"] == "device_bench" and "temp_before" in i for i in info), info
    # each run starts with its sentinel's reference measurement (when it has more than one unit to do)
    assert sum(i.get("sentinel") == "reference" for i in info) == 1 + (6 - len(before) > 1)

    third = run_plaid(*bench_args(sshd, remote, "--json"), env=env)
    assert third.returncode == 0 and json.loads(third.stdout)["build"]["measured_now"] == 0
    shown = run_plaid("lut", "show", "--target", "rpi5", "--json", env=env)  # no board needed to read it
    assert shown.returncode == 0 and all(k in shown.stdout for k in after)


def test_session_folder_lifecycle(sshd, tmp_path):
    """Opening removes what a killed run left (only plaid's own names), copies device_bench
    into a fresh private folder; closing removes it."""
    from plaid.devices.board import BoardSession
    from plaid.targets import load_target

    remote = tmp_path / "runs $(touch pwned) 'q'"
    (remote / "plaid-0123abcd" / "device_bench").mkdir(parents=True)  # left by a lost run
    (remote / "plaid-keep").mkdir()  # not a name plaid makes
    session = BoardSession(load_target("rpi5"), ssh=sshd.spec(), ssh_key=sshd.user_key, ssh_config=sshd.config,
                           accept_new_host_key=True, remote_python=sys.executable, remote_dir=str(remote))
    try:
        runs = sorted(p.name for p in remote.iterdir())
        assert len(runs) == 2 and "plaid-keep" in runs and "plaid-0123abcd" not in runs
        run = remote / next(r for r in runs if r != "plaid-keep")
        assert (run / "device_bench" / "__main__.py").read_bytes() == \
            (Path(__file__).resolve().parents[1] / "device_bench" / "__main__.py").read_bytes()
        assert oct(run.stat().st_mode & 0o777) == "0o700"
        version, fingerprint = session.identity()
        assert version.startswith("ai-edge-litert ") and fingerprint["runner"] == "device_bench"
    finally:
        session.close()
    assert sorted(p.name for p in remote.iterdir()) == ["plaid-keep"]
    assert not any(p.name == "pwned" for p in tmp_path.rglob("*")) and not Path("pwned").exists()


def test_table_over_ssh_timed_by_onnxruntime(sshd, env, tmp_path):
    """`--runtime onnxruntime`: the ONNX files torch exports are pushed and device_bench times
    them with onnxruntime on the board; a table of its own beside the TFLite one, and
    `plaid lut show --target rpi5` keeps to the preset's runtime when both exist."""
    remote = tmp_path / "ort runs"
    tflite = run_plaid(*bench_args(sshd, remote, "--accept-new-host-key", "--json"), env=env)
    assert tflite.returncode == 0, tflite.stderr
    proc = run_plaid(*bench_args(sshd, remote, "--runtime", "onnxruntime", "--json"), env=env)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["runtime_version"].startswith("onnxruntime ") and report["build"]["measured_now"] == 6
    tables = {json.loads(run_plaid("lut", "show", "--table", str(p), "--json", env=env).stdout)["meta"]["runtime"]: p
              for p in Path(env["PLAID_LUT_DIR"]).glob("rpi5-*.sqlite")}
    assert set(tables) == {"tflite", "onnxruntime"} and report["build"]["table"] == str(tables["onnxruntime"])
    assert "onnxruntime" in tables["onnxruntime"].name
    info = [json.loads(i) for (i,) in sqlite3.connect(f"file:{tables['onnxruntime']}?mode=ro", uri=True)
            .execute("SELECT extra FROM units")]
    assert all(i["runner"] == "device_bench" for i in info), info
    assert list(remote.iterdir()) == []
    shown = run_plaid("lut", "show", "--target", "rpi5", "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["meta"]["runtime"] == "tflite"


TX2_EDITS = {"df = [224, 224]": "df = [64, 64]", "warmup_runs = 20": "warmup_runs = 1", "min_runs = 100": "min_runs = 5",
             "min_seconds = 2.0": "min_seconds = 0.0"}


def test_tx2_table_timed_by_tensorrt_through_a_trtexec_stand_in(sshd, env, tmp_path):
    """`plaid bench --target tx2 --ssh ...`: the units' ONNX files pushed, an fp16 engine built
    per unit by trtexec on the "board" and timed by it. trtexec is tests/trtexec_standin.py
    (TensorRT cannot be installed here; it times the ONNX model with onnxruntime), found
    through $PLAID_TRTEXEC that the board's interpreter wrapper sets. Then `plaid lut show
    --target tx2` and `plaid search --target tx2` use the table without the board."""

    edit_file(Path(env["PLAID_CONFIG_DIR"]) / "targets" / "tx2.toml", TX2_EDITS)
    standin = tmp_path / "bin" / "trtexec"
    standin.parent.mkdir()
    standin.write_text(f"#!/bin/sh\nexec {sys.executable} {Path(__file__).parent / 'trtexec_standin.py'} \"$@\"\n")
    standin.chmod(0o755)
    python = tmp_path / "board python"
    python.write_text(f"#!/bin/sh\nPLAID_TRTEXEC={standin} PLAID_ENGINE_CACHE={tmp_path / 'engines'} "
                      f"exec {sys.executable} \"$@\"\n")
    python.chmod(0o755)
    args = ["bench", "--target", "tx2", "--space", "df", "--ssh", sshd.spec(), "--ssh-key", str(sshd.user_key),
            "--ssh-config", str(sshd.config), "--remote-python", str(python), "--remote-dir", str(tmp_path / "runs"),
            "--accept-new-host-key", "--json"]
    proc = run_plaid(*args, env=env)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["runtime_version"] == "TensorRT 8.2.5" and report["build"]["measured_now"] == 6
    assert len(list((tmp_path / "engines").glob("*-fp16.engine"))) == 6  # one engine per unit

    # int8 engines: a table of their own; each unit's ranges measured here go along with its
    # ONNX file and become a calibration cache on the board, so every tensor has its scale
    int8 = run_plaid(*args[:-1], "--precision", "int8", "--json", env=env)
    assert int8.returncode == 0, int8.stderr
    built = json.loads(int8.stdout)["build"]
    assert built["measured_now"] == 6 and built["table"] != report["build"]["table"]
    engines = list((tmp_path / "engines").glob("*-int8-*.engine"))
    assert len(engines) == 6 and all(Path(f"{e}.calib").is_file() for e in engines)
    assert all(json.loads(e.read_text())["missing_scales"] == [] for e in engines)
    extras = [json.loads(x) for (x,) in sqlite3.connect(f"file:{built['table']}?mode=ro", uri=True)
              .execute("SELECT extra FROM units")]
    assert all(x["precision"] == "int8" and x["calibration"].startswith("ranges of ") for x in extras), extras
    shown = run_plaid("lut", "show", "--target", "tx2", "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    meta = json.loads(shown.stdout)["meta"]
    assert meta["runtime"] == "tensorrt" and meta["settings"]["converter"].startswith("torch.onnx ")
    assert "precision" not in meta["settings"]  # of the two tables, the preset's (fp16) one
    assert meta["fingerprint"]["gpu"]  # in the table's identity (here: no nvidia-smi, no device tree: "unknown")
    # whole nets timed by TensorRT keep trtexec's per-layer profile with the validation results
    val = run_plaid(*args, "--validate", "2", "--calibrate", "0", env=env)  # the tiny space has 2 nets
    assert val.returncode == 0, val.stderr
    assert json.loads(val.stdout)["validation"]["fidelity"]["n"] == 2
    exported = run_plaid("lut", "export", "--json", "--table", report["build"]["table"], env=env)
    e2e = [r["info"] for r in json.loads(exported.stdout)["rows"] if r["kind"] == "e2e"]
    assert len(e2e) == 2 and all(x["profile"]["layers"] and x["precision"] == "fp16" for x in e2e), e2e
    found = run_plaid("search", "--target", "tx2", "--space", "df", "--budget", "2", "--epochs", "1",
                      "--train-limit", "64", "--runs-dir", str(tmp_path / "search"), "--json", env=env)
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["trained"] == 2

    bare = tmp_path / "bare python"  # a board without trtexec: one line that says what to install
    bare.write_text(f"#!/bin/sh\nPLAID_TRTEXEC= PATH=/usr/bin:/bin exec {sys.executable} \"$@\"\n")
    bare.chmod(0o755)
    no_trt = run_plaid(*[str(bare) if a == str(python) else a for a in args], env=env)
    assert no_trt.returncode == 1 and "Traceback" not in no_trt.stderr, no_trt.stderr
    last = no_trt.stderr.strip().splitlines()[-1]
    assert "tensorrt is missing" in last and "trtexec" in last, last


def test_export_times_the_tflite_file_on_the_board(sshd, env, tmp_path):
    """`plaid export ... --target rpi5 --ssh`: the bundle's TFLite file is timed on the board
    with the target's protocol, and the board's run folder is removed afterwards."""
    remote = tmp_path / "export runs"
    out = tmp_path / "bundle"
    proc = run_plaid("export", "pl1a:16x1-24x1-32x1", "--target", "rpi5", "--format", "tflite-fp32",
                     "--resolution", "32x32", "--parity-samples", "8", "--ssh", sshd.spec(), "--ssh-key",
                     str(sshd.user_key), "--ssh-config", str(sshd.config), "--remote-python", sys.executable,
                     "--remote-dir", str(remote), "--accept-new-host-key", "-o", str(out), env=env)
    assert proc.returncode == 0, proc.stderr
    lat = json.loads((out / "manifest.json").read_text())["artifacts"][0]["latency"]
    assert lat["median_ms"] > 0 and lat["runs"] >= 5 and "device_bench" in lat["where"], lat
    assert list(remote.iterdir()) == []
    wrong = run_plaid("export", "df1", "--target", "host", "--ssh", sshd.spec(), "-o", str(tmp_path / "x"), env=env)
    assert wrong.returncode == 2 and "--ssh" in wrong.stderr and "Traceback" not in wrong.stderr, wrong.stderr
