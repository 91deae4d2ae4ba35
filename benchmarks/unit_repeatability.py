"""Is a unit's measurement repeatable on an idle host? Times the same units R times (each
a separate device_bench run with the host protocol) and reports, per unit, the within-run
CV the tool records and the CV of the medians across runs. Goal: CV <= 3%.
Writes benchmarks/results/unit_repeatability.json.

    .venv/bin/python benchmarks/unit_repeatability.py [--repeats 10]
"""

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine, write_report  # noqa: E402

UNITS = ["df.basic-in:28x28x64-out:28x28x64-s1", "df.bottleneck-in:14x14x512-mid:128-out:14x14x512-s1",
         "pl1a.shuffle-in:24x40x96-out:24x40x96-s1", "head-in:7x7x512-out:1000"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("-o", "--output", type=Path,
                    default=Path(__file__).resolve().parent / "results" / "unit_repeatability.json")
    args = ap.parse_args()

    from plaid.lut.bench import convert_units, measure_models
    from plaid.lut.units import space_units
    from plaid.spaces import get_space
    from plaid.targets import load_target

    target = load_target("host")
    pool = {u.key: u for name in ("df", "pl1a") for u in space_units(get_space(name), target.resolution(name))}
    units = [pool[k] for k in UNITS]
    paths = convert_units(units)
    runs: dict[str, list] = {u.key: [] for u in units}
    for _ in range(args.repeats):
        measure_models(target, [(u.key, paths[u.key]) for u in units],
                       lambda key, lat, err: runs[key].append(lat))
    report = {"benchmark": "unit_repeatability", "machine": machine(), "protocol": target.protocol,
              "repeats": args.repeats, "goal_cv_max": 0.03, "units": {}}
    for key, lats in runs.items():
        meds = [lat.median_ms for lat in lats]
        across = statistics.stdev(meds) / statistics.mean(meds)
        report["units"][key] = {"medians_ms": meds, "cv_across_runs": across,
                                "cv_within_run_max": max(lat.cv for lat in lats)}
        print(f"{key:55s} median {statistics.median(meds):8.4f} ms  CV across runs {across:6.2%}  "
              f"within-run CV max {max(lat.cv for lat in lats):6.2%}")
    write_report(args.output, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
