"""Building a latency table for a target: enumerate units, convert each once (cached),
time them on the target and commit each result the moment it arrives (so an interrupted
build resumes where it stopped)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from plaid.errors import PlaidError, UsageError
from plaid.lut.latency import Latency
from plaid.lut.store import LatencyTable, TableMeta
from plaid.lut.units import UNIT_VERSION, Unit, space_units

Progress = Callable[[str, int, int, str], None]  # (phase, done, total, label)


def _no_progress(phase: str, done: int, total: int, label: str) -> None:
    pass


def lut_dir() -> Path:
    from plaid.convert import cache_dir

    return Path(os.environ.get("PLAID_LUT_DIR") or cache_dir() / "luts")


def target_meta(target, space_name: str = "") -> TableMeta:
    """The table identity for a target measured from this machine."""
    if target.transport != "local":
        raise UsageError(
            f"target {target.name!r} is measured over {target.transport}, which this plaid version cannot drive "
            "yet; use --target host"
        )
    from device_bench.runner import fingerprint, runtime_info

    settings = {k: target.protocol[k] for k in sorted(target.protocol)}
    settings["units"] = UNIT_VERSION
    settings["converter"] = _converter_version()
    return TableMeta(target=target.name, runtime=target.runtime, runtime_version=runtime_info()["version"],
                     settings=settings, fingerprint=fingerprint(), space=space_name)


def _converter_version() -> str:
    from importlib.metadata import version

    return f"onnx2tf {version('onnx2tf')}"


def device_settings(target) -> dict[str, Any]:
    keys = ("threads", "warmup_runs", "min_runs", "max_runs", "min_seconds", "max_seconds", "delegate", "cpus")
    s = {k: target.protocol[k] for k in keys if k in target.protocol}
    if s.get("cpus"):
        avail = os.sched_getaffinity(0)
        s["cpus"] = [c for c in s["cpus"] if c in avail] or None
    return s


def open_table(target, space_name: str, path: Path | None, create: bool) -> LatencyTable:
    meta = target_meta(target, space_name)
    path = path or lut_dir() / f"{meta.name()}.sqlite"
    return LatencyTable.open(path, meta, create=create)


@dataclass
class BuildReport:
    table: Path
    units: int
    already: int
    measured: int
    failed: list[tuple[str, str]]

    def to_json(self) -> dict[str, Any]:
        return {"table": str(self.table), "units": self.units, "already_measured": self.already,
                "measured_now": self.measured, "failed": [{"key": k, "error": e} for k, e in self.failed]}


def convert_units(units: list[Unit], progress: Progress = _no_progress) -> dict[str, Path]:
    """fp32 TFLite file per unit key (cached: converted once ever; in parallel)."""
    from plaid.convert import tflite_many

    paths = tflite_many([(u.key, u.build, u.input_shape) for u in units],
                        progress=lambda d, t, label: progress("convert", d, t, label))
    return {u.key: p for u, p in zip(units, paths)}


def measure_models(target, models: list[tuple[str, Path]], on_result: Callable[[str, Latency | None, str], None],
                   progress: Progress = _no_progress) -> None:
    """Time models on the target; ``on_result(key, latency or None, error)`` per model."""
    from plaid.lut.transport import run_local_plan

    done = 0

    def handle(event: dict) -> None:
        nonlocal done
        if event.get("event") != "result":
            return
        done += 1
        if event["status"] == "ok":
            lat = Latency(event["median_ms"], event["p90_ms"], event["std_ms"], event["runs"])
            on_result(event["key"], lat, "")
        else:
            on_result(event["key"], None, event["error"])
        progress("measure", done, len(models), event["key"])

    progress("measure", 0, len(models), models[0][0] if models else "")
    run_local_plan(models, device_settings(target), handle)


def build_table(target, space, resolution: tuple[int, int], table: LatencyTable,
                progress: Progress = _no_progress) -> BuildReport:
    units = space_units(space, resolution)
    todo = [u for u in units if u.key not in table]
    report = BuildReport(table.path, len(units), len(units) - len(todo), 0, [])
    if not todo:
        return report
    paths = convert_units(todo, progress)

    def commit(key: str, lat: Latency | None, error: str) -> None:
        if lat is None:
            report.failed.append((key, error))
            return
        table.put(key, lat, {"resolution": list(resolution), "space": space.name})
        report.measured += 1

    measure_models(target, [(u.key, paths[u.key]) for u in todo], commit, progress)
    if report.failed:
        key, err = report.failed[0]
        raise PlaidError(f"{len(report.failed)} unit(s) failed to run, first {key}: {err}")
    return report
