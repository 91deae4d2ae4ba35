"""Are whole-network timings repeatable at N threads on this host? Before judging a
multi-threaded table by its fidelity, the end-to-end times it is judged against must hold
still: this times the same whole nets in passes at a sequence of thread counts (default
2, 1, 2, each on as many pinned CPUs), with the target's protocol, and reports each net's
median per pass and each 2-thread pass against the first.

Nets: the first N validation nets of a lut_fidelity JSON (default
results/lut_fidelity_df_2threads.json), so the figures sit beside that run's. Writes
benchmarks/results/thread_repeatability.json.

    .venv/bin/python benchmarks/thread_repeatability.py [--n 8] [--passes 2 1 2]

Run it on an idle machine.
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine, write_report  # noqa: E402

HERE = Path(__file__).resolve().parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fidelity", type=Path, default=HERE / "results" / "lut_fidelity_df_2threads.json")
    ap.add_argument("--space", default="df")
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--passes", type=int, nargs="+", default=[2, 1, 2], help="thread count of each pass")
    ap.add_argument("-o", "--output", type=Path, default=HERE / "results" / "thread_repeatability.json")
    args = ap.parse_args()

    import numpy as np
    import torch

    from plaid.lut.bench import model_files
    from plaid.lut.session import LocalSession
    from plaid.spaces import parse_arch
    from plaid.targets import load_target

    rows = json.loads(args.fidelity.read_text())["spaces"][args.space]["validation"][:args.n]
    res = json.loads(args.fidelity.read_text())["spaces"][args.space]["resolution"]

    def seeded(space, arch):
        def make():
            torch.manual_seed(0)  # the weights lut_fidelity's validation nets had
            return space.build(arch).eval()
        return make

    jobs = []
    for r in rows:
        space, arch = parse_arch(r["arch"].split("@")[0])
        jobs.append((r["arch"], seeded(space, arch), (1, 3, *res)))
    paths = model_files(jobs, "tflite")
    passes = []
    for threads in args.passes:
        target = load_target("host").with_threads(threads)
        got: list[dict] = []
        LocalSession(target).measure([(r["arch"], p) for r, p in zip(rows, paths)], got.append, None)
        medians = {e["key"]: e["median_ms"] for e in got if e.get("event") == "result" and e["status"] == "ok"}
        passes.append({"threads": threads, "cpus": list(target.measure.cpus or []),
                       "median_ms": [medians.get(r["arch"]) for r in rows]})
        print(f"pass {len(passes)}: {threads} thread(s): " + " ".join(f"{m:.2f}" for m in passes[-1]["median_ms"]))
    first = {}
    for p in passes:
        ref = first.setdefault(p["threads"], p)
        if ref is not p:
            ratio = np.array(p["median_ms"]) / np.array(ref["median_ms"])
            p["vs_first_pass_of_this_thread_count"] = {"mean": float(ratio.mean()), "min": float(ratio.min()),
                                                       "max": float(ratio.max())}
    nets = [{"arch": r["arch"], "fidelity_run_measured_ms": r["measured_ms"], "plain_sum_ms": r["plain_sum_ms"]}
            for r in rows]
    write_report(args.output, {"benchmark": "thread_repeatability", "machine": machine(), "fidelity": args.fidelity.name,
                               "nets": nets, "passes": passes})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
