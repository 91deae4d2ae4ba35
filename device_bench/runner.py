"""Time each model of a plan with its runtime (device_bench.runtimes); statistics and fingerprint."""

import json
import os
import platform
import stat
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, List, Optional

import numpy as np

from device_bench import runtimes
from device_bench.schema import RESULTS_SCHEMA


def stats(times_ms: List[float]) -> dict:
    """median, p90, mean, std (sample), CV (std/mean), min, runs."""
    a = np.asarray(times_ms, dtype=np.float64)
    mean = float(a.mean())
    std = float(a.std(ddof=1)) if len(a) > 1 else 0.0
    return {
        "median_ms": float(np.median(a)),
        "p90_ms": float(np.percentile(a, 90)),
        "mean_ms": mean,
        "std_ms": std,
        "cv": std / mean if mean > 0 else 0.0,
        "min_ms": float(a.min()),
        "runs": int(len(a)),
    }


def timed_runs(invoke: Callable[[], None], settings: dict, clock=time.perf_counter) -> List[float]:
    """Warm up, then run until both min_runs and min_seconds are met (capped by max_runs /
    max_seconds). Returns per-run milliseconds."""
    for _ in range(settings["warmup_runs"]):
        invoke()
    times: List[float] = []
    start = clock()
    while True:
        t0 = clock()
        invoke()
        t1 = clock()
        times.append((t1 - t0) * 1000.0)
        elapsed = t1 - start
        enough = len(times) >= settings["min_runs"] and elapsed >= settings["min_seconds"]
        if enough or len(times) >= settings["max_runs"] or elapsed >= settings["max_seconds"]:
            return times


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "processor\t: arm")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def fingerprint() -> dict:
    """What identifies this machine's timing behaviour (stable across reboots)."""
    return {
        "system": platform.system().lower(),
        "machine": platform.machine(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count() or 0,
    }


def runtime_info(name: str = "tflite", settings: Optional[dict] = None) -> dict:
    """{"name", "version"} of a registered runtime (device_bench.runtimes)."""
    return runtimes.get(name).info(settings)


def load_interpreter(path: str, settings: dict):
    """A TFLite interpreter with the plan's settings and fixed random inputs set."""
    return runtimes.Tflite().interpreter(path, settings)


def measure_model(path: str, settings: dict, runtime: str = "tflite") -> dict:
    rt = runtimes.get(runtime)
    return dict(stats(rt.times(path, settings)), **rt.extra(path))


def run_plan(plan: dict, base: Path, emit: Callable[[dict], None] = lambda e: None) -> dict:
    """Run every model; ``emit`` receives each event as it happens."""
    settings = plan["settings"]
    if settings.get("cpus"):
        os.sched_setaffinity(0, settings["cpus"])
    doc = {
        "schema": RESULTS_SCHEMA,
        "runtime": runtime_info(plan.get("runtime", "tflite"), settings),
        "device": fingerprint(),
        "settings": settings,
        "results": [],
    }
    emit({"event": "start", "runtime": doc["runtime"], "device": doc["device"], "models": len(plan["models"])})
    for model in plan["models"]:
        path = Path(model["path"])
        if not path.is_absolute():
            path = base / path
        try:
            if not path.is_file():
                raise FileNotFoundError(f"model file not found: {path}")
            result = {"key": model["key"], "status": "ok", **measure_model(str(path), settings, doc["runtime"]["name"])}
        except Exception as exc:  # noqa: BLE001 - one failing model must not stop the plan
            msg = " ".join(f"{type(exc).__name__}: {exc}".split())[:500]
            result = {"key": model["key"], "status": "error", "error": msg}
        doc["results"].append(result)
        emit({"event": "result", **result})
    return doc


class OutputError(Exception):
    """An output path that must not be written (reported as one line)."""


def check_output(path: Path) -> None:
    """OutputError if ``path`` exists and is not a regular file (a link is not followed)."""
    try:
        mode = os.lstat(str(path)).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        raise OutputError("exists and is not a regular file; refusing to write it")


def write_json_atomic(path: Path, doc: dict) -> None:
    """Write through an unpredictable temp name (O_EXCL) next to ``path``, fsync, rename
    over it; on an error the temp file is removed. (plaid.fsio does the same for plaid;
    device_bench runs on devices without plaid.)"""
    check_output(path)
    fd, tmp = tempfile.mkstemp(dir=str(path.parent), prefix=".{}.".format(path.name), suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            mask = os.umask(0o077)  # read the umask: give the mode open() would
            os.umask(mask)
            os.fchmod(fh.fileno(), 0o666 & ~mask)
            fh.write(json.dumps(doc, indent=2))
            fh.flush()
            os.fsync(fh.fileno())
        check_output(path)
        os.replace(tmp, str(path))
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise


def emit_line(event: dict) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()
