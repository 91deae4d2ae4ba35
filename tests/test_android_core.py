"""The Android runner's Java core on the host JDK: its JUnit suite (android_runner/core/test.sh),
and cross-checks of the same behaviour in Java and in device_bench: plan validation (accepted
plans, rejected plans and their messages), the timing protocol with its statistics, and the
results/events files against device_bench.schema.

Needs a JDK, junit4 and libandroid-json-org-java, Debian's build of Android's org.json (`make
system-deps` installs them); without them these tests fail."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from device_bench.runner import stats, timed_runs
from device_bench.schema import PLAN_SCHEMA, SchemaError, validate_plan, validate_result, validate_results

pytestmark = pytest.mark.slow

CORE = Path(__file__).resolve().parents[1] / "android_runner" / "core"
ORG_JSON = Path("/usr/share/java/json-android.jar")  # org.json, which Android has in its platform
JARS = (Path("/usr/share/java/junit4.jar"), Path("/usr/share/java/hamcrest-core.jar"), ORG_JSON)


@pytest.fixture(scope="module")
def core_build(tmp_path_factory):
    """Compiles the core and runs its JUnit suite once, in a build folder of this session."""
    missing = [tool for tool in ("java", "javac") if shutil.which(tool) is None]
    missing += [str(jar) for jar in JARS if not jar.is_file()]
    if missing:
        pytest.fail(f"the Android runner core needs a JDK, junit4 and org.json, missing: {', '.join(missing)} "
                    "(run `make system-deps`)")
    build = tmp_path_factory.mktemp("android-core")
    proc = subprocess.run(["bash", str(CORE / "test.sh")], env={**os.environ, "BUILD_DIR": str(build)},
                          capture_output=True, text=True, timeout=300)
    return build, proc


def java_cli(core_build, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    build, _ = core_build
    classes = build / "classes" / "main"
    if not (classes / "org" / "plaid" / "bench" / "core" / "Cli.class").is_file():
        pytest.fail("the core did not compile; see test_junit_suite_passes")
    return subprocess.run(["java", "-XX:TieredStopAtLevel=1", "-cp", f"{classes}{os.pathsep}{ORG_JSON}",
                           "org.plaid.bench.core.Cli", *args],
                          input=stdin, capture_output=True, text=True, timeout=60)


def test_junit_suite_passes(core_build):
    _, proc = core_build
    assert proc.returncode == 0, f"android_runner/core/test.sh exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    assert "OK (" in proc.stdout, proc.stdout


# ---------------------------------------------------------------- the timing protocol end to end

SETTINGS = {"threads": 4, "warmup_runs": 3, "min_runs": 10, "max_runs": 40, "min_seconds": 0.02,
            "max_seconds": 0.5, "delegate": "xnnpack", "cpus": None}

FAKE_MODELS = {  # key -> fake model file (FakeModelLoader): each invocation costs the next cost_ms
    "cheap": {"cost_ms": [0.7]},                # min_seconds governs: 29 runs
    "cycle": {"cost_ms": [1.3, 0.4, 2.2]},      # uneven runs, min_seconds governs
    "tiny": {"cost_ms": [0.01]},                # max_runs caps at 40
    "slow": {"cost_ms": [120.0]},               # max_seconds caps at 5 runs, before min_runs
    "bad-op": {"load_error": "Didn't find op for builtin opcode 'CONV_3D'"},
    "flaky": {"cost_ms": [1.0], "fail_after": 5},
}


def python_reference(costs: list[float], settings: dict) -> dict:
    """device_bench's timed_runs + stats on the same fake model with an integer-nanosecond clock."""
    now = [0]
    calls = [0]

    def invoke():
        now[0] += round(costs[calls[0] % len(costs)] * 1e6)
        calls[0] += 1

    return stats(timed_runs(invoke, settings, clock=lambda: now[0] / 1e9))


def test_fake_run_matches_device_bench_and_its_schema(core_build, tmp_path):
    units = tmp_path / "units"
    units.mkdir()
    models = []
    for key, spec in FAKE_MODELS.items():
        (units / f"{key}.json").write_text(json.dumps(spec))
        models.append({"key": key, "path": f"units/{key}.json"})
    models.insert(2, {"key": "gone", "path": "units/missing.tflite"})
    plan = {"schema": PLAN_SCHEMA, "runtime": "tflite", "settings": SETTINGS, "models": models}
    validate_plan(plan)
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    out = tmp_path / "results.json"

    proc = java_cli(core_build, "fake-run", str(tmp_path / "plan.json"), str(out))
    assert proc.returncode == 1, proc.stderr  # 1: some models are error rows
    doc = validate_results(json.loads(out.read_text()))
    assert doc["settings"] == validate_plan(plan)["settings"]
    assert doc["runtime"] == {"name": "tflite", "version": "fake"}
    assert not (tmp_path / "results.json.tmp").exists()
    rows = {r["key"]: r for r in doc["results"]}
    assert [r["key"] for r in doc["results"]] == [m["key"] for m in models]

    for key in ("cheap", "cycle", "tiny", "slow"):
        expected = python_reference(FAKE_MODELS[key]["cost_ms"], SETTINGS)
        got = rows[key]
        assert got["status"] == "ok"
        assert got["runs"] == expected["runs"], key
        for name in ("median_ms", "p90_ms", "mean_ms", "std_ms", "cv", "min_ms"):
            assert got[name] == pytest.approx(expected[name], rel=1e-9, abs=1e-12), (key, name)
    assert [rows[k]["runs"] for k in ("cheap", "tiny", "slow")] == [29, 40, 5]

    assert rows["bad-op"] == {"key": "bad-op", "status": "error",
                              "error": "IllegalArgumentException: Didn't find op for builtin opcode 'CONV_3D'"}
    assert rows["gone"]["error"] == f"FileNotFoundException: model file not found: {units / 'missing.tflite'}"
    assert rows["flaky"]["error"] == "IllegalStateException: invocation 6 failed"

    lines = (tmp_path / "results.json.events.jsonl").read_text().splitlines()
    assert len(lines) == len(models)
    for line, row in zip(lines, doc["results"]):
        event = json.loads(line)
        assert event.pop("event") == "result"
        assert validate_result(event) == row


def test_a_plan_error_is_a_top_level_error_document(core_build, tmp_path):
    (tmp_path / "plan.json").write_text(json.dumps({"schema": PLAN_SCHEMA, "runtime": "tflite", "models": []}))
    out = tmp_path / "results.json"
    proc = java_cli(core_build, "fake-run", str(tmp_path / "plan.json"), str(out))
    assert proc.returncode == 2
    doc = json.loads(out.read_text())
    assert doc["error"] == f"{tmp_path / 'plan.json'}: plan needs a non-empty 'models' list"
    assert (tmp_path / "results.json.events.jsonl").read_text() == ""


def test_statistics_are_bit_identical_to_device_bench(core_build):
    import numpy as np

    rng = np.random.default_rng(7)
    for n in (1, 2, 9, 131, 9000):
        times = [float(x) for x in rng.gamma(2.0, 1.5, n) + 0.3]
        proc = java_cli(core_build, "stats", stdin=json.dumps(times))
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout) == stats(times), n


# ---------------------------------------------------------------- plan validation in both languages

BASE = {"schema": PLAN_SCHEMA, "runtime": "tflite", "models": [{"key": "a", "path": "a.tflite"}]}

ACCEPTED = [
    BASE,
    {**BASE, "settings": {"threads": 4, "min_seconds": 2, "max_seconds": 2.0, "cpus": [4, 5, 6, 7]}},
    {**BASE, "note": "extra keys stay", "settings": {"delegate": "gpu", "max_runs": 10**22, "warmup_runs": 0}},
    {**BASE, "settings": {"precision": "fp32"}},
    {**BASE, "settings": {"precision": None, "threads": 2}},
]

REJECTED = [
    [BASE],
    {**BASE, "schema": "plaid.plan/2"},
    {**BASE, "runtime": "onnx"},
    {**BASE, "models": [{"key": "a", "path": "x"}, {"key": "a", "path": "y"}]},
    {**BASE, "models": [{"key": 1, "path": "x"}]},
    {**BASE, "settings": {"thread": 1, "zz": 2}},
    {**BASE, "settings": {"threads": 4.0}},
    {**BASE, "settings": {"min_seconds": True}},
    {**BASE, "settings": {"warmup_runs": -1}},
    {**BASE, "settings": {"max_seconds": 0.5}},
    {**BASE, "settings": {"delegate": "nnapi"}},
    {**BASE, "settings": {"cpus": [4, -1]}},
    {**BASE, "settings": {"precision": "int8"}},
    {**BASE, "settings": {"precision": "bf16"}},
    {**BASE, "settings": {"precision": 16}},
]


@pytest.mark.parametrize("index", range(len(ACCEPTED)))
def test_accepted_plans_validate_to_the_same_document(core_build, tmp_path, index):
    plan = ACCEPTED[index]
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    proc = java_cli(core_build, "validate-plan", str(tmp_path / "plan.json"))
    assert proc.returncode == 0, proc.stderr
    # dumps(loads(...)) on both sides: formatting differences vanish, int vs float stays
    assert json.dumps(json.loads(proc.stdout)) == json.dumps(validate_plan(json.loads(json.dumps(plan)), ("tflite",)))


def test_rejected_plans_are_rejected_with_device_bench_messages(core_build, tmp_path):
    for i, plan in enumerate(REJECTED):
        with pytest.raises(SchemaError) as python_error:
            validate_plan(plan, runtimes=("tflite",))  # the app times TFLite only
        path = tmp_path / f"plan{i}.json"
        path.write_text(json.dumps(plan))
        proc = java_cli(core_build, "validate-plan", str(path))
        assert proc.returncode == 2, (plan, proc.stdout)
        assert proc.stderr == f"plaid-bench: error: {path}: {python_error.value}\n"


def test_malformed_json_is_one_clear_line(core_build, tmp_path):
    path = tmp_path / "plan.json"
    path.write_text('{"schema": "plaid.plan/1", "runtime": "tflite",\n "models": [,]}')
    proc = java_cli(core_build, "validate-plan", str(path))
    assert proc.returncode == 2
    assert proc.stderr == f"plaid-bench: error: {path}: expecting a value, found ',' at line 2 column 13 (char 60)\n"
