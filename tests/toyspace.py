"""A small finite space with a known optimum, defined in the tests (not in plaid/)."""

import itertools
import math
import random


class GridSpace:
    """Archs are tuples of ints in 0..size-1; a ≼ b componentwise."""

    name = "grid"

    def __init__(self, dims: int = 3, size: int = 5, embed: bool = True) -> None:
        self.dims, self.size = dims, size
        if embed:
            self.embed = lambda a: a

    def sample(self, rng: random.Random):
        return tuple(rng.randrange(self.size) for _ in range(self.dims))

    def le(self, a, b) -> bool:
        return all(x <= y for x, y in zip(a, b))

    def key(self, a) -> str:
        return "grid:" + "-".join(map(str, a))

    def enumerate(self):
        return iter(itertools.product(range(self.size), repeat=self.dims))


def latency(a) -> float:
    """Increasing in every gene (costs differ per gene)."""
    return 1.0 + sum((i + 1) * 0.7 * x + 0.05 * x * x for i, x in enumerate(a))


def make_accuracy(seed: int):
    """A random accuracy that obeys the partial order: increasing, saturating per gene."""
    rng = random.Random(seed)
    gains = [[rng.uniform(0.0, 1.0) for _ in range(10)] for _ in range(8)]
    scales = [rng.uniform(0.5, 3.0) for _ in range(8)]

    def acc(a) -> float:
        return sum(scales[i] * (1 - math.exp(-sum(gains[i][:x + 1]))) for i, x in enumerate(a))

    return acc


def true_front(space, acc):
    pts = [(latency(a), acc(a), a) for a in space.enumerate()]
    pts.sort(key=lambda p: (p[0], -p[1]))
    front, best = [], float("-inf")
    for lat, ac, a in pts:
        if ac > best:
            front.append(a)
            best = ac
    return front
