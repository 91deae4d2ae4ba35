"""What `plaid devices` lists: attached phones with their state, model and board."""

from __future__ import annotations

from plaid.adb.connection import connect
from plaid.adb.device import parse_getprop
from plaid.errors import PlaidError


def probe(serial: str, connection: str = "python", auth_timeout_s: float = 5.0) -> dict:
    """Connect once and read model and board; the state says why that failed."""
    row = {"serial": serial, "state": "device", "model": "", "board": "", "detail": ""}
    try:
        conn = connect(connection, serial, auth_timeout_s=auth_timeout_s)
    except PlaidError as exc:
        text = str(exc)
        row["state"] = next((s for s, words in _STATES if any(w in text for w in words)), "error")
        row["detail"] = text
        return row
    try:
        props = parse_getprop(conn.shell("getprop")[0])
        row["model"] = props.get("ro.product.model", "")
        row["board"] = props.get("ro.board.platform", "")
    except PlaidError as exc:
        row["state"], row["detail"] = "error", str(exc)
    finally:
        conn.close()
    return row


_STATES = [("unauthorized", ("unauthorized",)), ("held by adb server", ("adb server",)),
           ("no permission", ("no permission",)), ("offline", ("offline", "closed the connection")),
           ("unreachable", ("refused", "cannot reach")), ("unknown serial", ("no USB device", "does not know"))]


def list_devices(connection: str = "python", serial: str | None = None) -> list[dict]:
    """One row per phone: the given serial only, else every attached one (USB through
    libusb for ``python``; what ``adb devices -l`` lists for ``cli``)."""
    if serial:
        return [probe(serial, connection)]
    if connection == "cli":
        from plaid.adb.cli_connection import adb_devices

        rows = adb_devices()
        for row in rows:
            if row["state"] == "device":
                got = probe(row["serial"], "cli")
                row.update({k: got[k] or row[k] for k in ("model", "board", "detail")})
                row["state"] = got["state"]
        return rows
    from plaid.adb.usb import list_usb

    try:
        attached = list_usb()
    except PlaidError as exc:
        raise PlaidError(f"{exc}; a phone on the network can still be probed with --adb-serial HOST:PORT") from None
    return [{**probe(d["serial"]), "usb": d} for d in attached]
