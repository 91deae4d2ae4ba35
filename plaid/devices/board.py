"""A Linux board (a Raspberry Pi, a Jetson) as a measurement target: the session of the
``ssh`` transport (plaid.targets registers it in plaid.lut.session's SESSIONS, so that
this package imports no plaid.lut).

Opening the session logs in (plaid.devices.ssh), makes a private per-run folder on the
board (``plaid-<8 hex>`` under ``--remote-dir``, default the board's ``$TMPDIR`` or
/tmp; folders of that name left by an interrupted run are removed first), copies
device_bench there and checks the board's interpreter (the target's ``python``,
``--remote-python`` overrides) with a standard-library probe: a missing numpy or runtime
is one line that says what to install. ``measure`` runs models under the guard
(plaid.devices.guard: cool-down, sentinel) with device_bench, whose JSON lines come back
as they are printed; ``close`` removes the run folder, even after an error.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import sys
from pathlib import Path
from typing import Callable

from device_bench.jetson import jetson_warnings
from device_bench.runtimes import RUNTIMES
from plaid.devices.guard import Guard
from plaid.devices.shell import sh
from plaid.devices.ssh import SshAddress, SshConnection, SshOptions
from plaid.errors import PlaidError, UsageError

DEVICE_BENCH = Path(__file__).resolve().parents[2] / "device_bench"
RUN_DIR = re.compile(r"^plaid-[0-9a-f]{8}$")

# Runs on the board with its interpreter, in the run folder: only the standard library
# until it knows numpy and the runtime import, Python 3.6 syntax.
PROBE = r"""
import json, sys
out = {"python": "%d.%d.%d" % tuple(sys.version_info[:3]), "executable": sys.executable}
if sys.version_info < (3, 6):
    out["missing"], out["error"] = "python", "device_bench needs Python >= 3.6"
else:
    try:
        import numpy
    except Exception as exc:
        out["missing"], out["error"] = "numpy", "%s: %s" % (type(exc).__name__, exc)
if "missing" not in out:
    from device_bench import runtimes
    rt = runtimes.get(sys.argv[1])
    try:
        rt.check()
    except Exception as exc:
        out["missing"], out["error"], out["hint"] = rt.dist or rt.name, "%s: %s" % (type(exc).__name__, exc), rt.install_hint()
if "missing" not in out:
    from device_bench.runner import fingerprint, runtime_info
    out["runtime"], out["device"] = runtime_info(sys.argv[1]), fingerprint()
try:
    with open("/proc/device-tree/model") as fh:
        out["board"] = fh.read().strip("\x00\n ")
except Exception:
    pass
print(json.dumps(out))
"""

# The hottest thermal zone: one line "TYPE MILLIDEGREES" per zone (a fixed command: no input).
ZONES = ('for z in /sys/class/thermal/thermal_zone*; do [ -r "$z/temp" ] && '
         'printf "%s %s\\n" "$(cat "$z/type" 2>/dev/null)" "$(cat "$z/temp" 2>/dev/null)"; done; true')
CPU_ZONE = re.compile(r"cpu|soc|pkg|package|core", re.IGNORECASE)


class BoardSession:
    """The ``ssh`` transport's session (the plaid.lut.session.Session interface)."""

    transport = "ssh"
    runtimes = tuple(sorted(RUNTIMES))  # device_bench's
    needs = "pass --ssh [USER@]HOST[:PORT]"  # what plaid.lut.session says when a command lacks the board

    def __init__(self, target, ssh: str | None = None, ssh_key: Path | None = None, ssh_config: Path | None = None,
                 accept_new_host_key: bool = False, remote_python: str | None = None,
                 remote_dir: str | None = None) -> None:
        if not ssh:
            raise UsageError(f"target {target.name!r} is measured on a board over SSH: {self.needs}")
        target.require_runtime(self.runtimes)
        address = SshAddress.parse(ssh)
        self.target = target
        self.python = remote_python or target.python or "python3"
        options = SshOptions(key=ssh_key, config=ssh_config, accept_new_host_key=accept_new_host_key)
        self.conn = SshConnection(address, options)
        self.runner: DeviceBenchRunner | None = None
        try:
            self.runner = DeviceBenchRunner(self.conn, self.python, target, remote_dir)
            self.probe = self.runner.prepare()
            for warning in jetson_warnings(self.probe.get("runtime", {})):
                print(f"plaid: warning: board {self.conn.address}: {warning}", file=sys.stderr)
        except BaseException:
            self.close()
            raise

    def identity(self) -> tuple[str, dict]:
        fingerprint = dict(self.probe["device"])
        if self.probe.get("board"):
            fingerprint["board"] = self.probe["board"]
        fingerprint["runner"] = DeviceBenchRunner.name
        for key in ("gpu", "cuda", "l4t", "nvpmodel"):  # what the TensorRT runtime reports of a Jetson
            if key in self.probe["runtime"]:
                fingerprint[key] = self.probe["runtime"][key]
        return self.probe["runtime"]["version"], fingerprint

    def describe(self) -> dict:
        device = self.probe.get("board") or f"{self.probe['device']['machine']} {self.probe['device']['cpu_model']}"
        return {"device": device, "address": self.conn.address, "runner": DeviceBenchRunner.name,
                "runtime_version": self.probe["runtime"]["version"],
                "python": f"{self.probe['executable']} {self.probe['python']}"}

    def timing_cpus(self) -> set[int]:
        """The board times the models: none of this machine's CPUs."""
        return set()

    def measure(self, models, on_event, progress) -> None:
        assert self.runner is not None
        Guard(self.runner, self.temperatures, self.target.measure, on_event, progress, noun="board").run(models)

    def temperatures(self) -> dict[str, float]:
        """{"cpu_c": the hottest CPU/SoC thermal zone} (the hottest zone when none is named
        so); empty when the board has no readable zone."""
        return hottest_cpu_zone(self.conn.shell(ZONES, what="reading temperatures")[0])

    def close(self) -> None:
        try:
            if self.runner is not None:
                self.runner.cleanup()
        finally:
            self.conn.close()


def hottest_cpu_zone(zones: str) -> dict[str, float]:
    """{"cpu_c": ...} from ZONES' output ("TYPE MILLIDEGREES" lines): the hottest zone whose
    type names the CPU or SoC, else the hottest of all; {} without a readable zone."""
    read = []
    for line in zones.splitlines():
        kind, _, value = line.strip().rpartition(" ")
        try:
            read.append((kind, int(value) / 1000.0))
        except ValueError:
            continue
    cpu = [t for kind, t in read if CPU_ZONE.search(kind)] or [t for _, t in read]
    return {"cpu_c": round(max(cpu), 1)} if cpu else {}


class DeviceBenchRunner:
    """device_bench in a private folder on the board: one device_bench run per batch that
    the guard hands over, each model file copied once."""

    name = "device_bench"
    batch_size: int | None = None  # as many as the guard allows: one interpreter start per batch

    def __init__(self, conn: SshConnection, python: str, target, base: str | None = None) -> None:
        from device_bench.schema import validate_settings
        from plaid.procs import scratch_dir

        self.conn, self.python, self.target = conn, python, target
        self.settings = validate_settings(target.measure.plan(in_schema=True))
        self.unit_timeout_s = float(target.measure.unit_timeout_s)
        self.base = base
        self.run_dir = ""
        self._pushed: dict[str, str] = {}  # model key -> file name in the run folder
        self._batches = 0
        self._scratch = scratch_dir("plaid-board-")  # the plans, before they are copied

    def prepare(self) -> dict:
        """Make the run folder, copy device_bench, probe the interpreter; the probe's answer."""
        base = self.base or self.conn.check('printf "%s" "${TMPDIR:-/tmp}"', what="finding the temp folder").strip()
        if not base:
            raise UsageError("--remote-dir must not be empty")
        base = base.rstrip("/") or "/"
        self.conn.check(sh("mkdir", "-p", "--", base), what=f"creating {base}")
        self._remove_stale(base)
        run_dir = f"{base.rstrip('/')}/plaid-{secrets.token_hex(4)}"
        self.conn.check(sh("mkdir", "-m", "700", "--", run_dir), what=f"creating {run_dir}")
        self.run_dir = run_dir
        files = sorted(p.relative_to(DEVICE_BENCH.parent) for p in DEVICE_BENCH.rglob("*.py")
                       if "__pycache__" not in p.parts)
        folders = sorted({f"{run_dir}/{f.parent.as_posix()}" for f in files})
        self.conn.check(sh("mkdir", "-p", "--", *folders), what="creating the device_bench folders")
        for f in files:
            self.conn.push(DEVICE_BENCH.parent / f, f"{run_dir}/{f.as_posix()}")
        return self._probe()

    def _remove_stale(self, base: str) -> None:
        """Run folders left in ``base`` by an interrupted run (only names plaid makes). Two
        plaid runs on one board at once are not supported: they would disturb each other's
        timings anyway."""
        out, rc = self.conn.shell(sh("ls", "-A", "--", base) + " 2>/dev/null", what=f"listing {base}")
        stale = [f"{base.rstrip('/')}/{n}" for n in out.splitlines() if RUN_DIR.match(n)] if rc == 0 else []
        if stale:
            self.conn.shell(sh("rm", "-r", "-f", "--", *stale), what="removing folders of an interrupted run")

    def _probe(self) -> dict:
        cmd = f"cd {sh(self.run_dir)} && {sh(self.python, '-c', PROBE, self.target.runtime)}"
        out, rc = self.conn.shell(cmd, timeout=60, what=f"checking {self.python} on the board")
        at = self.conn.address
        if rc in (126, 127):
            raise PlaidError(f"board {at} has no Python interpreter {self.python!r} (exit {rc}): install Python 3 "
                             "there or name one with --remote-python PATH")
        lines = [ln for ln in out.splitlines() if ln.startswith("{")]
        try:
            probe = json.loads(lines[-1])
        except (IndexError, json.JSONDecodeError):
            last = (out.strip().splitlines() or ["(no output)"])[-1][:200]
            raise PlaidError(f"{self.python} on board {at} failed to start device_bench (exit {rc}): {last}") from None
        missing = probe.get("missing")
        if missing == "python":
            raise PlaidError(f"{self.python} on board {at} is Python {probe['python']}; device_bench needs Python "
                             ">= 3.6 (name another with --remote-python PATH)")
        if missing:
            hint = probe.get("hint") or f"pip install {missing}"
            how = f"`{self.python} -m {hint}`" if hint.startswith("pip install ") else hint
            raise PlaidError(f"{missing} is missing for {probe.get('executable') or self.python} on board {at} "
                             f"({probe.get('error', '')[:120]}): install it there ({how}) or name an interpreter "
                             "that has it with --remote-python PATH")
        return probe

    # -- the guard's runner interface
    def version(self) -> str:
        return self.name

    def run(self, models: list[tuple[str, Path]], on_result: Callable[[dict], None]) -> None:
        """Time ``models`` with device_bench on the board; ``on_result`` gets each result row."""
        from device_bench.schema import PLAN_SCHEMA, validate_plan

        int8 = self.settings.get("precision") == "int8"
        for key, path in models:
            if key not in self._pushed:
                name = f"m-{hashlib.sha256(key.encode()).hexdigest()[:16]}{Path(path).suffix}"
                timeout = max(60.0, self.unit_timeout_s)
                self.conn.push(Path(path), f"{self.run_dir}/{name}", timeout=timeout)
                if int8 and Path(path).suffix == ".onnx":  # its ranges: the board writes the calibration cache
                    from plaid.devices.int8 import SUFFIX, ranges_sidecar

                    self.conn.push(ranges_sidecar(Path(path)), f"{self.run_dir}/{name}{SUFFIX}", timeout=timeout)
                self._pushed[key] = name
        plan = validate_plan({"schema": PLAN_SCHEMA, "runtime": self.target.runtime, "settings": self.settings,
                              "models": [{"key": k, "path": self._pushed[k]} for k, _ in models]})
        self._batches += 1
        plan_name = f"plan-{self._batches}.json"
        local = Path(self._scratch.name) / plan_name
        local.write_text(json.dumps(plan))
        self.conn.push(local, f"{self.run_dir}/{plan_name}")
        wanted = {k for k, _ in models}

        def on_line(line: str) -> None:
            if not line.startswith("{"):
                return
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                return
            if event.get("event") == "result" and event.get("key") in wanted:
                wanted.discard(event["key"])
                on_result({k: v for k, v in event.items() if k != "event"})

        err_name = f"stderr-{self._batches}.txt"  # the runtime's chatter stays on the board
        cmd = (f"cd {sh(self.run_dir)} && TF_CPP_MIN_LOG_LEVEL=3 exec "
               f"{sh(self.python, '-m', 'device_bench', plan_name)} 2> {sh(err_name)}")
        what = f"device_bench on {len(models)} model(s)"
        rc, tail = self.conn.stream(cmd, on_line, idle_timeout=self.unit_timeout_s + 60, what=what)
        if rc not in (0, 1) or wanted:
            out, _ = self.conn.shell(sh("tail", "-n", "1", f"{self.run_dir}/{err_name}"), what="reading its stderr")
            raise PlaidError(f"device_bench on board {self.conn.address} exited with {rc} before timing "
                             f"{len(wanted)} of {len(models)} model(s): {(out.strip() or tail)[:300]}")

    def cleanup(self) -> None:
        """Remove the run folder (best effort: a board that is gone keeps it until the next run)."""
        self._scratch.cleanup()
        if not self.run_dir:
            return
        try:
            self.conn.shell(sh("rm", "-r", "-f", "--", self.run_dir), timeout=15, what="removing the run folder")
        except PlaidError:  # DeviceLost too
            pass
