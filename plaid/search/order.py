"""Fast partial-order queries over a fixed candidate list.

A space may offer ``embed(arch) -> tuple[int, ...]`` such that a ≼ b exactly when
embed(a) <= embed(b) componentwise; then the whole order matrix is a few numpy
comparisons. Otherwise ``le`` is called pairwise (fine for small pools)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


class OrderIndex:
    def __init__(self, space: Any, candidates: Sequence[Any]) -> None:
        self.space = space
        self.candidates = list(candidates)
        n = len(self.candidates)
        self._rows: dict[int, np.ndarray] = {}
        self.matrix: np.ndarray | None = None  # matrix[i, j]: candidate j ≼ candidate i
        embed = getattr(space, "embed", None)
        if embed is not None and n:
            e = np.array([embed(c) for c in self.candidates], dtype=np.int64)
            self.matrix = np.zeros((n, n), dtype=bool)
            step = max(1, 4_000_000 // max(1, n * e.shape[1]))
            for s in range(0, n, step):
                self.matrix[s:s + step] = (e[None, :, :] <= e[s:s + step, None, :]).all(axis=2)
        elif n <= 400:
            self.matrix = np.array([[space.le(b, a) for b in self.candidates] for a in self.candidates], dtype=bool)

    def down(self, i: int) -> np.ndarray:
        """Boolean mask of candidates j with candidates[j] ≼ candidates[i]."""
        if self.matrix is not None:
            return self.matrix[i]
        row = self._rows.get(i)
        if row is None:
            a = self.candidates[i]
            row = np.array([self.space.le(b, a) for b in self.candidates], dtype=bool)
            self._rows[i] = row
        return row

    def down_of(self, arch: Any) -> np.ndarray:
        """Mask of candidates ≼ ``arch`` (an arch that need not be a candidate)."""
        return np.array([self.space.le(b, arch) for b in self.candidates], dtype=bool)
