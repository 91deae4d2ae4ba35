"""python -m device_bench PLAN.json [-o RESULTS.json]"""

import argparse
import json
import sys
from pathlib import Path
from typing import List, Optional

from device_bench.runner import OutputError, check_output, emit_line, run_plan, write_json_atomic
from device_bench.schema import SchemaError, validate_plan


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m device_bench",
        description="Time the models of a plaid benchmark plan with its runtime (tflite or onnxruntime).",
        epilog="example:\n  python -m device_bench plan.json -o results.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("plan", type=Path)
    p.add_argument("-o", "--output", type=Path, help="results JSON (default: print only JSON lines)")
    p.add_argument("--quiet", action="store_true", help="no JSON lines on stdout")
    args = p.parse_args(argv)
    try:
        plan = validate_plan(json.loads(args.plan.read_text()))
    except (OSError, json.JSONDecodeError, SchemaError) as exc:
        print(f"device_bench: error: {args.plan}: {exc}", file=sys.stderr)
        return 2
    try:
        if args.output:
            check_output(args.output)  # before the plan runs, not after
    except OutputError as exc:
        print(f"device_bench: error: {args.output}: {exc}", file=sys.stderr)
        return 2
    doc = run_plan(plan, args.plan.resolve().parent, emit=(lambda e: None) if args.quiet else emit_line)
    if args.output:
        try:
            write_json_atomic(args.output, doc)
        except (OSError, OutputError) as exc:
            print(f"device_bench: error: {args.output}: {exc}", file=sys.stderr)
            return 2
    return 0 if all(r["status"] == "ok" for r in doc["results"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
