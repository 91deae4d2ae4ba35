"""Which candidates to train next. A strategy sees the search state and returns indices
into the candidate list; registered by name."""

from __future__ import annotations

import random
from typing import Callable

import numpy as np

from plaid.registry import Registry

STRATEGIES: Registry[Callable[..., "Strategy"]] = Registry("strategy")


class Strategy:
    name = ""

    def select(self, state, k: int, rng: random.Random) -> list[int]:
        raise NotImplementedError


def register_strategy(name: str):
    def deco(cls):
        cls.name = name
        STRATEGIES.add(name, cls)
        return cls

    return deco


@register_strategy("random")
class RandomStrategy(Strategy):
    """Uniform choice inside Ŝ \\ P (the paper's baseline)."""

    def select(self, state, k: int, rng: random.Random) -> list[int]:
        open_ = [int(i) for i in np.flatnonzero(state.open_mask)]
        return rng.sample(open_, min(k, len(open_)))


@register_strategy("pop")
class PopStrategy(Strategy):
    """Aim at the most pruning and the weakest part of the boundary.

    1. Cover the window: split it into ``bins`` latency strata (quantiles of the
       candidates' latencies). While a stratum has no trained net, train, in the fastest
       such stratum, its open candidate with the largest open down-set: by the
       partial-order assumption that is the most accurate net there, so it lifts the
       boundary most, and if it is dominated it takes the most candidates with it.
    2. Then train the candidate c with the largest *prune gain*: the open nets a' ≼ c with
       Lat(a') ≥ Lat(b), where b is the best trained net no slower than c. Those are
       exactly the nets the rule removes if c turns out dominated by b; if c is not
       dominated, it is a big net that lifts the boundary. Ties: larger down-set, then
       lower latency.
    """

    def __init__(self, bins: int = 8) -> None:
        self.bins = bins

    def select(self, state, k: int, rng: random.Random) -> list[int]:
        chosen: list[int] = []
        open_mask = state.open_mask.copy()
        for _ in range(k):
            i = self._one(state, open_mask)
            if i is None:
                break
            chosen.append(i)
            open_mask[i] = False
        return chosen

    def _one(self, state, open_mask: np.ndarray) -> int | None:
        open_idx = np.flatnonzero(open_mask)
        if len(open_idx) == 0:
            return None
        lats = state.latencies
        edges = np.quantile(lats, np.linspace(0, 1, self.bins + 1))
        bin_of = np.clip(np.searchsorted(edges, lats, side="right") - 1, 0, self.bins - 1)
        trained_bins = set(bin_of[state.trained_mask].tolist())
        down_sizes = self._down_sizes(state, open_idx, open_mask)
        for b in range(self.bins):
            in_bin = open_idx[bin_of[open_idx] == b]
            if b not in trained_bins and len(in_bin):
                sizes = down_sizes[np.searchsorted(open_idx, in_bin)]
                return int(in_bin[_argbest(sizes, -lats[in_bin])])
        gains = np.zeros(len(open_idx))
        front = state.front_points()  # [(latency, accuracy)] sorted by latency
        front_lats = np.array([p[0] for p in front]) if front else np.zeros(0)
        for n, i in enumerate(open_idx):
            pos = np.searchsorted(front_lats, lats[i], side="right") - 1
            if pos < 0:
                continue
            gains[n] = np.count_nonzero(state.order.down(i) & open_mask & (lats >= front_lats[pos]))
        return int(open_idx[_argbest(gains, down_sizes, -lats[open_idx])])

    @staticmethod
    def _down_sizes(state, open_idx: np.ndarray, open_mask: np.ndarray) -> np.ndarray:
        return np.array([np.count_nonzero(state.order.down(i) & open_mask) for i in open_idx], dtype=float)


def _argbest(*keys: np.ndarray) -> int:
    """Index maximising keys lexicographically (first key first); stable on ties."""
    order = np.lexsort(tuple(reversed(keys)))
    return int(order[-1]) if len(order) else 0
