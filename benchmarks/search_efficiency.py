"""How many trainings each strategy needs to find the speed/accuracy front.

Ground truth: a small PL1A space (stage widths {24,48}/{48,96}/{96,192}, units 1-4/1-6/1-4:
768 archs) enumerated in full; latency from the host latency table (pl1a at 384x640, built
by `plaid bench --space pl1a`); accuracy synthetic and smooth, increasing along the partial
order (diminishing returns in width and depth) plus small per-arch noise. For 10 seeds and
each strategy: trainings until the trained set reaches 99% of the true front's
hypervolume, and trainings until the search stops (everything trained or pruned).
Strategies: pop; random-pruned (POP's pruning with a random selection rule); random
(plain random search); evolution (NSGA-II style, no pruning).
Goal: pop needs <= 1/3 of random's trainings and fewer than evolution's.
Writes benchmarks/results/search_efficiency.json.

    .venv/bin/python benchmarks/search_efficiency.py [--seeds 10] [--noise 0.002]
"""

import argparse
import hashlib
import math
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine, write_report  # noqa: E402

STAGES = (("stage1", (24, 48), (1, 4)), ("stage2", (48, 96), (1, 6)), ("stage3", (96, 192), (1, 4)))


def synthetic_accuracy(arch, noise: float) -> float:
    cap = sum(math.log2(w) * math.log1p(n) * (1.0 + 0.5 * i) for i, (w, n) in enumerate(arch.stages))
    h = int(hashlib.sha256(repr(arch.stages).encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return 0.55 + 0.4 * (1 - math.exp(-cap / 12.0)) + noise * (2 * h - 1)


def trainings_to_hv(result, ref_lat, ref_acc, target_hv):
    from plaid.search.front import hypervolume

    pts = []
    for i, e in enumerate(result.evaluated):
        pts.append((e.latency, e.accuracy))
        if hypervolume(pts, ref_lat, ref_acc) >= target_hv:
            return i + 1
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--noise", type=float, default=0.002)
    ap.add_argument("--strategies", nargs="+", default=["pop", "random-pruned", "random", "evolution"])
    ap.add_argument("-o", "--output", type=Path,
                    default=Path(__file__).resolve().parent / "results" / "search_efficiency.json")
    args = ap.parse_args()

    from plaid.lut.bench import open_table
    from plaid.lut.predictor import Predictor
    from plaid.search import search
    from plaid.search.front import hypervolume, pareto_front
    from plaid.spaces.pl1a import PL1ASpace
    from plaid.targets import load_target

    space = PL1ASpace()
    space.rules = STAGES  # the small sub-space (same class, narrower bounds)
    target = load_target("host")
    res = target.resolution("pl1a")
    with open_table(target, "pl1a", None, create=False) as table:
        lat = Predictor(table, space, res)
        archs = list(space.enumerate())
        lats = {a: lat(a) for a in archs}
    acc = {a: synthetic_accuracy(a, args.noise) for a in archs}
    violations = sum(1 for a in archs for b in archs if a != b and space.le(a, b) and acc[a] > acc[b])
    pts = [(lats[a], acc[a]) for a in archs]
    ref_lat, ref_acc = max(p[0] for p in pts), min(p[1] for p in pts)
    hv_true = hypervolume(pts, ref_lat, ref_acc)
    true_front = pareto_front(pts, lat=lambda p: p[0], acc=lambda p: p[1])
    report = {"benchmark": "search_efficiency", "machine": machine(), "space_size": len(archs),
              "true_front_size": len(true_front), "noise": args.noise, "order_violations": violations,
              "latency_table": "host pl1a@384x640", "seeds": args.seeds, "strategies": {}}
    for strategy in args.strategies:
        to99, total, pruned = [], [], []
        for seed in range(args.seeds):
            r = search(space, lambda a: lats[a], lambda a: acc[a], budget=10**6, strategy=strategy, seed=seed)
            to99.append(trainings_to_hv(r, ref_lat, ref_acc, 0.99 * hv_true))
            total.append(r.trained)
            pruned.append(r.pruned)
        report["strategies"][strategy] = {
            "trainings_to_99pct_hv": to99, "mean_to_99pct_hv": statistics.mean(to99),
            "trainings_until_done": total, "mean_until_done": statistics.mean(total),
            "mean_pruned": statistics.mean(pruned)}
        print(f"{strategy:10s} to 99% HV: mean {statistics.mean(to99):6.1f}  until done: "
              f"{statistics.mean(total):6.1f}  pruned {statistics.mean(pruned):6.1f} of {len(archs)}")
    s = report["strategies"]
    if "pop" in s and "random" in s:
        report["pop_over_random"] = s["pop"]["mean_to_99pct_hv"] / s["random"]["mean_to_99pct_hv"]
    if "pop" in s and "evolution" in s:
        report["pop_over_evolution"] = s["pop"]["mean_to_99pct_hv"] / s["evolution"]["mean_to_99pct_hv"]
    write_report(args.output, report)
    print(f"true front {len(true_front)} of {len(archs)}; order violations from noise: {violations}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
