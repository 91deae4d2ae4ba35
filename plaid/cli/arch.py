"""`plaid arch list|show|sample`."""

from __future__ import annotations

import argparse
import sys

from plaid.cli.render import ProgressBars, console, print_json

SHOW_EPILOG = """\
examples:
  plaid arch show df1
  plaid arch show df2-seg1 --resolution 384x640
  plaid arch show pl1a-seg --d8 --json
  plaid arch show 'df:R64x2,128-B128x10,256-B256x4,512:1024x2'
  plaid arch show 'pl1aseg:48-96-192-96-96-48-48@pl1a:48x4-96x8-192x4'

NAME is a zoo network (`plaid arch list`) or an architecture string SPACE:GENES.
"""

LIST_EPILOG = """\
examples:
  plaid arch list
  plaid arch list --json | python -m json.tool
"""

SAMPLE_EPILOG = """\
examples:
  plaid arch sample --space df -n 3
  plaid arch sample --space pl1a --seed 7 --resolution 384x640
  plaid arch sample --space dfseg --backbone df1 --json
"""


def add_parser(sub) -> None:
    from plaid.spaces import space_names

    fmt = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser("arch", help="inspect spaces, architectures and zoo networks",
                       description="Inspect search spaces, architectures and the zoo.",
                       epilog=SHOW_EPILOG, formatter_class=fmt)
    asub = p.add_subparsers(dest="arch_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda a: (p.print_help(), 0)[1])

    ls = asub.add_parser("list", help="registered spaces and zoo networks", epilog=LIST_EPILOG,
                         description="List the registered search spaces and zoo networks.", formatter_class=fmt)
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(func=cmd_list)

    sh = asub.add_parser("show", help="layer table, MACs and params of a net or arch string",
                         description="Show the layer table, MACs and parameters of a zoo network or "
                                     "an architecture string.",
                         epilog=SHOW_EPILOG, formatter_class=fmt)
    sh.add_argument("name", metavar="NAME|ARCH", help="zoo name (df1, pl1a-seg, ...) or arch string")
    sh.add_argument("--resolution", "-r", metavar="N|HxW", help="input size (default: the net's own, e.g. 224)")
    sh.add_argument("--d8", action="store_true", help="segmentation: stop at 1/8 (no ×8 upsample)")
    sh.add_argument("--classes", type=int, metavar="N", help="number of output classes")
    sh.add_argument("--json", action="store_true", help="machine-readable output")
    sh.set_defaults(func=cmd_show)

    sa = asub.add_parser("sample", help="random members of a space", epilog=SAMPLE_EPILOG,
                         description="Draw random architectures from a search space.", formatter_class=fmt)
    sa.add_argument("--space", required=True, help=f"space name ({', '.join(space_names())})")
    sa.add_argument("-n", type=int, default=5, help="how many, up to 1000 (default 5)")
    sa.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    sa.add_argument("--resolution", "-r", metavar="N|HxW", help="input size for MACs")
    sa.add_argument("--backbone", help="decoder spaces: backbone zoo name or arch string")
    sa.add_argument("--json", action="store_true", help="machine-readable output")
    sa.set_defaults(func=cmd_sample)


def _res(args):
    from plaid.archinfo import parse_resolution

    return parse_resolution(args.resolution) if args.resolution else None


def cmd_list(args) -> int:
    from plaid.archinfo import list_all

    data = list_all()
    if args.json:
        print_json(data)
        return 0
    from rich.table import Table

    t = Table(title="search spaces", title_justify="left")
    for col in ("space", "task", "default input", "description"):
        t.add_column(col)
    for s in data["spaces"]:
        t.add_row(s["name"], s["task"], "x".join(map(str, s["resolution"])), s.get("description", ""))
    console().print(t)
    t = Table(title="zoo", title_justify="left")
    for col, just in (("name", "left"), ("task", "left"), ("input", "left"), ("GMACs", "right"),
                      ("params (M)", "right"), ("arch", "left")):
        t.add_column(col, justify=just, overflow="fold")
    for m in data["models"]:
        t.add_row(m["name"], m["task"], "x".join(map(str, m["resolution"])), f"{m['macs'] / 1e9:.4f}",
                  f"{m['params'] / 1e6:.3f}", m["arch"] or "(baseline, outside the spaces)")
    console().print(t)
    return 0


def cmd_show(args) -> int:
    from plaid.archinfo import describe

    info = describe(args.name, _res(args), d8=args.d8, num_classes=args.classes)
    if args.json:
        print_json(info)
        return 0
    from rich.table import Table

    res = "x".join(map(str, info["resolution"]))
    t = Table(title=f"{info['name']} @ {res}", title_justify="left")
    for col, just in (("#", "right"), ("layer", "left"), ("op", "left"), ("in→out", "right"), ("k", "right"),
                      ("s", "right"), ("g", "right"), ("output", "right"), ("MMACs", "right")):
        t.add_column(col, justify=just)
    for i, layer in enumerate(info["layers"], 1):
        k = "x".join(map(str, layer["kernel"])) if layer["kernel"][0] != layer["kernel"][1] else str(layer["kernel"][0])
        s = str(layer["stride"][0]) if layer["stride"][0] == layer["stride"][1] else "x".join(map(str, layer["stride"]))
        t.add_row(str(i), layer["name"], layer["op"], f"{layer['cin']}→{layer['cout']}", k, s,
                  str(layer["groups"]), "x".join(map(str, layer["out_shape"])), f"{layer['macs'] / 1e6:.2f}")
    c = console()
    c.print(t)
    if info["summary"]:
        c.print(f"[bold]{info['name']}[/]: {info['summary']}")
    if info["arch"]:
        c.print(f"arch      {info['arch']}", soft_wrap=True)
        c.print(f"space     {info['member_note']}" if info["member"] else f"space     not a member: {info['member_note']}",
                soft_wrap=True)
    ref = info["reference"]
    macs_ref = f"  (published {ref['macs_g']} G)" if "macs_g" in ref and not args.resolution and not args.d8 else ""
    c.print(f"MACs      {info['macs'] / 1e9:.4f} G{macs_ref}")
    pref = f" (published {ref['params_m']} M)" if "params_m" in ref else ""
    aref = f" (published {ref['params_all_m']} M)" if "params_all_m" in ref else ""
    c.print(f"params    {info['params'] / 1e6:.3f} M conv/FC weights{pref}; "
            f"{info['params_all'] / 1e6:.3f} M with BN{aref}")
    c.print(f"output    {'x'.join(map(str, info['output_shape']))}")
    return 0


def cmd_sample(args) -> int:
    from plaid.archinfo import sample

    with ProgressBars(enabled=args.n >= 20 and not args.json) as bars:  # ~50 ms each
        rows = sample(args.space, args.n, args.seed, _res(args), args.backbone, progress=bars)
    if args.json:
        print_json(rows)
        return 0
    for r in rows:
        sys.stdout.write(f"{r['macs'] / 1e9:9.4f} GMACs  {r['params'] / 1e6:8.3f} M  {r['arch']}\n")
    return 0

