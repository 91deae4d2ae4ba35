"""Machine description written next to every benchmark figure."""

import os
import platform
from datetime import datetime, timezone


def machine() -> dict:
    from device_bench.runner import fingerprint, runtime_info

    return {**fingerprint(), "runtime": runtime_info()["version"], "python": platform.python_version(),
            "affinity": sorted(os.sched_getaffinity(0)), "when": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def write_report(path, report: dict) -> None:
    """Write a benchmark's JSON (with a trailing newline) and say where."""
    import json
    from pathlib import Path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")
