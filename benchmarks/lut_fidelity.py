"""How well the host latency table predicts whole networks.

For DF at 224x224 and PL1A at 384x640: build (or finish) the host table, measure K
calibration nets and N other sampled nets end to end (whole network converted with the
same path and run with the same protocol), fit the predictor on the K, and report on the N:
MAPE, max error, share within ±10%, Kendall's tau; for the calibrated predictor, for the
plain sum of units, and for the baseline a table has to beat: a line in MACs fitted on the
same K nets. Writes benchmarks/results/lut_fidelity.json.

    .venv/bin/python benchmarks/lut_fidelity.py [--n 30] [--calibrate 5] [--spaces df pl1a]
    .venv/bin/python benchmarks/lut_fidelity.py --spaces pl1aseg dfseg --needed-units -o OUT.json
    .venv/bin/python benchmarks/lut_fidelity.py --spaces df --threads 2 -o OUT.json

``--needed-units`` measures only the units the sampled nets are made of, not the whole
space's (the decoder spaces have hundreds: 689 for pl1aseg); the predictions are the same,
the JSON says how many units that was of how many.

Run it on an idle machine: anything else running perturbs the timings.
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine, write_report  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--calibrate", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--spaces", nargs="+", default=["df", "pl1a"])
    ap.add_argument("--needed-units", action="store_true", help="measure only the units of the sampled nets")
    ap.add_argument("--threads", type=int, help="interpreter threads (the host's table pins as many CPUs)")
    ap.add_argument("--pairs", action="store_true",
                    help="also time adjacent unit pairs (all of the space's, or with --needed-units the sampled "
                         "nets'); reports the fidelity with and without their residuals")
    ap.add_argument("-o", "--output", type=Path, default=Path(__file__).resolve().parent / "results" / "lut_fidelity.json")
    args = ap.parse_args()

    from plaid.cli.render import ProgressBars
    from plaid.lut.bench import build_table, open_table
    from plaid.lut.units import space_units
    from plaid.lut.validate import calibrate_and_validate, sampled_nets
    from plaid.spaces import get_space
    from plaid.targets import load_target

    target = load_target("host").with_threads(args.threads)
    out = {"benchmark": "lut_fidelity", "machine": machine(), "target": target.to_json(), "goal":
           {"mape_pct_max": 5.0, "within_10pct_min": 0.95}, "spaces": {}}
    for name in args.spaces:
        space = get_space(name)
        res = target.resolution(name)
        t0 = time.time()
        with open_table(target, name, None, create=True) as table, ProgressBars() as bars:
            units = None
            if args.needed_units:
                calib, valid = sampled_nets(space, args.calibrate, args.n, args.seed)
                units = sorted({u for a in calib + valid for u in space.units(a, res)})
            if args.pairs:
                from plaid.lut.pairs import arch_pairs, space_pairs

                pairs = (sorted({p for a in calib + valid for p in arch_pairs(space, a, res)}) if args.needed_units
                         else space_pairs(space, res))
                units = (units if units is not None else space_units(space, res)) + pairs
            build = build_table(target, space, res, table, bars, units=units).to_json()
            build["space_units"] = len(space_units(space, res))
            val = calibrate_and_validate(target, space, res, table, args.calibrate, args.n, args.seed, bars)
        out["spaces"][name] = {"resolution": list(res), "build": build, "seconds": round(time.time() - t0, 1),
                               "fidelity": val["fidelity"], "fidelity_plain_sum": val["fidelity_plain_sum"],
                               "fidelity_macs": val.get("fidelity_macs"), "macs_baseline": val.get("macs_baseline"),
                               "calibration": val["calibration"], "validation": val["validation"]}
        for key in ("pairs", "fidelity_without_pairs", "calibration_without_pairs"):
            if key in val:
                out["spaces"][name][key] = val[key]
        f, fm = val["fidelity"], val.get("fidelity_macs")
        print(f"{name}@{res[0]}x{res[1]}: MAPE {f['mape_pct']:.2f}%  within±10% {f['within_10pct']:.0%}  "
              f"tau {f['kendall_tau']:.3f}  (plain sum MAPE {val['fidelity_plain_sum']['mape_pct']:.2f}%)"
              + (f"  MACs line: MAPE {fm['mape_pct']:.2f}%  within±10% {fm['within_10pct']:.0%}  "
                 f"tau {fm['kendall_tau']:.3f}" if fm else ""))
        if "fidelity_without_pairs" in val:
            fp = val["fidelity_without_pairs"]
            print(f"  without the {val['pairs']['pairs']} pairs: MAPE {fp['mape_pct']:.2f}%  "
                  f"within±10% {fp['within_10pct']:.0%}  tau {fp['kendall_tau']:.3f}")
    write_report(args.output, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
