"""How long a host latency table takes to build from nothing, and where the time goes.

For each space (default DF at 224x224 and PL1A at 384x640, the host preset's resolutions):
an empty conversion cache and an empty table folder, then `build_table` as `plaid bench`
runs it, timing each phase (export to ONNX, onnx2tf conversion, measurement) from its
first to its last progress report. `--compare N` also converts the first N units' ONNX
files once more in this process, with and without the Keras metadata onnx2tf would write
(plaid.convert._lean_keras_metadata), so the saving is measured on the same files (file
sizes compared; tests/test_convert.py compares bytes). Writes benchmarks/results/table_build.json.

    .venv/bin/python benchmarks/table_build.py [--spaces df pl1a] [--compare 6]

Run it on an idle machine: conversions use every core (PLAID_CONVERT_WORKERS), the
measurement one.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine, write_report  # noqa: E402


class PhaseClock:
    """A progress callback that keeps, per phase, the first and last report's time."""

    def __init__(self):
        self.start = time.perf_counter()
        self.first: dict[str, float] = {}
        self.last: dict[str, float] = {}
        self.total: dict[str, int] = {}

    def __call__(self, phase: str, done: int, total: int, label: str) -> None:
        now = time.perf_counter() - self.start
        self.first.setdefault(phase, now)
        self.last[phase] = now
        self.total[phase] = total

    def report(self) -> dict:
        return {p: {"from_s": round(self.first[p], 1), "to_s": round(self.last[p], 1),
                    "seconds": round(self.last[p] - self.first[p], 1), "steps": self.total[p]} for p in self.first}


def compare_lean(units, work: Path) -> dict:
    """Convert each unit's ONNX with and without the Keras metadata; seconds and same bytes."""
    from plaid.convert import _run_onnx2tf, export_onnx

    rows = []
    for i, unit in enumerate(units):
        onnx_path = export_onnx(unit.build(), unit.input_shapes, work / f"u{i}.onnx")
        row = {"unit": unit.key}
        digests = {}
        for lean in (True, False):
            folder = work / f"u{i}-{lean}"
            folder.mkdir()
            t = time.perf_counter()
            out = _run_onnx2tf(onnx_path, folder, work / "onnx2tf.log", lean=lean)
            row["lean_s" if lean else "with_metadata_s"] = round(time.perf_counter() - t, 2)
            digests[lean] = (out / "model_float32.tflite").stat().st_size
        # a second conversion in one process numbers its tensors on, so bytes are compared
        # across processes by tests/test_convert.py; here only the sizes
        row["same_size"] = digests[True] == digests[False]
        rows.append(row)
    lean = sum(r["lean_s"] for r in rows)
    full = sum(r["with_metadata_s"] for r in rows)
    return {"units": rows, "lean_s": round(lean, 1), "with_metadata_s": round(full, 1),
            "speedup": round(full / lean, 2) if lean else None}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spaces", nargs="+", default=["df", "pl1a"])
    ap.add_argument("--compare", type=int, default=6, help="units converted both ways (0: skip)")
    ap.add_argument("-o", "--output", type=Path,
                    default=Path(__file__).resolve().parent / "results" / "table_build.json")
    args = ap.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="plaid-table-build-"))
    os.environ["PLAID_CACHE"] = str(scratch / "cache")  # nothing converted before
    os.environ["PLAID_LUT_DIR"] = str(scratch / "luts")

    from plaid.convert import convert_workers
    from plaid.lut.bench import build_table, open_table
    from plaid.lut.units import space_units
    from plaid.spaces import get_space
    from plaid.targets import load_target

    target = load_target("host")
    out = {"benchmark": "table_build", "machine": machine(), "target": target.name,
           "convert_workers": convert_workers(), "spaces": {},
           "note": "same_size compares the fp32 file sizes of the two conversions of one unit in this process; the "
                   "first conversion of a process numbers its tensors differently from later ones, so a size may "
                   "differ there (tests/test_convert.py compares bytes, each conversion in a new process: identical)"}
    for name in args.spaces:
        space = get_space(name)
        res = target.resolution(name)
        units = space_units(space, res)
        clock = PhaseClock()
        with open_table(target, name, None, create=True) as table:
            report = build_table(target, space, res, table, clock)
        seconds = time.perf_counter() - clock.start
        row = {"resolution": list(res), "units": len(units), "measured": report.measured,
               "seconds_from_nothing": round(seconds, 1), "phases": clock.report()}
        if args.compare:
            work = scratch / f"compare-{name}"
            work.mkdir()
            row["keras_metadata"] = compare_lean(units[:args.compare], work)
        out["spaces"][name] = row
        print(f"{name}@{res[0]}x{res[1]}: {len(units)} units from nothing in {seconds:.0f} s "
              + " ".join(f"{p} {v['seconds']:.0f}s" for p, v in row["phases"].items())
              + (f"; onnx2tf on {args.compare} units: {row['keras_metadata']['with_metadata_s']} s with the "
                 f"Keras metadata, {row['keras_metadata']['lean_s']} s without" if args.compare else ""), flush=True)
    write_report(args.output, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
