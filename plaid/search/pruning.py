"""The pruning rule of DESIGN.md §4, made to survive a partial order that real accuracies
only roughly obey.

**Exact rule.** A trained net ``a`` dominated by a boundary point ``b`` prunes every open
a' ≼ a with Lat(a') ≥ Lat(b): by the assumption Acc(a') ≤ Acc(a) ≤ Acc(b).

**What real data does to it.** On real benchmarks ~9% of comparable pairs a' ≼ a have
Acc(a') > Acc(a), with a heavy tail from nets that fail to train. One failed big net is
dominated by everything and prunes its whole down-set, true-front nets included.

**The rule used here** (each part answers one failure):

1. *Margin.* ``a`` generates pruning only when a boundary point beats it by more than δ:
   Acc(b) > Acc(a) + δ; the threshold is the fastest such b. δ is either fixed
   (``margin=``) or learnt: the (1 − α) quantile of the excess e = Acc(a') − Acc(a) over
   the *near* comparable pairs a' ≺ a the run has trained — those with Lat(a') ≥
   ``near``·Lat(a), the kind the rule prunes (a pruned a' lies between the threshold and
   Lat(a)); all pairs while fewer than ``min_near`` near ones are known; 0 when no pair
   exceeds it. Far pairs (a tiny net below a huge one) would drag the quantile down and
   say nothing about the nets actually pruned. That makes "a' beats its dominated
   super-net by more than δ" an event of probability ≈ α per pruned net, and a false
   prune needs more than that (a' must also beat b).
2. *Consistency.* A trained net with a trained sub-net that beats it by more than δ has
   already shown that its own down-set violates the order (a failed training, typically):
   it generates nothing.
3. *Probe before a large prune.* A generator that would remove more than ``probe_min``
   candidates and has no trained sub-net vouching for it is held until one of the
   candidates it would prune (the slowest, closest below it) has been trained; that probe
   either vouches for it or contradicts it (2). A failed training is contradicted by
   almost any sub-net, so this costs one training per large prune and stops the
   catastrophic case.
4. *Self-audit.* The engine spends a share of the budget training pruned candidates drawn
   uniformly from P. The share that would have lifted the boundary is the measured
   false-prune rate (Wilson 95% interval). An audited net that beats the generator that
   pruned it by more than δ disables that generator, restores everything only it had
   pruned, and widens δ (α is halved, down to ``alpha_min``).

5. *Seed noise* (``repeats``). A few trained nets are trained again with another seed;
   σ = RMS(acc_seed0 − acc_seedk)/√2 over them is the spread of one training's
   accuracy. Two nets of equal true accuracy then differ by more than z_(1−α)·√2·σ with
   probability α, so a learnt δ is never below that floor (a fixed δ stays fixed). A
   repeated net's accuracy, for the boundary and for pruning, is the mean over its seeds
   (the better estimate; it also undoes the luck that put a net on the boundary): its
   relatives' consistency is re-derived and P rebuilt under the new value. Pair excesses
   already counted keep the values they were seen with. Repeats go to boundary members
   first, whose first training is biased upwards by having been selected (σ errs high:
   the floor errs wide).

P is kept as its generators (trained net, latency threshold); the mask over the
candidates is derived from them, so restoring or re-thresholding is exact."""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from plaid.search.order import OrderIndex


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a binomial proportion k/n ((0, 1) when n = 0)."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, mid - half), min(1.0, mid + half)


class SeedNoise:
    """Accuracies of nets trained again with other seeds; σ of one training's accuracy."""

    def __init__(self) -> None:
        self.runs: dict[str, list[tuple[int, float]]] = {}  # key -> [(seed offset, accuracy)], first = seed 0

    def add(self, key: str, seed: int, accuracy: float) -> None:
        self.runs.setdefault(key, []).append((int(seed), float(accuracy)))

    def mean(self, key: str) -> float:
        return float(np.mean([a for _, a in self.runs[key]]))

    @property
    def repeats(self) -> int:
        return sum(len(r) - 1 for r in self.runs.values())

    @property
    def sigma(self) -> float | None:
        """RMS(acc_seed0 − acc_seedk)/√2 over every repeat; None before the first."""
        d = [r[0][1] - a for r in self.runs.values() for _, a in r[1:]]
        return math.sqrt(float(np.mean(np.square(d))) / 2) if d else None

    def to_json(self) -> list[dict]:
        return [{"arch": k, "seeds": [s for s, _ in r], "accuracies": [a for _, a in r]}
                for k, r in self.runs.items() if len(r) > 1]


class Margin:
    """δ learnt from the run's own comparable pairs (or fixed by the user), never below
    the seed-noise floor z_(1−α)·√2·σ once σ is known (see the module docstring, 5)."""

    def __init__(self, fixed: float | None = None, alpha: float = 0.02, alpha_min: float = 0.0025,
                 near: float = 0.75, min_near: int = 30, reservoir: int = 50_000, seed: int = 0,
                 robust: bool = True) -> None:
        self.fixed = fixed
        self.robust = robust
        self.alpha, self.alpha_min = alpha, alpha_min
        self.near, self.min_near = near, min_near
        self._cap = reservoir
        self._e = np.zeros(0)
        self._r = np.zeros(0)
        self.pairs = 0  # comparable trained pairs seen
        self.violations = 0  # of which Acc(lower) > Acc(upper)
        self.latency_inversions = 0  # of which Lat(lower) > Lat(upper)
        self._rng = np.random.default_rng(seed)
        self._value = 0.0 if fixed is None else float(fixed)
        self._dirty = False
        self.sigma: float | None = None  # seed noise of one training (None: not measured)

    @property
    def value(self) -> float:
        if self._dirty:
            self._dirty = False
            self._update()
        return self._value

    def add(self, excess: np.ndarray, ratio: np.ndarray) -> None:
        """Newly seen comparable pairs: excess Acc(lower) − Acc(upper) and latency ratio
        Lat(lower) / Lat(upper)."""
        excess = np.asarray(excess, dtype=float)
        ratio = np.asarray(ratio, dtype=float)
        self.pairs += len(excess)
        self.violations += int((excess > 0).sum())
        self.latency_inversions += int((ratio > 1).sum())
        if len(excess):
            room = max(0, self._cap - len(self._e))
            self._e = np.concatenate([self._e, excess[:room]])
            self._r = np.concatenate([self._r, ratio[:room]])
            excess, ratio = excess[room:], ratio[room:]
            if len(excess):  # reservoir: keep a uniform sample of every pair seen
                seen_before = self.pairs - len(excess)
                slots = self._rng.integers(0, seen_before + np.arange(1, len(excess) + 1))
                keep = slots < self._cap
                self._e[slots[keep]] = excess[keep]
                self._r[slots[keep]] = ratio[keep]
        self._dirty = True

    def widen(self) -> None:
        self.alpha = max(self.alpha_min, self.alpha / 2)
        self._update()

    def set_noise(self, sigma: float | None) -> None:
        """The seed noise σ of one training (from :class:`SeedNoise`)."""
        self.sigma = None if sigma is None else float(sigma)
        self._dirty = True

    @property
    def floor(self) -> float | None:
        """z_(1−α)·√2·σ: how far two nets of equal true accuracy lie apart by chance with
        probability α (None while σ is unknown)."""
        if self.sigma is None:
            return None
        return NormalDist().inv_cdf(1 - self.alpha) * math.sqrt(2) * self.sigma

    @property
    def near_pairs(self) -> int:
        return int((self._r >= self.near).sum())

    def _update(self) -> None:
        if self.fixed is not None:
            return
        value = 0.0
        if len(self._e):
            near = self._r >= self.near
            e = self._e[near] if near.sum() >= self.min_near else self._e
            if self.robust:  # the bulk's (1 - α) quantile from median and MAD: failed trainings don't inflate it
                med = float(np.median(e))
                spread = 1.4826 * float(np.median(np.abs(e - med)))
                value = min(med + NormalDist().inv_cdf(1 - self.alpha) * spread, float(e.max()))
            else:
                value = float(np.quantile(e, 1 - self.alpha))
        self._value = max(0.0, value, self.floor or 0.0)

    def quantiles(self) -> dict:
        pos = self._e[self._e > 0]
        q = (lambda p: float(np.quantile(pos, p))) if len(pos) else (lambda p: None)
        return {"median": q(0.5), "p90": q(0.9), "p99": q(0.99)}


@dataclass
class AuditLog:
    audited: int = 0
    false_prunes: int = 0  # audited nets that would have lifted the boundary
    contradictions: int = 0  # audited nets that beat their generator by more than δ
    restored: int = 0  # candidates put back into play by disabled generators

    def to_json(self) -> dict:
        lo, hi = wilson(self.false_prunes, self.audited)
        return {"audited": self.audited, "false_prunes": self.false_prunes,
                "false_prune_rate": self.false_prunes / self.audited if self.audited else None,
                "false_prune_rate_ci95": [lo, hi], "contradictions": self.contradictions,
                "restored": self.restored}


class Pruner:
    """P as generators over a candidate list (see the module docstring)."""

    def __init__(self, order: OrderIndex, margin: Margin, probe_min: int = 64) -> None:
        self.order, self.margin, self.probe_min = order, margin, probe_min
        self.lat = np.zeros(0)
        self.trained = np.zeros(0, dtype=bool)
        self.acc = np.zeros(0)
        self.pruned_by = np.zeros(0, dtype=np.int64)  # generator (trained index) that removed it, -1 = open
        self.thr = np.zeros(0)  # latency threshold a generator applies (inf: not a generator)
        self.sub_best = np.zeros(0)  # best accuracy of a trained strict sub-net (-inf: none)
        self.disabled = np.zeros(0, dtype=bool)  # generators an audit contradicted
        self.held: dict[int, float] = {}  # large generators waiting for a probe -> threshold
        self.audit = AuditLog()
        self._applied_delta = margin.value

    # ---- candidates ---------------------------------------------------------------
    def extend(self, lats: np.ndarray) -> np.ndarray:
        """New candidates (after ``order.extend``); returns which of them the current
        generators prune."""
        m = len(lats)
        start = len(self.lat)
        self.lat = np.concatenate([self.lat, np.asarray(lats, dtype=float)])
        self.trained = np.concatenate([self.trained, np.zeros(m, dtype=bool)])
        self.acc = np.concatenate([self.acc, np.full(m, np.nan)])
        self.pruned_by = np.concatenate([self.pruned_by, np.full(m, -1, dtype=np.int64)])
        self.thr = np.concatenate([self.thr, np.full(m, np.inf)])
        self.sub_best = np.concatenate([self.sub_best, np.full(m, -np.inf)])
        self.disabled = np.concatenate([self.disabled, np.zeros(m, dtype=bool)])
        new = np.arange(start, len(self.lat))
        for g in self.generators():
            self._apply(int(g), self.thr[g], new)
        return self.pruned_by[new] >= 0

    @property
    def pruned_mask(self) -> np.ndarray:
        return self.pruned_by >= 0

    def generators(self) -> np.ndarray:
        return np.flatnonzero(np.isfinite(self.thr))

    @property
    def delta(self) -> float:
        return self.margin.value

    # ---- training results ---------------------------------------------------------
    def record(self, i: int, accuracy: float) -> None:
        """Add a trained candidate: pair statistics, consistency of its relatives."""
        others = np.flatnonzero(self.trained)
        self.trained[i] = True
        self.acc[i] = accuracy
        self.pruned_by[i] = -1
        if not len(others):
            return
        below = self.order.down(i, others)  # trained j ≼ i
        above = self.order.up(i, others)  # trained j ≽ i
        same = below & above
        below, above = below & ~same, above & ~same
        lo, up = others[below], others[above]
        excess = np.concatenate([self.acc[lo] - accuracy, accuracy - self.acc[up]])
        ratio = np.concatenate([self.lat[lo] / self.lat[i], self.lat[i] / self.lat[up]])
        self.margin.add(excess, ratio)
        if below.any():
            self.sub_best[i] = float(self.acc[lo].max())
        self.sub_best[up] = np.maximum(self.sub_best[up], accuracy)
        if self.margin.value > self._applied_delta * 1.05 + 1e-9:
            self.rebuild()

    def revise(self, i: int, accuracy: float) -> None:
        """A trained net's accuracy re-estimated (its mean over seeds): the best trained
        sub-net of each trained super-net is re-derived, and every threshold forgotten; the
        next ``update`` re-derives P from the boundary under the new value."""
        self.acc[i] = accuracy
        tr = np.flatnonzero(self.trained)
        for u in tr[self.order.up(i, tr)]:
            u = int(u)
            if u == i:
                continue
            others = tr[tr != u]
            strict = self.order.down(u, others) & ~self.order.up(u, others)
            self.sub_best[u] = float(self.acc[others[strict]].max()) if strict.any() else -np.inf
        self.rebuild()

    def noise(self, sigma: float | None) -> None:
        """New seed noise σ: the margin's floor moves; P is rebuilt when δ grew."""
        self.margin.set_noise(sigma)
        if self.margin.value > self._applied_delta * 1.05 + 1e-9:
            self.rebuild()

    def update(self, front_lat: np.ndarray, front_acc: np.ndarray) -> int:
        """Re-derive thresholds from the boundary; apply new or lowered ones. Returns the
        number of newly pruned candidates."""
        before = int(self.pruned_mask.sum())
        delta = self.margin.value
        self._applied_delta = min(self._applied_delta, delta) if self.generators().size else delta
        tr = np.flatnonzero(self.trained)
        bad = self.disabled[tr] | (self.sub_best[tr] > self.acc[tr] + delta)
        for g in tr[bad & np.isfinite(self.thr[tr])]:
            self._drop(int(g))
        t = np.full(len(tr), np.inf)
        if len(front_lat):
            k = np.searchsorted(front_acc, self.acc[tr] + delta, side="right")
            ok = k < len(front_lat)
            kk = np.minimum(k, len(front_lat) - 1)
            ok &= front_lat[kk] <= self.lat[tr]
            t = np.where(ok, front_lat[kk], np.inf)
        changed = ~bad & (t < self.thr[tr])
        for g, tg in zip(tr[changed], t[changed]):
            g = int(g)
            if not np.isfinite(self.thr[g]) and self.sub_best[g] == -np.inf:
                if self.held.get(g) == tg:
                    continue
                if self._cover(g, tg).sum() > self.probe_min:
                    self.held[g] = tg
                    continue
            self.held.pop(g, None)
            self.thr[g] = tg
            self._apply(g, tg)
        for g in [g for g in self.held if self.sub_best[g] > -np.inf or self.disabled[g]]:
            del self.held[g]
        return int(self.pruned_mask.sum()) - before

    def probe(self) -> int | None:
        """The candidate to train to vouch for (or contradict) a held generator: the open
        candidate it would prune that lies closest below it (slowest)."""
        for g in sorted(self.held):
            cover = np.flatnonzero(self._cover(g, self.held[g]) & ~self.pruned_mask)
            if len(cover):
                return int(cover[np.argmax(self.lat[cover])])
        return None

    def audited(self, i: int, generator: int, accuracy: float, lifted: bool) -> None:
        """An audited candidate ``i`` (pruned by ``generator`` before it was trained):
        count it; when it beats its generator by more than δ, disable that generator,
        restore what it pruned (unless another still covers it) and widen δ."""
        self.audit.audited += 1
        self.audit.false_prunes += int(lifted)
        if generator >= 0 and accuracy > self.acc[generator] + self.margin.value:
            self.audit.contradictions += 1
            before = int(self.pruned_mask.sum())
            self.disabled[generator] = True
            self._drop(generator)
            self.margin.widen()
            self.rebuild()
            self.audit.restored += max(0, before - int(self.pruned_mask.sum()))

    def relax(self) -> bool:
        """Nothing is open but budget is left: widen δ one step (α halved) and re-derive P,
        which puts back the candidates pruned closest to the decision line — where a lucky
        net under a barely-dominated generator sits. False once δ cannot widen further."""
        if self.margin.fixed is not None or self.margin.alpha <= self.margin.alpha_min:
            return False
        self.margin.widen()
        self.rebuild()
        return True

    # ---- internals ----------------------------------------------------------------
    def rebuild(self) -> None:
        """Forget every threshold; the next ``update`` re-derives them under the current δ."""
        self.thr[:] = np.inf
        self.pruned_by[:] = -1
        self.held.clear()
        self._applied_delta = self.margin.value

    def _cover(self, g: int, t: float, cols: np.ndarray | None = None) -> np.ndarray:
        if cols is None:
            sel = np.flatnonzero((self.lat >= t) & ~self.trained)
        else:
            sel = cols[(self.lat[cols] >= t) & ~self.trained[cols]]
        out = np.zeros(len(self.lat), dtype=bool)
        if len(sel):
            out[sel[self.order.down(g, sel)]] = True
        return out if cols is None else out[cols]

    def _apply(self, g: int, t: float, cols: np.ndarray | None = None) -> None:
        if cols is None:
            sel = np.flatnonzero((self.lat >= t) & ~self.trained & (self.pruned_by < 0))
        else:
            sel = cols[(self.lat[cols] >= t) & ~self.trained[cols] & (self.pruned_by[cols] < 0)]
        if len(sel):
            self.pruned_by[sel[self.order.down(g, sel)]] = g

    def _drop(self, g: int) -> None:
        self.thr[g] = np.inf
        freed = np.flatnonzero(self.pruned_by == g)
        self.pruned_by[freed] = -1
        if len(freed):
            for h in self.generators():  # another generator may still cover them
                self._apply(int(h), self.thr[h], freed)


def _threshold(front_lat: np.ndarray, front_acc: np.ndarray, lat: float, acc: float, delta: float) -> float | None:
    """Latency of the fastest boundary point beating (lat, acc) by more than δ while no
    slower; None when there is none (front sorted by latency, accuracy increasing)."""
    k = int(np.searchsorted(front_acc, acc + delta, side="right"))
    if k >= len(front_lat) or front_lat[k] > lat:
        return None
    return float(front_lat[k])
