"""Building a latency table for a target: enumerate units, convert each once (cached),
time them on the target and commit each result the moment it arrives (so an interrupted
build resumes where it stopped). Where the timing does not run on the CPUs that convert (a
device elsewhere, or a host with CPUs to spare: ``overlap_cpus``), units are timed in
batches while the rest still convert (``ConvertingFeed``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from plaid.errors import PlaidError, UsageError
from plaid.lut.latency import Latency
from plaid.lut.store import LatencyTable, TableMeta
from plaid.lut.session import DeviceLost
from plaid.lut.units import UNIT_VERSION, Unit, space_units
from plaid.progress import Progress, no_progress

# the model file each target runtime is timed from: made here by onnx2tf (tflite) or
# exported by torch and read as is (onnxruntime; tensorrt builds its engine on the device)
CONVERTERS = {"tflite": "tflite", "onnxruntime": "onnx", "tensorrt": "onnx"}


def lut_dir() -> Path:
    from plaid.convert import cache_dir

    return Path(os.environ.get("PLAID_LUT_DIR") or cache_dir() / "luts")


def target_meta(target, space_name: str = "") -> TableMeta:
    """The table identity for a target: the device and runtime from its open session
    (plaid.lut.session), the protocol settings that define a measurement (plaid.protocol)."""
    from plaid.lut.session import session_for

    runtime_version, fingerprint = session_for(target).identity()
    settings = target.measure.identity()
    settings["units"] = UNIT_VERSION
    settings["converter"] = _converter_version(target.runtime)
    return TableMeta(target=target.name, runtime=target.runtime, runtime_version=runtime_version,
                     settings=settings, fingerprint=fingerprint, space=space_name)


def _converter_version(runtime: str = "tflite") -> str:
    from importlib.metadata import version

    if CONVERTERS.get(runtime, "tflite") == "tflite":
        return f"onnx2tf {version('onnx2tf')}"
    from plaid.convert import OPSET

    return f"torch.onnx {version('torch')} opset {OPSET}"


def open_table(target, space_name: str, path: Path | None, create: bool) -> LatencyTable:
    from plaid.lut.session import has_session

    if path is None and target.transport != "local" and not has_session(target):
        # no device connected (plaid search / lut show): use the table measured earlier
        return LatencyTable.open(saved_table(target))
    meta = target_meta(target, space_name)
    path = path or lut_dir() / f"{meta.name()}.sqlite"
    return LatencyTable.open(path, meta, create=create)


def saved_table(target) -> Path:
    """The one table measured earlier for ``target`` in lut_dir(); a device target's table
    name depends on the device's fingerprint, so it is found by its meta."""

    found = []
    for path in sorted(lut_dir().glob(f"{target.name}-*.sqlite")):
        try:
            with LatencyTable.open(path) as table:
                if table.meta.target == target.name:
                    found.append(path)
        except PlaidError:
            continue  # not a table of ours, or damaged: not a candidate
    if len(found) > 1:  # one per runtime (`plaid bench --runtime`): the target's own first
        same = [p for p in found if _meta_runtime(p) == target.runtime]
        found = same or found
    if len(found) > 1:  # one per protocol (`--threads`, `--precision`): the preset's own first
        same = [p for p in found if _meta_protocol(p) == target.measure.identity()]
        found = same or found
    if len(found) == 1:
        return found[0]
    if not found:
        how = (f"`plaid bench --target {target.name} --adb-serial SERIAL` (`plaid devices` lists what is attached)"
               if target.transport == "adb" else f"`plaid bench --target {target.name}` on a connected device")
        raise UsageError(f"no latency table for {target.name!r} in {lut_dir()} yet: measure one with {how}")
    raise UsageError(f"{len(found)} latency tables for {target.name!r} (one per device): pick one with "
                     f"--table, e.g. --table {found[0]}")


def _meta_runtime(path: Path) -> str:
    with LatencyTable.open(path) as table:
        return table.meta.runtime


def _meta_protocol(path: Path) -> dict:
    """The protocol settings a table was measured with (as MeasureProtocol.identity())."""
    from plaid.protocol import IDENTITY, MeasureProtocol

    keys = set(MeasureProtocol.keys(IDENTITY))
    with LatencyTable.open(path) as table:
        return {k: v for k, v in sorted(table.meta.settings.items()) if k in keys}


@dataclass
class BuildReport:
    table: Path
    units: int
    already: int
    measured: int
    failed: list[tuple[str, str]]
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"table": str(self.table), "units": self.units, "already_measured": self.already,
                "measured_now": self.measured, "failed": [{"key": k, "error": e} for k, e in self.failed],
                "warnings": self.warnings}


def model_files(jobs, runtime: str, progress: Progress = no_progress, on_ready=None, cancel=None) -> list[Path]:
    """``jobs`` [(label, build callable, input shape)] -> the model file ``runtime`` reads,
    in order: fp32 TFLite for tflite (cached: converted once ever; in parallel), ONNX for
    the runtimes that read ONNX (onnxruntime; tensorrt builds its engine on the device).
    ``on_ready(index, path)`` as each file exists; ``cancel`` (an Event) stops early."""
    from plaid.convert import onnx_many, tflite_many

    check_runtime(runtime)
    if CONVERTERS[runtime] != "tflite":
        return onnx_many(jobs, progress=lambda d, t, label: progress("export", d, t, label), on_ready=on_ready,
                         cancel=cancel)
    return tflite_many(jobs, progress=lambda d, t, label: progress("convert", d, t, label),
                       export_progress=lambda d, t, label: progress("export", d, t, label), on_ready=on_ready,
                       cancel=cancel)


def check_runtime(runtime: str) -> None:
    if runtime not in CONVERTERS:
        raise UsageError(f"plaid cannot make models for runtime {runtime!r} (runtimes: {', '.join(CONVERTERS)})")


def convert_units(units: list[Unit], progress: Progress = no_progress, runtime: str = "tflite") -> dict[str, Path]:
    """The model file per unit key that ``runtime`` reads (model_files)."""
    paths = model_files([(u.key, u.build, u.input_shapes) for u in units], runtime, progress)
    return {u.key: p for u, p in zip(units, paths)}


def measure_events(target, models, on_event: Callable[[dict], None], progress: Progress = no_progress) -> None:
    """Time models [(key, path)] (or a Feed of them) on the target's open session;
    ``on_event`` gets every event (results, re-measurements, warnings). Progress counts
    distinct models with a result."""
    from plaid.lut.session import Feed, session_for

    seen: set[str] = set()

    def handle(event: dict) -> None:
        on_event(event)
        if event.get("event") == "result" and event["key"] not in seen:
            seen.add(event["key"])
            progress("measure", len(seen), len(models), event["key"])

    progress("measure", 0, len(models), "" if isinstance(models, Feed) or not models else models[0][0])
    session_for(target).measure(models, handle, progress)


def measure_models(target, models: list[tuple[str, Path]], on_result: Callable[[str, Latency | None, str], None],
                   progress: Progress = no_progress, on_info: Callable[[str, dict], None] | None = None) -> None:
    """Time models on the target; ``on_result(key, latency or None, error)`` per result, and
    first ``on_info(key, info)`` with what the session recorded besides the times (the
    runtime's per-layer profile, temperatures) when given."""

    def handle(event: dict) -> None:
        if event.get("event") == "result":
            lat, err = _latency(event)
            if on_info is not None and lat is not None:
                on_info(event["key"], event.get("info", {}))
            on_result(event["key"], lat, err)
        elif event.get("event") in ("warning", "notice"):
            _say(event)

    measure_events(target, models, handle, progress)


def _latency(event: dict) -> tuple[Latency | None, str]:
    if event["status"] == "ok":
        return Latency(event["median_ms"], event["p90_ms"], event["std_ms"], event["runs"]), ""
    return None, event["error"]


def _say(event: dict) -> None:
    """Warnings and notices from a session (cool-down waits, sentinel drift) on stderr."""
    import sys

    prefix = "plaid: warning: " if event["event"] == "warning" else "plaid: "
    print(prefix + event["message"], file=sys.stderr)


def build_table(target, space, resolution: tuple[int, int], table: LatencyTable,
                progress: Progress = no_progress, units: list[Unit] | None = None) -> BuildReport:
    """Measure what ``table`` lacks of ``units`` (default: every unit of the space)."""
    units = space_units(space, resolution) if units is None else units
    todo = [u for u in units if u.key not in table]
    report = BuildReport(table.path, len(units), len(units) - len(todo), 0, [])
    if not todo:
        return report

    def on_event(event: dict) -> None:
        if event.get("event") in ("warning", "notice"):
            if event["event"] == "warning":
                report.warnings.append(event["message"])
            _say(event)
            return
        if event.get("event") != "result":
            return
        key = event["key"]
        lat, error = _latency(event)
        if lat is None:
            report.failed.append((key, error))
            return
        table.put(key, lat, {"resolution": list(resolution), "space": space.name, **event.get("info", {})})
        if key not in committed:
            committed.add(key)
            report.measured += 1

    committed: set[str] = set()
    cpus = overlap_cpus(target, len(todo))
    try:
        if cpus is None:
            paths = convert_units(todo, progress, target.runtime)
            measure_events(target, [(u.key, paths[u.key]) for u in todo], on_event, progress)
        else:
            with ConvertingFeed(todo, target.runtime, progress, cpus) as feed:
                measure_events(target, feed, on_event, progress)
    except DeviceLost as exc:
        raise DeviceLost(f"{exc} after {report.measured} of {len(todo)} units; {len(table)} of {len(units)} "
                         "are saved, rerun the same command to resume") from None
    if report.failed:
        key, err = report.failed[0]
        raise PlaidError(f"{len(report.failed)} unit(s) failed to run, first {key}: {err}")
    return report


# --------------------------------------------------------------------------- timing while converting

MIN_FEED_BATCH = 8  # units per timing batch while the rest convert (a batch has a start-up cost)


def overlap_cpus(target, todo: int) -> set[int] | None:
    """Where conversions may run while units are timed: None = not at the same time
    (convert all, then time). A device elsewhere (phone, board): anywhere here (an empty
    set: no pinning). This host: only on CPUs the timing does not use, and only when at
    least two are left (on fewer the two would slow and disturb each other).
    ``PLAID_OVERLAP=0`` turns it off."""
    from plaid.lut.session import session_for

    if todo < 2 or os.environ.get("PLAID_OVERLAP", "1") == "0":
        return None
    timing = session_for(target).timing_cpus()
    if not timing:
        return set()
    free = set(os.sched_getaffinity(0)) - timing
    return free if len(free) >= 2 else None


class ConvertingFeed:
    """Converts ``units`` in a thread (its processes kept on ``cpus``, if any) and hands
    them out in batches as their files exist (a :class:`plaid.lut.session.Feed`). A
    conversion error ends the feed after what is ready was handed out, and is raised then;
    leaving the block early (an error while timing, Ctrl-C) stops the conversions."""

    def __init__(self, units: list[Unit], runtime: str, progress: Progress, cpus: set[int]) -> None:
        import queue
        import threading

        check_runtime(runtime)
        self.units, self.runtime, self.progress, self.cpus = units, runtime, progress, cpus
        self._ready: queue.Queue = queue.Queue()
        self._cancel = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._convert, name="plaid-convert", daemon=True)

    def __enter__(self):
        from plaid.lut.session import Feed

        self._thread.start()
        return Feed(self._batches(), len(self.units))

    def __exit__(self, exc_type, *exc) -> None:
        self._cancel.set()  # after an error: the running conversions end, no new one starts
        self._thread.join(timeout=None if exc_type is None else 10)

    def _convert(self) -> None:
        from plaid.convert import Cancelled

        try:
            if self.cpus:
                os.sched_setaffinity(0, self.cpus)  # this thread only; the processes it starts inherit it
            model_files([(u.key, u.build, u.input_shapes) for u in self.units], self.runtime, self.progress,
                        on_ready=lambda i, path: self._ready.put((i, path)), cancel=self._cancel)
        except Cancelled:
            pass
        except BaseException as exc:  # noqa: BLE001 - handed to the timing thread, raised there
            self._error = exc
        finally:
            self._ready.put(None)

    def _batches(self):
        import queue

        pending: list[tuple[str, Path]] = []
        finished = False
        while not finished or pending:
            if not finished:
                item = self._ready.get()
                while True:
                    if item is None:
                        finished = True
                        break
                    index, path = item
                    pending.append((self.units[index].key, path))
                    try:
                        item = self._ready.get_nowait()
                    except queue.Empty:
                        break
            if pending and (finished or len(pending) >= MIN_FEED_BATCH):
                batch, pending = pending, []
                yield batch
        if self._error is not None:
            raise self._error
