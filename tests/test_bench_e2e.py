"""`plaid bench` end to end with the real converter and interpreter on a tiny DF preset:
a complete table from nothing, kill -9 in the middle and resume without re-measuring,
refusal of a table measured with other settings, one-line errors for broken tables."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import preset_env, run_plaid

TINY_DF = """
description = "tiny test preset"
stem = [8, 16]
resolution = [64, 64]
[bottleneck]
expansion = 4
max_out = 1024
[[stages]]
name = "res2"
kinds = ["basic"]
widths = [16]
depth = [1, 2]
[[stages]]
name = "res3"
kinds = ["basic"]
widths = [32]
depth = [1, 1]
[[stages]]
name = "res4"
kinds = ["basic"]
widths = [64]
depth = [1, 1]
"""


@pytest.fixture
def env(tmp_path, tflite_cache):
    return preset_env(tmp_path, tflite_cache, "df", TINY_DF,
                      {"min_seconds = 0.5": "min_seconds = 1.5", "max_runs = 2000": "max_runs = 100000000",
                       "df = [224, 224]": "df = [64, 64]"})  # ~1.5 s per unit: time to kill -9


def rows(path: Path) -> dict[str, str]:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return dict(con.execute("SELECT key, measured_at FROM units"))
    except sqlite3.OperationalError:
        return {}
    finally:
        con.close()


@pytest.mark.slow
@pytest.mark.tflite
def test_build_kill_resume_and_refusals(env, tmp_path):
    dry = run_plaid("bench", "--space", "df", "--dry-run", "--json", env=env)
    assert dry.returncode == 0, dry.stderr
    import json

    info = json.loads(dry.stdout)
    units = [u["key"] for u in info["units"]]
    table = Path(info["table"])
    assert len(units) == 6 and not table.exists()

    # first run: kill -9 once at least one unit is committed
    proc = subprocess.Popen([sys.executable, "-m", "plaid", "bench", "--space", "df", "--json"], env={**os.environ, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if table.exists() and len(rows(table)) >= 1:
            break
        time.sleep(0.1)
    assert proc.poll() is None, "bench finished before it could be interrupted"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = rows(table)
    assert 1 <= len(before) < len(units)

    # resume: finishes the table and leaves finished units untouched
    again = run_plaid("bench", "--space", "df", "--json", env=env)
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)["build"]
    assert report["already_measured"] == len(before)
    assert report["measured_now"] == len(units) - len(before)
    after = rows(table)
    assert set(after) == set(units)
    assert all(after[k] == v for k, v in before.items())

    # a complete table is not measured again
    third = json.loads(run_plaid("bench", "--space", "df", "--json", env=env).stdout)["build"]
    assert third["measured_now"] == 0

    # the same file with other settings is refused, never mixed
    other = run_plaid("bench", "--space", "df", "--threads", "2", "--table", str(table), env=env)
    assert other.returncode == 2 and "settings.threads: 1 != 2" in other.stderr
    assert "Traceback" not in other.stderr

    shown = run_plaid("lut", "show", "--json", env=env)
    assert shown.returncode == 0 and all(k in shown.stdout for k in units)
    csv_out = tmp_path / "t.csv"
    assert run_plaid("lut", "export", "--csv", "-o", str(csv_out), env=env).returncode == 0
    assert csv_out.read_text().count("\n") == len(units) + 1

    # whole networks end to end: plain-sum validation on the tiny space
    val = run_plaid("bench", "--space", "df", "--validate", "2", "--calibrate", "0", "--resolution", "64", "--json", env=env)
    assert val.returncode == 0, val.stderr
    v = json.loads(val.stdout)["validation"]
    assert v["fidelity"]["n"] == 2 and v["fidelity"]["mape_pct"] >= 0
    assert Path(json.loads(val.stdout)["plot"]).is_file()


@pytest.mark.parametrize("content", [b"", b"garbage" * 100, b"SQLite format 3\x00" + b"\x00" * 50])
def test_broken_table_files_give_one_line(tmp_path, content):
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(content)
    out = run_plaid("lut", "show", "--table", str(bad))
    assert out.returncode != 0
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
    assert out.stderr.startswith("plaid: error:")


def test_foreign_sqlite_gives_one_line(tmp_path):
    foreign = tmp_path / "f.sqlite"
    con = sqlite3.connect(foreign)
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    out = run_plaid("lut", "show", "--table", str(foreign))
    assert out.returncode != 0 and len(out.stderr.strip().splitlines()) == 1


def test_missing_table_and_remote_targets_are_usage_errors(tmp_path):
    out = run_plaid("lut", "show", "--table", str(tmp_path / "nope.sqlite"))
    assert out.returncode == 2 and "no latency table" in out.stderr
    out = run_plaid("bench", "--target", "sd845")  # a phone target needs a phone (--dry-run does not)
    assert out.returncode == 2 and "--adb-serial" in out.stderr and "plaid devices" in out.stderr
    out = run_plaid("bench", "--target", "nope")
    assert out.returncode == 2 and "unknown target" in out.stderr
    out = run_plaid("bench", "--space", "pl1aseg", "--resolution", "100x160", "--dry-run")
    assert out.returncode == 2 and "divisible by 32" in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_dry_run_lists_the_decoder_units():
    out = run_plaid("bench", "--space", "pl1aseg", "--dry-run", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["resolution"] == [384, 640] and sum(report["counts"].values()) == len(report["units"]) == 689
    keys = {u["key"] for u in report["units"]}
    assert "pl1aseg.backbone-in:384x640x3-out:12x20x192-s32-[pl1a:48x4-96x8-192x4]" in keys
    assert "pl1aseg.score-in:48x80x16-out:384x640x19-s1-up8" in keys


@pytest.fixture
def quick_env(tmp_path, tflite_cache):
    return preset_env(tmp_path, tflite_cache, "df", TINY_DF,
                      {"min_seconds = 0.5": "min_seconds = 0.05", "min_runs = 30": "min_runs = 5",
                       "df = [224, 224]": "df = [64, 64]"})


def test_host_table_timed_by_onnxruntime(quick_env):
    """`plaid bench --runtime onnxruntime` on the host: the units' ONNX files timed by
    device_bench with onnxruntime, in a table named for that runtime; the predictor reads it."""
    proc = run_plaid("bench", "--space", "df", "--runtime", "onnxruntime", "--validate", "2", "--calibrate", "0",
                     "--json", env=quick_env)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["build"]["measured_now"] == 6 and not report["build"]["failed"]
    table = Path(report["build"]["table"])
    assert "onnxruntime" in table.name
    shown = json.loads(run_plaid("lut", "show", "--table", str(table), "--json", env=quick_env).stdout)
    assert shown["meta"]["runtime"] == "onnxruntime" and shown["meta"]["runtime_version"].startswith("onnxruntime ")
    assert shown["meta"]["settings"]["converter"].startswith("torch.onnx ")
    assert len(report["validation"]["validation"]) == 2 and report["validation"]["fidelity"]["n"] == 2, report
    bad = run_plaid("bench", "--runtime", "tensorflow", env=quick_env)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr and "onnxruntime" in bad.stderr
