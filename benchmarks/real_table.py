"""Build, once, a real (latency, accuracy) table of a whole PL1A sub-space: every net
timed by the host latency table (PL1A at 384x640, measured with the TFLite interpreter)
and trained by plaid's built-in proxy trainer on the embedded dataset (digits-affine at
32x32 unless --dataset says otherwise), with the defaults `plaid search` uses. It is the ground truth of the
"real table" half of benchmarks/search_efficiency.py (--real-table).

Sub-space: widths {24,48}/{48,96}/{96,192}, units 1-3/1-4/1-3 (288 nets).
Resumable: nets already in the output file are kept. Writes
benchmarks/data/pl1a_<dataset>_proxy_table.json (how it was made included).

    .venv/bin/python benchmarks/real_table.py [--jobs 2] [--limit N] [--dataset digits]"""

import argparse
import json
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402

RULES = (("stage1", (24, 48), (1, 3)), ("stage2", (48, 96), (1, 4)), ("stage3", (96, 192), (1, 3)))
DATA = Path(__file__).resolve().parent / "data"
_WORKER = {}


def _init(dataset: str, proxy: dict) -> None:
    from plaid.spaces.pl1a import PL1ASpace
    from plaid.train.datasets import load_dataset
    from plaid.train.evaluators import make_evaluator
    from plaid.train.proxy import ProxyConfig

    cfg = ProxyConfig(**proxy)
    space = PL1ASpace()
    space.rules = RULES
    data = load_dataset(dataset, cfg.resolution, seed=cfg.seed)
    _WORKER["space"] = space
    _WORKER["ev"] = make_evaluator("proxy", space, dataset=data, cfg=cfg, checkpoint_dir=None, log=lambda m: None)


def _train(key: str) -> float:
    from plaid.spaces import parse_arch

    return float(_WORKER["ev"](parse_arch(key)[1]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, help="stop after this many new trainings (for a partial build)")
    ap.add_argument("--jobs", type=int, default=1, help="trainings in parallel, one thread each")
    ap.add_argument("--dataset", default=None, help="default: plaid search's (digits-affine)")
    ap.add_argument("-o", "--output", type=Path, default=None, help="default data/pl1a_<dataset>_proxy_table.json")
    args = ap.parse_args()

    from plaid.fsio import atomic_write_text
    from plaid.lut.bench import build_table, open_table
    from plaid.lut.predictor import Predictor
    from plaid.search.run import SearchConfig
    from plaid.spaces.pl1a import PL1ASpace
    from plaid.targets import load_target
    from plaid.train.proxy import ProxyConfig

    cfg = SearchConfig(dataset=args.dataset or "digits-affine")  # SearchConfig leaves "" to the space's task
    args.output = args.output or DATA / f"pl1a_{cfg.dataset.replace('-', '_')}_proxy_table.json"
    space = PL1ASpace()
    space.rules = RULES
    target = load_target("host")
    res = target.resolution("pl1a")
    with open_table(target, "pl1a", None, create=True) as table:
        build_table(target, space, res, table, lambda *a: None)
        lat = Predictor(table, space, res)
        table_name = table.meta.name()
    proxy = ProxyConfig(epochs=cfg.epochs, resolution=cfg.proxy_resolution, seed=cfg.seed, device="cpu",
                        stem_unstride=cfg.proxy_unstride, lr=cfg.proxy_lr)
    doc = json.loads(args.output.read_text()) if args.output.is_file() else {}
    if doc and doc.get("accuracy", {}).get("proxy") != proxy.to_dict():
        raise SystemExit(f"{args.output} was made with another proxy config; move it away first")
    nets = doc.get("nets", {})
    archs = [a for a in space.enumerate() if space.key(a) not in nets]
    if args.limit is not None:
        archs = archs[:args.limit]
    total = len(nets) + len(archs)
    t0 = time.time()
    ctx = multiprocessing.get_context("spawn")  # not fork: torch's OpenMP threads
    with ProcessPoolExecutor(args.jobs, mp_context=ctx, initializer=_init,
                             initargs=(cfg.dataset, proxy.to_dict())) as pool:
        futures = [(a, pool.submit(_train, space.key(a))) for a in archs]
        for new, (a, fut) in enumerate(futures, 1):
            key = space.key(a)
            nets[key] = {"latency_ms": float(lat(a)), "accuracy": fut.result()}
            print(f"[{len(nets)}/{total}] {key}: {nets[key]['latency_ms']:.3f} ms, top-1 {nets[key]['accuracy']:.4f}",
                  flush=True)
            if new % 10 == 0:
                _write(args.output, nets, space, table_name, proxy, cfg, atomic_write_text)
    _write(args.output, nets, space, table_name, proxy, cfg, atomic_write_text)
    print(f"{len(nets)} of {total} nets in {args.output} ({len(archs)} trained now, {time.time() - t0:.0f} s)")
    return 0


def _write(path, nets, space, table_name, proxy, cfg, atomic_write_text):
    doc = {"what": f"every net of a PL1A sub-space: host-table latency and proxy top-1 on {cfg.dataset}",
           "space": {"name": "pl1a", "rules": [list(map(list, r[1:])) for r in RULES]},
           "latency": f"host latency table {table_name} (TFLite interpreter, sum of units + fitted overhead)",
           "accuracy": {"dataset": cfg.dataset, "proxy": proxy.to_dict(),
                        "evaluator": "plaid's proxy trainer, the defaults of `plaid search`"},
           "machine": machine(), "made_by": "benchmarks/real_table.py", "nets": nets}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
