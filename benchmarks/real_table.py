"""Build, once, a real (latency, accuracy) table of a whole PL1A sub-space: every net
timed by the host latency table (PL1A at 384x640, measured with the TFLite interpreter)
and trained by plaid's built-in proxy trainer on the embedded dataset (scikit-learn's
digits at 32x32), with the defaults `plaid search` uses. It is the ground truth of the
"real table" half of benchmarks/search_efficiency.py (--real-table).

Sub-space: widths {24,48}/{48,96}/{96,192}, units 1-3/1-4/1-3 (288 nets).
Resumable: nets already in the output file are kept. Writes
benchmarks/data/pl1a_digits_proxy_table.json (how it was made included).

    .venv/bin/python benchmarks/real_table.py [--limit N]"""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402

RULES = (("stage1", (24, 48), (1, 3)), ("stage2", (48, 96), (1, 4)), ("stage3", (96, 192), (1, 3)))
OUT = Path(__file__).resolve().parent / "data" / "pl1a_digits_proxy_table.json"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, help="stop after this many new trainings (for a partial build)")
    ap.add_argument("-o", "--output", type=Path, default=OUT)
    args = ap.parse_args()

    from plaid.fsio import atomic_write_text
    from plaid.lut.bench import build_table, open_table
    from plaid.lut.predictor import Predictor
    from plaid.search.run import SearchConfig
    from plaid.spaces.pl1a import PL1ASpace
    from plaid.targets import load_target
    from plaid.train.datasets import load_dataset
    from plaid.train.evaluators import make_evaluator
    from plaid.train.proxy import ProxyConfig

    cfg = SearchConfig()
    space = PL1ASpace()
    space.rules = RULES
    target = load_target("host")
    res = target.resolution("pl1a")
    with open_table(target, "pl1a", None, create=True) as table:
        build_table(target, space, res, table, lambda *a: None)
        lat = Predictor(table, space, res)
        table_name = table.meta.name()
    dataset = load_dataset(cfg.dataset, cfg.proxy_resolution, seed=cfg.seed)
    proxy = ProxyConfig(epochs=cfg.epochs, resolution=cfg.proxy_resolution, seed=cfg.seed, device="cpu")
    evaluator = make_evaluator("proxy", space, dataset=dataset, cfg=proxy, checkpoint_dir=None, log=lambda m: None)
    doc = json.loads(args.output.read_text()) if args.output.is_file() else {}
    nets = doc.get("nets", {})
    archs = list(space.enumerate())
    new = 0
    t0 = time.time()
    for k, a in enumerate(archs):
        key = space.key(a)
        if key in nets:
            continue
        if args.limit is not None and new >= args.limit:
            break
        nets[key] = {"latency_ms": float(lat(a)), "accuracy": float(evaluator(a))}
        new += 1
        print(f"[{k + 1}/{len(archs)}] {key}: {nets[key]['latency_ms']:.3f} ms, top-1 {nets[key]['accuracy']:.4f}",
              flush=True)
        if new % 10 == 0 or k == len(archs) - 1:
            _write(args.output, nets, space, table_name, proxy, cfg, atomic_write_text)
    _write(args.output, nets, space, table_name, proxy, cfg, atomic_write_text)
    print(f"{len(nets)} of {len(archs)} nets in {args.output} ({new} trained now, {time.time() - t0:.0f} s)")
    return 0


def _write(path, nets, space, table_name, proxy, cfg, atomic_write_text):
    doc = {"what": "every net of a PL1A sub-space: host-table latency and proxy top-1 on digits",
           "space": {"name": "pl1a", "rules": [list(map(list, r[1:])) for r in RULES]},
           "latency": f"host latency table {table_name} (TFLite interpreter, sum of units + fitted overhead)",
           "accuracy": {"dataset": cfg.dataset, "proxy": proxy.to_dict(),
                        "evaluator": "plaid's proxy trainer, the defaults of `plaid search`"},
           "machine": machine(), "made_by": "benchmarks/real_table.py", "nets": nets}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
