"""The measurement protocol record (plaid.protocol): one declaration per setting, the key
sets derived from it, the copies that must not drift, types checked on load, and the
latency-table identity of the shipped targets pinned byte for byte (tables measured before
stay openable)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import run_plaid
from plaid.errors import UsageError
from plaid.lut.store import TableMeta, _canonical
from plaid.protocol import HOST, IDENTITY, PLAN, ROLES, MeasureProtocol
from plaid.targets import load_target, target_names

ROOT = Path(__file__).resolve().parents[1]

# The identity settings of the shipped targets and the name (hash) of a table with a fixed
# runtime version, fingerprint, unit version and converter: a change here makes every
# existing table of that target unopenable, so it must be deliberate.
PINNED = {
    "host": ({"cpus": [0], "delegate": "xnnpack", "max_runs": 2000, "max_seconds": 10.0, "min_runs": 30,
              "min_seconds": 0.5, "threads": 1, "warmup_runs": 10}, "host-tflite-RV-t1-964bad"),
    "sd845": ({"cpus": [4, 5, 6, 7], "delegate": "xnnpack", "max_runs": 2000, "max_seconds": 20.0, "min_runs": 50,
               "min_seconds": 2.0, "threads": 4, "warmup_runs": 10, "warmup_seconds": 0.5},
              "sd845-tflite-RV-t4-002760"),
    "tx2": ({"cpus": None, "delegate": "none", "max_runs": 5000, "max_seconds": 20.0, "min_runs": 100,
             "min_seconds": 2.0, "threads": 1, "warmup_runs": 20}, "tx2-tensorrt-RV-t1-67ac61"),
    "orin": ({"cpus": None, "delegate": "none", "max_runs": 5000, "max_seconds": 20.0, "min_runs": 100,
              "min_seconds": 2.0, "threads": 1, "warmup_runs": 20}, "orin-tensorrt-RV-t1-bd122b"),
}


def _name(target, settings: dict) -> str:
    meta = TableMeta(target=target.name, runtime=target.runtime, runtime_version="RV",
                     settings={**settings, "units": "U", "converter": "C"}, fingerprint={"f": 1})
    return meta.name()


@pytest.mark.parametrize("name", sorted(PINNED))
def test_shipped_targets_keep_their_table_identity(name):
    target = load_target(name)
    settings, table_name = PINNED[name]
    ident = target.measure.identity()
    assert _canonical(ident) == _canonical(settings)
    assert list(ident) == sorted(ident)
    assert _name(target, ident) == table_name


def test_steering_a_build_does_not_change_the_identity():
    target = load_target("sd845")
    steered = target.with_protocol(unit_timeout_s=2.0, cooldown_above_c=50.0, sentinel_every=3,
                                   sentinel_tolerance=2.0, cooldown_poll_s=0.1)
    assert steered.measure.identity() == target.measure.identity()
    assert target.with_protocol(threads=2).measure.identity()["threads"] == 2


def test_every_setting_has_a_role_and_the_sets_follow_from_them():
    assert set(MeasureProtocol.names()) == {k for role in ROLES for k in MeasureProtocol.keys(role)}
    assert not set(MeasureProtocol.keys(HOST)) & set(MeasureProtocol.keys(IDENTITY))
    assert not set(MeasureProtocol.keys(HOST)) & set(MeasureProtocol.keys(PLAN))
    assert MeasureProtocol.keys(PLAN, in_schema=False) == ("warmup_seconds",)
    assert set(MeasureProtocol.keys(HOST)) == {"unit_timeout_s", "cooldown_above_c", "cooldown_target_c",
                                              "cooldown_max_wait_s", "cooldown_poll_s", "sentinel_every",
                                              "sentinel_tolerance"}
    with pytest.raises(ValueError):
        MeasureProtocol.keys("steering")


def test_device_bench_copy_of_the_plan_settings_matches_the_record():
    """device_bench runs without plaid, so it keeps its own list of plan settings: the same
    names, defaults the record reads when a table leaves a setting out, types it accepts."""
    from device_bench.schema import _SETTING_TYPES, DEFAULT_SETTINGS, validate_settings

    schema = MeasureProtocol.keys(PLAN, in_schema=True)
    assert set(DEFAULT_SETTINGS) == set(schema) == set(_SETTING_TYPES)
    defaults = MeasureProtocol()
    assert {k: defaults._value(k) for k in schema} == DEFAULT_SETTINGS
    for name in target_names():
        plan = load_target(name).measure.plan(in_schema=True)
        assert validate_settings(plan) == {**DEFAULT_SETTINGS, **plan}


def test_runners_send_the_plan_settings_of_the_record():
    from plaid.adb import benchmark_model as bm
    from plaid.adb.runners import SCHEMA_KEYS

    assert SCHEMA_KEYS == MeasureProtocol.keys(PLAN, in_schema=True)
    plan = load_target("sd845").measure.plan()
    assert set(plan) <= set(MeasureProtocol.keys(PLAN)) and "warmup_seconds" in plan
    assert "--warmup_min_secs=0.5" in bm.flags(plan, "/g.tflite")


def test_values_keep_their_toml_types_and_only_given_keys_count():
    p = MeasureProtocol.from_table({"min_seconds": 2, "max_seconds": 20.0, "cpus": [1, 2]})
    assert _canonical(p.identity()) == '{"cpus":[1,2],"max_seconds":20.0,"min_seconds":2}'
    assert p.plan() == {"min_seconds": 2, "max_seconds": 20.0, "cpus": [1, 2]}
    assert p.threads == 1 and p.unit_timeout_s == 120.0 and p.cpus == (1, 2)
    assert MeasureProtocol.from_table({"cpus": []}).table() == {"cpus": None}
    assert MeasureProtocol.from_table({"sentinel_every": 20.0}).sentinel_every == 20
    over = p.with_settings(threads=3, delegate=None)
    assert list(over.table()) == ["min_seconds", "max_seconds", "cpus", "threads"]
    assert load_target("host").to_json()["protocol"] == load_target("host").protocol


@pytest.mark.parametrize("table,fragment", [
    ({"thread": 2}, "unknown protocol key 'thread'"),
    ({"threads": "4"}, "threads must be an integer >= 1"),
    ({"threads": True}, "threads must be an integer >= 1"),
    ({"threads": 0}, "threads must be an integer >= 1"),
    ({"min_runs": 2.5}, "min_runs must be an integer >= 1"),
    ({"min_seconds": -1}, "min_seconds must be a number >= 0"),
    ({"delegate": "nnapi"}, "delegate must be one of xnnpack, none, gpu"),
    ({"precision": "bf16"}, "precision must be one of fp32, fp16, int8"),
    ({"cpus": [0, -1]}, "cpus must be a list of CPU numbers"),
    ({"cpus": "0"}, "cpus must be a list of CPU numbers"),
    ({"min_runs": 50, "max_runs": 10}, "max_runs (10) must not be below min_runs (50)"),
    ({"unit_timeout_s": 0}, "unit_timeout_s must be a number > 0"),
    ({"cooldown_poll_s": "5"}, "cooldown_poll_s must be a number >= 0"),
])
def test_bad_settings_are_one_line_naming_the_key(table, fragment):
    with pytest.raises(UsageError) as err:
        MeasureProtocol.from_table(table, "here [protocol]")
    msg = str(err.value)
    assert msg.startswith("here [protocol]: ") and fragment in msg and "\n" not in msg, msg


@pytest.mark.parametrize("edit,fragment", [
    (("min_runs = 30", "min_run = 30"), "unknown protocol key 'min_run'"),
    (("threads = 1", 'threads = "one"'), "threads must be an integer >= 1"),
])
def test_a_broken_target_preset_is_one_cli_line(tmp_path, edit, fragment):
    configs = tmp_path / "configs"
    shutil.copytree(ROOT / "configs", configs)
    preset = configs / "targets" / "host.toml"
    text = preset.read_text()
    assert edit[0] in text
    preset.write_text(text.replace(edit[0], edit[1], 1))
    proc = run_plaid("bench", "--target", "host", "--dry-run", env={"PLAID_CONFIG_DIR": str(configs)})
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "configs/targets/host.toml [protocol]" in lines[0] and fragment in lines[0], lines[0]


def test_threads_on_this_host_get_as_many_cpus_and_a_device_keeps_its_list(monkeypatch):
    import os

    from plaid.targets import load_target

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    host = load_target("host")  # pinned to cpus = [0]
    assert host.with_threads(2).measure.cpus == (0, 1) and host.with_threads(2).measure.threads == 2
    assert host.with_threads(8).measure.cpus == (0, 1, 2, 3)  # no more than this process may use
    assert host.with_threads(1).measure.cpus == (0,) and host.with_threads(None) is host
    phone = load_target("sd845")
    assert phone.with_threads(8).measure.cpus == phone.measure.cpus  # the phone's cores, not this host's


def test_precision_is_a_tensorrt_setting_of_its_own_table():
    """`plaid bench --precision int8` on a TensorRT target: another table identity; on a
    TFLite target: one line (the file is timed as converted); the two lists of precisions
    (here and device_bench's) agree."""
    from device_bench.tensorrt import PRECISIONS as DEVICE_BENCH_PRECISIONS
    from plaid.protocol import PRECISIONS

    assert PRECISIONS == DEVICE_BENCH_PRECISIONS
    tx2 = load_target("tx2")
    int8 = tx2.with_precision("int8")
    assert int8.measure.precision == "int8" and int8.measure.identity()["precision"] == "int8"
    assert "precision" not in tx2.measure.identity() and tx2.with_precision(None) is tx2
    assert int8.measure.plan(in_schema=True)["precision"] == "int8"
    with pytest.raises(UsageError, match="precision 'int8' is for TensorRT engines; the tflite runtime"):
        load_target("rpi5").with_precision("int8")
    with pytest.raises(UsageError, match="the onnxruntime runtime"):
        int8.with_runtime("onnxruntime")
    assert load_target("rpi5").with_precision("fp32").measure.precision == "fp32"
    proc = run_plaid("bench", "--target", "host", "--precision", "int8", "--dry-run")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].endswith("runtime times the model file as converted (fp32)")
