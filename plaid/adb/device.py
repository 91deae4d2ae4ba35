"""What a phone is (its fingerprint) and how hot it is, read with as few shell calls as
possible. The fingerprint becomes the latency table's ``TableMeta.fingerprint``: another
phone model, build, serial, CPU governor or maximum frequency gives another table."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from plaid.adb.connection import Connection
from plaid.adb.shell import sh

PROPS = {
    "model": "ro.product.model",
    "manufacturer": "ro.product.manufacturer",
    "device": "ro.product.device",
    "board": "ro.board.platform",
    "hardware": "ro.hardware",
    "sdk": "ro.build.version.sdk",
    "release": "ro.build.version.release",
    "abi": "ro.product.cpu.abi",
    "build": "ro.build.fingerprint",
    "serial": "ro.serialno",
}
_PROP_LINE = re.compile(r"^\[([^\]]+)\]: \[(.*)\]\s*$")
_MARK = "__PLAID_FILE "
CPU_DIR = "/sys/devices/system/cpu"
THERMAL_DIR = "/sys/class/thermal"
BATTERY_TEMP = "/sys/class/power_supply/battery/temp"  # tenths of a degree


def parse_getprop(text: str) -> dict[str, str]:
    """``getprop``'s ``[name]: [value]`` lines as a dict."""
    out = {}
    for line in text.splitlines():
        m = _PROP_LINE.match(line.strip())
        if m:
            out[m.group(1)] = m.group(2)
    return out


def parse_cpu_list(text: str) -> list[int]:
    """sysfs CPU lists such as ``0-3,6`` -> [0, 1, 2, 3, 6]."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        part = part.strip()
        if not part:
            continue
        lo, _, hi = part.partition("-")
        if not lo.isdigit() or (hi and not hi.isdigit()):
            return []
        cpus += list(range(int(lo), int(hi or lo) + 1))
    return cpus


def read_files(conn: Connection, paths: list[str], timeout: float = 30.0,
               what: str = "reading sysfs files") -> dict[str, str | None]:
    """Contents of several device files in one shell call; None for unreadable ones."""
    if not paths:
        return {}
    parts = []
    for i, p in enumerate(paths):
        parts.append(f"echo {_MARK}{i}; cat {sh(p)} 2>/dev/null")
    out, _rc = conn.shell("; ".join(parts), timeout, what)
    got: dict[str, str | None] = {p: None for p in paths}
    current = None
    chunks: dict[int, list[str]] = {}
    for line in out.replace("\r\n", "\n").split("\n"):
        if line.startswith(_MARK) and line[len(_MARK):].strip().isdigit():
            current = int(line[len(_MARK):].strip())
            chunks[current] = []
        elif current is not None:
            chunks[current].append(line)
    for i, lines in chunks.items():
        text = "\n".join(lines).strip()
        if text and i < len(paths):
            got[paths[i]] = text
    return got


def _celsius(raw: str | None, scale: float | None = None) -> float | None:
    try:
        v = float(raw.split()[0]) if raw else None
    except ValueError:
        return None
    if v is None:
        return None
    if scale is not None:
        return v / scale
    return v / 1000.0 if abs(v) >= 1000 else v  # millidegrees on almost every kernel


@dataclass
class DeviceInfo:
    """Props, CPUs and thermal zones of one phone, read once at connect time."""

    conn: Connection
    props: dict[str, str] = field(default_factory=dict)
    cpus: list[int] = field(default_factory=list)
    cpufreq: dict[int, dict] = field(default_factory=dict)
    zones: dict[str, str] = field(default_factory=dict)  # temp file -> zone type

    @classmethod
    def read(cls, conn: Connection) -> DeviceInfo:
        info = cls(conn)
        out, _ = conn.shell("getprop", what="getprop")
        info.props = parse_getprop(out)
        listing = read_files(conn, [f"{CPU_DIR}/possible"])
        info.cpus = parse_cpu_list(listing[f"{CPU_DIR}/possible"] or "")
        files = []
        for c in info.cpus:
            files += [f"{CPU_DIR}/cpu{c}/cpufreq/scaling_governor", f"{CPU_DIR}/cpu{c}/cpufreq/cpuinfo_max_freq"]
        zone_out, _ = conn.shell(sh("ls", THERMAL_DIR) + " 2>/dev/null")
        zones = sorted((z for z in zone_out.split() if z.startswith("thermal_zone")),
                       key=lambda z: int(z[len("thermal_zone"):]) if z[len("thermal_zone"):].isdigit() else 0)
        files += [f"{THERMAL_DIR}/{z}/type" for z in zones]
        got = read_files(conn, files)
        for c in info.cpus:
            gov = got[f"{CPU_DIR}/cpu{c}/cpufreq/scaling_governor"]
            mx = got[f"{CPU_DIR}/cpu{c}/cpufreq/cpuinfo_max_freq"]
            info.cpufreq[c] = {"governor": gov or "?", "max_khz": int(mx) if mx and mx.isdigit() else None}
        for z in zones:
            kind = got[f"{THERMAL_DIR}/{z}/type"]
            if kind and (kind.startswith("cpu") or "battery" in kind):
                info.zones[f"{THERMAL_DIR}/{z}/temp"] = kind
        return info

    def fingerprint(self) -> dict:
        fp = {k: self.props.get(prop, "") for k, prop in PROPS.items()}
        fp["cpu_governors"] = [self.cpufreq[c]["governor"] for c in self.cpus]
        fp["cpu_max_khz"] = [self.cpufreq[c]["max_khz"] for c in self.cpus]
        return fp

    def describe(self) -> str:
        p = self.props
        return (f"{p.get('ro.product.manufacturer', '?')} {p.get('ro.product.model', '?')} "
                f"({p.get('ro.board.platform', '?')}, Android {p.get('ro.build.version.release', '?')})")

    def temperatures(self) -> dict[str, float]:
        """{"cpu_c": hottest CPU zone, "battery_c": battery} in one shell call; keys whose
        files cannot be read are left out."""
        paths = list(self.zones) + [BATTERY_TEMP]
        got = read_files(self.conn, paths, what="reading temperatures")
        out: dict[str, float] = {}
        cpu = [t for p, kind in self.zones.items() if kind.startswith("cpu")
               if (t := _celsius(got[p])) is not None]
        if cpu:
            out["cpu_c"] = round(max(cpu), 1)
        battery = _celsius(got[BATTERY_TEMP], scale=10.0)
        if battery is None:
            zone = [_celsius(got[p]) for p, kind in self.zones.items() if "battery" in kind]
            battery = next((t for t in zone if t is not None), None)
        if battery is not None:
            out["battery_c"] = round(battery, 1)
        return out
