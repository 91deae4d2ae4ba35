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
strategy's pick. Every one of them counts against the budget.

**k trainings in flight** (``batch`` = k; :mod:`plaid.search.workers` runs them). The
engine keeps k trainings submitted: each time a result comes back it is applied (D, B(D),
P), then the engine picks until k are in flight again, one pick at a time, each seeing the
others as *pending* (:class:`SearchState`: a pending net is not open, so it is never
picked twice). The rule for the picks, in the ``pop`` strategy
(:class:`plaid.search.strategies.PopStrategy`): a pending net covers its latency stratum,
and it is treated as **hypothetically on the boundary**, just above the best trained net
no slower than it, when prune gains are computed: a candidate counts as gain only what
its domination would prune above the pending nets it is slower than, so the k picks
spread along the latency axis instead of all aiming at the same weak stretch of the
boundary.

Why that rule: it was measured against the two others (benchmarks/parallel_search.py,
the calibrated real-data model, results in simulated time). Treating pending nets as
*hypothetically dominated* — setting aside the nets they would prune, the greedy rule for
a union of prune sets — is the intuitive choice, and it cost the most: with 16 in flight
it needed 1.68x the trainings of a serial run to 98% of the true hypervolume (median of
10 seeds; 1.30x to 99%). The likely
reason: the big nets POP sends out often come back *on* the boundary, so the region set
aside is where their results improve it, and the other picks go to the leftovers. Ignoring the pending nets (beyond not picking
them twice) and the boundary rule both stay near 1.2x to 98% (1.21x, 1.20x); the boundary
rule is the better of the two at 99% (0.94x against 1.11x). Probes skip a held prune whose candidates are already in
flight, audits draw from the pruned nets not in flight, and repeats count the ones in
flight; each is issued one at a time.

Results may come back in any order. The picks depend only on the order results arrived
in, so the journal, which records each training as it finishes (with its submission
number, worker and seconds), replays a run exactly: a resume re-derives the same picks at
the same places, takes their results from the journal in finishing order, and trains the
ones that were in flight when the run stopped. With k = 1 everything is as it was: one
training at a time, in the order picked."""

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
from plaid.search.state import SearchState, Sampler, enumerate_window
from plaid.search.strategies import STRATEGIES, Strategy
from plaid.search.workers import InlineTrainer

__all__ = ["Evaluated", "SearchResult", "SearchState", "Sampler", "enumerate_window", "search"]

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
    worker: str = ""  # who trained it: "main" (in process), "w1".."wN" (worker processes); "": not recorded
    seconds: float | None = None  # its wall time

    def to_json(self) -> dict:
        d = {"index": self.index, "arch": self.key, "latency": self.latency, "accuracy": self.accuracy,
             "role": self.role}
        if self.seed:
            d["seed"] = self.seed
        if self.worker:
            d["worker"] = self.worker
        if self.seconds is not None:
            d["seconds"] = self.seconds
        return d


@dataclass
class _Pending:
    i: int  # candidate index
    key: str
    role: str
    seed: int
    sub: int  # submission number (the trainer's ticket)
    generator: int  # an audit's: the generator that had pruned it (-1: none)
    recorded: bool  # its result is in the journal already


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


def search(space: Any, latency: Callable[[Any], float], accuracy: Callable[[Any], float], budget: int,
           strategy: str | Strategy = "pop", seed: int = 0, window: tuple[float, float] | None = None,
           journal: Any = None, batch: int = 1, pool: int | None = None, margin: float | None = None,
           audit: float = 0.05, probe_min: int = 64, relax: bool = True, repeats: int = 0,
           on_result: Callable[[Evaluated, "SearchState"], None] | None = None,
           trainer: Any = None) -> SearchResult:
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
    ``batch``: trainings in flight at once (k; the module docstring says how picks are made
    while others are pending). ``trainer`` runs them (``submit(ticket, arch, seed, key)`` and
    ``next() -> Done``, e.g. a :class:`plaid.search.workers.WorkerPool`); default:
    ``accuracy`` in this process, oldest first.
    ``journal`` (plaid.search.journal.Journal) records each training as it finishes and
    replays recorded ones on resume (with the same ``batch``)."""
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
    trainer = trainer if trainer is not None else InlineTrainer(accuracy)
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
    pending: dict[int, _Pending] = {}  # submission number -> the training in flight
    submitted = 0

    def in_flight(role: str) -> list[_Pending]:
        return [p for p in pending.values() if p.role == role]

    def start(i: int, role: str) -> None:
        nonlocal submitted
        key = state.key(i)
        seed_k = len(repeated) + len(in_flight("repeat")) + 1 if role == "repeat" else 0
        row = journal.submitted(submitted) if journal is not None else None
        if row is not None and row.key != key:
            raise journal.diverged(row.idx, row.key, key)
        generator = int(pruner.pruned_by[i]) if role == "audit" else -1
        pending[submitted] = _Pending(i, key, role, seed_k, submitted, generator, row is not None)
        state.add_pending(i)
        if row is None:
            trainer.submit(submitted, order.candidates[i], seed_k, key)
        submitted += 1

    def finish() -> None:
        """Take the next result (the journal's while it has one) and apply it."""
        n = len(evaluated)
        row = journal.row(n) if journal is not None else None
        if row is not None:
            p = pending.get(row.sub)
            if p is None or not p.recorded:
                raise journal.diverged(n, row.key, " or ".join(sorted(q.key for q in pending.values())) or "nothing")
            acc, worker, secs = row.accuracy, row.worker or "", row.seconds
        else:
            done = trainer.next()
            p = pending[done.ticket]
            acc, worker, secs = float(done.accuracy), done.worker, round(float(done.seconds), 3)
        del pending[p.sub]
        state.drop_pending(p.i)
        i, key, role = p.i, p.key, p.role
        ev = Evaluated(n, key, order.candidates[i], float(pruner.lat[i]), acc, role, p.seed, worker, secs)
        if journal is not None and row is None:
            journal.record(ev, p.sub)
        if role == "repeat":
            if key not in noise.runs:
                noise.add(key, 0, float(pruner.acc[i]))
            noise.add(key, p.seed, acc)
            repeated[key] = i
            pruner.revise(i, noise.mean(key))
            pruner.noise(noise.sigma)
        elif role == "audit":
            generator = p.generator if p.generator >= 0 and not pruner.disabled[p.generator] else -1
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
        row = journal.submitted(submitted) if journal is not None else None
        # a journaled step that trains a net already trained was a repeat: it is one again
        # whatever the budget (which moves the schedule), and draws as it drew then
        forced = trained_at.get(row.key) if row is not None else None
        if row is not None and forced is None:
            return None
        busy = {p.key for p in in_flight("repeat")}
        if forced is None:
            if len(repeated) + len(busy) >= repeats or len(trained_at) < 2:
                return None
            if not last and submitted * (repeats + 1) < (len(repeated) + len(busy) + 1) * budget:
                return None
        front_idx = state.front_arrays()[0]
        for pool_ in (front_idx, np.flatnonzero(pruner.trained)):
            fresh = [int(j) for j in pool_ if state.key(int(j)) not in repeated and state.key(int(j)) not in busy]
            if fresh:
                drawn = fresh[rng.randrange(len(fresh))]
                return drawn if forced is None else forced
        return forced

    def probe() -> int | None:
        """The next probe: the pruner's, skipping held prunes whose probe is in flight."""
        if not pending:
            return pruner.probe()
        busy = state.pending_mask
        for g in sorted(pruner.held):
            cover = pruner._cover(g, pruner.held[g]) & ~pruner.pruned_mask  # noqa: SLF001 - the probe's own set
            if (cover & busy).any():
                continue
            idx = np.flatnonzero(cover)
            if len(idx):
                return int(idx[np.argmax(pruner.lat[idx])])
        return None

    def pick() -> tuple[str, int | None]:
        if repeats and (rep := repeat_now(last=False)) is not None:
            return "repeat", rep
        if strat.prunes:
            if (i := probe()) is not None:
                return "probe", i
            audits = pruner.audit.audited + len(in_flight("audit"))
            if audit > 0 and audits < int(audit * (submitted + 1)) and pruner.pruned_mask.any():
                pruned = np.flatnonzero(pruner.pruned_mask & ~state.pending_mask if pending else pruner.pruned_mask)
                if len(pruned):
                    return "audit", int(pruned[rng.randrange(len(pruned))])
        picks = strat.select(state, 1, rng)
        return ("search", int(picks[0])) if picks else ("search", None)

    def update() -> None:
        _, flat, facc = state.front_arrays()
        pruner.update(flat, facc)

    while True:
        while len(pending) < batch and submitted < budget:
            if sampler is not None and int(state.open_mask.sum()) < refill_at:
                new, new_lats = sampler.draw(max(1, len(archs) // 2), len(archs) * 10)
                if new:
                    order.extend(new)
                    pruner.extend(new_lats)
            role, i = pick()
            if i is None:
                if pending:
                    break  # what is in flight may open (or restore) candidates
                if strat.prunes and relax and pruner.relax():
                    relaxed += 1
                    update()
                    continue
                if repeats and (i := repeat_now(last=True)) is not None:
                    role = "repeat"  # nothing left to search: the repeats still due
                else:
                    stop = "every candidate trained or pruned"
                    break
            start(i, role)
        if not pending:
            break
        finish()
        if strat.prunes:
            update()
    if stop == "budget spent" and not state.open_mask.any() and not pruner.held:
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
