"""Milliseconds per pick of the POP engine at 15,625 and 10⁶ candidates.

A synthetic finite space (6 integer genes, 5⁶ = 15,625 or 10⁶ = 10 values each) with an
order embedding, an additive latency and a noisy saturating accuracy (order violations
included, so margin, probes and audit all work). The accuracy is a table lookup, so the
time measured is the engine's own: selection, pruning updates, audit bookkeeping.
Enumeration of the space and its latencies is timed separately.
Goal (issue 10): ≤ 20 ms per pick at 15,625, ≤ 300 ms at 10⁶.

    .venv/bin/python benchmarks/engine_speed.py [--picks 300]
Writes benchmarks/results/engine_speed.json."""

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine, write_report  # noqa: E402


class Grid:
    name = "grid"

    def __init__(self, size: int, dims: int = 6) -> None:
        self.size, self.dims = size, dims

    def embed(self, a):
        return a

    def le(self, a, b):
        return all(x <= y for x, y in zip(a, b))

    def key(self, a):
        return "grid:" + "-".join(map(str, a))

    def sample(self, rng):
        return tuple(rng.randrange(self.size) for _ in range(self.dims))

    def enumerate(self):
        return itertools.product(range(self.size), repeat=self.dims)


def world(space: Grid, seed: int):
    rng = np.random.default_rng(seed)
    w_lat = rng.uniform(0.5, 2.0, space.dims)
    w_acc = rng.uniform(0.5, 2.0, space.dims)
    noise: dict = {}

    def lat(a):
        return 1.0 + float(np.dot(w_lat, a))

    def acc(a):
        v = noise.get(a)
        if v is None:
            r = np.random.default_rng(hash(a) & 0xFFFFFFFF)
            v = noise[a] = float(np.dot(w_acc, np.log1p(a)) + r.normal(0, 0.05))
        return v

    return lat, acc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--picks", type=int, default=300)
    ap.add_argument("-o", "--output", type=Path,
                    default=Path(__file__).resolve().parent / "results" / "engine_speed.json")
    args = ap.parse_args()
    from plaid.search import search

    import os

    report = {"benchmark": "engine_speed", "machine": machine(), "load_average_at_start": os.getloadavg(),
              "picks": args.picks,
              "goal_ms_per_pick": {"15625": 20, "1000000": 300}, "sizes": {}}
    for size in (5, 10):
        space = Grid(size)
        lat, acc = world(space, 0)
        n = size ** space.dims
        t0 = time.perf_counter()
        list(space.enumerate())
        enum_s = time.perf_counter() - t0
        times = []
        last = [time.perf_counter()]

        def on_result(ev, state):
            now = time.perf_counter()
            times.append(now - last[0])
            last[0] = now

        res = search(space, lat, acc, budget=args.picks, seed=0, on_result=on_result)
        setup = times[0]  # candidates, order index, first pick
        per = np.array(times[1:]) * 1000  # the first interval includes no selection work of note
        row = {"candidates": n, "trained": res.trained, "pruned": res.pruned, "probes": res.probes,
               "audited": res.audit["audited"], "setup_s": setup, "enumerate_s": enum_s,
               "ms_per_pick_mean": float(per.mean()), "ms_per_pick_median": float(np.median(per)),
               "ms_per_pick_p90": float(np.quantile(per, 0.9)), "ms_per_pick_max": float(per.max())}
        report["sizes"][str(n)] = row
        print(f"{n:>8} candidates: setup {setup:.1f} s, per pick mean {row['ms_per_pick_mean']:.1f} ms, "
              f"median {row['ms_per_pick_median']:.1f}, p90 {row['ms_per_pick_p90']:.1f}, "
              f"max {row['ms_per_pick_max']:.1f}; pruned {res.pruned}", flush=True)
    write_report(args.output, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
