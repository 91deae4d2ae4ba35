"""Partial Order Pruning search. ``search(space, latency, accuracy, budget, ...)`` works on
any space object with ``sample(rng)``, ``le(a, b)``, ``key(a)`` (and ``enumerate()`` for
finite spaces)."""

from plaid.search.engine import Evaluated, SearchResult, search

__all__ = ["search", "SearchResult", "Evaluated"]
