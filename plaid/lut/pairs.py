"""Where a sum of units misses what happens between them: adjacent pairs timed together.

A latency table times each unit alone, so a whole network's sum counts at every boundary
what two units alone pay and one network does not (an invocation, an input and an output
on their own), and misses what the runtime does across a boundary (a fused op, a delegate
partition that ends, a layout change). As nn-Meter's fusion-rule detection does for
operators, ``plaid bench --pairs`` also times every pair of adjacent units of the space
(the first's output is the second's input) as one model. The pair's residual

    r(a, b) = T(a then b) - T(a) - T(b)

is what their boundary adds to (negative: saves from) the sum. The predictor adds the
residual of every boundary of a network to its sum before the calibration's correction; a
boundary whose pair was not timed (a pair too rare for the sampling that found the
space's pairs) gets the median residual of its class of pairs (the two units' kinds,
whether the boundary changes resolution), else nothing. The model is the table's pair
entries and those per-class medians: `plaid lut show` says how many pairs and classes it
holds and what they correct on average.
"""

from __future__ import annotations

import random
import re
import statistics
from dataclasses import dataclass
from typing import Any

from plaid.lut.units import Unit, arch_units

PREFIX = "pair["
SAMPLES = 20_000  # at most this many sampled nets to find a space's pairs ...
QUIET = 2_000  # ... stopping after this many in a row bring no new pair


@dataclass(frozen=True, order=True)
class Pair:
    """Two adjacent units as one model: ``first``'s (NCHW) output feeds ``second``."""

    first: Unit
    second: Unit

    kind = "pair"

    @property
    def key(self) -> str:
        return f"{PREFIX}{self.first.key}|{self.second.key}]"

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return self.first.input_shape

    @property
    def input_shapes(self) -> tuple[tuple[int, int, int, int], ...]:
        return self.first.input_shapes

    @property
    def boundary(self) -> str:
        return boundary(self.first.key, self.second.key)

    def build(self):
        """The two builders' modules in sequence, in eval mode, with fixed weights; the
        output in the layout the second unit alone gives (NHWC unless it is a head)."""
        import torch
        from torch import nn

        torch.manual_seed(0)
        a, _ = self.first.inner()
        b, nhwc = self.second.inner()
        module: nn.Module = nn.Sequential(a, b)
        if nhwc:
            from plaid.models.layers import NHWCOut

            module = NHWCOut(module)
        return module.eval()


def chained(a: Unit, b: Unit) -> bool:
    """``b`` takes ``a``'s output as its (only) input."""
    return not a.cin2 and not b.cin2 and a.out_hw == (b.h, b.w) and a.cout == b.cin and a.kind != "head"


def arch_pairs(space, arch, resolution: tuple[int, int]) -> list[Pair]:
    """The adjacent pairs of ``arch``'s units, in order (boundaries that are not a plain
    chain, e.g. a decoder's second input, are left out)."""
    units = arch_units(space, arch, resolution)
    return [Pair(a, b) for a, b in zip(units, units[1:]) if chained(a, b)]


def space_pairs(space, resolution: tuple[int, int], seed: int = 0) -> list[Pair]:
    """Every adjacent pair the space's members have at ``resolution``, found by sampling
    members until ``QUIET`` samples in a row bring no new pair (at most ``SAMPLES``); a
    finite space small enough is enumerated instead. Sorted."""
    found: set[Pair] = set()
    members = _few_members(space)
    if members is not None:
        for arch in members:
            found.update(arch_pairs(space, arch, resolution))
        return sorted(found)
    rng, quiet = random.Random(seed), 0
    for _ in range(SAMPLES):
        before = len(found)
        found.update(arch_pairs(space, space.sample(rng), resolution))
        quiet = 0 if len(found) > before else quiet + 1
        if quiet >= QUIET:
            break
    return sorted(found)


def _few_members(space, limit: int = SAMPLES) -> list | None:
    """Every member of a finite space with at most ``limit`` of them, else None."""
    import itertools

    try:
        members = list(itertools.islice(space.enumerate(), limit + 1))
    except NotImplementedError:
        return None
    return members if len(members) <= limit else None


_OUT = re.compile(r"-out:(\d+)x(\d+)x")


def _kind(key: str) -> str:
    head = key.split("-in:", 1)[0]
    return head.rsplit(".", 1)[-1]


def boundary(first: str, second: str) -> str:
    """The class of the boundary between units ``first`` and ``second`` (keys): the two
    kinds, and ``/down`` where the resolution changes (a strided second unit, a head)."""
    a, b = _OUT.search(first), _OUT.search(second)
    same = a is not None and b is not None and a.groups() == b.groups()
    return f"{_kind(first)}>{_kind(second)}{'' if same else '/down'}"


class PairModel:
    """The residuals of a table's timed pairs, and their per-class medians."""

    def __init__(self, unit_ms: dict[str, float]) -> None:
        self.residual: dict[str, float] = {}
        by_class: dict[str, list[float]] = {}
        for key, ms in unit_ms.items():
            if not key.startswith(PREFIX):
                continue
            first, second = key[len(PREFIX):-1].split("|", 1)
            if first in unit_ms and second in unit_ms:
                r = ms - unit_ms[first] - unit_ms[second]
                self.residual[key] = r
                by_class.setdefault(boundary(first, second), []).append(r)
        self.class_median = {c: statistics.median(v) for c, v in sorted(by_class.items())}

    def __len__(self) -> int:
        return len(self.residual)

    def correction(self, pairs: list[Pair]) -> float:
        """Σ residual over ``pairs`` (a boundary without its pair: its class's median, else 0)."""
        total = 0.0
        for p in pairs:
            r = self.residual.get(p.key)
            if r is None:
                r = self.class_median.get(p.boundary, 0.0)
            total += r
        return total

    def summary(self) -> dict[str, Any]:
        """What `plaid lut show` says of the model."""
        values = list(self.residual.values())
        return {"pairs": len(values), "median_residual_ms": statistics.median(values) if values else 0.0,
                "classes": {c: round(m, 6) for c, m in self.class_median.items()}}
