"""`plaid bench`: build a target's latency table, calibrate and validate the predictor."""

from __future__ import annotations

import argparse
from pathlib import Path

from plaid.cli.adbopts import add_adb_arguments, session_options
from plaid.cli.sshopts import add_ssh_arguments, ssh_session_options
from plaid.cli.render import ProgressBars, console, print_json

EPILOG = """\
examples:
  plaid bench --dry-run                          units of the host's space (pl1a at 384x640)
  plaid bench --target host --space df           build (or finish) the host table for df at 224x224
  plaid bench --space pl1a --validate 30         + measure 30 sampled nets end to end, report the error
  plaid bench --baselines                        DF1, DF2, ResNet-18/50 end to end on this target
  plaid bench --table my.sqlite --threads 2      a table of your own with 2 interpreter threads
  plaid bench --space df --pairs --validate 30   + every adjacent pair of units timed as one model
  plaid bench --runtime onnxruntime              the host table timed with onnxruntime (ONNX units)
  plaid bench --target sd845 --dry-run           units of the phone table (no phone needed)
  plaid bench --target sd845 --adb-serial 8ABX0Y1Z --benchmark-binary ./benchmark_model
                                                 measure on a USB phone with TFLite's benchmark_model
  plaid bench --target sd845 --adb-serial 192.168.1.20:5555
                                                 over the network, benchmark_model already in /data/local/tmp
  plaid bench --target sd845 --adb-serial 8ABX0Y1Z --adb-connection cli --runner apk --apk plaid-bench.apk
                                                 through the adb executable, timed by the plaid app
  plaid bench --target rpi5 --ssh pi@raspberrypi.local
                                                 a Raspberry Pi 5 over SSH, timed by device_bench there
  plaid bench --target rpi5 --ssh pi@10.0.0.7:2222 --ssh-key ~/.ssh/pi --accept-new-host-key \
              --remote-python /home/pi/venv/bin/python
                                                 first contact: record the board's host key, its venv
  plaid bench --target rpi5 --ssh pi@raspberrypi.local --runtime onnxruntime
                                                 the same board timed with onnxruntime instead of TFLite
  plaid bench --target tx2 --ssh nvidia@tx2.local --remote-python /usr/bin/python3
                                                 a Jetson TX2: fp16 TensorRT engines built and timed there
  plaid bench --target tx2 --ssh nvidia@tx2.local --precision int8
                                                 int8 engines (calibration caches written from ranges
                                                 measured here): a table of its own

An interrupted build (Ctrl-C, kill -9, a phone unplugged, an SSH link dropped) resumes where
it stopped: every unit is committed to the table as soon as it is measured. `plaid devices`
lists phones.
"""


MAX_THREADS = 1024  # interpreter threads: a C int on every runtime
MAX_NETS = 1000  # whole networks measured by --validate / --calibrate (as `plaid arch sample -n`)


def _runtimes() -> list[str]:
    from device_bench.runtimes import RUNTIMES

    return sorted(RUNTIMES)


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="measure a latency table on a target",
                       description="Measure the micro-benchmark units of a space on a target and store them "
                                   "in a latency table (SQLite); optionally calibrate and validate the "
                                   "predictor against whole networks.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", default="host", help="target preset in configs/targets (default: host)")
    p.add_argument("--space", help="space to cover (default: the target's)")
    p.add_argument("--resolution", "-r", metavar="N|HxW", help="input size (default: the target's for the space)")
    p.add_argument("--table", type=Path, help="table file (default: ~/.cache/plaid/luts/<name>.sqlite)")
    p.add_argument("--threads", type=int, help="interpreter threads (overrides the target)")
    p.add_argument("--runtime", choices=_runtimes(),
                   help="runtime that times the models (overrides the target's; its own table): "
                        "tflite times TFLite files, onnxruntime the ONNX files torch exports")
    p.add_argument("--precision", choices=("fp32", "fp16", "int8"),
                   help="TensorRT targets: the engines' precision (default: the target's, else fp16; its own "
                        "table); int8 engines get calibration caches from per-tensor ranges measured here")
    p.add_argument("--pairs", action="store_true",
                   help="also time every pair of adjacent units as one model: the predictor adds what each "
                        "boundary adds to (or saves from) the sum (calibrate again after)")
    p.add_argument("--dry-run", action="store_true", help="list the units and exit")
    p.add_argument("--validate", type=int, default=0, metavar="N", help="measure N sampled nets end to end")
    p.add_argument("--calibrate", type=int, default=None, metavar="K",
                   help="nets measured to fit the predictor (default 5 with --validate, else 0)")
    p.add_argument("--baselines", action="store_true", help="measure DF1, DF2, ResNet-18/50 end to end")
    p.add_argument("--seed", type=int, default=0, help="seed for sampled nets (default 0)")
    p.add_argument("--plot", type=Path, help="scatter PNG for --validate (default: next to the table)")
    p.add_argument("--json", action="store_true", help="machine-readable report on stdout")
    add_adb_arguments(p)
    add_ssh_arguments(p)
    p.set_defaults(func=cmd_bench)


def cmd_bench(args) -> int:
    from plaid.archinfo import parse_resolution
    from plaid.errors import UsageError
    from plaid.lut.units import check_space, space_units
    from plaid.spaces import get_space
    from plaid.targets import load_target

    target = load_target(args.target)
    if args.threads is not None and not 1 <= args.threads <= MAX_THREADS:
        raise UsageError(f"--threads must be within 1..{MAX_THREADS}, got {args.threads}")
    for flag, n in (("--validate", args.validate), ("--calibrate", args.calibrate)):
        if n is not None and not 0 <= n <= MAX_NETS:
            raise UsageError(f"{flag} takes a count within 0..{MAX_NETS}, got {n} (each net is measured end to end)")
    target = target.with_threads(args.threads)
    if args.runtime:
        target = target.with_runtime(args.runtime)
    target = target.with_precision(args.precision)
    space = get_space(args.space or target.space)
    check_space(space)
    res = parse_resolution(args.resolution) if args.resolution else target.resolution(space.name)
    units = space_units(space, res)
    if args.pairs:
        from plaid.lut.pairs import space_pairs

        units = units + space_pairs(space, res)
    report: dict = {"target": target.name, "space": space.name, "resolution": list(res)}
    options = session_options(args, target) or ssh_session_options(args, target)
    if args.dry_run and target.transport != "local" and not (args.adb_serial or args.ssh):
        return _dry_run(args, target, space, res, units, report, known=False)

    from plaid.lut.session import open_session

    with open_session(target, options) as session:
        report.update(session.describe())
        if args.dry_run:
            return _dry_run(args, target, space, res, units, report)
        return _build(args, target, space, res, units, report)


def _build(args, target, space, res, units, report) -> int:
    from plaid.lut.bench import build_table, open_table
    from plaid.lut.units import unit_counts

    table = open_table(target, space.name, args.table, create=True)
    with table, ProgressBars(enabled=not args.json) as bars:
        report["build"] = build_table(target, space, res, table, bars, units=units).to_json()
        n_cal = args.calibrate if args.calibrate is not None else (5 if args.validate else 0)
        if n_cal or args.validate:
            from plaid.lut.validate import calibrate_and_validate, scatter_png

            val = calibrate_and_validate(target, space, res, table, n_cal, args.validate, args.seed, bars)
            report["validation"] = val
            if val.get("validation"):
                png = args.plot or table.path.with_suffix(f".{space.name}-validate.png")
                f = val["fidelity"]
                scatter_png(val["validation"], png, f"{table.meta.name()}\n{space.name} {res[0]}x{res[1]}, {f['n']} nets: "
                                                    f"MAPE {f['mape_pct']:.1f}%, {f['within_10pct']:.0%} within ±10%")
                report["plot"] = str(png)
        if args.baselines:
            report["baselines"] = _baselines(target, res, table, bars)
    if args.json:
        print_json(report)
    else:
        _print_report(report, counts=unit_counts(units))
    return 0


def _baselines(target, res, table, bars) -> dict:
    from plaid.lut.validate import measure_whole
    from plaid.zoo import ZOO

    names = ["df1", "df2", "resnet18", "resnet50"]
    got = measure_whole(target, [(n, ZOO.get(n).build) for n in names], res, table, bars)
    return {n: got[n].to_json() for n in names if n in got}


def _dry_run(args, target, space, res, units, report, known: bool = True) -> int:
    """List the units; which are measured is known once the table's identity is (for a
    phone or a board: its fingerprint, so only with --adb-serial or --ssh)."""
    from plaid.lut.units import unit_counts

    measured: set[str] = set()
    from plaid.lut.bench import lut_dir, target_meta

    path = args.table
    if known:
        meta = target_meta(target, space.name)
        path = path or lut_dir() / f"{meta.name()}.sqlite"
    if known and path.exists():
        from plaid.lut.store import LatencyTable

        with LatencyTable.open(path, meta) as t:
            measured = t.keys()
    report.update({"table": str(path) if path else None, "counts": dict(unit_counts(units)),
                   "units": [{"key": u.key, "kind": u.kind, "measured": u.key in measured} for u in units]})
    if args.json:
        print_json(report)
        return 0
    from rich.table import Table

    t = Table(title=f"{len(units)} units of space {space.name} at {res[0]}x{res[1]} for target {target.name}",
              title_justify="left")
    t.add_column("#", justify="right")
    t.add_column("unit")
    t.add_column("measured")
    for i, u in enumerate(units, 1):
        t.add_row(str(i), u.key, "yes" if u.key in measured else "")
    c = console()
    c.print(t)
    c.print("counts    " + ", ".join(f"{k} {v}" for k, v in sorted(unit_counts(units).items())))
    if known:
        c.print(f"table     {path} ({len(measured & {u.key for u in units})}/{len(units)} measured)")
    else:
        how = "the board's fingerprint: pass --ssh" if target.transport == "ssh" else \
            "the phone's fingerprint: pass --adb-serial"
        c.print(f"table     named after {how} to see what is measured")
    return 0


def _print_report(report: dict, counts) -> None:
    c = console()
    b = report["build"]
    if report.get("device"):
        c.print(f"device    {report['device']} ({report.get('serial') or report.get('address')}), runner "
                f"{report['runner']} ({report['runtime_version']})")
    if report.get("python"):
        c.print(f"python    {report['python']}")
    c.print(f"table     {b['table']}")
    c.print(f"units     {b['units']} ({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))}): "
            f"{b['already_measured']} already measured, {b['measured_now']} measured now")
    if b.get("warnings"):
        c.print(f"warnings  {len(b['warnings'])} (see above); first: {b['warnings'][0]}")
    val = report.get("validation")
    if val and val.get("fidelity"):
        f, f0 = val["fidelity"], val["fidelity_plain_sum"]
        cal = val["calibration"]
        if "model" in cal:
            c.print(f"predictor {cal['model']}: alpha {cal['alpha']:.3f}, gamma {cal['gamma']:.4f} ms/unit, "
                    f"beta {cal['beta']:.3f} ms (leave-one-out on {cal['n']} nets, the simplest within one "
                    f"standard error of the best: {cal['loo_mape_pct']:.2f}% error there)")
        else:
            c.print("predictor plain sum of units (not calibrated)")
        c.print(f"validate  {f['n']} nets: MAPE {f['mape_pct']:.2f}%, max {f['max_abs_err_pct']:.1f}%, "
                f"{f['within_10pct']:.0%} within ±10%, Kendall tau {f['kendall_tau']:.3f}  "
                f"(plain sum: MAPE {f0['mape_pct']:.2f}%)")
        fp = val.get("fidelity_without_pairs")
        if fp:
            pr = val["pairs"]
            c.print(f"pairs     {pr['pairs']} timed, median residual {pr['median_residual_ms']:+.4f} ms per boundary; "
                    f"without them: MAPE {fp['mape_pct']:.2f}%, {fp['within_10pct']:.0%} within ±10%")
        fm = val.get("fidelity_macs")
        if fm:
            c.print(f"baseline  MACs line on the same nets: MAPE {fm['mape_pct']:.2f}%, "
                    f"{fm['within_10pct']:.0%} within ±10%, Kendall tau {fm['kendall_tau']:.3f}")
        c.print(f"plot      {report.get('plot')}")
    if report.get("baselines"):
        c.print("baselines " + ", ".join(f"{n} {v['median_ms']:.2f} ms" for n, v in report["baselines"].items()))

