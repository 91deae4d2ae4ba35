"""What a Pixel 3 (Snapdragon 845, Android 10) shows: system properties, /sys CPU
frequency and thermal files, /proc/cpuinfo. Values are produced on read, so
temperatures and the current frequency follow the device's state."""

from __future__ import annotations

PIXEL3_PROPS = {
    "ro.product.model": "Pixel 3",
    "ro.product.manufacturer": "Google",
    "ro.product.brand": "google",
    "ro.product.name": "blueline",
    "ro.product.device": "blueline",
    "ro.product.board": "blueline",
    "ro.board.platform": "sdm845",
    "ro.hardware": "blueline",
    "ro.build.version.sdk": "29",
    "ro.build.version.release": "10",
    "ro.build.id": "QQ3A.200805.001",
    "ro.build.type": "user",
    "ro.build.tags": "release-keys",
    "ro.build.fingerprint": "google/blueline/blueline:10/QQ3A.200805.001/6578210:user/release-keys",
    "ro.product.cpu.abi": "arm64-v8a",
    "ro.product.cpu.abilist": "arm64-v8a,armeabi-v7a,armeabi",
    "ro.secure": "1",
    "ro.debuggable": "0",
    "ro.adb.secure": "1",
    "sys.boot_completed": "1",
    "persist.sys.timezone": "Etc/UTC",
}

LITTLE_CPUS, BIG_CPUS = range(0, 4), range(4, 8)
MAX_KHZ = {**{c: 1766400 for c in LITTLE_CPUS}, **{c: 2803200 for c in BIG_CPUS}}
MIN_KHZ = {**{c: 300000 for c in LITTLE_CPUS}, **{c: 825600 for c in BIG_CPUS}}

# thermal_zoneN types (offset from the device's CPU temperature, or a named source)
THERMAL_ZONES = ([(f"cpu{c}-silver-usr", -1.5) for c in LITTLE_CPUS] + [(f"cpu{c}-gold-usr", 0.0) for c in BIG_CPUS]
                 + [("gpu0-usr", -4.0), ("gpu1-usr", -4.0), ("battery", "battery"), ("xo-therm", "ambient")])


def _cpuinfo() -> str:
    out = []
    for c in range(8):
        big = c in BIG_CPUS
        out.append(f"processor\t: {c}\nBogoMIPS\t: 38.40\n"
                   "Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid lrcpc dcpop\n"
                   f"CPU implementer\t: 0x51\nCPU architecture: 8\nCPU variant\t: {'0x6' if big else '0x7'}\n"
                   f"CPU part\t: {'0x802' if big else '0x803'}\nCPU revision\t: {'13' if big else '12'}\n")
    return "\n".join(out) + "\nHardware\t: Qualcomm Technologies, Inc SDM845\n"


def sysfs_files(dev) -> dict:
    """Device path -> callable returning the file's bytes."""
    def const(value):
        data = f"{value}\n".encode()
        return lambda: data

    files = {}
    cpu = "/sys/devices/system/cpu"
    for name in ("online", "possible", "present"):
        files[f"{cpu}/{name}"] = const("0-7")
    files[f"{cpu}/offline"] = const("")
    files[f"{cpu}/kernel_max"] = const("7")
    for c in range(8):
        cluster = " ".join(str(x) for x in (BIG_CPUS if c in BIG_CPUS else LITTLE_CPUS))
        base = f"{cpu}/cpu{c}"
        files[f"{base}/online"] = const("1")
        f = f"{base}/cpufreq"
        files[f"{f}/cpuinfo_max_freq"] = const(MAX_KHZ[c])
        files[f"{f}/cpuinfo_min_freq"] = const(MIN_KHZ[c])
        files[f"{f}/scaling_max_freq"] = const(MAX_KHZ[c])
        files[f"{f}/scaling_min_freq"] = const(MIN_KHZ[c])
        files[f"{f}/scaling_cur_freq"] = (lambda c=c: f"{MAX_KHZ[c] if dev.busy else MIN_KHZ[c]}\n".encode())
        files[f"{f}/scaling_governor"] = const("schedutil")
        files[f"{f}/scaling_available_governors"] = const("performance powersave schedutil")
        files[f"{f}/related_cpus"] = const(cluster)
        files[f"{f}/affected_cpus"] = const(cluster)
    for n, (kind, source) in enumerate(THERMAL_ZONES):
        z = f"/sys/class/thermal/thermal_zone{n}"
        files[f"{z}/type"] = const(kind)
        files[f"{z}/mode"] = const("enabled")

        def temp(source=source):
            if source == "battery":
                c = dev.battery_c
            elif source == "ambient":
                c = dev.ambient_c
            else:
                c = dev.temperature_c + source
            return f"{int(round(c * 1000))}\n".encode()
        files[f"{z}/temp"] = temp
    bat = "/sys/class/power_supply/battery"
    files[f"{bat}/temp"] = lambda: f"{int(round(dev.battery_c * 10))}\n".encode()
    files[f"{bat}/capacity"] = const("87")
    files[f"{bat}/status"] = const("Charging")
    files[f"{bat}/present"] = const("1")
    cpuinfo = _cpuinfo().encode()
    files["/proc/cpuinfo"] = lambda: cpuinfo
    files["/proc/version"] = const("Linux version 4.9.223-g3f4ce2d (android-build@abfarm) #1 SMP PREEMPT")
    return files
