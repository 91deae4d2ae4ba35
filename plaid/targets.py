"""Targets as typed config: configs/targets/<name>.toml, CLI flags override."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from plaid.config import config_dir, load_toml, require
from plaid.errors import UsageError
from plaid.protocol import MeasureProtocol


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    runtime: str  # tflite | onnxruntime | tensorrt (device_bench.runtimes times the first two)
    transport: str  # local | adb | ssh
    space: str  # default space
    resolutions: dict[str, tuple[int, int]]
    measure: MeasureProtocol = field(default_factory=MeasureProtocol)  # the [protocol] table, typed
    export_formats: tuple[str, ...] = ()  # `plaid export` defaults
    python: str = ""  # ssh targets: the board's interpreter for device_bench (--remote-python overrides)

    def __post_init__(self) -> None:
        precision = self.measure.precision
        if precision not in (None, "fp32") and self.runtime != "tensorrt":
            raise UsageError(f"target {self.name!r}: precision {precision!r} is for TensorRT engines; the {self.runtime} "
                             "runtime times the model file as converted (fp32)")

    @property
    def protocol(self) -> dict[str, Any]:
        """The ``[protocol]`` table as given (JSON-ready); typed values: ``measure``."""
        return self.measure.table()

    def resolution(self, space: str) -> tuple[int, int]:
        if space not in self.resolutions:
            raise UsageError(f"target {self.name!r} has no resolution for space {space!r}; pass --resolution")
        return self.resolutions[space]

    def with_protocol(self, **overrides: Any) -> "Target":
        return replace(self, measure=self.measure.with_settings(f"target {self.name!r}", **overrides))

    def with_threads(self, threads: int | None) -> "Target":
        """``threads`` interpreter threads (``--threads``; None = as the preset says). On this
        host a pinned CPU list shorter than that grows by the next CPUs this process may use,
        so that N threads get N cores rather than sharing one (a device's list names the
        device's cores and is kept as given)."""
        if threads is None:
            return self
        overrides: dict[str, Any] = {"threads": threads}
        cpus = list(self.measure.cpus or [])
        if self.transport == "local" and cpus and len(cpus) < threads:
            import os

            spare = [c for c in sorted(os.sched_getaffinity(0)) if c not in cpus]
            overrides["cpus"] = cpus + spare[:threads - len(cpus)]
        return self.with_protocol(**overrides)

    def with_precision(self, precision: str | None) -> "Target":
        """The same target with TensorRT engines of another precision (`plaid bench
        --precision`; None = as the preset says): a table of its own."""
        return self if precision is None else self.with_protocol(precision=precision)

    def with_runtime(self, runtime: str) -> "Target":
        """The same target timed by another runtime (`plaid bench --runtime`): its own table."""
        return replace(self, runtime=runtime)

    def require_runtime(self, runtimes: tuple[str, ...]) -> None:
        """UsageError unless the runtime is one of ``runtimes`` (what the transport's session
        can time: each session's constructor asks once the device flags are known)."""
        if self.runtime not in runtimes:
            raise UsageError(f"target {self.name!r}: the {self.transport} transport cannot time {self.runtime} "
                             f"models (it has: {', '.join(runtimes)})")

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "runtime": self.runtime,
                "transport": self.transport, "space": self.space,
                "resolutions": {k: list(v) for k, v in self.resolutions.items()}, "protocol": dict(self.protocol)}


def target_names() -> list[str]:
    return sorted(p.stem for p in (config_dir() / "targets").glob("*.toml"))


def load_target(name: str) -> Target:
    if name not in target_names():
        raise UsageError(f"unknown target {name!r} (known: {', '.join(target_names())})")
    cfg = load_toml("targets", name)
    where = f"configs/targets/{name}.toml"
    res = require(cfg, "resolutions", dict, where)
    proto = MeasureProtocol.from_table(require(cfg, "protocol", dict, where), f"{where} [protocol]")
    target = Target(
        name=require(cfg, "name", str, where),
        description=cfg.get("description", ""),
        runtime=require(cfg, "runtime", str, where),
        transport=require(cfg, "transport", str, where),
        space=require(cfg, "space", str, where),
        resolutions={k: (int(v[0]), int(v[1])) for k, v in res.items()},
        measure=proto,
        export_formats=tuple(cfg.get("export", {}).get("formats", ())),
        python=require(cfg, "python", str, where) if "python" in cfg else "",
    )
    load_transport(target.transport)
    return target


def load_transport(transport: str) -> None:
    """Make the session of ``transport`` known to plaid.lut.session (its SESSIONS): the
    package that drives a transport registers it when imported, and is imported here, only
    for the targets that use it (plaid.lut never imports the packages built on it)."""
    if transport == "adb":
        import plaid.adb.session  # noqa: F401 - registers the "adb" session
    elif transport == "ssh":
        from plaid.devices.board import BoardSession
        from plaid.lut.session import SESSIONS

        if "ssh" not in SESSIONS:  # plaid.devices imports no plaid.lut: its session is registered here
            SESSIONS.add("ssh", BoardSession)
