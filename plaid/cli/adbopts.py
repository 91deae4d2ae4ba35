"""The ADB options shared by the commands that talk to a phone (`plaid bench`,
`plaid export`): the argument group and the session options built from it."""

from __future__ import annotations

from pathlib import Path

_NAMES = ("adb_serial", "adb_transport", "runner", "benchmark_binary", "apk")


def add_adb_arguments(p) -> None:
    adb = p.add_argument_group("phones over ADB (targets with transport adb, e.g. sd845)")
    adb.add_argument("--adb-serial", metavar="SERIAL|HOST:PORT", help="the phone: USB serial or network address")
    adb.add_argument("--adb-transport", choices=["python", "cli"],
                     help="python: adb-shell, no adb server needed (default); cli: the adb executable")
    adb.add_argument("--runner", choices=["benchmark_model", "apk"],
                     help="benchmark_model: TFLite's native tool (default); apk: the plaid benchmark app")
    adb.add_argument("--benchmark-binary", type=Path, metavar="PATH",
                     help="benchmark_model built for the phone, pushed once per run "
                          "(default: /data/local/tmp/benchmark_model on the phone)")
    adb.add_argument("--apk", type=Path, metavar="PATH", help="the plaid benchmark app for --runner apk")


def session_options(args, target) -> dict:
    """Connection options for the target's transport; ADB flags on a local target are a mistake."""
    from plaid.errors import UsageError

    given = [f"--{k.replace('_', '-')}" for k in _NAMES if getattr(args, k) is not None]
    if target.transport != "adb":
        if given:
            raise UsageError(f"{', '.join(given)} only make sense for targets measured over ADB (e.g. --target sd845); "
                             f"target {target.name!r} is measured over {target.transport}")
        return {}
    if args.apk is not None and args.runner not in (None, "apk"):
        raise UsageError("--apk goes with --runner apk")
    if args.benchmark_binary is not None and args.runner == "apk":
        raise UsageError("--benchmark-binary goes with --runner benchmark_model")
    runner = args.runner or ("apk" if args.apk is not None else "benchmark_model")
    return {"serial": args.adb_serial, "adb_transport": args.adb_transport or "python", "runner": runner,
            "benchmark_binary": args.benchmark_binary, "apk": args.apk}
