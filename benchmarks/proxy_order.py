"""Does the proxy trainer's accuracy follow the partial order? POP prunes on the hypothesis
a ≼ b ⇒ Acc(a) ≤ Acc(b); a proxy that under-trains big nets breaks it.

Samples comparable pairs a ≼ b (b drawn from the space, a = ``space.shrink(b)``), trains
every net with the proxy trainer (the default ``ProxyConfig``, or ``--set`` overrides),
retrains a few with another seed to measure seed noise, and trains every net again with a
``--long-factor`` times longer step budget. Reports the share of pairs with
Acc(a) ≤ Acc(b) + noise (noise: RMS top-1 difference between two seeds), the strict share,
Kendall's tau between the proxy and the longer training, and seconds per training.
Goal on the embedded default (pl1a, digits-affine at 32x32): share ≥ 0.85 and tau ≥ 0.6.
Writes benchmarks/results/proxy_order_<space>.json.

    .venv/bin/python benchmarks/proxy_order.py --space pl1a --pairs 30 [--jobs 2]
    .venv/bin/python benchmarks/proxy_order.py --space df --pairs 12 --set bn_recalibrate=false
"""

import argparse
import math
import multiprocessing
import os
import random
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import fields, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine, write_report  # noqa: E402

_DATA = {}  # the dataset, loaded once per process


def parse_set(items: list[str]) -> dict:
    """``key=value`` overrides of ProxyConfig fields, typed like the field's default."""
    from plaid.train.proxy import ProxyConfig

    known = {f.name: f for f in fields(ProxyConfig)}
    out = {}
    for item in items:
        key, _, text = item.partition("=")
        if key not in known:
            raise SystemExit(f"--set: unknown ProxyConfig field {key!r} (known: {', '.join(known)})")
        low = text.strip().lower()
        if low in ("none", "null"):
            out[key] = None
        elif low in ("true", "false"):
            out[key] = low == "true"
        else:
            try:
                out[key] = int(text)
            except ValueError:
                out[key] = float(text)
    return out


def comparable_pairs(space, n: int, rng: random.Random) -> list:
    pairs, seen = [], set()
    for _ in range(100 * n):
        if len(pairs) == n:
            break
        b = space.sample(rng)
        a = space.shrink(b, rng)
        key = (space.encode(a), space.encode(b))
        if a == b or key in seen or not space.le(a, b):
            continue
        seen.add(key)
        pairs.append(key)
    return pairs


def _init(spec: str, resolution: int, seed: int) -> None:
    from plaid.train.datasets import load_dataset

    _DATA["ds"] = load_dataset(spec, resolution, seed=seed)


def train_one(arch: str, cfg_dict: dict) -> dict:
    """What ProxyEvaluator does for one arch: seed, build, train, validate."""
    import torch

    from plaid.spaces import parse_arch
    from plaid.train.proxy import ProxyConfig, train_and_evaluate

    cfg = ProxyConfig(**cfg_dict)
    ds = _DATA["ds"]
    space, value = parse_arch(arch)
    torch.manual_seed(cfg.seed)
    model = space.build(value, num_classes=ds.num_classes)
    r = train_and_evaluate(model, ds, cfg)
    return {k: r[k] for k in ("top1", "val_loss", "loss", "steps", "train_seconds", "params", "diverged")}


def train_all(pool, archs: list[str], cfg, label: str) -> dict[str, dict]:
    t0 = time.perf_counter()
    futures = {a: pool.submit(train_one, a, cfg.to_dict()) for a in archs}
    out = {}
    for i, (a, fut) in enumerate(futures.items(), 1):
        out[a] = fut.result()
        print(f"[{label} {i}/{len(archs)}] {a:28s} top-1 {out[a]['top1']:.4f}  {out[a]['train_seconds']:5.1f} s",
              flush=True)
    print(f"{label}: {len(archs)} trainings in {time.perf_counter() - t0:.0f} s", flush=True)
    return out


def long_subset(pairs, n: int) -> list[str]:
    """The nets of the first pairs, whole pairs only, until ``n`` nets are taken."""
    out = []
    for a, b in pairs:
        if len(out) + 2 > n:
            break
        out.extend(x for x in (a, b) if x not in out)
    return out


def order_share(pairs, acc: dict, tol: float) -> float:
    return sum(acc[a] <= acc[b] + tol for a, b in pairs) / len(pairs)


def seconds_summary(results: dict) -> dict:
    secs = [r["train_seconds"] for r in results.values()]
    return {"mean": statistics.mean(secs), "median": statistics.median(secs), "max": max(secs)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--space", default="pl1a", help="a classification space (pl1a, df)")
    ap.add_argument("--pairs", type=int, default=30, help="comparable pairs to sample (default 30)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the pairs, the dataset split and the training")
    ap.add_argument("--dataset", default="digits-affine", help="default digits-affine (the embedded default)")
    ap.add_argument("--noise-nets", type=int, default=6, help="nets retrained with seed+1 for the seed noise")
    ap.add_argument("--long-factor", type=int, default=4, help="step budget of the reference training "
                    "(x the proxy's); 0 skips it")
    ap.add_argument("--long-nets", type=int, default=None, metavar="N",
                    help="train only the first N nets (pairs kept whole) the longer way; Kendall's tau is over "
                         "those (default all)")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="override a ProxyConfig field (repeatable), e.g. --set steps=200")
    ap.add_argument("--jobs", type=int, default=1, help="trainings in parallel, one thread each")
    ap.add_argument("-o", "--output", type=Path, default=None,
                    help="default benchmarks/results/proxy_order_<space>.json")
    args = ap.parse_args()

    import scipy
    import torch
    from scipy.stats import kendalltau

    from plaid.spaces import get_space
    from plaid.train.datasets import load_dataset
    from plaid.train.proxy import ProxyConfig

    space = get_space(args.space)
    if space.task != "classification":
        raise SystemExit(f"{args.space} is a {space.task} space; the proxy trains classification spaces")
    cfg = replace(ProxyConfig(seed=args.seed, threads=1), **parse_set(args.set))
    ds = load_dataset(args.dataset, cfg.resolution, seed=args.seed)
    steps = cfg.step_budget(len(ds.train))
    pairs = comparable_pairs(space, args.pairs, random.Random(args.seed))
    archs = list(dict.fromkeys(x for p in pairs for x in p))
    noise_archs = archs[:args.noise_nets]
    print(f"{len(pairs)} pairs, {len(archs)} nets; proxy: {steps} steps; load {os.getloadavg()[0]:.2f}", flush=True)

    t_start = time.perf_counter()
    load_before = os.getloadavg()
    # spawn, not fork: a child forked after torch has started its OpenMP threads can hang
    ctx = multiprocessing.get_context("spawn")
    init = (args.dataset, cfg.resolution, args.seed)
    with ProcessPoolExecutor(args.jobs, mp_context=ctx, initializer=_init, initargs=init) as pool:
        proxy = train_all(pool, archs, cfg, "proxy")
        other = train_all(pool, noise_archs, replace(cfg, seed=args.seed + 1), "seed+1")
        long_cfg = replace(cfg, steps=steps * args.long_factor) if args.long_factor else None
        long_archs = archs if args.long_nets is None else long_subset(pairs, args.long_nets)
        long = train_all(pool, long_archs, long_cfg, f"{args.long_factor}x") if long_cfg else {}

    acc = {a: r["top1"] for a, r in proxy.items()}
    diffs = [acc[a] - other[a]["top1"] for a in noise_archs]
    noise = math.sqrt(sum(d * d for d in diffs) / len(diffs)) if diffs else 0.0
    summary = {
        "pairs": len(pairs), "nets": len(archs),
        "share_order": order_share(pairs, acc, noise),
        "share_order_strict": order_share(pairs, acc, 0.0),
        "seed_noise_rms_top1_diff": noise,
        "seed_diffs": diffs,
        "proxy_seconds": seconds_summary(proxy),
    }
    if long:
        lacc = {a: r["top1"] for a, r in long.items()}
        keys = list(long)
        long_pairs = [(a, b) for a, b in pairs if a in lacc and b in lacc]
        tau, p = kendalltau([acc[a] for a in keys], [lacc[a] for a in keys])
        summary.update({"kendall_tau_proxy_vs_long": float(tau), "kendall_tau_p": float(p),
                        "long_nets": len(keys), "long_pairs": len(long_pairs),
                        "long_share_order": order_share(long_pairs, lacc, noise),
                        "long_share_order_strict": order_share(long_pairs, lacc, 0.0),
                        "long_seconds": seconds_summary(long)})
    goal = {"share_order_min": 0.85, "kendall_tau_min": 0.6}
    report = {
        "benchmark": "proxy_order", "space": args.space, "dataset": ds.describe(),
        "machine": {**machine(), "torch": torch.__version__, "scipy": scipy.__version__,
                    "torch_threads_per_training": cfg.threads, "jobs": args.jobs,
                    "loadavg_before": list(load_before), "loadavg_after": list(os.getloadavg())},
        "trainer": {"proxy": {**cfg.to_dict(), "resolved_steps": steps},
                    "long": {**long_cfg.to_dict(), "resolved_steps": long_cfg.steps} if long_cfg else None,
                    "overrides": parse_set(args.set)},
        "seed": args.seed, "goal": goal, "summary": summary,
        "wall_seconds": time.perf_counter() - t_start,
        "nets": {a: {"proxy": proxy[a], "seed+1": other.get(a), "long": long.get(a)} for a in archs},
        "pair_list": [{"a": a, "b": b, "acc_a": acc[a], "acc_b": acc[b]} for a, b in pairs],
    }
    print(f"share Acc(a) <= Acc(b) + {noise:.4f}: {summary['share_order']:.2%} "
          f"(strict {summary['share_order_strict']:.2%}); "
          + (f"tau vs {args.long_factor}x: {summary['kendall_tau_proxy_vs_long']:.3f}; " if long else "")
          + f"{summary['proxy_seconds']['mean']:.1f} s per proxy training")
    write_report(args.output or Path(__file__).resolve().parent / "results" / f"proxy_order_{args.space}.json", report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
