"""device_bench's tensorrt runtime against a trtexec stand-in (tests/trtexec_standin.py,
named as such: TensorRT cannot be installed here): trtexec's output and JSON formats
parsed, an engine built once per (ONNX sha256, TensorRT version, GPU) and reused, one from
another GPU or TensorRT version refused, a failed build an error result naming trtexec."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from device_bench import runtimes
from device_bench.runtimes import EngineCache, parse_export_profile, parse_export_times, parse_trtexec_log, trt_version

STANDIN = Path(__file__).resolve().parent / "trtexec_standin.py"


@pytest.fixture
def trtexec(tmp_path):
    exe = tmp_path / "bin" / "trtexec"
    exe.parent.mkdir()
    exe.write_text(f"#!/bin/sh\nexec {sys.executable} {STANDIN} \"$@\"\n")
    exe.chmod(0o755)
    calls = tmp_path / "calls.jsonl"
    return {"PLAID_TRTEXEC": str(exe), "TRTEXEC_STANDIN_LOG": str(calls),
            "PLAID_ENGINE_CACHE": str(tmp_path / "engines")}, calls


def test_header_versions_and_device_lines_are_parsed():
    assert trt_version(8205) == "8.2.5" and trt_version(8601) == "8.6.1" and trt_version(100300) == "10.3.0"
    log = ("&&&& RUNNING TensorRT.trtexec [TensorRT v8601] # trtexec --loadEngine=a.engine\n"
           "[12/02/2026-22:00:00] [I] === Device Information ===\n"
           "[12/02/2026-22:00:00] [I] Selected Device: Orin\n")
    assert parse_trtexec_log(log) == {"tensorrt": "8.6.1", "gpu": "Orin"}
    assert parse_trtexec_log("no header") == {}


def test_export_times_and_profile_are_parsed():
    recs = [{"startInMs": 0, "endInMs": 0.1, "startComputeMs": 0.1, "endComputeMs": 1.6, "startOutMs": 1.6,
             "endOutMs": 1.7, "inMs": 0.1, "computeMs": 1.5, "outMs": 0.1, "latencyMs": 1.7, "endToEndMs": 1.7}]
    assert parse_export_times(recs) == [1.5]
    # older trtexec: timestamps only
    assert parse_export_times([{"startComputeMs": 2.0, "endComputeMs": 2.75}]) == [0.75]
    with pytest.raises(ValueError):
        parse_export_times([])
    prof = parse_export_profile([{"count": 10}, {"name": "conv", "timeMs": 7.0, "averageMs": 0.7, "percentage": 70}])
    assert prof == {"count": 10, "layers": [{"name": "conv", "average_ms": 0.7, "percent": 70.0}]}
    with pytest.raises(ValueError):
        parse_export_profile([{"name": "x"}])


def test_the_engine_cache_refuses_another_gpu_or_tensorrt_version(tmp_path):
    cache = EngineCache(str(tmp_path))
    path = cache.path("ab" * 32, "8.2.5", "NVIDIA Tegra X2", "fp16")
    Path(path).write_bytes(b"engine")
    cache.record(path, "ab" * 32, "8.2.5", "NVIDIA Tegra X2", "fp16")
    assert cache.lookup("ab" * 32, "8.2.5", "NVIDIA Tegra X2", "fp16") == path
    assert cache.lookup("ab" * 32, "8.6.1", "NVIDIA Tegra X2", "fp16") is None  # another TensorRT
    assert cache.lookup("ab" * 32, "8.2.5", "Orin", "fp16") is None  # another GPU
    assert cache.lookup("cd" * 32, "8.2.5", "NVIDIA Tegra X2", "fp16") is None  # another model
    # a sidecar that names another GPU under this file name (copied from another board) is refused too
    meta = json.loads(Path(path + ".json").read_text())
    Path(path + ".json").write_text(json.dumps({**meta, "gpu": "Xavier"}))
    assert cache.lookup("ab" * 32, "8.2.5", "NVIDIA Tegra X2", "fp16") is None


def _plan(tmp_path, onnx: Path) -> Path:
    from device_bench.schema import PLAN_SCHEMA

    p = tmp_path / "plan.json"
    p.write_text(json.dumps({"schema": PLAN_SCHEMA, "runtime": "tensorrt", "models": [{"key": "u", "path": str(onnx)}],
                             "settings": {"min_runs": 5, "min_seconds": 0.0, "warmup_runs": 1, "delegate": "none"}}))
    return p


def _onnx(tflite_cache) -> Path:
    from plaid.convert import onnx_many
    from plaid.lut.units import Unit

    u = Unit("df", "basic", 16, 16, 32, 32, stride=1)
    return onnx_many([(u.key, u.build, u.input_shape)], tflite_cache)[0]


def test_a_plan_is_timed_through_trtexec_and_the_engine_is_built_once(tmp_path, tflite_cache, trtexec):
    env, calls = trtexec
    plan = _plan(tmp_path, _onnx(tflite_cache))
    for n in (1, 2):
        out = subprocess.run([sys.executable, "-m", "device_bench", str(plan), "-o", str(tmp_path / f"r{n}.json")],
                             capture_output=True, text=True, timeout=120, env={**os.environ, **env})
        assert out.returncode == 0, out.stdout + out.stderr
        doc = json.loads((tmp_path / f"r{n}.json").read_text())
        assert doc["runtime"]["name"] == "tensorrt" and doc["runtime"]["version"] == "TensorRT 8.2.5"
        (res,) = doc["results"]
        assert res["status"] == "ok" and res["runs"] >= 5 and 0 < res["median_ms"] < 1000, res
        assert [r["name"] for r in res["profile"]["layers"]][0].startswith("conv1")
    argv = [json.loads(line) for line in calls.read_text().splitlines()]
    builds = [a for a in argv if any(x.startswith("--onnx=") for x in a)]
    assert len(builds) == 1 and "--fp16" in builds[0], argv  # built once, reused by the second plan
    runs = [a for a in argv if any(x.startswith("--loadEngine=") for x in a)]
    assert len(runs) == 2 and all("--iterations=5" in a for a in runs)
    engines = list(Path(env["PLAID_ENGINE_CACHE"]).glob("*.engine"))
    assert len(engines) == 1 and "trt8.2.5" in engines[0].name

    # TensorRT upgraded on the board: the old engine is not used, a new one is built
    out = subprocess.run([sys.executable, "-m", "device_bench", str(plan)], capture_output=True, text=True,
                         timeout=120, env={**os.environ, **env, "TRTEXEC_STANDIN_VERSION": "8601"})
    assert out.returncode == 0, out.stderr
    assert len(list(Path(env["PLAID_ENGINE_CACHE"]).glob("*.engine"))) == 2


def test_a_failed_build_and_a_missing_trtexec_are_error_results(tmp_path, tflite_cache, trtexec):
    env, _ = trtexec
    plan = _plan(tmp_path, _onnx(tflite_cache))
    out = subprocess.run([sys.executable, "-m", "device_bench", str(plan)], capture_output=True, text=True,
                         timeout=120, env={**os.environ, **env, "TRTEXEC_STANDIN_FAIL": "1"})
    assert out.returncode == 1
    result = json.loads(out.stdout.splitlines()[-1])
    assert result["status"] == "error" and "trtexec exited with 1" in result["error"] and "FAILED" in result["error"]
    assert not list(Path(env["PLAID_ENGINE_CACHE"]).glob("*.engine"))  # no half-built engine filed
    gone = subprocess.run([sys.executable, "-m", "device_bench", str(plan)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PLAID_TRTEXEC": str(tmp_path / "nope"), "PATH": "/usr/bin:/bin"})
    assert gone.returncode == 1
    assert "trtexec" in json.loads(gone.stdout.splitlines()[-1])["error"]


def test_trtexec_is_found_where_jetpack_puts_it(monkeypatch, tmp_path):
    monkeypatch.delenv("PLAID_TRTEXEC", raising=False)
    fake = tmp_path / "trtexec"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setattr(runtimes, "TRTEXEC_PATHS", (str(fake),))
    assert runtimes.find_trtexec() == str(fake)
    monkeypatch.setattr(runtimes, "TRTEXEC_PATHS", ())
    monkeypatch.setenv("PATH", str(tmp_path))
    assert runtimes.find_trtexec() == str(fake)
    monkeypatch.setenv("PATH", "")
    with pytest.raises(RuntimeError, match="trtexec not found"):
        runtimes.find_trtexec()


def _fake_jetson(root: Path, mode: str, pinned: bool) -> None:
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "nv_tegra_release").write_text("# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t186ref\n")
    dev = root / "sys" / "devices" / "gpu.0" / "devfreq" / "17000000.gp10b"
    dev.mkdir(parents=True)
    (dev / "cur_freq").write_text("1300500000\n")
    (dev / "max_freq").write_text("1300500000\n")
    (dev / "min_freq").write_text(("1300500000" if pinned else "114750000") + "\n")
    nvp = root / "bin" / "nvpmodel"  # a stand-in for JetPack's nvpmodel -q
    nvp.parent.mkdir()
    nvp.write_text(f"#!/bin/sh\necho 'NV Power Mode: {mode}'\necho 0\n")
    nvp.chmod(0o755)


def test_a_jetson_at_full_power_gives_no_warning(tmp_path, monkeypatch):
    _fake_jetson(tmp_path, "MAXN", pinned=True)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    state = runtimes.jetson_state(str(tmp_path))
    assert state == {"l4t": "R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t186ref", "nvpmodel": "MAXN",
                     "gpu_mhz": 1300, "gpu_max_mhz": 1300, "clocks_pinned": True}
    assert runtimes.jetson_warnings(state) == []


def test_a_jetson_below_full_power_is_warned_about(tmp_path, monkeypatch):
    _fake_jetson(tmp_path, "MODE_15W_2CORE", pinned=False)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    warnings = runtimes.jetson_warnings(runtimes.jetson_state(str(tmp_path)))
    assert len(warnings) == 2 and "nvpmodel -m 0" in warnings[0] and "jetson_clocks" in warnings[1], warnings
    assert runtimes.jetson_state(str(tmp_path / "not-a-jetson")) == {}
