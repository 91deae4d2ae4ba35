"""device_bench: plan/results schema, statistics and the timing loop (no TFLite needed),
plus one real run of the interpreter (marked tflite)."""

import json
import subprocess
import sys

import pytest

from device_bench.runner import stats, timed_runs
from device_bench.schema import (PLAN_SCHEMA, RESULTS_SCHEMA, SchemaError, validate_plan, validate_result,
                                 validate_results)


def plan(**over):
    p = {"schema": PLAN_SCHEMA, "runtime": "tflite", "settings": {}, "models": [{"key": "a", "path": "a.tflite"}]}
    p.update(over)
    return p


def test_plan_defaults_are_filled_in():
    got = validate_plan(plan())
    assert got["settings"]["threads"] == 1 and got["settings"]["delegate"] == "xnnpack"


@pytest.mark.parametrize("bad,fragment", [
    ({"schema": "x"}, "plan schema"),
    ({"runtime": "tensorflow"}, "not supported"),
    ({"models": []}, "non-empty"),
    ({"models": [{"key": "a"}]}, "string 'key' and 'path'"),
    ({"models": [{"key": "a", "path": "x"}, {"key": "a", "path": "y"}]}, "twice"),
    ({"settings": {"threads": 0}}, ">= 1"),
    ({"settings": {"threads": True}}, "wrong type"),
    ({"settings": {"bogus": 1}}, "unknown settings"),
    ({"settings": {"min_runs": 10, "max_runs": 5}}, "must not be below"),
    ({"settings": {"delegate": "nnapi"}}, "delegate"),
    ({"settings": {"cpus": [-1]}}, "CPU numbers"),
])
def test_bad_plans_are_refused(bad, fragment):
    with pytest.raises(SchemaError, match=fragment):
        validate_plan(plan(**bad))


def test_stats_are_right():
    s = stats([1.0, 2.0, 3.0, 4.0, 100.0])
    assert s["median_ms"] == 3.0 and s["min_ms"] == 1.0 and s["runs"] == 5
    assert s["p90_ms"] == pytest.approx(61.6)
    assert s["cv"] == pytest.approx(s["std_ms"] / s["mean_ms"])
    validate_result({"key": "k", "status": "ok", **s})


def test_inconsistent_result_is_refused():
    with pytest.raises(SchemaError, match="inconsistent"):
        validate_result({"key": "k", "status": "ok", "median_ms": 2.0, "p90_ms": 1.0, "mean_ms": 1, "std_ms": 0,
                         "cv": 0, "min_ms": 0.5, "runs": 3})
    with pytest.raises(SchemaError, match="schema"):
        validate_results({"schema": "nope"})


class FakeClock:
    def __init__(self, step):
        self.t, self.step = 0.0, step

    def __call__(self):
        self.t += self.step
        return self.t


def test_timing_loop_honours_min_runs_and_min_seconds():
    calls = []
    settings = {"warmup_runs": 3, "min_runs": 5, "max_runs": 1000, "min_seconds": 1.0, "max_seconds": 10.0}
    times = timed_runs(lambda: calls.append(1), settings, clock=FakeClock(0.05))  # each run 50 ms
    assert len(calls) == 3 + len(times)
    assert len(times) >= 5 and sum(times) >= 1000 * 0.5  # ran ~1 s of timed work
    quick = timed_runs(lambda: None, {**settings, "min_seconds": 0.0}, clock=FakeClock(0.001))
    assert len(quick) == 5


def test_timing_loop_is_bounded():
    settings = {"warmup_runs": 0, "min_runs": 10**6, "max_runs": 50, "min_seconds": 100.0, "max_seconds": 1000.0}
    assert len(timed_runs(lambda: None, settings, clock=FakeClock(0.001))) == 50
    settings = {**settings, "max_runs": 10**9, "max_seconds": 2.0}
    assert len(timed_runs(lambda: None, settings, clock=FakeClock(0.1))) <= 11


def test_cli_rejects_a_bad_plan_with_one_line(tmp_path):
    p = tmp_path / "plan.json"
    p.write_text("{not json")
    out = subprocess.run([sys.executable, "-m", "device_bench", str(p)], capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "device_bench: error:" in out.stderr


def test_device_bench_imports_neither_torch_nor_plaid():
    code = ("import sys, device_bench.runner, device_bench.runtimes, device_bench.schema, device_bench.__main__\n"
            "print([m for m in ('torch', 'plaid', 'tensorflow') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.tflite
@pytest.mark.slow
def test_real_interpreter_run(tmp_path, tflite_cache):
    from plaid.lut.units import Unit

    u = Unit("df", "basic", 16, 16, 32, 32, stride=1)
    from plaid.convert import tflite_cached, tflite_op_names

    path, _ = tflite_cached(u.build(), u.input_shape, tflite_cache)
    assert "TRANSPOSE" not in tflite_op_names(path)  # NHWC in and out: no layout shuffles
    p = tmp_path / "plan.json"
    p.write_text(json.dumps(plan(models=[{"key": u.key, "path": str(path)}, {"key": "gone", "path": "gone.tflite"}],
                                 settings={"min_runs": 5, "min_seconds": 0.05, "warmup_runs": 1})))
    out = subprocess.run([sys.executable, "-m", "device_bench", str(p), "-o", str(tmp_path / "r.json")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stderr  # one model missing
    events = [json.loads(line) for line in out.stdout.splitlines()]
    assert events[0]["event"] == "start" and len(events) == 3
    doc = validate_results(json.loads((tmp_path / "r.json").read_text()))
    assert doc["schema"] == RESULTS_SCHEMA
    ok, missing = doc["results"]
    assert ok["status"] == "ok" and ok["runs"] >= 5 and 0 < ok["median_ms"] < 1000
    assert missing["status"] == "error" and "not found" in missing["error"]


@pytest.mark.parametrize("delegate", ["none", "xnnpack"])
def test_onnxruntime_times_the_onnx_file_torch_exports(tmp_path, tflite_cache, delegate):
    """The onnxruntime runtime: the unit's ONNX file (NCHW, as exported) timed with the plan's
    threads; its provider named in the results (PyPI's build has no XNNPACK provider: the
    CPU one), the same statistics as TFLite's."""
    from plaid.convert import onnx_many
    from plaid.lut.units import Unit

    u = Unit("df", "basic", 16, 16, 32, 32, stride=1)
    (path,) = onnx_many([(u.key, u.build, u.input_shape)], tflite_cache)
    assert path.suffix == ".onnx" and path.is_file()
    p = tmp_path / "plan.json"
    p.write_text(json.dumps(plan(runtime="onnxruntime", models=[{"key": u.key, "path": str(path)}],
                                 settings={"min_runs": 5, "min_seconds": 0.05, "warmup_runs": 1,
                                           "delegate": delegate, "threads": 2})))
    out = subprocess.run([sys.executable, "-m", "device_bench", str(p), "-o", str(tmp_path / "r.json")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    doc = validate_results(json.loads((tmp_path / "r.json").read_text()))
    assert doc["runtime"]["name"] == "onnxruntime" and doc["runtime"]["version"].startswith("onnxruntime 1.")
    assert doc["runtime"]["provider"] == "CPUExecutionProvider"
    (ok,) = doc["results"]
    assert ok["status"] == "ok" and ok["runs"] >= 5 and 0 < ok["median_ms"] < 1000


def test_a_runtime_the_build_lacks_is_an_error_result(tmp_path, tflite_cache):
    from plaid.convert import onnx_many
    from plaid.lut.units import Unit

    u = Unit("df", "basic", 16, 16, 32, 32, stride=1)
    (path,) = onnx_many([(u.key, u.build, u.input_shape)], tflite_cache)
    p = tmp_path / "plan.json"
    p.write_text(json.dumps(plan(runtime="onnxruntime", models=[{"key": u.key, "path": str(path)}],
                                 settings={"delegate": "gpu"})))
    out = subprocess.run([sys.executable, "-m", "device_bench", str(p)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    (result,) = [json.loads(line) for line in out.stdout.splitlines()][1:]
    assert result["status"] == "error" and "no CUDAExecutionProvider" in result["error"], result


def test_the_schema_accepts_the_registered_runtimes():
    from device_bench.runtimes import RUNTIMES

    assert {"tflite", "onnxruntime"} <= set(RUNTIMES)
    for name in RUNTIMES:
        assert validate_plan(plan(runtime=name))["runtime"] == name


def test_what_runs_on_the_device_keeps_to_python_3_6():
    """JetPack 4.6 (TX2) ships Python 3.6: device_bench and the bundle's TensorRT builder
    must not need a newer one. vermin (a static minimum-version checker) reads the files."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    files = [str(root / "device_bench")]  # trt_build_engine.py (the TensorRT bundles' builder) included
    out = _vermin(*files)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_version_check_can_fail(tmp_path):
    newer = tmp_path / "newer.py"
    newer.write_text("def f(x: list[int] | None = None):\n    return (y := x)\n")
    out = _vermin(str(newer))
    assert out.returncode != 0 and "3.8" in out.stdout, out.stdout + out.stderr


def _vermin(*paths: str) -> subprocess.CompletedProcess:
    code = "import sys, vermin; sys.argv[0] = 'vermin'; sys.exit(vermin.main())"
    return subprocess.run([sys.executable, "-c", code, "-t=3.6-", "--no-tips", "--violations", "--eval-annotations",
                           *paths], capture_output=True, text=True)
