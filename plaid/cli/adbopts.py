"""The ADB options shared by the commands that talk to a phone (`plaid bench`,
`plaid export`): the argument group and the session options built from it."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

_NAMES = ("adb_serial", "adb_connection", "runner", "benchmark_binary", "apk")
OLD_CONNECTION_FLAG = "--adb-transport"  # the earlier name of --adb-connection: still accepted, hidden


def adb_serial(text: str) -> str:
    """argparse type for --adb-serial: a USB serial, or HOST:PORT with a real TCP port."""
    text = text.strip()
    if not text:
        raise argparse.ArgumentTypeError("empty serial (`plaid devices` lists the attached phones)")
    m = re.fullmatch(r".+:(\d+)", text)
    if m and not 1 <= int(m.group(1)) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: port {int(m.group(1))} is not a TCP port (1..65535)")
    return text


class _OldSpelling(argparse.Action):
    """The old spelling of an option: sets the same value, hidden from --help, with a note."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print(f"plaid: note: {option_string} is now called --{self.dest.replace('_', '-')} "
              "(the old name still works)", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_connection_argument(p, help: str, default: str | None = None) -> None:
    """``--adb-connection python|cli``, and its old spelling ``--adb-transport`` (hidden)."""
    from plaid.adb.connection import connection_names

    p.add_argument("--adb-connection", choices=connection_names(), default=default, help=help)
    p.add_argument(OLD_CONNECTION_FLAG, dest="adb_connection", choices=connection_names(), action=_OldSpelling,
                   default=default, help=argparse.SUPPRESS)


def add_adb_arguments(p) -> None:
    from plaid.adb.runners import RUNNERS

    adb = p.add_argument_group("phones over ADB (targets with transport adb, e.g. sd845)")
    adb.add_argument("--adb-serial", type=adb_serial, metavar="SERIAL|HOST:PORT",
                     help="the phone: USB serial or network address")
    add_connection_argument(adb, "how plaid talks to the phone: python: adb-shell, no adb server needed "
                                 "(default); cli: the adb executable")
    adb.add_argument("--runner", choices=RUNNERS.names(),
                     help="benchmark_model: TFLite's native tool (default); apk: the plaid benchmark app")
    adb.add_argument("--benchmark-binary", type=Path, metavar="PATH",
                     help="benchmark_model built for the phone, pushed once per run "
                          "(default: /data/local/tmp/benchmark_model on the phone)")
    adb.add_argument("--apk", type=Path, metavar="PATH", help="the plaid benchmark app for --runner apk")


def session_options(args, target) -> dict:
    """Session options for the target's transport; ADB flags on a local target are a mistake."""
    from plaid.errors import UsageError

    given = given_flags(args, _NAMES)
    if not for_transport(target, "adb", "ADB (e.g. --target sd845)", given):
        return {}
    if args.apk is not None and args.runner not in (None, "apk"):
        raise UsageError("--apk goes with --runner apk")
    if args.benchmark_binary is not None and args.runner == "apk":
        raise UsageError("--benchmark-binary goes with --runner benchmark_model")
    check_files(("--benchmark-binary", args.benchmark_binary), ("--apk", args.apk))  # before reaching for the phone
    runner = args.runner or ("apk" if args.apk is not None else "benchmark_model")
    return {"serial": args.adb_serial, "connection": args.adb_connection or "python", "runner": runner,
            "benchmark_binary": args.benchmark_binary, "apk": args.apk}


# ---- shared with the other transports' options (plaid.cli.sshopts) ---------------------------------

def given_flags(args, names) -> list[str]:
    """The flags among ``names`` (argparse dests) that the user gave."""
    return [f"--{k.replace('_', '-')}" for k in names if getattr(args, k) is not None]


def for_transport(target, transport: str, what: str, given: list[str]) -> bool:
    """Whether ``target`` is measured over ``transport``; the ``given`` flags of that
    transport on another target are a usage error."""
    from plaid.errors import UsageError

    if target.transport == transport:
        return True
    if given:
        raise UsageError(f"{', '.join(given)} only make sense for targets measured over {what}; "
                         f"target {target.name!r} is measured over {target.transport}")
    return False


def check_files(*flags: tuple[str, Path | None]) -> None:
    """Each given (flag, path) must name an existing file: one line otherwise."""
    from plaid.errors import UsageError

    for flag, path in flags:
        if path is not None and not path.is_file():
            raise UsageError(f"{flag} {path}: " + ("is a directory, not a file" if path.is_dir() else "no such file"))
