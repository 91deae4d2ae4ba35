"""The ``tensorrt`` runtime of device_bench: NVIDIA's trtexec builds an engine per model
(ONNX) once and times it; the engine cache; int8 calibration caches written from ranges.

Precision (the plan's ``precision`` setting; absent = fp16, what Jetson deployments use):

    fp32   trtexec with no precision flag
    fp16   --fp16
    int8   --int8 --fp16: int8 where TensorRT has an int8 kernel, fp16 elsewhere (as
           plaid export's build_engine.py builds int8 engines). When a model file has a
           ranges sidecar (``MODEL.int8.json``, written by the workstation: plaid.devices.int8)
           its per-tensor ranges become a TensorRT calibration cache passed with --calib;
           without one trtexec uses its placeholder scales. Either way the kernels, and so
           the latency, are int8's; the scales only matter for accuracy, which plaid export
           checks on the real engine.

Engines are filed by (ONNX sha256, TensorRT version, GPU, precision, calibration digest)
and one built for another GPU or TensorRT version is refused, never loaded: TensorRT
engines are not portable. Python >= 3.6, standard library only (numpy is not needed here).
"""

import hashlib
import json
import os
import re
import struct
import subprocess
from typing import Dict, List, Optional

from device_bench.jetson import cuda_version, gpu_name, jetson_state
from device_bench.runtimes import Runtime, runtime

PRECISIONS = ("fp32", "fp16", "int8")
DEFAULT_PRECISION = "fp16"
PRECISION_FLAGS = {"fp32": [], "fp16": ["--fp16"], "int8": ["--int8", "--fp16"]}
RANGES_SUFFIX = ".int8.json"  # the ranges sidecar of a model file
RANGES_SCHEMA = "plaid.int8-ranges/1"

TRTEXEC_PATHS = ("/usr/src/tensorrt/bin/trtexec",)
_TRT_HEADER = re.compile(r"\[TensorRT v(\d+)\]")
_TRT_DEVICE = re.compile(r"\] Selected Device: (.+?)\s*$", re.MULTILINE)


def trt_version(header_number: int) -> str:
    """trtexec's ``[TensorRT vN]`` as a version: v8205 -> 8.2.5, v100300 -> 10.3.0."""
    n = int(header_number)
    if n >= 10000:
        return "{}.{}.{}".format(n // 10000, n // 100 % 100, n % 100)
    return "{}.{}.{}".format(n // 1000, n // 100 % 10, n % 100)


def parse_trtexec_log(text: str) -> dict:
    """{"tensorrt": version, "tensorrt_build": the header's number, "gpu": name} from trtexec's
    output (keys absent when not printed)."""
    out = {}
    m = _TRT_HEADER.search(text)
    if m:
        out["tensorrt"] = trt_version(int(m.group(1)))
        out["tensorrt_build"] = int(m.group(1))  # the number TensorRT also writes in calibration caches
    m = _TRT_DEVICE.search(text)
    if m:
        out["gpu"] = m.group(1).strip()
    return out


def parse_export_times(doc: list) -> List[float]:
    """Per-inference GPU compute milliseconds from trtexec --exportTimes JSON (a list of
    {"startInMs", ..., "computeMs", "latencyMs", ...}; older versions lack the interval
    keys: compute is then endComputeMs - startComputeMs)."""
    if not isinstance(doc, list) or not doc:
        raise ValueError("trtexec --exportTimes: expected a non-empty list of timing records")
    out = []
    for rec in doc:
        if "computeMs" in rec:
            out.append(float(rec["computeMs"]))
        else:
            out.append(float(rec["endComputeMs"]) - float(rec["startComputeMs"]))
    return out


def parse_export_profile(doc: list) -> dict:
    """trtexec --exportProfile JSON ([{"count": N}, {"name", "timeMs", "averageMs",
    "percentage"}, ...]) as {"count": N, "layers": [{"name", "average_ms", "percent"}]}."""
    if not isinstance(doc, list) or not doc or "count" not in doc[0]:
        raise ValueError("trtexec --exportProfile: expected [{count}, layers...]")
    return {"count": int(doc[0]["count"]),
            "layers": [{"name": r["name"], "average_ms": float(r["averageMs"]), "percent": float(r.get("percentage", 0))}
                       for r in doc[1:]]}


class EngineCache:
    """Engines filed by (ONNX sha256, TensorRT version, GPU, precision); each engine has a
    sidecar JSON with its key (and the digest of the calibration an int8 engine was built
    with), and one whose sidecar names another key is refused (never loaded)."""

    def __init__(self, root: str) -> None:
        self.root = root

    @staticmethod
    def slug(text: str) -> str:
        return re.sub(r"[^A-Za-z0-9.]+", "_", text).strip("_") or "unknown"

    def path(self, onnx_sha: str, tensorrt: str, gpu: str, precision: str, calibration: str = "") -> str:
        tag = precision + ("-" + calibration[:12] if calibration else "")
        name = "{}-trt{}-{}-{}.engine".format(onnx_sha[:20], tensorrt, self.slug(gpu), tag)
        return os.path.join(self.root, name)

    @staticmethod
    def key(onnx_sha: str, tensorrt: str, gpu: str, precision: str, calibration: str = "") -> dict:
        out = {"onnx_sha256": onnx_sha, "tensorrt": tensorrt, "gpu": gpu, "precision": precision}
        if calibration:
            out["calibration"] = calibration
        return out

    def lookup(self, onnx_sha: str, tensorrt: str, gpu: str, precision: str, calibration: str = "") -> Optional[str]:
        """The cached engine for this key, or None (absent, or its sidecar names another key)."""
        path = self.path(onnx_sha, tensorrt, gpu, precision, calibration)
        try:
            with open(path + ".json") as fh:
                meta = json.load(fh)
        except (OSError, ValueError):
            return None
        want = self.key(onnx_sha, tensorrt, gpu, precision, calibration)
        if any(meta.get(k) != v for k, v in want.items()) or meta.get("calibration", "") != calibration \
                or not os.path.isfile(path):
            return None
        return path

    def record(self, path: str, onnx_sha: str, tensorrt: str, gpu: str, precision: str, calibration: str = "") -> None:
        """Write the sidecar of a freshly built engine (after the engine itself)."""
        tmp = path + ".json.tmp"
        with open(tmp, "w") as fh:
            json.dump(self.key(onnx_sha, tensorrt, gpu, precision, calibration), fh)
        os.replace(tmp, path + ".json")


def precision_of(settings: Optional[dict]) -> str:
    """The plan's precision for TensorRT (absent or None: fp16)."""
    value = (settings or {}).get("precision") or DEFAULT_PRECISION
    if value not in PRECISIONS:
        raise ValueError("precision must be one of {}, got {!r}".format(", ".join(PRECISIONS), value))
    return value


def calibration_cache(ranges: Dict[str, float], build: int) -> bytes:
    """TensorRT's calibration cache for symmetric per-tensor ranges: a header line
    ``TRT-<build>-EntropyCalibration2`` (the number of trtexec's ``[TensorRT vN]``), then one
    ``name: <scale>`` line per tensor, the scale amax/127 as the big-endian hex of its
    float32 bits, in name order."""
    lines = ["TRT-{}-EntropyCalibration2".format(int(build))]
    for name in sorted(ranges):
        amax = float(ranges[name])
        if not amax > 0 or amax != amax or amax == float("inf"):
            raise ValueError("range of tensor {!r} must be a positive finite number, got {!r}".format(name, amax))
        if "\n" in name or ": " in name:
            raise ValueError("tensor name {!r} cannot be written in a calibration cache".format(name))
        lines.append("{}: {}".format(name, struct.pack(">f", amax / 127.0).hex()))
    return ("\n".join(lines) + "\n").encode()


def read_ranges(model_path: str, onnx_sha: str) -> Optional[Dict[str, float]]:
    """The ranges sidecar of a model file (None when there is none); ValueError when it is
    malformed or was written for another file."""
    side = model_path + RANGES_SUFFIX
    if not os.path.isfile(side):
        return None
    with open(side) as fh:
        doc = json.load(fh)
    if not isinstance(doc, dict) or doc.get("schema") != RANGES_SCHEMA or not isinstance(doc.get("ranges"), dict):
        raise ValueError("{} is not a {} document".format(os.path.basename(side), RANGES_SCHEMA))
    if doc.get("onnx_sha256") != onnx_sha:
        raise ValueError("{} holds the ranges of another model (sha256 {}...)".format(
            os.path.basename(side), str(doc.get("onnx_sha256"))[:12]))
    return doc["ranges"]


def find_trtexec() -> str:
    env = os.environ.get("PLAID_TRTEXEC")
    if env:
        if not os.access(env, os.X_OK):
            raise RuntimeError("PLAID_TRTEXEC={} is not an executable trtexec".format(env))
        return env
    for p in TRTEXEC_PATHS:
        if os.access(p, os.X_OK):
            return p
    for d in os.environ.get("PATH", "").split(os.pathsep):
        p = os.path.join(d, "trtexec")
        if d and os.access(p, os.X_OK):
            return p
    raise RuntimeError("trtexec not found (looked at $PLAID_TRTEXEC, {} and PATH): install TensorRT's samples "
                       "(JetPack ships it) or set PLAID_TRTEXEC".format(", ".join(TRTEXEC_PATHS)))


@runtime("tensorrt")
class TensorRT(Runtime):
    suffix = ".onnx"

    def check(self) -> None:
        find_trtexec()

    def install_hint(self) -> str:
        return "install TensorRT with its trtexec (JetPack has it in /usr/src/tensorrt/bin) or set PLAID_TRTEXEC"

    def __init__(self) -> None:
        self._ident = None  # {"tensorrt", "tensorrt_build", "gpu"} from a trtexec run
        self._last = {}  # type: Dict[str, dict]

    def _run(self, args: List[str], timeout: float) -> str:
        proc = subprocess.run([find_trtexec()] + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True, timeout=timeout)
        if proc.returncode != 0:
            tail = [ln for ln in proc.stdout.splitlines() if ln.strip()][-1:] or ["(no output)"]
            raise RuntimeError("trtexec exited with {}: {}".format(proc.returncode, tail[0][:300]))
        return proc.stdout

    def identity(self) -> dict:
        """{"tensorrt": from trtexec's header, "tensorrt_build": its number, "gpu": nvidia-smi's
        name or the Jetson's board} (the GPU name is the engine cache's key: stable across
        runs, unlike a build log)."""
        if self._ident is None:
            log = parse_trtexec_log(self._run(["--help"], 60))
            self._ident = {"tensorrt": log.get("tensorrt", "unknown"), "tensorrt_build": log.get("tensorrt_build"),
                           "gpu": gpu_name()}
        return self._ident

    def info(self, settings: Optional[dict] = None) -> dict:
        try:
            ident = self.identity()
        except Exception:  # noqa: BLE001 - the models' runs report it
            return {"name": self.name, "version": "unknown"}
        out = {"name": self.name, "version": "TensorRT {}".format(ident["tensorrt"]),
               "gpu": ident["gpu"], "precision": precision_of(settings)}
        cuda = cuda_version()
        if cuda:
            out["cuda"] = cuda
        out.update(jetson_state())
        return out

    def load(self, path: str, settings: dict):
        raise RuntimeError("TensorRT models are timed by trtexec (times()), not invoked one by one here")

    def engine(self, path: str, precision: str = DEFAULT_PRECISION) -> str:
        """The engine of ``path`` at ``precision``, built by trtexec unless cached."""
        ident = self.identity()
        cache = EngineCache(os.environ.get("PLAID_ENGINE_CACHE") or os.path.expanduser("~/.cache/plaid-engines"))
        from device_bench.trt_build_engine import sha256  # the bundles' builder: the same digest

        sha, trt, gpu = sha256(path), ident["tensorrt"], ident["gpu"]
        ranges = read_ranges(path, sha) if precision == "int8" else None
        calib_bytes = b""
        if ranges is not None:
            if ident.get("tensorrt_build") is None:
                raise RuntimeError("trtexec did not print its [TensorRT vN] header: cannot write a calibration cache")
            calib_bytes = calibration_cache(ranges, ident["tensorrt_build"])
        digest = hashlib.sha256(calib_bytes).hexdigest()[:16] if calib_bytes else ""
        calibration = None  # what the result says of the scales (int8 only)
        if precision == "int8":
            calibration = ("ranges of {} tensors ({})".format(len(ranges), digest) if ranges is not None
                           else "trtexec placeholder scales (no {} sidecar)".format(RANGES_SUFFIX))
        self._last[path] = {"precision": precision, "calibration": calibration}
        found = cache.lookup(sha, trt, gpu, precision, digest)
        if found:
            self._last[path]["engine"] = found
            return found
        os.makedirs(cache.root, exist_ok=True)
        dest = cache.path(sha, trt, gpu, precision, digest)
        args = ["--onnx=" + path, "--saveEngine=" + dest + ".part"] + PRECISION_FLAGS[precision]
        if calib_bytes:
            with open(dest + ".calib", "wb") as fh:
                fh.write(calib_bytes)
            args.append("--calib=" + dest + ".calib")
        self._run(args, 3600)
        os.replace(dest + ".part", dest)
        cache.record(dest, sha, trt, gpu, precision, digest)
        self._last[path]["engine"] = dest
        return dest

    def times(self, path: str, settings: dict) -> List[float]:
        engine = self.engine(path, precision_of(settings))
        times_json, profile_json = engine + ".times.json", engine + ".profile.json"
        warm_ms = max(0, int(settings["warmup_runs"])) * 10  # trtexec warms up for a duration (ms)
        args = ["--loadEngine=" + engine, "--warmUp={}".format(warm_ms), "--iterations={}".format(settings["min_runs"]),
                "--duration={}".format(int(max(settings["min_seconds"], 0))), "--exportTimes=" + times_json,
                "--exportProfile=" + profile_json, "--separateProfileRun"]
        self._run(args, float(settings["max_seconds"]) * 3 + 120)
        with open(times_json) as fh:
            times = parse_export_times(json.load(fh))
        return times[: int(settings["max_runs"])]

    def extra(self, path: str) -> dict:
        """The precision (and for int8 the calibration) the engine was built with, and the
        per-layer profile of the last run (where TensorRT fused what), slowest first."""
        last = self._last.get(path)
        if not last or "engine" not in last:
            return {}
        out = {"precision": last["precision"]}
        if last.get("calibration"):
            out["calibration"] = last["calibration"]
        try:
            with open(last["engine"] + ".profile.json") as fh:
                prof = parse_export_profile(json.load(fh))
        except (OSError, ValueError, KeyError):
            return out
        prof["layers"] = sorted(prof["layers"], key=lambda r: -r["average_ms"])[:20]
        out["profile"] = prof
        return out
