"""`plaid devices`: the phones plaid can measure on, with state, model and board."""

from __future__ import annotations

import argparse

from plaid.cli.adbopts import add_connection_argument, adb_serial
from plaid.cli.render import console, print_json

EPILOG = """\
examples:
  plaid devices                                USB phones with an ADB interface (needs libusb)
  plaid devices --adb-serial 192.168.1.20:5555 probe a phone over the network (adb tcpip)
  plaid devices --adb-connection cli           what the adb server sees (`adb devices -l`)
  plaid devices --json

A phone listed as unauthorized shows a prompt "Allow USB debugging?": accept it and retry.
"""


def add_parser(sub) -> None:
    p = sub.add_parser("devices", help="list attached Android phones (ADB)",
                       description="List the Android phones plaid can measure on: serial, state, model and "
                                   "board (SoC platform).",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--adb-serial", type=adb_serial, metavar="SERIAL|HOST:PORT", help="probe this phone only")
    add_connection_argument(p, "python: adb-shell over libusb/TCP (default); cli: the adb executable",
                            default="python")
    p.add_argument("--json", action="store_true", help="machine-readable list on stdout")
    p.set_defaults(func=cmd_devices)


def cmd_devices(args) -> int:
    from plaid.adb.devices import list_devices

    rows = list_devices(args.adb_connection, args.adb_serial)
    if args.json:
        print_json(rows)
        return 0
    c = console()
    if not rows:
        c.print("no phone with an ADB interface is attached (USB debugging on? cable with data lines?)")
        return 0
    from rich.table import Table

    t = Table(title_justify="left")
    for col in ("serial", "state", "model", "board"):
        t.add_column(col)
    for r in rows:
        t.add_row(r["serial"], r["state"], r["model"], r["board"])
    c.print(t)
    for r in rows:
        if r.get("detail"):
            c.print(f"{r['serial']}: {r['detail']}")
    return 0
