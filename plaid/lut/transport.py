"""Running a benchmark plan somewhere. ``local``: device_bench in a subprocess on this
machine, results streamed back line by line so each can be committed as it arrives."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

from plaid.errors import PlaidError


def run_local_plan(models: list[tuple[str, Path]], settings: dict,
                   on_event: Callable[[dict], None]) -> None:
    """Time ``models`` [(key, tflite path)] with device_bench on this host."""
    from device_bench.schema import PLAN_SCHEMA, validate_plan

    plan = validate_plan({
        "schema": PLAN_SCHEMA,
        "runtime": "tflite",
        "settings": settings,
        "models": [{"key": k, "path": str(p)} for k, p in models],
    })
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")])),
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    with tempfile.TemporaryDirectory(prefix="plaid-plan-") as tmp:
        plan_path = Path(tmp) / "plan.json"
        plan_path.write_text(json.dumps(plan))
        err_path = Path(tmp) / "stderr.txt"
        with open(err_path, "w") as err:
            proc = subprocess.Popen([sys.executable, "-m", "device_bench", str(plan_path)], stdout=subprocess.PIPE,
                                    stderr=err, text=True, env=env)
            try:
                assert proc.stdout is not None
                for line in proc.stdout:
                    line = line.strip()
                    if line.startswith("{"):
                        on_event(json.loads(line))
                rc = proc.wait()
            except BaseException:
                proc.kill()
                proc.wait()
                raise
        if rc not in (0, 1):
            tail = err_path.read_text().strip().splitlines()[-1:] or ["(no output)"]
            raise PlaidError(f"device_bench exited with {rc}: {tail[0][:300]}")
