"""USB devices that offer an ADB interface (class 0xff, subclass 0x42, protocol 0x01), via
libusb1. Used by `plaid devices` and to name the attached serials in error messages."""

from __future__ import annotations

from plaid.errors import PlaidError

ADB_INTERFACE = (0xFF, 0x42, 0x01)


def list_usb() -> list[dict]:
    """[{serial, vid_pid, port, product}] for each USB device with an ADB interface."""
    try:
        import usb1

        ctx = usb1.USBContext()
        ctx.open()
    except (ImportError, OSError) as exc:
        raise PlaidError(f"cannot list USB devices: the system libusb-1.0 is missing ({type(exc).__name__}); "
                         "install it (apt-get install libusb-1.0-0) or use --adb-connection cli") from None
    out = []
    try:
        for dev in ctx.getDeviceIterator(skip_on_error=True):
            if not _has_adb_interface(dev):
                continue
            out.append({"serial": _string(dev, "getSerialNumber"),
                        "vid_pid": f"{dev.getVendorID():04x}:{dev.getProductID():04x}",
                        "port": f"{dev.getBusNumber()}-" + ".".join(map(str, dev.getPortNumberList() or [])),
                        "product": _string(dev, "getProduct")})
    finally:
        ctx.close()
    return out


def _has_adb_interface(dev) -> bool:
    for setting in dev.iterSettings():
        if (setting.getClass(), setting.getSubClass(), setting.getProtocol()) == ADB_INTERFACE:
            return True
    return False


def _string(dev, getter: str) -> str:
    try:
        return getattr(dev, getter)() or ""
    except Exception:  # noqa: BLE001 - no permission to read string descriptors
        return "?"
