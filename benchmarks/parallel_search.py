"""What running trainings in parallel buys (wall time) and costs (trainings).

(a) **Wall time**, ``plaid search --workers 1`` against ``--workers 2`` on this machine: the
embedded default (host target, the whole pl1a space, digits-affine, the 375-step proxy at
1 thread per training), ``--budget 6``, each run in a fresh run folder (so the baseline net
of the report is trained too), runs alternated 1, 2, 1, 2, ... to spread the machine's
load over both. The two settings do not train the same nets (2 in flight pick
differently), so the summed training seconds of each run are recorded next to its wall
time. Goal: ≥ 1.7× faster with 2 workers on 2 cores.

(b) **Trainings**, to 98% and 99% of the true hypervolume with k = 1, 4, 16 in flight, on
the calibrated violation model of ``search_efficiency.py`` (its 18,432-net PL1A
sub-space, its calibration, its seeds). Results come back in simulated time: k workers,
each training lasting its net's latency (training cost grows with the net) times a
log-normal jitter (σ 0.3), the earliest to finish first; k = 1 is the serial engine.
"Trainings" are finished ones, counted when the share is first reached; the ones still in
flight at that moment are reported too (``*_submitted``). The shipped rule for picks made
while others are pending (``PopStrategy(pending="front")``) runs at every k; the two
alternatives (``dominated``, ``ignore``) at the largest k, for comparison. Goal: k = 16
needs ≤ 1.3× the trainings of k = 1 to 98% (median over seeds).

    .venv/bin/python benchmarks/parallel_search.py [--seeds 10] [--repeats 2] [--skip-wall]
Writes benchmarks/results/parallel_search.json."""

from __future__ import annotations

import argparse
import heapq
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _machine import machine, write_report  # noqa: E402

ROOT = HERE.parent


class SimulatedWorkers:
    """k workers on a simulated clock (the engine's trainer interface): a submitted net
    starts at once (the engine keeps at most k in flight) and finishes after its duration."""

    def __init__(self, accuracy, duration, seed: int) -> None:
        self.accuracy, self.duration = accuracy, duration
        self.rng = np.random.default_rng(seed)
        self.clock = 0.0
        self._heap: list = []
        self.submitted = 0

    def submit(self, ticket, arch, seed=0, key=""):
        end = self.clock + self.duration(arch) * float(np.exp(self.rng.normal(0, 0.3)))
        heapq.heappush(self._heap, (end, ticket, arch))
        self.submitted += 1

    def next(self):
        from plaid.search.workers import Done

        end, ticket, arch = heapq.heappop(self._heap)
        took, self.clock = end - self.clock, end
        return Done(ticket, float(self.accuracy(arch)), "sim", took)


def trainings(seeds: int, budget: int, ks: list[int], rules: list[str]) -> dict:
    import search_efficiency as se
    from plaid.search import search
    from plaid.search.front import hypervolume
    from plaid.search.strategies import PopStrategy
    from plaid.spaces.pl1a import PL1ASpace

    space = PL1ASpace()
    space.rules = se.RULES
    archs = list(space.enumerate())
    E = np.array([space.embed(a) for a in archs])
    params, reached = se.calibrate(E, 0)
    print(f"{len(archs)} nets; violation model {params}", flush=True)
    out = {"space": "pl1a sub-space " + repr(se.RULES), "space_size": len(archs), "budget": budget,
           "violation_model": params, "violation_reached": reached, "seeds": seeds,
           "durations": "latency of the net x lognormal(0, 0.3), k simulated workers", "k": {}}
    configs = [(k, "front") for k in ks] + [(ks[-1], r) for r in rules if r != "front"]
    for k, rule in configs:
        name = str(k) if rule == "front" else f"{k}-{rule}"
        rows = []
        for seed in range(seeds):
            acc, lat = se.make_world(E, **params, seed=1000 + seed)
            index = {a: i for i, a in enumerate(archs)}
            pts = list(zip(lat.tolist(), acc.tolist()))
            ref_lat, ref_acc = float(lat.max()), float(acc.min())
            curve = se.Curve(ref_lat, ref_acc, hypervolume(pts, ref_lat, ref_acc))
            sim = SimulatedWorkers(lambda a: acc[index[a]], lambda a: lat[index[a]], seed)
            subs: list[int] = []
            clocks: list[float] = []

            def seen(ev, state):
                curve.add(ev.latency, ev.accuracy)
                subs.append(sim.submitted)
                clocks.append(sim.clock)

            t0 = time.perf_counter()
            res = search(space, lambda a: lat[index[a]], lambda a: acc[index[a]], budget=budget, seed=seed,
                         batch=k, trainer=sim, on_result=seen, strategy=PopStrategy(pending=rule))
            secs = time.perf_counter() - t0
            row = {"seed": seed, "trained": res.trained, "pruned": res.pruned, "stop_reason": res.stop_reason,
                   "probes": res.probes, "audited": res.audit["audited"], "seconds": round(secs, 2),
                   "final_hv_share": curve.shares[-1] if curve.shares else 0.0}
            for share in (0.95, 0.98, 0.99):
                n = curve.first(share)
                row[f"to_{int(share * 100)}"] = n
                row[f"to_{int(share * 100)}_submitted"] = subs[n - 1] if n else None
                row[f"to_{int(share * 100)}_sim_time"] = round(clocks[n - 1], 2) if n else None
            rows.append(row)
            print(f"k {name:12s} seed {seed} trained {res.trained:5d} to98 {row['to_98']} to99 {row['to_99']} "
                  f"final {row['final_hv_share']:.4f} ({secs:.1f} s)", flush=True)
        med = {p: _median([r[f"to_{p}"] for r in rows]) for p in (95, 98, 99)}
        out["k"][name] = {"pending_rule": rule, "runs": rows, **{f"median_to_{p}": v for p, v in med.items()},
                            "median_sim_time_to_98": _median([r["to_98_sim_time"] for r in rows]),
                            "reached_99_every_seed": all(r["to_99"] is not None for r in rows)}
    base = out["k"][str(ks[0])]
    out["relative_to_k1"] = {k: {f"to_{p}": _ratio(v[f"median_to_{p}"], base[f"median_to_{p}"]) for p in (98, 99)}
                             | {"sim_time_to_98": _ratio(v["median_sim_time_to_98"], base["median_sim_time_to_98"])}
                             for k, v in out["k"].items()}
    top = out["relative_to_k1"][str(ks[-1])]["to_98"]
    out["goal"] = {"text": f"k = {ks[-1]} needs <= 1.3x the trainings of k = 1 to 98% (median)",
                   "measured": top, "met": top is not None and top <= 1.3}
    return out


def wall(repeats: int, budget: int, runs_dir: Path) -> dict:
    rows = []
    env = {**os.environ, "NO_COLOR": "1"}
    for r in range(repeats):
        for workers in (1, 2):
            load = os.getloadavg()
            t0 = time.perf_counter()
            out = subprocess.run([sys.executable, "-m", "plaid", "search", "--budget", str(budget), "--workers",
                                  str(workers), "--runs-dir", str(runs_dir), "--json"], capture_output=True,
                                 text=True, env=env, cwd=ROOT)
            secs = time.perf_counter() - t0
            if out.returncode != 0:
                raise SystemExit(f"plaid search --workers {workers} failed: {out.stderr.strip()[-500:]}")
            s = json.loads(out.stdout)
            train_s = sum(e.get("seconds") or 0.0 for e in s["evaluated"])
            row = {"repeat": r, "workers": workers, "wall_seconds": round(secs, 1),
                   "training_seconds": round(train_s, 1), "trained": s["trained"],
                   "baselines_trained": len(s["baselines"]), "load_average_before": [round(x, 2) for x in load],
                   "load_average_after": [round(x, 2) for x in os.getloadavg()],
                   "front": [e["arch"] for e in s["front"]],
                   "trained_by": s["workers"]["trained_by"]}
            rows.append(row)
            print(f"workers {workers} repeat {r}: {secs:.1f} s wall, {train_s:.1f} s of training, "
                  f"load {load[0]:.2f}", flush=True)
    med = {w: statistics.median(r["wall_seconds"] for r in rows if r["workers"] == w) for w in (1, 2)}
    medt = {w: statistics.median(r["training_seconds"] for r in rows if r["workers"] == w) for w in (1, 2)}
    speedup = med[1] / med[2]
    return {"command": f"plaid search --budget {budget} --workers N --json (embedded default)", "budget": budget,
            "runs": rows, "median_wall_seconds": {str(k): v for k, v in med.items()},
            "median_training_seconds": {str(k): v for k, v in medt.items()},
            "speedup": round(speedup, 3),
            "goal": {"text": "--workers 2 >= 1.7x faster than --workers 1", "measured": round(speedup, 3),
                     "met": speedup >= 1.7}}


def _median(xs):
    xs = [math.inf if x is None else x for x in xs]
    return statistics.median(xs) if xs else None


def _ratio(a, b):
    if a is None or b is None or not math.isfinite(a) or not math.isfinite(b) or b == 0:
        return None
    return round(a / b, 3)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--budget", type=int, default=6000, help="trainings per simulated search (default 6000)")
    ap.add_argument("--k", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--rules", nargs="+", default=["front", "dominated", "ignore"],
                    help="pending rules compared at the largest k (front runs at every k)")
    ap.add_argument("--repeats", type=int, default=2, help="wall-time runs per worker count (default 2)")
    ap.add_argument("--wall-budget", type=int, default=6)
    ap.add_argument("--skip-wall", action="store_true")
    ap.add_argument("--skip-trainings", action="store_true")
    ap.add_argument("-o", "--output", type=Path, default=HERE / "results" / "parallel_search.json")
    args = ap.parse_args()
    report: dict = {"benchmark": "parallel_search", "machine": machine(), "cores": len(os.sched_getaffinity(0)),
                    "load_average_at_start": list(os.getloadavg()),
                    "note": "the machine is shared with other agents working at the same time: wall times carry "
                            "their load (load averages recorded per run)"}
    if args.output.is_file():  # keep the part not rerun
        old = json.loads(args.output.read_text())
        for part in ("wall_time", "trainings"):
            if part in old:
                report[part] = old[part]
    if not args.skip_trainings:
        report["trainings"] = trainings(args.seeds, args.budget, args.k, args.rules)
        print(report["trainings"]["relative_to_k1"], report["trainings"]["goal"], flush=True)
    if not args.skip_wall:
        with tempfile.TemporaryDirectory(prefix="plaid-bench-") as tmp:
            report["wall_time"] = wall(args.repeats, args.wall_budget, Path(tmp))
        print(report["wall_time"]["goal"], flush=True)
    report["load_average_at_end"] = list(os.getloadavg())
    write_report(args.output, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
