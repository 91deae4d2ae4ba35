"""The benchmark plan and results schema shared by device_bench, the TFLite
`benchmark_model` output parser and the Android APK (schema ids below).

Plan (JSON)::

    {"schema": "plaid.plan/1",
     "runtime": "tflite",                # or "onnxruntime", "tensorrt": device_bench.runtimes
     "settings": {"threads": 1, "warmup_runs": 5, "min_runs": 20, "max_runs": 1000,
                  "min_seconds": 1.0, "max_seconds": 20.0, "delegate": "xnnpack",
                  "cpus": [0],           # CPU affinity; null = leave as is
                  "precision": null},    # tensorrt: fp32 | fp16 | int8 (null = fp16);
                                         # other runtimes: null or fp32 (the file as converted)
     "models": [{"key": "df.basic-in:28x28x64-...", "path": "units/ab12.tflite"}]}

``path`` is relative to the plan file's folder (or absolute).

Results (JSON)::

    {"schema": "plaid.results/1",
     "runtime": {"name": "tflite", "version": "ai-edge-litert 2.1.0"},
     "device": {... fingerprint ...},
     "settings": {... as in the plan ...},
     "results": [{"key": ..., "status": "ok", "median_ms": ..., "p90_ms": ..., "mean_ms": ...,
                  "std_ms": ..., "cv": ..., "min_ms": ..., "runs": ...},
                 {"key": ..., "status": "error", "error": "one line"}]}

While running, device_bench also prints each result as one JSON line on stdout
(``{"event": "result", ...}``) so the host can commit it the moment it exists.
"""

from device_bench.runtimes import RUNTIMES
from device_bench.tensorrt import PRECISIONS

PLAN_SCHEMA = "plaid.plan/1"
RESULTS_SCHEMA = "plaid.results/1"

DEFAULT_SETTINGS = {
    "threads": 1,
    "warmup_runs": 5,
    "min_runs": 20,
    "max_runs": 1000,
    "min_seconds": 1.0,
    "max_seconds": 20.0,
    "delegate": "xnnpack",
    "cpus": None,
    "precision": None,
}

_SETTING_TYPES = {
    "threads": int,
    "warmup_runs": int,
    "min_runs": int,
    "max_runs": int,
    "min_seconds": (int, float),
    "max_seconds": (int, float),
    "delegate": str,
    "cpus": (list, type(None)),
    "precision": (str, type(None)),
}

RESULT_OK_KEYS = ("key", "status", "median_ms", "p90_ms", "mean_ms", "std_ms", "cv", "min_ms", "runs")


class SchemaError(ValueError):
    """A plan or results document that does not follow the schema."""


def validate_settings(settings: object) -> dict:
    if not isinstance(settings, dict):
        raise SchemaError("'settings' must be a JSON object")
    unknown = set(settings) - set(DEFAULT_SETTINGS)
    if unknown:
        raise SchemaError(f"unknown settings {sorted(unknown)}")
    merged = {**DEFAULT_SETTINGS, **settings}
    for key, typ in _SETTING_TYPES.items():
        value = merged[key]
        if isinstance(value, bool) or not isinstance(value, typ):
            raise SchemaError(f"setting {key!r} has the wrong type: {value!r}")
    if merged["threads"] < 1 or merged["min_runs"] < 1 or merged["warmup_runs"] < 0:
        raise SchemaError("threads and min_runs must be >= 1, warmup_runs >= 0")
    if merged["max_runs"] < merged["min_runs"] or merged["max_seconds"] < merged["min_seconds"]:
        raise SchemaError("max_runs/max_seconds must not be below min_runs/min_seconds")
    if merged["delegate"] not in ("xnnpack", "none", "gpu"):
        raise SchemaError(f"delegate must be xnnpack, none or gpu, got {merged['delegate']!r}")
    if merged["cpus"] is not None and not all(
            isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in merged["cpus"]):
        raise SchemaError("cpus must be a list of CPU numbers")
    if merged["precision"] is not None and merged["precision"] not in PRECISIONS:
        raise SchemaError(f"precision must be fp32, fp16 or int8, got {merged['precision']!r}")
    return merged


def validate_plan(plan: object, runtimes=None) -> dict:
    """The plan with its settings filled in; SchemaError otherwise. ``runtimes``: the names
    the runner accepts (default: every runtime device_bench has; the Android app: tflite)."""
    names = sorted(runtimes or RUNTIMES)
    if not isinstance(plan, dict):
        raise SchemaError("a plan is a JSON object")
    if plan.get("schema") != PLAN_SCHEMA:
        raise SchemaError(f"plan schema must be {PLAN_SCHEMA!r}, got {plan.get('schema')!r}")
    if plan.get("runtime") not in names:
        raise SchemaError(f"runtime {plan.get('runtime')!r} is not supported here ({', '.join(names)})")
    models = plan.get("models")
    if not isinstance(models, list) or not models:
        raise SchemaError("plan needs a non-empty 'models' list")
    keys = set()
    for m in models:
        if not isinstance(m, dict) or not isinstance(m.get("key"), str) or not isinstance(m.get("path"), str):
            raise SchemaError(f"each model needs string 'key' and 'path': {m!r}")
        if m["key"] in keys:
            raise SchemaError(f"model key {m['key']!r} appears twice")
        keys.add(m["key"])
    settings = validate_settings(plan.get("settings", {}))
    if settings["precision"] not in (None, "fp32") and plan["runtime"] != "tensorrt":
        raise SchemaError(f"precision {settings['precision']!r} needs the tensorrt runtime "
                          f"({plan['runtime']} times the model file as it was converted)")
    return {**plan, "settings": settings}


def validate_result(r: object) -> dict:
    if not isinstance(r, dict) or not isinstance(r.get("key"), str):
        raise SchemaError(f"a result needs a string 'key': {r!r}")
    if r.get("status") == "ok":
        for k in RESULT_OK_KEYS:
            if k not in r:
                raise SchemaError(f"result {r['key']!r} lacks {k!r}")
        if not (0 <= r["min_ms"] <= r["median_ms"] <= r["p90_ms"]) or r["runs"] < 1:
            raise SchemaError(f"result {r['key']!r} has inconsistent statistics")
    elif r.get("status") == "error":
        if not isinstance(r.get("error"), str):
            raise SchemaError(f"error result {r['key']!r} needs an 'error' message")
    else:
        raise SchemaError(f"result status must be ok or error, got {r.get('status')!r}")
    return r


def validate_results(doc: object) -> dict:
    if not isinstance(doc, dict) or doc.get("schema") != RESULTS_SCHEMA:
        raise SchemaError(f"results schema must be {RESULTS_SCHEMA!r}")
    for key in ("runtime", "device", "settings"):
        if not isinstance(doc.get(key), dict):
            raise SchemaError(f"results need a {key!r} object")
    if not isinstance(doc.get("results"), list):
        raise SchemaError("results need a 'results' list")
    for r in doc["results"]:
        validate_result(r)
    return doc
