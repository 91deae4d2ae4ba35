"""How fast the predictor answers: 100,000 sampled DF archs predicted from the host table
(built by `plaid bench --space df`). Writes benchmarks/results/predictor_speed.json.

    .venv/bin/python benchmarks/predictor_speed.py [--n 100000]
"""

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine, write_report  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--space", default="df")
    ap.add_argument("-o", "--output", type=Path,
                    default=Path(__file__).resolve().parent / "results" / "predictor_speed.json")
    args = ap.parse_args()

    from plaid.lut.bench import open_table
    from plaid.lut.predictor import Predictor
    from plaid.spaces import get_space
    from plaid.targets import load_target

    target = load_target("host")
    space = get_space(args.space)
    res = target.resolution(args.space)
    rng = random.Random(0)
    t0 = time.perf_counter()
    archs = [space.sample(rng) for _ in range(args.n)]
    t_sample = time.perf_counter() - t0
    with open_table(target, args.space, None, create=False) as table:
        pred = Predictor(table, space, res)
        t0 = time.perf_counter()
        first = pred.predict_many(archs)
        t_cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = pred.predict_many(archs)
        t_warm = time.perf_counter() - t0
    assert (first == again).all()
    report = {"benchmark": "predictor_speed", "machine": machine(), "space": args.space, "resolution": list(res),
              "n": args.n, "distinct": len(set(archs)), "sample_s": t_sample, "predict_cold_s": t_cold,
              "predict_cached_s": t_warm, "predictions_per_s_cold": args.n / t_cold,
              "latency_ms_range": [float(first.min()), float(first.max())]}
    print(f"{args.n} {args.space} archs: sampled in {t_sample:.2f} s, predicted in {t_cold:.2f} s "
          f"(cached {t_warm:.2f} s); {first.min():.2f}..{first.max():.2f} ms")
    write_report(args.output, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
