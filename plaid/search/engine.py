"""Partial Order Pruning (DESIGN.md §4).

Ŝ: candidates whose predicted latency is in the window; D: trained (latency, accuracy);
B(D): its boundary; P: pruned. After each round, every trained net ``a`` that a boundary
net ``b`` dominates prunes each open candidate a' ≼ a with Lat(a') ≥ Lat(b): by the
partial-order assumption Acc(a') ≤ Acc(a) ≤ Acc(b), so a' cannot lift the boundary."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from plaid.errors import UsageError
from plaid.search.front import dominates, pareto_front
from plaid.search.order import OrderIndex
from plaid.search.strategies import STRATEGIES, Strategy


@dataclass(frozen=True)
class Evaluated:
    index: int  # order of evaluation
    key: str
    arch: Any
    latency: float
    accuracy: float

    def to_json(self) -> dict:
        return {"index": self.index, "arch": self.key, "latency": self.latency, "accuracy": self.accuracy}


@dataclass
class SearchResult:
    evaluated: list[Evaluated]
    front: list[Evaluated]
    candidates: int
    trained: int
    pruned: int
    exact: bool  # True when Ŝ is the whole window of a finite space, so |P| is exact
    pruned_fraction: float  # |P| / |Ŝ| (an estimate when Ŝ is a sample)
    window: tuple[float, float]
    stop_reason: str
    pruned_keys: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "evaluated": [e.to_json() for e in self.evaluated],
            "front": [e.to_json() for e in self.front],
            "candidates": self.candidates, "trained": self.trained, "pruned": self.pruned,
            "pruned_fraction": self.pruned_fraction, "pruned_fraction_is_exact": self.exact,
            "window": list(self.window), "stop_reason": self.stop_reason,
        }


class SearchState:
    """What strategies see: candidates, their latencies, masks, the boundary."""

    def __init__(self, space: Any, candidates: list, latencies: np.ndarray) -> None:
        self.space = space
        self.candidates = candidates
        self.keys = [space.key(c) for c in candidates]
        self.latencies = latencies
        self.order = OrderIndex(space, candidates)
        n = len(candidates)
        self.trained_mask = np.zeros(n, dtype=bool)
        self.pruned_mask = np.zeros(n, dtype=bool)
        self.accuracy = np.full(n, np.nan)

    @property
    def open_mask(self) -> np.ndarray:
        return ~(self.trained_mask | self.pruned_mask)

    def front_points(self) -> list[tuple[float, float]]:
        idx = np.flatnonzero(self.trained_mask)
        return pareto_front([(self.latencies[i], self.accuracy[i]) for i in idx], lat=lambda p: p[0],
                            acc=lambda p: p[1])

    def record(self, i: int, accuracy: float) -> None:
        self.trained_mask[i] = True
        self.accuracy[i] = accuracy

    def prune(self) -> int:
        """Apply the pruning rule for every dominated trained net; returns newly pruned."""
        front = self.front_points()
        before = int(self.pruned_mask.sum())
        for i in np.flatnonzero(self.trained_mask):
            la, aa = self.latencies[i], self.accuracy[i]
            dominating = [lb for lb, ab in front if dominates(lb, ab, la, aa)]
            if not dominating:
                continue
            threshold = min(dominating)
            hit = self.order.down(i) & self.open_mask & (self.latencies >= threshold)
            self.pruned_mask |= hit
        return int(self.pruned_mask.sum()) - before


def candidate_pool(space: Any, latency: Callable, window: tuple[float, float] | None, pool: int,
                   rng: random.Random) -> tuple[list, np.ndarray, bool]:
    """Ŝ: the whole space when it can be enumerated (and is not larger than ``pool``),
    else ``pool`` distinct samples. Bounded: never loops forever on an empty window."""
    lo, hi = window if window else (float("-inf"), float("inf"))
    archs: list = []
    exact = False
    enumerate_ = getattr(space, "enumerate", None)
    if enumerate_ is not None:
        try:
            it = enumerate_()
            first = []
            for a in it:
                first.append(a)
                if len(first) > pool:
                    break
            if len(first) <= pool:
                archs, exact = first, True
        except NotImplementedError:
            pass
    if not exact:
        seen: set = set()
        for _ in range(pool * 50):
            a = space.sample(rng)
            if a in seen:
                continue
            seen.add(a)
            lat = latency(a)
            if lo <= lat <= hi:
                archs.append(a)
                if len(archs) == pool:
                    break
        lats = np.array([latency(a) for a in archs], dtype=float)
        return archs, lats, False
    lats = np.array([latency(a) for a in archs], dtype=float)
    keep = (lats >= lo) & (lats <= hi)
    return [a for a, k in zip(archs, keep) if k], lats[keep], True


def search(space: Any, latency: Callable[[Any], float], accuracy: Callable[[Any], float], budget: int,
           strategy: str | Strategy = "pop", seed: int = 0, window: tuple[float, float] | None = None,
           journal: Any = None, batch: int = 1, pool: int = 2000,
           on_result: Callable[[Evaluated, "SearchState"], None] | None = None) -> SearchResult:
    """Run POP on ``space`` with at most ``budget`` trainings (calls to ``accuracy``).

    ``space`` needs ``sample(rng)``, ``le(a, b)``, ``key(a)`` and, for finite spaces,
    ``enumerate()``; ``embed(a)`` (order-embedding vector) makes large pools fast.
    ``journal`` (plaid.search.journal.Journal) records each training as it finishes and
    replays recorded ones on resume."""
    if budget < 1:
        raise UsageError(f"budget must be at least 1 training, got {budget}")
    if batch < 1:
        raise UsageError(f"batch must be >= 1, got {batch}")
    if window is not None and window[0] > window[1]:
        raise UsageError(f"latency window {window[0]}:{window[1]} is empty (min > max)")
    strat = STRATEGIES.get(strategy)() if isinstance(strategy, str) else strategy
    rng = random.Random(seed)
    archs, lats, exact = candidate_pool(space, latency, window, pool, rng)
    win = window or ((float(lats.min()), float(lats.max())) if len(lats) else (0.0, 0.0))
    if not archs:
        raise UsageError(f"no architecture of space {getattr(space, 'name', space)!r} has a predicted latency "
                         f"in the window {win[0]:g}:{win[1]:g}")
    state = SearchState(space, archs, lats)
    evaluated: list[Evaluated] = []
    stop = "budget spent"
    while len(evaluated) < budget:
        picks = strat.select(state, min(batch, budget - len(evaluated)), rng)
        if not picks:
            stop = "every candidate trained or pruned"
            break
        for i in picks:
            key = state.keys[i]
            recorded = journal.replay(len(evaluated), key) if journal is not None else None
            acc = recorded if recorded is not None else float(accuracy(archs[i]))
            ev = Evaluated(len(evaluated), key, archs[i], float(lats[i]), acc)
            if journal is not None and recorded is None:
                journal.record(ev)
            state.record(i, acc)
            evaluated.append(ev)
            if on_result is not None:
                on_result(ev, state)
        if strat.prunes:
            state.prune()
    else:
        if not state.open_mask.any():
            stop = "every candidate trained or pruned"
    front = pareto_front(evaluated)
    pruned = int(state.pruned_mask.sum())
    return SearchResult(evaluated=evaluated, front=front, candidates=len(archs), trained=len(evaluated),
                        pruned=pruned, exact=exact, pruned_fraction=pruned / len(archs), window=win,
                        stop_reason=stop, pruned_keys=[state.keys[i] for i in np.flatnonzero(state.pruned_mask)])
