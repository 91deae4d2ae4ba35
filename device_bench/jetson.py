"""What a Jetson user checks before trusting a timing, read on the board (standard library
only, Python >= 3.6): the L4T release, the GPU's name, the CUDA version, the nvpmodel power mode, whether
jetson_clocks pinned the GPU and memory (EMC) clocks, and the thermal zones. Everything is
best effort: a file that is absent or unreadable leaves its keys out (the EMC clock lives
in debugfs, which only root may read: ``emc_readable`` says so)."""

import glob
import os
import re
import subprocess
from typing import Dict, List

_NVP_MODE = re.compile(r"NV Power Mode:\s*(\S+)")

# The EMC (memory) clock: BPMP-driven Jetsons (TX2, Xavier, Orin), then the older clock tree (TX1, Nano).
EMC_CLOCKS = (("sys/kernel/debug/bpmp/debug/clk/emc/rate", "sys/kernel/debug/bpmp/debug/clk/emc/max_rate"),
              ("sys/kernel/debug/clk/emc/clk_rate", "sys/kernel/debug/clk/emc/clk_max_rate"))


def gpu_name() -> str:
    """nvidia-smi's name for GPU 0, else the Jetson's board name, else "unknown"."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, universal_newlines=True, timeout=30)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        with open("/proc/device-tree/model") as fh:
            return fh.read().strip("\x00\n ")
    except OSError:
        return "unknown"


def _read_int(path: str):
    try:
        with open(path) as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        return None


def _gpu_clock(root: str) -> dict:
    for dev in sorted(glob.glob(os.path.join(root, "sys/devices/gpu.0/devfreq/*"))
                      + glob.glob(os.path.join(root, "sys/devices/platform/*gpu*/devfreq/*")))[:1]:
        freqs = {n: _read_int(os.path.join(dev, n)) for n in ("cur_freq", "min_freq", "max_freq")}
        if freqs["cur_freq"] is not None and freqs["max_freq"] is not None:
            return {"gpu_mhz": freqs["cur_freq"] // 10**6, "gpu_max_mhz": freqs["max_freq"] // 10**6,
                    "clocks_pinned": freqs["min_freq"] == freqs["max_freq"]}
    return {}


def _emc_clock(root: str) -> dict:
    seen = False
    for rate, top in EMC_CLOCKS:
        if not os.path.exists(os.path.join(root, os.path.dirname(rate))):
            continue
        seen = True
        cur, high = _read_int(os.path.join(root, rate)), _read_int(os.path.join(root, top))
        if cur is not None and high is not None:
            return {"emc_mhz": cur // 10**6, "emc_max_mhz": high // 10**6, "emc_readable": True}
    # debugfs is mounted root-only: its folder is not even visible to a user
    return {"emc_readable": False} if seen or not os.access(os.path.join(root, "sys/kernel/debug"), os.R_OK) else {}


_CUDA_TXT = re.compile(r"CUDA Version\s+(\d+(?:\.\d+)*)")
_NVCC = re.compile(r"release \d+(?:\.\d+)*, V(\d+(?:\.\d+)*)")


def cuda_version(root: str = "/") -> str:
    """The CUDA toolkit's version: /usr/local/cuda/version.json (CUDA >= 11), version.txt
    (JetPack 4's CUDA 10.2), else ``nvcc --version``; "" when none says."""
    base = os.path.join(root, "usr/local/cuda")
    try:
        import json

        with open(os.path.join(base, "version.json")) as fh:
            return str(json.load(fh)["cuda"]["version"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    try:
        with open(os.path.join(base, "version.txt")) as fh:
            m = _CUDA_TXT.search(fh.read())
            if m:
                return m.group(1)
    except OSError:
        pass
    for nvcc in (os.path.join(base, "bin/nvcc"), "nvcc"):
        try:
            out = subprocess.run([nvcc, "--version"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                 universal_newlines=True, timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        m = _NVCC.search(out)
        if m:
            return m.group(1)
    return ""


def thermal_zones(root: str = "/") -> Dict[str, float]:
    """{zone type: degrees C} of every readable thermal zone (a type seen twice gets its number)."""
    out = {}
    for zone in sorted(glob.glob(os.path.join(root, "sys/class/thermal/thermal_zone*"))):
        milli = _read_int(os.path.join(zone, "temp"))
        if milli is None:
            continue
        try:
            with open(os.path.join(zone, "type")) as fh:
                name = fh.read().strip() or os.path.basename(zone)
        except OSError:
            name = os.path.basename(zone)
        if name in out:
            name = "{}-{}".format(name, os.path.basename(zone)[len("thermal_zone"):])
        out[name] = milli / 1000.0
    return out


def jetson_state(root: str = "/") -> dict:
    """The L4T release, nvpmodel mode, GPU and EMC clocks (current, maximum, pinned) and the
    thermal zones; empty off a Jetson (no /etc/nv_tegra_release)."""
    out = {}
    try:
        with open(os.path.join(root, "etc/nv_tegra_release")) as fh:
            out["l4t"] = fh.readline().strip().lstrip("# ")
    except OSError:
        return out
    try:
        q = subprocess.run(["nvpmodel", "-q"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           universal_newlines=True, timeout=30)
        m = _NVP_MODE.search(q.stdout)
        if m:
            out["nvpmodel"] = m.group(1)
    except (OSError, subprocess.SubprocessError):
        pass
    out.update(_gpu_clock(root))
    out.update(_emc_clock(root))
    zones = thermal_zones(root)
    if zones:
        out["thermal_c"] = zones
    return out


def jetson_warnings(state: dict) -> List[str]:
    """Why timings on this Jetson will not be those of one at full power (empty when they are)."""
    out = []
    mode = state.get("nvpmodel")
    if mode and not mode.upper().startswith("MAXN"):
        out.append("nvpmodel mode {} is not the maximum (MAXN): `sudo nvpmodel -m 0` first".format(mode))
    if state.get("clocks_pinned") is False:
        out.append("the GPU clock is not pinned ({} of {} MHz now): run `sudo jetson_clocks` first".format(
            state.get("gpu_mhz"), state.get("gpu_max_mhz")))
    if state.get("emc_readable") and state.get("emc_mhz", 0) < state.get("emc_max_mhz", 0):
        out.append("the memory (EMC) clock is at {} of {} MHz: run `sudo jetson_clocks` first".format(
            state["emc_mhz"], state["emc_max_mhz"]))
    return out
