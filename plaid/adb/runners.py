"""What executes models on the phone, registered by name (``--runner``):

- ``benchmark_model``: TFLite's official native tool, pushed once per run into a private
  folder ``/data/local/tmp/plaid-<id>/`` (``--benchmark-binary``) or already present at
  ``/data/local/tmp/benchmark_model``; one call per model, pinned with ``taskset``.
- ``apk``: the plaid benchmark app (android_runner/, contract in its README): installed
  with ``pm install``, given a plan, started with ``am start``; its events file is polled
  so each result is reported as soon as the app wrote it.

Both report results-schema rows through ``on_result`` and remove what they pushed in
``cleanup`` (best effort: a device that is gone keeps its files).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import json
import re
import secrets
import time
from pathlib import Path
from typing import Callable

from plaid.adb import benchmark_model as bm
from plaid.adb.connection import Connection
from plaid.adb.shell import sh
from plaid.errors import PlaidError, UsageError
from plaid.fsio import file_digest
from plaid.lut.session import DeviceLost
from plaid.procs import scratch_dir
from plaid.protocol import PLAN, MeasureProtocol
from plaid.registry import Registry

RUNNERS: Registry[type] = Registry("runner")
TMP = "/data/local/tmp"
SCHEMA_KEYS = MeasureProtocol.keys(PLAN, in_schema=True)  # the settings a plaid.plan/1 plan carries


_RUN_DIR = re.compile(r"^plaid-[0-9a-f]{8}$")


def remove_stale_run_dirs(conn: Connection, base: str) -> list[str]:
    """Remove run folders that an interrupted run (a phone unplugged mid-table) left in
    ``base``. Only names plaid itself makes (``plaid-`` + 8 hex digits) are touched; two
    plaid runs on one phone at once are not supported (they would disturb each other's
    timings anyway)."""
    out, rc = conn.shell(sh("ls", base) + " 2>/dev/null")
    stale = [f"{base}/{name}" for name in out.split() if _RUN_DIR.match(name)] if rc == 0 else []
    if stale:
        conn.check(sh("rm", "-r", "-f", *stale), what="removing folders of an interrupted run")
    return stale


class Runner(ABC):
    """Base: a private run folder on the device, files pushed once, removed at the end."""

    name = ""
    batch_size: int | None = 1  # models per run() call the protocol may hand over

    def __init__(self, conn: Connection, settings: dict, unit_timeout_s: float = 120.0,
                 benchmark_binary: Path | None = None, apk: Path | None = None, workdir: str | None = None) -> None:
        self.conn, self.settings, self.unit_timeout_s = conn, settings, float(unit_timeout_s)
        self.run_dir = f"{(workdir or self.default_base()).rstrip('/')}/plaid-{secrets.token_hex(4)}"
        self.benchmark_binary, self.apk = benchmark_binary, apk
        self._pushed: dict[str, str] = {}  # model key -> device path
        self._prepared = False
        self._made: list[str] = []

    def default_base(self) -> str:
        return TMP

    @abstractmethod
    def version(self) -> str:
        """The runner's identity for the table (binary or APK hash)."""

    @abstractmethod
    def run(self, models: list[tuple[str, Path]], on_result: Callable[[dict], None]) -> None:
        """Time ``models`` on the device; ``on_result`` gets one results-schema row each."""

    def _mkdir(self, path: str) -> None:
        self.conn.check(sh("mkdir", "-p", path), what=f"creating {path}")
        self._made.append(path)

    def _push_model(self, key: str, local: Path, folder: str) -> str:
        if key not in self._pushed:
            remote = f"{folder}/m{len(self._pushed):04d}.tflite"
            self.conn.push(Path(local), remote, timeout=max(60.0, self.unit_timeout_s))
            self._pushed[key] = remote
        return self._pushed[key]

    def cleanup(self) -> None:
        for path in reversed(self._made):
            try:
                self.conn.shell(sh("rm", "-r", "-f", path), timeout=30)
            except PlaidError:  # the device is gone or hung: its files stay
                return


@RUNNERS.register("benchmark_model")
class BenchmarkModelRunner(Runner):
    name = "benchmark_model"
    ON_DEVICE = f"{TMP}/benchmark_model"

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        if self.benchmark_binary is not None and not Path(self.benchmark_binary).is_file():
            raise UsageError(f"--benchmark-binary {self.benchmark_binary}: no such file")
        self.binary = self.ON_DEVICE
        self._version = ""

    def version(self) -> str:
        """``benchmark_model-<md5 prefix>`` of the binary that will run (another build of the
        tool gives another table)."""
        if not self._version:
            if self.benchmark_binary is not None:
                digest = file_digest(self.benchmark_binary, "md5")  # an identity, not security
            else:
                out, rc = self.conn.shell(sh("md5sum", self.ON_DEVICE) + " 2>&1")
                if rc != 0 or not out.split():
                    raise UsageError(f"no benchmark_model on the phone at {self.ON_DEVICE}: pass --benchmark-binary "
                                     "PATH (TFLite's android_aarch64 benchmark_model) or use --runner apk")
                digest = out.split()[0]
            self._version = f"benchmark_model-{digest[:12]}"
        return self._version

    def prepare(self) -> None:
        if self._prepared:
            return
        remove_stale_run_dirs(self.conn, self.run_dir.rsplit("/", 1)[0])
        self._mkdir(self.run_dir)
        if self.benchmark_binary is not None:
            self.binary = f"{self.run_dir}/benchmark_model"
            self.conn.push(Path(self.benchmark_binary), self.binary, timeout=120)
            self.conn.check(sh("chmod", "755", self.binary), what="chmod of benchmark_model")
        self._prepared = True

    def run(self, models, on_result) -> None:
        self.prepare()
        for key, local in models:
            graph = self._push_model(key, local, self.run_dir)
            cmd = bm.command(self.binary, graph, self.settings)
            try:
                out, rc = self.conn.shell(cmd, timeout=self.unit_timeout_s, what=f"benchmark_model on {key}")
            except DeviceLost:
                raise
            except PlaidError as exc:  # the timeout: name the unit and the knob
                raise PlaidError(f"benchmark_model on {key} did not finish within {self.unit_timeout_s:g} s on "
                                 f"{self.conn.serial} (the phone may hang; if the unit is just slow, raise "
                                 "unit_timeout_s in the target's [protocol])") from exc
            try:
                row = bm.parse_output(out, key)
                if rc != 0:
                    raise bm.OutputError(f"exit {rc}: {bm.error_line(out)}")
            except bm.OutputError as exc:
                row = {"key": key, "status": "error", "error": f"benchmark_model: {exc}"}
            on_result(row)


APP = "org.plaid.bench"
ACTIVITY = f"{APP}/.BenchActivity"
APP_DIR = f"/sdcard/Android/data/{APP}/files/plaid"


@RUNNERS.register("apk")
class ApkRunner(Runner):
    """The plaid benchmark app; contract: android_runner/README.md (plan in, events + results out)."""

    name = "apk"
    batch_size = None
    poll_s = 0.5

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        if self.apk is None:
            raise UsageError("--runner apk needs --apk PATH (the plaid benchmark app, android_runner/)")
        if not Path(self.apk).is_file():
            raise UsageError(f"--apk {self.apk}: no such file")
        self._runs = 0

    def default_base(self) -> str:
        return APP_DIR

    def version(self) -> str:
        return f"plaid-bench-apk-{file_digest(self.apk, 'md5')[:12]}"

    def prepare(self) -> None:
        if self._prepared:
            return
        remove_stale_run_dirs(self.conn, TMP)
        remove_stale_run_dirs(self.conn, self.run_dir.rsplit("/", 1)[0])
        staging = f"{TMP}/plaid-{secrets.token_hex(4)}"
        self._mkdir(staging)
        remote_apk = f"{staging}/plaid-bench.apk"
        self.conn.push(Path(self.apk), remote_apk, timeout=300)
        out, rc = self.conn.shell(sh("pm", "install", "-r", "-g", remote_apk) + " 2>&1", timeout=300)
        if rc != 0 or "Success" not in out:
            raise PlaidError(f"pm install of {Path(self.apk).name} failed: {bm.error_line(out)}")
        self._mkdir(self.run_dir)
        self._prepared = True

    def run(self, models, on_result) -> None:
        from device_bench.schema import PLAN_SCHEMA, validate_plan

        self.prepare()
        self._runs += 1
        folder = f"{self.run_dir}/r{self._runs:03d}"
        self.conn.check(sh("mkdir", "-p", folder), what=f"creating {folder}")
        entries = []
        for key, local in models:
            remote = self._push_model(key, local, self.run_dir)
            entries.append({"key": key, "path": "../" + remote.rsplit("/", 1)[1]})
        settings = {k: self.settings[k] for k in SCHEMA_KEYS if k in self.settings}
        plan = validate_plan({"schema": PLAN_SCHEMA, "runtime": "tflite", "settings": settings, "models": entries})
        plan_path, out_path = f"{folder}/plan.json", f"{folder}/results.json"
        with scratch_dir("plaid-apk-") as tmp:
            local_plan = Path(tmp) / "plan.json"
            local_plan.write_text(json.dumps(plan, indent=1))
            self.conn.push(local_plan, plan_path)
            start = sh("am", "start", "-S", "-W", "-n", ACTIVITY, "--es", "plan", plan_path, "--es", "out", out_path)
            out, rc = self.conn.shell(start + " 2>&1", timeout=60)
            if rc != 0 or "Error" in out:
                raise PlaidError(f"am start of the benchmark app failed: {bm.error_line(out)}")
            try:
                self._follow(models, out_path, Path(tmp), on_result)
            except BaseException:
                self._stop()
                raise

    def _follow(self, models, out_path: str, tmp: Path, on_result) -> None:
        """Poll ``<out>.events.jsonl``; report each new result; finish with ``<out>``."""
        from device_bench.schema import SchemaError, validate_result, validate_results

        wanted = {k for k, _ in models}
        reported: set[str] = set()
        last_progress = time.monotonic()
        while True:
            text, _ = self.conn.shell(sh("cat", out_path + ".events.jsonl") + " 2>/dev/null", timeout=30)
            for line in text.splitlines():
                line = line.strip()
                if not line.startswith("{"):
                    continue
                try:
                    event = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line the app is still writing
                if event.get("event") == "result" and event.get("key") in wanted - reported:
                    row = {k: v for k, v in event.items() if k != "event"}
                    try:
                        validate_result(row)
                    except SchemaError as exc:
                        row = {"key": event["key"], "status": "error", "error": f"app result: {exc}"}
                    reported.add(row["key"])
                    last_progress = time.monotonic()
                    on_result(row)
            if self.conn.exists(out_path):
                local = tmp / "results.json"
                self.conn.pull(out_path, local, timeout=60)
                try:
                    doc = json.loads(local.read_text())
                except (OSError, json.JSONDecodeError) as exc:
                    raise PlaidError(f"the benchmark app wrote unreadable results: {exc}") from None
                if isinstance(doc, dict) and doc.get("error"):
                    raise PlaidError(f"the benchmark app stopped: {str(doc['error'])[:300]}")
                try:
                    validate_results(doc)
                except SchemaError as exc:
                    raise PlaidError(f"the benchmark app's results break the schema: {exc}") from None
                for row in doc["results"]:
                    if row["key"] in wanted - reported:
                        reported.add(row["key"])
                        on_result({**row, "runtime": doc["runtime"].get("version", "")})
                missing = wanted - reported
                if missing:
                    raise PlaidError(f"the benchmark app finished without {len(missing)} result(s), "
                                     f"first {sorted(missing)[0]}")
                return
            if time.monotonic() - last_progress > self.unit_timeout_s:
                raise PlaidError(f"the benchmark app made no progress for {self.unit_timeout_s:g} s "
                                 f"(unit_timeout_s); see `adb logcat -s plaid-bench`")
            time.sleep(self.poll_s)

    def _stop(self) -> None:
        try:
            self.conn.shell(sh("am", "force-stop", APP), timeout=30)
        except PlaidError:
            pass

    def cleanup(self) -> None:
        if self._prepared:
            self._stop()
        super().cleanup()
