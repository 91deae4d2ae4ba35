"""TFLite's ``benchmark_model``: its command line from a plaid protocol, and its output
parsed into a row of the shared results schema (device_bench/schema.py).

The output format (tensorflow/lite/tools/benchmark/benchmark_model.cc and the ``Stat``
class of tensorflow/core/util/stats_calculator.h, now tsl/util/stats_calculator.h): each
of the two timed phases (warm-up, then the regular runs) ends with one line

    count=50 first=81350 curr=79102 min=77385 max=88213 avg=79732 std=1929

(integer microseconds except ``avg``, a double printed by ostream: ``58147.4``, or
``1.23457e+06`` past a second; ``std`` is the population standard deviation; a phase
whose runs were all equal prints ``count=N curr=X(all same)``). Builds since TF 2.13 use
``StatWithPercentiles`` and append `` p5=.. median=.. p95=..``. The closing line is

    Inference timings in us: Init: 38467, First inference: 83235, Warmup (avg): 8.3e+04, Inference (avg): 79760.9

optionally prefixed with ``INFO: `` (newer builds log through TFLITE_LOG).

Statistics stored (honest mapping; every row says which one it used in ``statistic``):
``median_ms`` is the printed median of the regular runs when the binary prints it, else
their mean (``avg``: older binaries print no median, and we do not invent one); ``p90_ms``
is the printed p95 when present (an upper bound of the p90), else the maximum; ``std_ms``
the printed (population) std; ``mean_ms``/``min_ms``/``runs`` as printed.
"""

from __future__ import annotations

import re

from plaid.adb.shell import cpu_mask, sh

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
# a phase's line starts with count= (after a log prefix); op-profiling tables print
# "Timings (microseconds): count=..." lines too, which must not be read as a phase
_STAT = re.compile(r"^(?:INFO:\s*|I[^\n]*?\]\s*)?count=(\d+)((?:[ \t]+\w+=" + _NUM + r")*)(\(all same\))?", re.M)
_FIELD = re.compile(r"(\w+)=(" + _NUM + r")")
_TIMINGS = re.compile(r"Inference timings in us:\s*Init:\s*(" + _NUM + r"),\s*First inference:\s*(" + _NUM +
                      r"),\s*Warmup \(avg\):\s*(" + _NUM + r"|nan|-?inf),\s*Inference \(avg\):\s*(" + _NUM + r")")
_ERROR = re.compile(r"^(?:ERROR:|E\s|.*\bERROR\b)", re.IGNORECASE)


class OutputError(ValueError):
    """benchmark_model output without a usable result; the message is one line."""


def flags(settings: dict, graph: str) -> list[str]:
    """benchmark_model flags for a plan's settings (device_bench/schema.py names).
    ``max_runs`` has no counterpart: the tool stops at ``max_secs``."""
    out = [f"--graph={graph}",
           f"--num_threads={settings['threads']}",
           f"--warmup_runs={settings['warmup_runs']}",
           f"--warmup_min_secs={settings.get('warmup_seconds', 0.0):g}",
           f"--num_runs={settings['min_runs']}",
           f"--min_secs={settings['min_seconds']:g}",
           f"--max_secs={settings['max_seconds']:g}"]
    delegate = settings.get("delegate", "xnnpack")
    out.append(f"--use_xnnpack={'true' if delegate == 'xnnpack' else 'false'}")
    if delegate == "gpu":
        out.append("--use_gpu=true")
    return out


def command(binary: str, graph: str, settings: dict) -> str:
    """The device shell line: ``taskset MASK BINARY --graph=... 2>&1``, every part quoted."""
    mask = cpu_mask(settings.get("cpus"))
    prefix = ["taskset", mask] if mask else []
    return sh(*prefix, binary, *flags(settings, graph)) + " 2>&1"


def _stat(fields_text: str, count: int, all_same: bool) -> dict[str, float]:
    got = {k: float(v) for k, v in _FIELD.findall(fields_text)}
    got["count"] = count
    if all_same or "avg" not in got:
        v = got.get("curr", got.get("min", float("nan")))
        got.update(min=v, max=v, avg=v, std=0.0)
        got.setdefault("first", v)
    return got


def parse_output(text: str, key: str = "") -> dict:
    """A results-schema row (status ok) from one benchmark_model run; raises OutputError
    with the tool's own error line when the output holds no result."""
    text = text.replace("\r\n", "\n")
    timings = _TIMINGS.search(text)
    stats = [_stat(m.group(2) or "", int(m.group(1)), bool(m.group(3))) for m in _STAT.finditer(text)
             if timings and m.start() < timings.start()]
    if not timings or not stats:
        raise OutputError(error_line(text))
    regular = stats[-1]
    if regular["count"] < 1:
        raise OutputError("benchmark_model made no timed run (count=0)")
    us = 1e-3
    if "median" in regular:
        median, med_kind = regular["median"], "median"
    else:
        median, med_kind = regular["avg"], "mean"
    p90, p90_kind = (regular["p95"], "p95") if "p95" in regular else (regular["max"], "max")
    median, p90 = min(max(median, regular["min"]), regular["max"]), max(p90, median)
    mean = regular["avg"]
    row = {
        "key": key, "status": "ok",
        "median_ms": median * us, "p90_ms": p90 * us, "mean_ms": mean * us,
        "std_ms": regular["std"] * us, "cv": regular["std"] / mean if mean > 0 else 0.0,
        "min_ms": regular["min"] * us, "runs": int(regular["count"]),
        "statistic": {"median_ms": med_kind, "p90_ms": p90_kind, "std_ms": "population"},
        "init_ms": float(timings.group(1)) * us, "first_ms": float(timings.group(2)) * us,
    }
    if len(stats) >= 2:
        row["warmup_runs"] = int(stats[0]["count"])
    return row


def error_line(text: str) -> str:
    """The most telling line of a failed run, for a one-line message."""
    lines = [ln.strip() for ln in text.replace("\r\n", "\n").split("\n") if ln.strip()]
    for ln in lines:
        if _ERROR.match(ln) or "not found" in ln or "Failed" in ln or "Could not" in ln:
            return ln[:300]
    return (lines[-1][:300] if lines else "benchmark_model printed nothing")
