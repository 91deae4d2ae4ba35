"""Machine description written next to every benchmark figure."""

import os
import platform
from datetime import datetime, timezone


def machine() -> dict:
    from device_bench.runner import fingerprint, runtime_info

    return {**fingerprint(), "runtime": runtime_info()["version"], "python": platform.python_version(),
            "affinity": sorted(os.sched_getaffinity(0)), "when": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def finite(obj):
    """``obj`` with every NaN or infinite float replaced by None (JSON has no such numbers)."""
    import math

    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def write_report(path, report: dict) -> None:
    """Write a benchmark's JSON (with a trailing newline; NaN and infinities as null) and say where."""
    import json
    from pathlib import Path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(finite(report), indent=2, allow_nan=False) + "\n")
    print(f"wrote {path}")
