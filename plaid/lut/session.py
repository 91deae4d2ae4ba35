"""Where a benchmark plan runs. A *session* is one target held open over its transport for
the length of a command: it names the device (fingerprint and runtime version, which make up the
latency table's identity) and times models there, reporting each result as an event the
moment it exists so the caller can commit it.

Sessions are registered by the target's ``transport`` (configs/targets/*.toml):
``local`` runs device_bench in a subprocess on this machine; ``adb`` (plaid.adb.session)
drives a phone. A package that drives a transport registers its session when imported and
imports this module, never the other way round: plaid.targets imports it when a target
that uses the transport is loaded. A command opens the session it needs with
``open_session(target, options)``; library code finds it with ``session_for(target)``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import contextlib
import contextvars
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

from plaid.errors import DeviceLost, PlaidError, UsageError  # noqa: F401 - DeviceLost: its old home
from plaid.progress import Progress
from plaid.procs import Group, scratch_dir
from plaid.registry import Registry

Event = dict


class Feed:
    """Models that become ready while earlier ones are timed (a table build converting the
    rest meanwhile): iterating gives lists of (key, model path), each as soon as it is
    ready; ``len()`` is how many there will be in all. A session's ``measure`` takes one
    in place of a list and times each batch as it comes."""

    def __init__(self, batches, total: int) -> None:
        self._batches, self.total = batches, total

    def __len__(self) -> int:
        return self.total

    def __iter__(self):
        return iter(self._batches)


def batches_of(models) -> Iterator[list[tuple[str, Path]]]:
    """The batches of a Feed, or a plain list as one batch."""
    if isinstance(models, Feed):
        for batch in models:
            if batch:
                yield list(batch)
    elif models:
        yield list(models)


class Session(ABC):
    """One target, open for a command. Subclasses implement identity and measure."""

    transport = ""
    runtimes: tuple[str, ...] = ("tflite",)  # the target runtimes it can time models with

    @abstractmethod
    def identity(self) -> tuple[str, dict]:
        """(runtime version, device fingerprint) for the latency table's meta."""

    def describe(self) -> dict:
        """What to show people about the device (empty for this host)."""
        return {}

    def timing_cpus(self) -> set[int]:
        """This machine's CPUs the timing runs on (what converts meanwhile must keep off
        them); empty when the models are timed elsewhere (a phone, a board)."""
        return set()

    @abstractmethod
    def measure(self, models: list[tuple[str, Path]], on_event: Callable[[Event], None],
                progress: Progress) -> None:
        """Time ``models`` [(key, tflite path)] (or a :class:`Feed` of them, batch by batch);
        ``on_event`` gets device_bench-style events:
        ``{"event": "result", "key", "status", "median_ms", ..., "info": {...}}`` and
        ``{"event": "warning", "message": "..."}``."""

    def close(self) -> None:
        pass


SESSIONS: Registry[Callable[..., Session]] = Registry("transport")
_ACTIVE: contextvars.ContextVar[dict[str, Session]] = contextvars.ContextVar("plaid_sessions", default={})


@contextlib.contextmanager
def open_session(target, options: dict[str, Any] | None = None) -> Iterator[Session]:
    """Open the session for ``target`` (closed on exit) and make it the one that
    ``session_for(target)`` returns inside the block."""
    if target.transport not in SESSIONS:
        raise UsageError(f"target {target.name!r} is measured over {target.transport}, which this plaid version "
                         f"cannot drive yet (transports: {', '.join(SESSIONS.names())})")
    session = SESSIONS.get(target.transport)(target, **(options or {}))
    token = _ACTIVE.set({**_ACTIVE.get(), target.name: session})
    try:
        yield session
    finally:
        _ACTIVE.reset(token)
        session.close()


def has_session(target) -> bool:
    """Whether a session for ``target`` is open (or needs none: local targets)."""
    return target.transport == "local" or target.name in _ACTIVE.get()


def session_for(target) -> Session:
    """The open session for ``target``; a local target gets one on demand."""
    active = _ACTIVE.get().get(target.name)
    if active is not None:
        return active
    if target.transport == "local":
        target.require_runtime(LocalSession.runtimes)
        return LocalSession(target)
    if target.transport in SESSIONS:
        raise UsageError(needs_device_message(target))
    raise UsageError(f"target {target.name!r} is measured over {target.transport}, which this plaid version "
                     f"cannot drive yet (transports: {', '.join(SESSIONS.names())})")


def needs_device_message(target) -> str:
    if target.transport == "adb":
        return (f"target {target.name!r} is measured on a phone over ADB: pass --adb-serial SERIAL "
                "(or HOST:PORT); `plaid devices` lists what is attached")
    how = getattr(SESSIONS.get(target.transport), "needs", "") if target.transport in SESSIONS else ""
    return f"target {target.name!r} needs a device connection ({target.transport}{': ' + how if how else ''})"


# --------------------------------------------------------------------------- local


@SESSIONS.register("local")
class LocalSession(Session):
    """device_bench in a subprocess on this host."""

    transport = "local"
    runtimes = ("tflite", "onnxruntime")

    def __init__(self, target) -> None:
        self.target = target

    def identity(self) -> tuple[str, dict]:
        from device_bench.runner import fingerprint, runtime_info

        return runtime_info(self.target.runtime)["version"], fingerprint()

    def device_settings(self) -> dict[str, Any]:
        """The plan settings for device_bench (plaid.plan/1), CPUs limited to this process's."""
        s = self.target.measure.plan(in_schema=True)
        if s.get("cpus"):
            avail = os.sched_getaffinity(0)
            s["cpus"] = [c for c in s["cpus"] if c in avail] or None
        return s

    def timing_cpus(self) -> set[int]:
        return set(self.device_settings().get("cpus") or os.sched_getaffinity(0))

    def measure(self, models, on_event, progress) -> None:
        for batch in batches_of(models):
            run_local_plan(batch, self.device_settings(), on_event, self.target.runtime)


def run_local_plan(models: list[tuple[str, Path]], settings: dict,
                   on_event: Callable[[dict], None], runtime: str = "tflite") -> None:
    """Time ``models`` [(key, model file)] with device_bench on this host and ``runtime``."""
    from device_bench.schema import PLAN_SCHEMA, validate_plan

    plan = validate_plan({
        "schema": PLAN_SCHEMA,
        "runtime": runtime,
        "settings": settings,
        "models": [{"key": k, "path": str(p)} for k, p in models],
    })
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")])),
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    with scratch_dir("plaid-plan-") as tmp:
        plan_path = Path(tmp) / "plan.json"
        plan_path.write_text(json.dumps(plan))
        err_path = Path(tmp) / "stderr.txt"
        with open(err_path, "w") as err, Group() as group:  # device_bench dies with plaid
            proc = group.popen([sys.executable, "-m", "device_bench", str(plan_path)], stdout=subprocess.PIPE,
                               stderr=err, text=True, env=env)
            assert proc.stdout is not None
            for line in proc.stdout:
                line = line.strip()
                if line.startswith("{"):
                    on_event(json.loads(line))
            rc = proc.wait()
        if rc not in (0, 1):
            tail = err_path.read_text().strip().splitlines()[-1:] or ["(no output)"]
            raise PlaidError(f"device_bench exited with {rc}: {tail[0][:300]}")
