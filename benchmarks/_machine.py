"""Machine description written next to every benchmark figure."""

import os
import platform
from datetime import datetime, timezone


def machine() -> dict:
    from device_bench.runner import fingerprint, runtime_info

    return {**fingerprint(), "runtime": runtime_info()["version"], "python": platform.python_version(),
            "affinity": sorted(os.sched_getaffinity(0)), "when": datetime.now(timezone.utc).isoformat(timespec="seconds")}
