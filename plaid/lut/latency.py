"""A measured latency that carries its spread (median, p90, std, number of runs)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from plaid.errors import PlaidError

_FIELDS = ("median_ms", "p90_ms", "std_ms", "runs")


@dataclass(frozen=True)
class Latency:
    """One latency measurement, in milliseconds.

    Ordering (`<`, `<=`, `>`, `>=`) compares medians only. Equality (`==`) is the dataclass
    one: all fields equal. So two latencies with the same median are `<=` each other in
    both directions without being `==`.
    """

    median_ms: float
    p90_ms: float
    std_ms: float
    runs: int

    @property
    def cv(self) -> float:
        """Coefficient of variation, std / median (0 when the median is 0)."""
        return self.std_ms / self.median_ms if self.median_ms else 0.0

    def __add__(self, other: object) -> Latency:
        """Sum of two independent latencies: medians and p90s add, stds in quadrature."""
        if not isinstance(other, Latency):
            return NotImplemented
        return Latency(
            median_ms=self.median_ms + other.median_ms,
            p90_ms=self.p90_ms + other.p90_ms,
            std_ms=math.hypot(self.std_ms, other.std_ms),
            runs=min(self.runs, other.runs),
        )

    def __radd__(self, other: object) -> Latency:
        """`0 + lat` is `lat`, so that `sum(latencies)` works."""
        if isinstance(other, (int, float)) and not isinstance(other, bool) and other == 0:
            return self
        return NotImplemented

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Latency):
            return NotImplemented
        return self.median_ms < other.median_ms

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Latency):
            return NotImplemented
        return self.median_ms <= other.median_ms

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Latency):
            return NotImplemented
        return self.median_ms > other.median_ms

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Latency):
            return NotImplemented
        return self.median_ms >= other.median_ms

    def scale(self, f: float) -> Latency:
        """Median, p90 and std multiplied by `f`; runs unchanged."""
        return Latency(self.median_ms * f, self.p90_ms * f, self.std_ms * f, self.runs)

    def to_json(self) -> dict[str, Any]:
        """JSON-able dict with median_ms, p90_ms, std_ms, cv and runs."""
        return {"median_ms": self.median_ms, "p90_ms": self.p90_ms, "std_ms": self.std_ms,
                "cv": self.cv, "runs": self.runs}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Latency:
        """Inverse of `to_json` (`cv` is derived, so it is ignored when present)."""
        missing = [k for k in _FIELDS if k not in d]
        if missing:
            raise PlaidError(f"latency record lacks {', '.join(missing)}: {d!r}")
        try:
            return cls(float(d["median_ms"]), float(d["p90_ms"]), float(d["std_ms"]),
                       int(d["runs"]))
        except (TypeError, ValueError) as e:
            raise PlaidError(f"latency record has a bad value ({e}): {d!r}") from None
