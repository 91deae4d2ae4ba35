"""Seeded, stratified index selections: a train/val split and a class-balanced subset."""

from __future__ import annotations

import numpy as np


def stratified_split(y: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) indices; each class with >= 2 samples puts round(fraction * n), at least
    1 and at most n - 1, into val."""
    val = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        idx = idx[rng.permutation(len(idx))]
        k = min(max(int(round(fraction * len(idx))), 1), len(idx) - 1)
        val.append(idx[:k])
    val_idx = np.sort(np.concatenate(val)) if val else np.zeros(0, np.int64)
    return np.setdiff1d(np.arange(len(y)), val_idx), val_idx


def stratified_subset(y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` indices with the class proportions of ``y`` (largest remainder), seeded."""
    classes, counts = np.unique(y, return_counts=True)
    exact = n * counts / counts.sum()
    quota = np.floor(exact).astype(int)
    order = np.argsort(-(exact - quota), kind="stable")
    quota[order[: n - quota.sum()]] += 1
    picked = []
    for c, q in zip(classes, quota):
        idx = np.flatnonzero(y == c)
        picked.append(idx[rng.permutation(len(idx))[:q]])
    return np.sort(np.concatenate(picked))
