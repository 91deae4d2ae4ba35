"""Partial-order queries over a growing candidate list, vectorised.

A space may offer ``embed(arch) -> tuple[int, ...]`` such that a ≼ b exactly when
embed(a) <= embed(b) componentwise; then "which candidates lie below these k" is k·d
numpy comparisons over a column per gene (no n×n matrix, so 10⁶ candidates fit).
Without an embedding, ``le`` is called pairwise and the answers are cached (small pools
only)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

# candidates x candidates boolean work per chunk of down-set queries (bounds memory)
_CHUNK_CELLS = 8_000_000


class OrderIndex:
    def __init__(self, space: Any, candidates: Sequence[Any] = ()) -> None:
        self.space = space
        self.candidates: list = []
        self._embed = getattr(space, "embed", None)
        self._cols: np.ndarray | None = None  # (d, n) embedding, one row per gene
        self._rows: dict[int, np.ndarray] = {}
        self._pack: tuple[np.ndarray, np.ndarray] | None = None
        self.extend(candidates)

    def __len__(self) -> int:
        return len(self.candidates)

    @property
    def vectorised(self) -> bool:
        return self._embed is not None

    def extend(self, archs: Sequence[Any]) -> None:
        archs = list(archs)
        if not archs:
            return
        self.candidates.extend(archs)
        self._pack = None
        if self._embed is not None:
            e = np.array([self._embed(a) for a in archs], dtype=np.int64).T
            dtype = np.int16 if e.size and np.abs(e).max() < 2**15 else np.int64
            e = e.astype(dtype)
            if self._cols is None:
                self._cols = e
            else:
                self._cols = np.concatenate([self._cols.astype(np.result_type(self._cols, e)), e], axis=1)
        else:
            self._rows.clear()

    def _packed(self) -> tuple[np.ndarray, np.ndarray]:
        """Genes as ranks packed into 32-bit words with a guard bit per field, so that one
        subtraction tests every gene of a word at once: with H the guard bits,
        ((B | H) − A) & H == H exactly when every field of A is ≤ the one of B (a field
        never borrows from its neighbour because B | H ≥ A field by field)."""
        if self._pack is not None and self._pack[0].shape[1] == len(self.candidates):
            return self._pack
        cols = self._cols
        fields = []
        ranks = []
        for g in range(cols.shape[0]):
            uniq = np.unique(cols[g])
            ranks.append(np.searchsorted(uniq, cols[g]).astype(np.uint32))
            fields.append(max(1, int(len(uniq) - 1).bit_length()) + 1)
        # 32-bit words: numpy's uint64 arithmetic is several times slower than uint32's
        words, guards, shift = [np.zeros(cols.shape[1], dtype=np.uint32)], [0], 0
        for r, bits in zip(ranks, fields):
            if shift + bits > 32:
                words.append(np.zeros(cols.shape[1], dtype=np.uint32))
                guards.append(0)
                shift = 0
            words[-1] |= (r << np.uint32(shift)).astype(np.uint32)
            guards[-1] |= 1 << (shift + bits - 1)
            shift += bits
        self._pack = (np.stack(words), np.array(guards, dtype=np.uint32))
        return self._pack

    def embedding(self, idx: np.ndarray | None = None) -> np.ndarray:
        """(n, d) embedding rows (vectorised spaces only)."""
        assert self._cols is not None
        return (self._cols if idx is None else self._cols[:, idx]).T

    def down(self, i: int, cols: np.ndarray | None = None) -> np.ndarray:
        """Boolean mask (over ``cols``, default all candidates) of candidates j ≼ candidates[i]."""
        return self.down_many(np.array([i]), cols)[0]

    def down_many(self, rows: np.ndarray, cols: np.ndarray | None = None) -> np.ndarray:
        """(len(rows), len(cols)) mask: cell [r, c] is True when candidates[cols[c]] ≼ candidates[rows[r]]."""
        rows = np.asarray(rows, dtype=np.int64)
        n = len(self.candidates)
        cols_idx = np.arange(n) if cols is None else np.asarray(cols, dtype=np.int64)
        if self._cols is None:
            return np.array([self._row(int(r))[cols_idx] for r in rows], dtype=bool).reshape(len(rows), len(cols_idx))
        words, guards = self._packed()
        sub = words[:, cols_idx] if cols is not None else words
        top = words[:, rows] | guards[:, None]
        out = np.empty((len(rows), len(cols_idx)), dtype=bool)
        step = max(1, _CHUNK_CELLS // max(1, len(cols_idx)))
        for s in range(0, len(rows), step):
            block = out[s:s + step]
            for w in range(len(guards)):
                hit = ((top[w, s:s + step, None] - sub[w][None, :]) & guards[w]) == guards[w]
                if w == 0:
                    block[...] = hit
                else:
                    block &= hit
        return out

    def up(self, i: int, cols: np.ndarray | None = None) -> np.ndarray:
        """Mask (over ``cols``) of candidates j with candidates[i] ≼ candidates[j]."""
        cols_idx = np.arange(len(self.candidates)) if cols is None else np.asarray(cols, dtype=np.int64)
        if self._cols is None:
            a = self.candidates[i]
            return np.array([self.space.le(a, self.candidates[j]) for j in cols_idx], dtype=bool)
        words, guards = self._packed()
        sub = words[:, cols_idx] | guards[:, None]
        mask = np.ones(len(cols_idx), dtype=bool)
        for w in range(len(guards)):
            mask &= ((sub[w] - words[w, i]) & guards[w]) == guards[w]
        return mask

    def _row(self, i: int) -> np.ndarray:
        row = self._rows.get(i)
        if row is None:
            a = self.candidates[i]
            row = np.array([self.space.le(b, a) for b in self.candidates], dtype=bool)
            self._rows[i] = row
        return row

    def size_score(self) -> np.ndarray:
        """A cheap stand-in for down-set size: the sum of each gene's rank (larger = more
        sub-architectures below). Pairwise-only spaces get zeros."""
        n = len(self.candidates)
        if self._cols is None:
            return np.zeros(n)
        score = np.zeros(n)
        for g in range(self._cols.shape[0]):
            col = self._cols[g]
            score += np.searchsorted(np.unique(col), col) / max(1, len(np.unique(col)) - 1)
        return score
