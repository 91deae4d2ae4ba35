"""What a strategy sees of a running search (:class:`SearchState`), and where the candidate
set Ŝ comes from: the whole latency window of a finite space (:func:`enumerate_window`) or
bounded rejection sampling from it (:class:`Sampler`)."""

from __future__ import annotations

import random
from typing import Any, Callable

import numpy as np

from plaid.search.pruning import Pruner


class SearchState:
    """What strategies see: candidates, their latencies, masks, the boundary, and the
    candidates *pending* (submitted, not yet back: never open, see
    :meth:`pending_cover`)."""

    def __init__(self, space: Any, pruner: Pruner) -> None:
        self.space = space
        self.pruner = pruner
        self.order = pruner.order
        self._keys: dict[int, str] = {}
        self._pending: dict[int, int] = {}  # candidate index -> trainings of it in flight

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
        mask = ~(self.pruner.trained | self.pruner.pruned_mask)
        if self._pending:
            mask[list(self._pending)] = False
        return mask

    # ---- trainings in flight -------------------------------------------------------
    def add_pending(self, i: int) -> None:
        self._pending[i] = self._pending.get(i, 0) + 1

    def drop_pending(self, i: int) -> None:
        n = self._pending.pop(i) - 1
        if n:
            self._pending[i] = n

    @property
    def pending(self) -> list[int]:
        """Candidates with a training in flight, by index."""
        return sorted(self._pending)

    @property
    def pending_mask(self) -> np.ndarray:
        mask = np.zeros(len(self.pruner.lat), dtype=bool)
        if self._pending:
            mask[list(self._pending)] = True
        return mask

    def pending_cover(self) -> np.ndarray:
        """Open candidates that a pending net would prune if it came back dominated: the
        open c ≼ p with Lat(c) ≥ t_p, where t_p is the latency of the best trained net no
        slower than p (the boundary point the rule would measure p against). The
        ``dominated`` pending rule of :class:`plaid.search.strategies.PopStrategy` keeps
        picks out of these and counts them as no gain."""
        out = np.zeros(len(self.pruner.lat), dtype=bool)
        if not self._pending:
            return out
        _, flat, _ = self.front_arrays()
        if not len(flat):
            return out
        lats = self.pruner.lat
        p = np.array(self.pending, dtype=np.int64)
        pos = np.searchsorted(flat, lats[p], side="right") - 1
        p, t = p[pos >= 0], flat[pos[pos >= 0]]
        if not len(p):
            return out
        open_idx = np.flatnonzero(self.open_mask)
        cols = open_idx[lats[open_idx] >= t.min()]
        if len(cols):
            below = self.order.down_many(p, cols) & (lats[cols][None, :] >= t[:, None])
            out[cols[below.any(axis=0)]] = True
        return out

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
