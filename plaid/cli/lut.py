"""`plaid lut show|export`: what a latency table holds."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from plaid.cli.render import console

EPILOG = """\
examples:
  plaid lut show                               the host table (default target)
  plaid lut show --table my.sqlite --json
  plaid lut export --csv -o host.csv
  plaid lut export --json > host.json
"""


def add_parser(sub) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser("lut", help="inspect and export latency tables", description="Inspect latency tables.",
                       epilog=EPILOG, formatter_class=fmt)
    lsub = p.add_subparsers(dest="lut_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda a: (p.print_help(), 0)[1])
    for name, helptext in (("show", "entries, fingerprint and protocol of a table"),
                           ("export", "write a table as CSV or JSON")):
        s = lsub.add_parser(name, help=helptext, description=helptext.capitalize() + ".", epilog=EPILOG,
                            formatter_class=fmt)
        s.add_argument("--target", default="host", help="target whose default table to read (default host)")
        s.add_argument("--table", type=Path, help="table file (instead of the target's default)")
        g = s.add_mutually_exclusive_group()
        g.add_argument("--json", action="store_true", help="JSON")
        g.add_argument("--csv", action="store_true", help="CSV")
        if name == "export":
            s.add_argument("-o", "--output", type=Path, help="output file (default stdout)")
        s.set_defaults(func=cmd_show if name == "show" else cmd_export)


def _open(args):
    from plaid.lut.bench import open_table
    from plaid.lut.store import LatencyTable
    from plaid.targets import load_target

    if args.table:
        return LatencyTable.open(args.table)
    return open_table(load_target(args.target), "", None, create=False)


def cmd_export(args) -> int:
    from plaid.errors import UsageError
    from plaid.fsio import atomic_open
    from plaid.lut.store import export_rows, write_csv, write_json

    with _open(args) as table:
        rows = export_rows(table, info=not args.csv)  # JSON has room for what else was recorded
        if args.output:
            try:
                with atomic_open(args.output, "w", newline="") as fh:
                    (write_csv(rows, fh) if args.csv else write_json(rows, fh, table.meta))
            except OSError as exc:
                raise UsageError(f"cannot write {args.output}: {exc.strerror}") from None
        else:
            (write_csv(rows, sys.stdout) if args.csv else write_json(rows, sys.stdout, table.meta))
    return 0


def cmd_show(args) -> int:
    if args.json or args.csv:
        return cmd_export(argparse.Namespace(**{**vars(args), "output": None}))
    from rich.table import Table

    from plaid.lut.store import export_rows

    with _open(args) as table:
        meta = table.meta
        rows = export_rows(table)
        c = console()
        t = Table(title=f"{meta.name()}  ({table.path})", title_justify="left")
        for col, just in (("kind", "left"), ("key", "left"), ("median ms", "right"), ("p90 ms", "right"),
                          ("CV", "right"), ("runs", "right")):
            t.add_column(col, justify=just)
        for r in rows:
            t.add_row(r["kind"], r["key"], f"{r['median_ms']:.4f}", f"{r['p90_ms']:.4f}", f"{r['cv']:.1%}",
                      str(r["runs"]))
        c.print(t)
        fp = ", ".join(f"{k}={v}" for k, v in meta.fingerprint.items())
        c.print(f"target    {meta.target} ({meta.runtime}, {meta.runtime_version})")
        c.print(f"device    {fp}")
        c.print("protocol  " + ", ".join(f"{k}={v}" for k, v in meta.settings.items()))
        from plaid.lut.pairs import PREFIX, PairModel

        pairs = sum(1 for r in rows if r["kind"] == "unit" and r["key"].startswith(PREFIX))
        units = sum(1 for r in rows if r["kind"] == "unit") - pairs
        c.print(f"entries   {units} units, {pairs} adjacent pairs, {len(rows) - units - pairs} whole networks")
        if pairs:
            model = PairModel({r["key"]: r["median_ms"] for r in rows if r["kind"] == "unit"}).summary()
            c.print(f"pairs     each net's sum + the residual of every boundary (pair minus its two units; "
                    f"median {model['median_residual_ms']:+.4f} ms); untimed boundaries: their class's median "
                    + ", ".join(f"{k} {v:+.4f}" for k, v in model["classes"].items()))
    return 0
