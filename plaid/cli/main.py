"""`plaid` entry point: parse, dispatch, and map known errors to one line + exit code.

Only parsing lives here; each command's work is in the library."""

from __future__ import annotations

import argparse
import os
import sys

from plaid import __version__
from plaid.errors import PlaidError, UsageError

EPILOG = """\
examples:
  plaid arch list                         spaces and zoo networks
  plaid arch show df1                     DF1's layer table, MACs and params at 224x224
  plaid arch show df1-seg --resolution 384x640
  plaid arch show 'df:R64x2-R128x3-R256x2,512' --json
  plaid arch sample --space pl1a -n 5
  plaid bench --dry-run                   units the host latency table needs
  plaid bench --target host --space df    measure them (resumes if interrupted)
  plaid devices                           phones attached over ADB (for --target sd845)
  plaid lut show                          what the table holds
  plaid search                            POP search on the host (pl1a, digits-affine)
  plaid train --front runs/RUN -o trained/best   train the front's best member in full
  plaid export df1 -o out/df1             TFLite bundle with parity checks

set PLAID_DEBUG=1 to see tracebacks.
"""


class Parser(argparse.ArgumentParser):
    """argparse that reports usage mistakes as one line and exit code 2."""

    def error(self, message: str):  # type: ignore[override]
        raise UsageError(f"{message} (see '{self.prog} --help')")


def build_parser() -> Parser:
    from plaid.cli import arch, bench, devices, export, lut, search, train

    parser = Parser(
        prog="plaid",
        description="Platform-aware architecture search (Partial Order Pruning) and deployment.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"plaid {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    arch.add_parser(sub)
    bench.add_parser(sub)
    devices.add_parser(sub)
    lut.add_parser(sub)
    search.add_parser(sub)
    train.add_parser(sub)
    export.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    debug = os.environ.get("PLAID_DEBUG") == "1"
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 0 if args.command is None else 2
        from plaid.procs import sweep_scratch

        sweep_scratch()  # temp folders of plaid processes that were killed
        rc = int(args.func(args) or 0)
        sys.stdout.flush()  # a reader that went away shows here, not at interpreter exit
        return rc
    except PlaidError as exc:
        if debug:
            raise
        print(f"plaid: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        if debug:
            raise
        print("plaid: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader stopped early (`plaid arch list | head -1`): end quietly with the status
        # a producer killed by SIGPIPE has (128 + 13), as `seq`, `cat` or `git log` do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the exit-time flush cannot fail again
        return 141


if __name__ == "__main__":
    raise SystemExit(main())
