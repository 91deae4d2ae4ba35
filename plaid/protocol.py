"""The measurement protocol of a target: its ``[protocol]`` table (configs/targets/*.toml)
as one typed, frozen record.

Each setting is declared once, with the roles it plays:

- ``PLAN``: it goes into the benchmark plan that the runner on the device reads
  (device_bench, the plaid app, TFLite's benchmark_model). ``in_schema=False`` marks a
  plan setting that the shared plan schema (``plaid.plan/1``, device_bench/schema.py)
  does not carry: only benchmark_model reads it.
- ``HOST``: it steers the host side of a build (time-outs, cool-down waits, the sentinel)
  and never reaches the device.
- ``IDENTITY``: it is part of the latency table's identity; changing it starts another
  table, changing any other setting does not.

Only the keys the table sets go into the plan and the identity (so a table keeps its
fingerprint while the defaults here may be read as typed values); values keep the type the
TOML gave them (``2`` stays an int, ``2.0`` a float), since the identity is compared as JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from plaid.errors import UsageError

PLAN, HOST, IDENTITY = "plan", "host", "identity"
ROLES = (PLAN, HOST, IDENTITY)
DELEGATES = ("xnnpack", "none", "gpu")
PRECISIONS = ("fp32", "fp16", "int8")  # device_bench/tensorrt.py's (a test keeps the two equal)


def _setting(default: Any, kind: str, *roles: str, minimum: float | None = 0, above: bool = False,
             in_schema: bool = True, doc: str = "") -> Any:
    """A protocol setting: ``kind`` is int | number | delegate | precision | cpus | number? (None allowed);
    numbers must be ``>= minimum`` (``> minimum`` with ``above``)."""
    assert roles and set(roles) <= set(ROLES), roles
    return field(default=default, metadata={"roles": frozenset(roles), "kind": kind, "minimum": minimum,
                                            "above": above, "in_schema": in_schema, "doc": doc})


@dataclass(frozen=True)
class MeasureProtocol:
    # what the runner on the device does (plaid.plan/1 settings; defaults = device_bench's)
    threads: int = _setting(1, "int", PLAN, IDENTITY, minimum=1, doc="interpreter threads")
    cpus: tuple[int, ...] | None = _setting(None, "cpus", PLAN, IDENTITY,
                                            doc="CPU affinity of the timing process; [] = leave as is")
    warmup_runs: int = _setting(5, "int", PLAN, IDENTITY, doc="untimed runs first")
    warmup_seconds: float = _setting(0.0, "number", PLAN, IDENTITY, in_schema=False,
                                     doc="benchmark_model --warmup_min_secs: warm-up lasts at least this long")
    min_runs: int = _setting(20, "int", PLAN, IDENTITY, minimum=1, doc="timed runs: at least this many ...")
    max_runs: int = _setting(1000, "int", PLAN, IDENTITY, minimum=1, doc="... and at most this many")
    min_seconds: float = _setting(1.0, "number", PLAN, IDENTITY, doc="timed runs last at least this long ...")
    max_seconds: float = _setting(20.0, "number", PLAN, IDENTITY, doc="... and stop after this long")
    delegate: str = _setting("xnnpack", "delegate", PLAN, IDENTITY, doc="xnnpack | none | gpu")
    precision: str | None = _setting(None, "precision", PLAN, IDENTITY,
                                     doc="TensorRT engines: fp32 | fp16 | int8 (absent: fp16); other runtimes time "
                                         "the file as converted (fp32 only)")
    # how the host runs a build (plaid.adb.guard, plaid.adb.runners): not the table's identity
    unit_timeout_s: float = _setting(120.0, "number", HOST, above=True,
                                     doc="one unit's run longer than this is a hang")
    cooldown_above_c: float | None = _setting(None, "number?", HOST,
                                              doc="wait before a unit while the hottest CPU zone is above this")
    cooldown_target_c: float = _setting(40.0, "number", HOST, doc="... until it is at or below this ...")
    cooldown_max_wait_s: float = _setting(300.0, "number", HOST, doc="... but at most this long")
    cooldown_poll_s: float = _setting(5.0, "number", HOST, doc="how often the temperature is read while waiting")
    sentinel_every: int = _setting(0, "count", HOST, doc="re-measure the sentinel after every N units; 0 = off")
    sentinel_tolerance: float = _setting(0.10, "number", HOST, doc="relative drift of the sentinel that counts")
    # the keys the [protocol] table set, in its order (what goes into plan and identity)
    given: tuple[str, ...] = field(default=(), repr=False)

    # -- the key sets, derived from the declarations above
    @classmethod
    def keys(cls, role: str, in_schema: bool | None = None) -> tuple[str, ...]:
        """The settings with ``role`` (PLAN, HOST, IDENTITY) in declaration order; with
        ``in_schema`` only those the shared plan schema does (True) or does not (False) carry."""
        if role not in ROLES:
            raise ValueError(f"unknown protocol role {role!r} (roles: {', '.join(ROLES)})")
        return tuple(f.name for f in _settings(cls) if role in f.metadata["roles"]
                     and (in_schema is None or f.metadata["in_schema"] == in_schema))

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in _settings(cls))

    # -- reading
    @classmethod
    def from_table(cls, table: Mapping[str, Any], where: str = "[protocol]") -> MeasureProtocol:
        """The record of a ``[protocol]`` table; a key it does not know or a value of the
        wrong type or range is one line naming ``where`` and the key."""
        if not isinstance(table, Mapping):
            raise UsageError(f"{where}: [protocol] must be a table, got {table!r}")
        declared = {f.name: f for f in _settings(cls)}
        unknown = [k for k in table if k not in declared]
        if unknown:
            raise UsageError(f"{where}: unknown protocol key {unknown[0]!r} (known: {', '.join(declared)})")
        values = {k: _check(declared[k], v, where) for k, v in table.items()}
        proto = cls(**values, given=tuple(table))
        for low, high in (("min_runs", "max_runs"), ("min_seconds", "max_seconds")):
            if low in table and high in table and values[high] < values[low]:
                raise UsageError(f"{where}: {high} ({values[high]}) must not be below {low} ({values[low]})")
        if proto.cooldown_above_c is not None and proto.cooldown_target_c > proto.cooldown_above_c:
            raise UsageError(f"{where}: cooldown_target_c ({proto.cooldown_target_c}) must not exceed "
                             f"cooldown_above_c ({proto.cooldown_above_c})")
        return proto

    def with_settings(self, where: str = "overrides", **overrides: Any) -> MeasureProtocol:
        """A copy with ``overrides`` set (None = keep), checked like the table."""
        given = {k: v for k, v in overrides.items() if v is not None}
        return type(self).from_table({**self.table(), **given}, where)

    # -- views
    def table(self) -> dict[str, Any]:
        """The keys the table set, as read (``cpus = []`` reads as None), JSON-ready."""
        return {k: self._value(k) for k in self.given}

    def plan(self, in_schema: bool | None = None) -> dict[str, Any]:
        """The plan settings the table set (``in_schema=True``: those of plaid.plan/1 only)."""
        wanted = set(self.keys(PLAN, True if in_schema else None))
        return {k: v for k, v in self.table().items() if k in wanted}

    def identity(self) -> dict[str, Any]:
        """The settings that make up the latency table's identity, sorted by key."""
        wanted = set(self.keys(IDENTITY))
        return {k: v for k, v in sorted(self.table().items()) if k in wanted}

    def _value(self, key: str) -> Any:
        value = getattr(self, key)
        return list(value) if isinstance(value, tuple) else value


def _settings(cls) -> list:
    return [f for f in fields(cls) if "roles" in f.metadata]


def _check(f, value: Any, where: str) -> Any:
    """``value`` for setting ``f`` if it is of the right kind and range (kept as given, but
    cpus as a tuple, [] as None, and a whole float count as an int)."""
    kind, name, low = f.metadata["kind"], f.name, f.metadata["minimum"]
    if kind == "delegate":
        if value not in DELEGATES:
            raise UsageError(f"{where}: {name} must be one of {', '.join(DELEGATES)}, got {value!r}")
        return value
    if kind == "precision":
        if value not in PRECISIONS:
            raise UsageError(f"{where}: {name} must be one of {', '.join(PRECISIONS)}, got {value!r}")
        return value
    if kind == "cpus":
        if value is None or value == []:
            return None
        if not isinstance(value, (list, tuple)) or not all(
                isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in value):
            raise UsageError(f"{where}: {name} must be a list of CPU numbers (>= 0), got {value!r}")
        return tuple(value)
    if kind == "number?" and value is None:
        return None
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    whole = kind != "int" or isinstance(value, int)
    bound = ">" if f.metadata["above"] else ">="
    if not number or not whole or (value <= low if f.metadata["above"] else value < low):
        what = "an integer" if kind == "int" else "a number"
        raise UsageError(f"{where}: {name} must be {what} {bound} {low:g}, got {value!r}")
    return int(value) if kind == "count" else value
