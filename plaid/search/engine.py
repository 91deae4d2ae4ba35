"""Partial Order Pruning (DESIGN.md §4) with a rule that survives real data.

Ŝ: candidates whose predicted latency is in the window — the whole space when it can be
enumerated (up to ``MAX_ENUMERATE``), else a uniform sample that is topped up by bounded
rejection sampling from Ŝ \\ P as the search eats it. D: trained (latency, accuracy).
B(D): its boundary. P: pruned, kept as generators by :mod:`plaid.search.pruning` (margin
δ learnt from the run, consistency, probes before large prunes, a self-audit).

Each round is one of: a *repeat* (a trained net, a boundary member first, trained again
with seed offset k = 1, 2, ...; ``repeats`` of them, one after every budget/(repeats + 1)
trainings), a *probe* (a candidate that vouches for or contradicts a large pending prune),
an *audit* (a pruned candidate, uniformly, ``audit`` share of the trainings) or the
strategy's pick. Every one of them counts against the budget."""

from __future__ import annotations

import inspect
import random
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np

from plaid.errors import UsageError
from plaid.search.front import pareto_front
from plaid.search.order import OrderIndex
from plaid.search.pruning import Margin, Pruner, SeedNoise, wilson
from plaid.search.strategies import STRATEGIES, Strategy

MAX_ENUMERATE = 1_000_000  # finite spaces up to this size are searched whole
DEFAULT_SAMPLE = 4096  # reference sample of a space too large to enumerate


@dataclass(frozen=True)
class Evaluated:
    index: int  # order of evaluation
    key: str
    arch: Any
    latency: float
    accuracy: float
    role: str = "search"  # search | probe | audit | repeat
    seed: int = 0  # seed offset of the training (> 0 only for a repeat)

    def to_json(self) -> dict:
        d = {"index": self.index, "arch": self.key, "latency": self.latency, "accuracy": self.accuracy,
             "role": self.role}
        if self.seed:
            d["seed"] = self.seed
        return d


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
    pruned_fraction_ci95: tuple[float, float] = (0.0, 1.0)
    margin: dict = field(default_factory=dict)
    audit: dict = field(default_factory=dict)
    probes: int = 0
    repeats: list[dict] = field(default_factory=list)  # [{"arch", "seeds", "accuracies"}] of repeated nets
    seed_noise: float | None = None  # σ of one training's accuracy from the repeats (None: none)

    def to_json(self) -> dict:
        return {
            "evaluated": [e.to_json() for e in self.evaluated],
            "front": [e.to_json() for e in self.front],
            "candidates": self.candidates, "trained": self.trained, "pruned": self.pruned,
            "pruned_fraction": self.pruned_fraction, "pruned_fraction_is_exact": self.exact,
            "pruned_fraction_ci95": list(self.pruned_fraction_ci95),
            "margin": self.margin, "audit": self.audit, "probes": self.probes,
            "repeats": self.repeats, "seed_noise": self.seed_noise,
            "window": list(self.window), "stop_reason": self.stop_reason,
        }


class SearchState:
    """What strategies see: candidates, their latencies, masks, the boundary."""

    def __init__(self, space: Any, pruner: Pruner) -> None:
        self.space = space
        self.pruner = pruner
        self.order = pruner.order
        self._keys: dict[int, str] = {}

    @property
    def candidates(self) -> list:
        return self.order.candidates

    @property
    def latencies(self) -> np.ndarray:
        return self.pruner.lat

    @property
    def accuracy(self) -> np.ndarray:
        return self.pruner.acc

    @property
    def trained_mask(self) -> np.ndarray:
        return self.pruner.trained

    @property
    def pruned_mask(self) -> np.ndarray:
        return self.pruner.pruned_mask

    @property
    def open_mask(self) -> np.ndarray:
        return ~(self.pruner.trained | self.pruner.pruned_mask)

    def key(self, i: int) -> str:
        k = self._keys.get(i)
        if k is None:
            k = self._keys[i] = self.space.key(self.order.candidates[i])
        return k

    def front_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boundary of the trained set: (indices, latencies, accuracies), by latency."""
        idx = np.flatnonzero(self.pruner.trained)
        if not len(idx):
            return idx, np.zeros(0), np.zeros(0)
        lat, acc = self.pruner.lat[idx], self.pruner.acc[idx]
        order = np.lexsort((-acc, lat))
        best = np.maximum.accumulate(acc[order])
        keep = np.ones(len(order), dtype=bool)
        keep[1:] = acc[order][1:] > best[:-1]
        sel = order[keep]
        return idx[sel], lat[sel], acc[sel]

    def front_points(self) -> list[tuple[float, float]]:
        _, lat, acc = self.front_arrays()
        return list(zip(lat.tolist(), acc.tolist()))


def _window_bounds(window):
    return window if window else (float("-inf"), float("inf"))


def enumerate_window(space: Any, latency: Callable, window, cap: int) -> tuple[list, np.ndarray] | None:
    """The whole window of a finite space, or None when it has more than ``cap`` members
    (or no ``enumerate``)."""
    enumerate_ = getattr(space, "enumerate", None)
    if enumerate_ is None:
        return None
    try:
        archs = []
        for a in enumerate_():
            archs.append(a)
            if len(archs) > cap:
                return None
    except NotImplementedError:
        return None
    lo, hi = _window_bounds(window)
    lats = np.array([latency(a) for a in archs], dtype=float)
    keep = (lats >= lo) & (lats <= hi)
    return [a for a, k in zip(archs, keep) if k], lats[keep]


class Sampler:
    """Bounded rejection sampling from the window of a space too large to enumerate."""

    def __init__(self, space: Any, latency: Callable, window, rng: random.Random) -> None:
        self.space, self.latency, self.rng = space, latency, rng
        self.lo, self.hi = _window_bounds(window)
        self.seen: set = set()

    def draw(self, n: int, attempts: int) -> tuple[list, np.ndarray]:
        archs, lats = [], []
        for _ in range(attempts):
            a = self.space.sample(self.rng)
            if a in self.seen:
                continue
            self.seen.add(a)
            lat = float(self.latency(a))
            if self.lo <= lat <= self.hi:
                archs.append(a)
                lats.append(lat)
                if len(archs) == n:
                    break
        return archs, np.array(lats, dtype=float)


def search(space: Any, latency: Callable[[Any], float], accuracy: Callable[[Any], float], budget: int,
           strategy: str | Strategy = "pop", seed: int = 0, window: tuple[float, float] | None = None,
           journal: Any = None, batch: int = 1, pool: int | None = None, margin: float | None = None,
           audit: float = 0.05, probe_min: int = 64, relax: bool = True, repeats: int = 0,
           on_result: Callable[[Evaluated, "SearchState"], None] | None = None) -> SearchResult:
    """Run POP on ``space`` with at most ``budget`` trainings (calls to ``accuracy``).

    ``space`` needs ``sample(rng)``, ``le(a, b)``, ``key(a)`` and, for finite spaces,
    ``enumerate()``; ``embed(a)`` (order-embedding vector) makes large spaces fast.
    ``pool`` caps Ŝ explicitly (a sample of that size); ``margin`` fixes δ (None: learnt);
    ``audit`` is the share of trainings spent on pruned candidates (0 turns it off);
    ``probe_min``: prunes larger than this wait for a probe (see plaid.search.pruning);
    ``relax``: when every candidate is trained or pruned and budget is left, widen δ
    (down to the margin's ``alpha_min``) and go on with what that restores.
    ``repeats``: train that many distinct trained nets again, with seed offsets 1, 2, ...
    (``accuracy(arch, seed=k)``), to measure the seed noise σ that floors a learnt δ; a
    repeated net counts at its mean accuracy (plaid.search.pruning, 5).
    ``journal`` (plaid.search.journal.Journal) records each training as it finishes and
    replays recorded ones on resume."""
    if budget < 1:
        raise UsageError(f"budget must be at least 1 training, got {budget}")
    if batch < 1:
        raise UsageError(f"batch must be >= 1, got {batch}")
    if pool is not None and pool < 1:
        raise UsageError(f"pool must be at least 1 candidate, got {pool}")
    if not 0 <= audit < 1:
        raise UsageError(f"audit share must be in [0, 1), got {audit}")
    if margin is not None and not margin >= 0:
        raise UsageError(f"margin must be >= 0, got {margin}")
    if repeats < 0:
        raise UsageError(f"repeats must be >= 0, got {repeats}")
    if repeats and not _takes_seed(accuracy):
        raise UsageError("repeats need an accuracy(arch, seed=k) that can train with another seed; "
                         f"{getattr(accuracy, '__name__', type(accuracy).__name__)} takes no seed")
    if window is not None and window[0] > window[1]:
        raise UsageError(f"latency window {window[0]}:{window[1]} is empty (min > max)")
    strat = STRATEGIES.get(strategy)() if isinstance(strategy, str) else strategy
    rng = random.Random(seed)
    whole = enumerate_window(space, latency, window, min(pool or MAX_ENUMERATE, MAX_ENUMERATE))
    sampler = None
    if whole is not None:
        archs, lats = whole
        exact = True
    else:
        sampler = Sampler(space, latency, window, rng)
        size = pool or DEFAULT_SAMPLE
        archs, lats = sampler.draw(size, size * 50)
        exact = False
    win = window or ((float(lats.min()), float(lats.max())) if len(lats) else (0.0, 0.0))
    if not archs:
        raise UsageError(f"no architecture of space {getattr(space, 'name', space)!r} has a predicted latency "
                         f"in the window {win[0]:g}:{win[1]:g}")
    order = OrderIndex(space, archs)
    pruner = Pruner(order, Margin(fixed=margin, seed=seed), probe_min=probe_min)
    pruner.extend(lats)
    state = SearchState(space, pruner)
    refill_at = len(archs) // 4
    relaxed = 0
    evaluated: list[Evaluated] = []
    stop = "budget spent"
    noise = SeedNoise()
    repeated: dict[str, int] = {}  # key -> candidate index, of the nets trained again
    trained_at: dict[str, int] = {}  # key -> candidate index, of every trained net
    # a journaled step that trains a net already trained was a repeat: a resume (with any budget) replays it
    journaled = {idx: key for idx, key, *_ in journal.entries()} if journal is not None and repeats else {}

    def train(i: int, role: str) -> None:
        key = state.key(i)
        seed_k = len(repeated) + 1 if role == "repeat" else 0
        recorded = journal.replay(len(evaluated), key) if journal is not None else None
        if recorded is not None:
            acc = recorded
        elif seed_k:
            acc = float(accuracy(order.candidates[i], seed=seed_k))
        else:
            acc = float(accuracy(order.candidates[i]))
        ev = Evaluated(len(evaluated), key, order.candidates[i], float(pruner.lat[i]), acc, role, seed_k)
        if journal is not None and recorded is None:
            journal.record(ev)
        if role == "repeat":
            if key not in noise.runs:
                noise.add(key, 0, float(pruner.acc[i]))
            noise.add(key, seed_k, acc)
            repeated[key] = i
            pruner.revise(i, noise.mean(key))
            pruner.noise(noise.sigma)
        elif role == "audit":
            generator = int(pruner.pruned_by[i])
            _, flat, facc = state.front_arrays()
            lifted = not bool(((flat <= ev.latency) & (facc >= acc)).any())
            pruner.audited(i, generator, acc, lifted)  # judged with the δ it was pruned under
            pruner.record(i, acc)
        else:
            pruner.record(i, acc)
        if role != "repeat":
            trained_at[key] = i
        evaluated.append(ev)
        if on_result is not None:
            on_result(ev, state)

    def repeat_now(last: bool) -> int | None:
        """The net to train again now, or None. A journaled step does what the journal holds;
        otherwise a repeat is due after every budget/(repeats + 1) trainings once 2 nets are
        trained, or when nothing else is left (``last``), and goes to a boundary member
        not yet repeated, else to another trained net."""
        n = len(evaluated)
        if n in journaled:
            return trained_at.get(journaled[n])
        if len(repeated) >= repeats or len(trained_at) < 2:
            return None
        if not last and n * (repeats + 1) < (len(repeated) + 1) * budget:
            return None
        front_idx = state.front_arrays()[0]
        for pool_ in (front_idx, np.flatnonzero(pruner.trained)):
            fresh = [int(j) for j in pool_ if state.key(int(j)) not in repeated]
            if fresh:
                return fresh[rng.randrange(len(fresh))]
        return None

    while len(evaluated) < budget:
        if sampler is not None and int(state.open_mask.sum()) < refill_at:
            new, new_lats = sampler.draw(max(1, len(archs) // 2), len(archs) * 10)
            if new:
                order.extend(new)
                pruner.extend(new_lats)
        role, picks = "search", []
        rep = repeat_now(last=False) if repeats else None
        if rep is not None:
            role, picks = "repeat", [rep]
        elif strat.prunes:
            probe = pruner.probe()
            if probe is not None:
                role, picks = "probe", [probe]
            elif audit > 0 and pruner.audit.audited < int(audit * (len(evaluated) + 1)) and pruner.pruned_mask.any():
                pruned = np.flatnonzero(pruner.pruned_mask)
                role, picks = "audit", [int(pruned[rng.randrange(len(pruned))])]
        if not picks:
            picks = strat.select(state, min(batch, budget - len(evaluated)), rng)
        if not picks and strat.prunes and relax and pruner.relax():
            relaxed += 1
            _, flat, facc = state.front_arrays()
            pruner.update(flat, facc)
            continue
        if not picks and repeats and (rep := repeat_now(last=True)) is not None:
            role, picks = "repeat", [rep]  # nothing left to search: the repeats still due
        if not picks:
            stop = "every candidate trained or pruned"
            break
        for i in picks:
            train(int(i), role)
        if strat.prunes:
            _, flat, facc = state.front_arrays()
            pruner.update(flat, facc)
    else:
        if not state.open_mask.any() and not pruner.held:
            stop = "every candidate trained or pruned"
    means = {k: float(pruner.acc[i]) for k, i in repeated.items()}
    front = pareto_front([replace(e, accuracy=means[e.key]) if e.key in means else e
                          for e in evaluated if e.role != "repeat"])
    n = len(order.candidates)
    pruned = int(pruner.pruned_mask.sum())
    keys = [state.key(int(i)) for i in np.flatnonzero(pruner.pruned_mask)] if n <= 200_000 else []
    m = pruner.margin
    margin_report = {"delta": m.value, "fixed": m.fixed is not None, "alpha": m.alpha, "relaxed": relaxed,
                     "comparable_pairs": m.pairs, "violations": m.violations,
                     "violation_rate": m.violations / m.pairs if m.pairs else None,
                     "latency_inversions": m.latency_inversions, "excess": m.quantiles(),
                     "floor": None if m.fixed is not None else m.floor}
    return SearchResult(evaluated=evaluated, front=front, candidates=n, trained=len(evaluated),
                        pruned=pruned, exact=exact, pruned_fraction=pruned / n, window=win,
                        stop_reason=stop, pruned_keys=keys,
                        pruned_fraction_ci95=(pruned / n, pruned / n) if exact else wilson(pruned, n),
                        margin=margin_report, audit={**pruner.audit.to_json(), "share": audit},
                        probes=sum(e.role == "probe" for e in evaluated), repeats=noise.to_json(),
                        seed_noise=noise.sigma)


def _takes_seed(accuracy: Callable) -> bool:
    try:
        inspect.signature(accuracy).bind(None, seed=1)
    except TypeError:
        return False
    except ValueError:  # no signature to read (a builtin): let the call decide
        return True
    return True
