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

from device_bench import jetson
from device_bench import tensorrt as runtimes
from device_bench.tensorrt import EngineCache, parse_export_profile, parse_export_times, parse_trtexec_log, trt_version

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
    assert parse_trtexec_log(log) == {"tensorrt": "8.6.1", "tensorrt_build": 8601, "gpu": "Orin"}
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


def _plan(tmp_path, onnx: Path, **settings) -> Path:
    from device_bench.schema import PLAN_SCHEMA

    p = tmp_path / "plan.json"
    p.write_text(json.dumps({"schema": PLAN_SCHEMA, "runtime": "tensorrt", "models": [{"key": "u", "path": str(onnx)}],
                             "settings": {"min_runs": 5, "min_seconds": 0.0, "warmup_runs": 1, "delegate": "none",
                                          **settings}}))
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


def _fake_jetson(root: Path, mode: str, pinned: bool, emc_mhz: int | None = 1866) -> None:
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "nv_tegra_release").write_text("# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t186ref\n")
    dev = root / "sys" / "devices" / "gpu.0" / "devfreq" / "17000000.gp10b"
    dev.mkdir(parents=True)
    (dev / "cur_freq").write_text("1300500000\n")
    (dev / "max_freq").write_text("1300500000\n")
    (dev / "min_freq").write_text(("1300500000" if pinned else "114750000") + "\n")
    if emc_mhz is not None:  # debugfs as root sees it
        emc = root / "sys" / "kernel" / "debug" / "bpmp" / "debug" / "clk" / "emc"
        emc.mkdir(parents=True)
        (emc / "rate").write_text(f"{emc_mhz * 10**6}\n")
        (emc / "max_rate").write_text("1866000000\n")
    for i, (kind, milli) in enumerate((("BCPU-therm", 41500), ("GPU-therm", 39000), ("GPU-therm", 39500))):
        zone = root / "sys" / "class" / "thermal" / f"thermal_zone{i}"
        zone.mkdir(parents=True)
        (zone / "type").write_text(kind + "\n")
        (zone / "temp").write_text(f"{milli}\n")
    nvp = root / "bin" / "nvpmodel"  # a stand-in for JetPack's nvpmodel -q
    nvp.parent.mkdir()
    nvp.write_text(f"#!/bin/sh\necho 'NV Power Mode: {mode}'\necho 0\n")
    nvp.chmod(0o755)


def test_a_jetson_at_full_power_gives_no_warning(tmp_path, monkeypatch):
    _fake_jetson(tmp_path, "MAXN", pinned=True)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    state = jetson.jetson_state(str(tmp_path))
    assert state == {"l4t": "R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t186ref", "nvpmodel": "MAXN",
                     "gpu_mhz": 1300, "gpu_max_mhz": 1300, "clocks_pinned": True,
                     "emc_mhz": 1866, "emc_max_mhz": 1866, "emc_readable": True,
                     "thermal_c": {"BCPU-therm": 41.5, "GPU-therm": 39.0, "GPU-therm-2": 39.5}}
    assert jetson.jetson_warnings(state) == []


def test_a_jetson_below_full_power_is_warned_about(tmp_path, monkeypatch):
    _fake_jetson(tmp_path, "MODE_15W_2CORE", pinned=False, emc_mhz=800)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    warnings = jetson.jetson_warnings(jetson.jetson_state(str(tmp_path)))
    assert len(warnings) == 3 and "nvpmodel -m 0" in warnings[0] and "jetson_clocks" in warnings[1], warnings
    assert "EMC" in warnings[2] and "800 of 1866 MHz" in warnings[2], warnings
    assert jetson.jetson_state(str(tmp_path / "not-a-jetson")) == {}


def test_an_emc_clock_only_root_can_read_is_said_so_not_guessed(tmp_path, monkeypatch):
    """As a user on a real Jetson, debugfs is not readable: the state says the EMC clock is
    unknown and no warning is made up from it."""
    _fake_jetson(tmp_path, "MAXN", pinned=True, emc_mhz=None)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    state = jetson.jetson_state(str(tmp_path))
    assert state["emc_readable"] is False and "emc_mhz" not in state
    assert jetson.jetson_warnings(state) == []


def test_a_calibration_cache_is_tensorrts_text_format():
    """Header ``TRT-<build>-EntropyCalibration2``, then ``name: <hex of the float32 scale>``
    (amax/127) per tensor; read back by the stand-in's reader (TensorRT's format)."""
    import struct

    sys.path.insert(0, str(STANDIN.parent))
    from trtexec_standin import read_calibration_cache

    text = runtimes.calibration_cache({"input": 2.54, "x.1": 127.0}, 8205)
    assert text == b"TRT-8205-EntropyCalibration2\ninput: 3ca3d70a\nx.1: 3f800000\n"
    assert struct.unpack(">f", bytes.fromhex("3ca3d70a"))[0] == pytest.approx(0.02)
    for bad in ({"a": 0.0}, {"a": float("nan")}, {"a: b": 1.0}, {"a": float("inf")}):
        with pytest.raises(ValueError):
            runtimes.calibration_cache(bad, 8205)


def test_int8_engines_are_built_with_a_calibration_cache_from_the_ranges_measured_here(tmp_path, tflite_cache,
                                                                                       trtexec, monkeypatch):
    """precision int8: the workstation's ranges sidecar (every float tensor of the ONNX model,
    measured with onnxruntime) becomes a calibration cache with the board's version header;
    trtexec gets --int8 --fp16 --calib and every tensor has its scale. Without a sidecar
    trtexec's placeholder scales are used and the result says so; a sidecar of another model
    is refused; the fp16 and int8 engines are filed apart."""
    from plaid.devices.int8 import ranges_sidecar, tensor_ranges

    env, calls = trtexec
    onnx_path = tmp_path / "unit.onnx"
    onnx_path.write_bytes(_onnx(tflite_cache).read_bytes())
    side = ranges_sidecar(onnx_path)
    doc = json.loads(side.read_text())
    assert side.name == "unit.onnx.int8.json" and doc["schema"] == "plaid.int8-ranges/1"
    assert doc["ranges"] == tensor_ranges(onnx_path) and all(v > 0 for v in doc["ranges"].values())
    assert ranges_sidecar(onnx_path).stat().st_mtime_ns == side.stat().st_mtime_ns  # kept: same bytes

    def run(plan, **extra):
        out = subprocess.run([sys.executable, "-m", "device_bench", str(plan)], capture_output=True, text=True,
                             timeout=120, env={**os.environ, **env, **extra})
        return out, json.loads(out.stdout.splitlines()[-1])

    out, res = run(_plan(tmp_path, onnx_path, precision="int8"), TRTEXEC_STANDIN_VERSION="8601")
    assert out.returncode == 0 and res["status"] == "ok", res
    assert res["precision"] == "int8" and res["calibration"].startswith(f"ranges of {len(doc['ranges'])} tensors")
    build = next(json.loads(a) for a in calls.read_text().splitlines() if '"--onnx=' in a)
    assert "--int8" in build and "--fp16" in build and any(a.startswith("--calib=") for a in build), build
    (engine,) = Path(env["PLAID_ENGINE_CACHE"]).glob("*-int8-*.engine")
    built = json.loads(engine.read_text())
    assert built["int8"] and built["missing_scales"] == [] and len(built["calibrated"]) == len(doc["ranges"])
    assert Path(str(engine) + ".calib").read_text().startswith("TRT-8601-EntropyCalibration2\n")

    side.unlink()
    out, res = run(_plan(tmp_path, onnx_path, precision="int8"), TRTEXEC_STANDIN_VERSION="8601")
    assert res["status"] == "ok" and "placeholder" in res["calibration"], res
    assert len(list(Path(env["PLAID_ENGINE_CACHE"]).glob("*-int8*.engine"))) == 2  # filed apart from the calibrated one

    (tmp_path / "unit.onnx.int8.json").write_text(json.dumps({**doc, "onnx_sha256": "0" * 64}))
    out, res = run(_plan(tmp_path, onnx_path, precision="int8"))
    assert res["status"] == "error" and "ranges of another model" in res["error"], res

    out, res = run(_plan(tmp_path, onnx_path))  # no precision: fp16, as before
    assert res["status"] == "ok" and res["precision"] == "fp16" and "calibration" not in res
    assert len(list(Path(env["PLAID_ENGINE_CACHE"]).glob("*-fp16.engine"))) == 1


@pytest.mark.parametrize("runtime,settings,fragment", [
    ("tflite", {"precision": "int8"}, "precision 'int8' needs the tensorrt runtime"),
    ("onnxruntime", {"precision": "fp16"}, "precision 'fp16' needs the tensorrt runtime"),
    ("tensorrt", {"precision": "bf16"}, "precision must be fp32, fp16 or int8"),
])
def test_a_precision_other_runtimes_cannot_give_is_refused_by_the_schema(runtime, settings, fragment):
    from device_bench.schema import PLAN_SCHEMA, SchemaError, validate_plan

    with pytest.raises(SchemaError, match=fragment):
        validate_plan({"schema": PLAN_SCHEMA, "runtime": runtime, "settings": settings,
                       "models": [{"key": "a", "path": "a.onnx"}]})
    ok = validate_plan({"schema": PLAN_SCHEMA, "runtime": runtime, "settings": {"precision": "fp32"},
                        "models": [{"key": "a", "path": "a.onnx"}]})
    assert ok["settings"]["precision"] == "fp32"


def test_the_cuda_version_is_read_where_jetpack_and_the_toolkit_put_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # no nvcc here
    cuda = tmp_path / "usr" / "local" / "cuda"
    cuda.mkdir(parents=True)
    assert jetson.cuda_version(str(tmp_path)) == ""
    (cuda / "version.txt").write_text("CUDA Version 10.2.300\n")  # JetPack 4.6
    assert jetson.cuda_version(str(tmp_path)) == "10.2.300"
    (cuda / "version.json").write_text(json.dumps({"cuda": {"name": "CUDA SDK", "version": "11.4.19"}}))
    assert jetson.cuda_version(str(tmp_path)) == "11.4.19"
    (cuda / "version.json").unlink()
    (cuda / "version.txt").unlink()
    nvcc = cuda / "bin" / "nvcc"  # a stand-in printing nvcc's --version lines
    nvcc.parent.mkdir()
    nvcc.write_text("#!/bin/sh\necho 'Cuda compilation tools, release 12.2, V12.2.140'\n")
    nvcc.chmod(0o755)
    assert jetson.cuda_version(str(tmp_path)) == "12.2.140"
