"""The runtimes device_bench times models with, by the name a plan gives (``"runtime"``).

Each runtime loads one model file with the plan's settings (threads, delegate) and returns
a callable that runs one inference on fixed random inputs; ``info()`` names it and its
version for the results. Its library is imported only when it is used, so a board needs
just the runtime its plan names. Python >= 3.6, standard library and numpy only (JetPack
4.6 on a TX2 ships Python 3.6 and numpy 1.13).

    tflite        .tflite  ai-edge-litert's interpreter; delegate xnnpack (its default),
                           none (built-in kernels only) or gpu (refused: not in Python here)
    onnxruntime   .onnx    onnxruntime's CPU provider with `threads` intra-op threads and one
                           inter-op thread, sequential execution, every graph optimisation;
                           delegate none = the CPU provider; xnnpack = onnxruntime's XNNPACK
                           provider where the build has it (PyPI's builds do not: then the CPU
                           provider, which the results name); gpu = its CUDA provider
                           (refused when the build lacks it)

    tensorrt      .onnx    NVIDIA's trtexec (``$PLAID_TRTEXEC``, else /usr/src/tensorrt/bin/
                           trtexec, else trtexec on PATH): an fp16 engine built once per
                           (ONNX sha256, TensorRT version, GPU) and cached
                           (``$PLAID_ENGINE_CACHE``, else ~/.cache/plaid-engines); timed by
                           trtexec itself, each run's GPU compute time read from its
                           --exportTimes JSON; the per-layer profile (--exportProfile) kept
                           next to the engine

A new runtime is a subclass registered with ``@runtime("name")``; the plan schema accepts
the registered names (``RUNTIMES``)."""

from abc import ABC, abstractmethod
import json
import os
import re
import subprocess
from typing import Callable, Dict, List, Optional, Type

RUNTIMES = {}  # type: Dict[str, Type[Runtime]]


def runtime(name: str):
    """Class decorator: ``@runtime("tflite")`` lets a plan name it."""
    def add(cls):
        cls.name = name
        RUNTIMES[name] = cls
        return cls
    return add


def get(name: str) -> "Runtime":
    if name not in RUNTIMES:
        raise KeyError("unknown runtime {!r} (device_bench has: {})".format(name, ", ".join(sorted(RUNTIMES))))
    return RUNTIMES[name]()


def _version(dist: str) -> str:
    try:
        try:
            from importlib.metadata import version  # novermin (Python 3.8+; the fallback below before)
        except ImportError:
            from pkg_resources import get_distribution

            def version(name):
                return get_distribution(name).version
        return "{} {}".format(dist, version(dist))
    except Exception:  # noqa: BLE001 - any packaging failure means "unknown"
        return "unknown"


def random_input(shape, dtype, rng):
    """Fixed random data of a shape and numpy dtype (floats normal, integers in int8's range)."""
    import numpy as np

    if np.issubdtype(dtype, np.floating):
        return rng.standard_normal(shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.randint(max(info.min, -128), min(info.max, 127) + 1, size=shape).astype(dtype)


class Runtime(ABC):
    name = ""
    suffix = ""  # the model file it reads
    dist = ""  # the package that provides it (its version goes into the results)
    module = ""  # what it imports

    def check(self) -> None:
        """Raise (naming what is missing) unless this machine can run it."""
        __import__(self.module)

    def install_hint(self) -> str:
        return "pip install " + self.dist

    def info(self, settings: Optional[dict] = None) -> dict:
        """{"name", "version"} (and what the settings choose, where a runtime says more)."""
        return {"name": self.name, "version": _version(self.dist)}

    @abstractmethod
    def load(self, path: str, settings: dict) -> Callable[[], None]:
        """One inference on fixed inputs, ready to time (the model loaded and allocated)."""

    def times(self, path: str, settings: dict) -> List[float]:
        """Per-run milliseconds under the plan's warm-up / run / second bounds."""
        from device_bench.runner import timed_runs

        return timed_runs(self.load(path, settings), settings)

    def extra(self, path: str) -> dict:
        """What the last ``times(path)`` learnt besides the times (goes into the result)."""
        return {}


@runtime("tflite")
class Tflite(Runtime):
    suffix = ".tflite"
    dist = "ai-edge-litert"
    module = "ai_edge_litert.interpreter"

    def interpreter(self, path: str, settings: dict):
        import numpy as np
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        kwargs = {"model_path": path, "num_threads": settings["threads"]}
        if settings["delegate"] == "none":
            kwargs["experimental_op_resolver_type"] = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        elif settings["delegate"] == "gpu":
            raise RuntimeError("the GPU delegate is not available in the Python interpreter here")
        interp = Interpreter(**kwargs)
        interp.allocate_tensors()
        rng = np.random.RandomState(0)  # not default_rng: JetPack 4.6's numpy (1.13) predates it
        for d in interp.get_input_details():
            interp.set_tensor(d["index"], random_input(d["shape"], d["dtype"], rng))
        return interp

    def load(self, path: str, settings: dict) -> Callable[[], None]:
        return self.interpreter(path, settings).invoke


# onnxruntime's element types as numpy dtypes (the ones converted vision nets use)
_ORT_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
              "tensor(int8)": "int8", "tensor(uint8)": "uint8", "tensor(int32)": "int32", "tensor(int64)": "int64"}
_ORT_PROVIDERS = {"none": "CPUExecutionProvider", "xnnpack": "XnnpackExecutionProvider",
                  "gpu": "CUDAExecutionProvider"}


@runtime("onnxruntime")
class OnnxRuntime(Runtime):
    suffix = ".onnx"
    dist = "onnxruntime"
    module = "onnxruntime"

    @staticmethod
    def provider(settings: dict) -> str:
        """The execution provider the settings' delegate picks in this build."""
        import onnxruntime as ort

        have = ort.get_available_providers()
        want = _ORT_PROVIDERS[settings["delegate"]]
        if want in have:
            return want
        if settings["delegate"] == "xnnpack":
            return "CPUExecutionProvider"
        raise RuntimeError("this onnxruntime build has no {} (delegate {!r}; it has {})".format(
            want, settings["delegate"], ", ".join(have)))

    def info(self, settings: Optional[dict] = None) -> dict:
        out = Runtime.info(self)
        if settings is not None:
            try:
                out["provider"] = self.provider(settings)
            except Exception:  # noqa: BLE001 - the model's load reports it
                pass
        return out

    def load(self, path: str, settings: dict) -> Callable[[], None]:
        import numpy as np
        import onnxruntime as ort

        provider = self.provider(settings)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = settings["threads"]
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        if provider == "XnnpackExecutionProvider":  # XNNPACK keeps its own pool; ORT's stays at 1
            providers = [(provider, {"intra_op_num_threads": settings["threads"]}), "CPUExecutionProvider"]
            opts.intra_op_num_threads = 1
        else:
            providers = [provider]
        sess = ort.InferenceSession(path, sess_options=opts, providers=providers)
        rng = np.random.RandomState(0)
        feed = {}
        for inp in sess.get_inputs():
            if inp.type not in _ORT_TYPES:
                raise RuntimeError("input {!r} has type {}, which device_bench cannot fill".format(inp.name, inp.type))
            shape = [d if isinstance(d, int) and d > 0 else 1 for d in inp.shape]  # dynamic axes: 1
            feed[inp.name] = random_input(shape, np.dtype(_ORT_TYPES[inp.type]), rng)
        outputs = [o.name for o in sess.get_outputs()]

        def invoke():
            sess.run(outputs, feed)
        return invoke


# ---------------------------------------------------------------------------------------- TensorRT
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
    """{"tensorrt": version, "gpu": name} from trtexec's output (keys absent when not printed)."""
    out = {}
    m = _TRT_HEADER.search(text)
    if m:
        out["tensorrt"] = trt_version(int(m.group(1)))
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
    sidecar JSON with its key, and one built for another GPU or TensorRT version is refused
    (never loaded: TensorRT engines are not portable)."""

    def __init__(self, root: str) -> None:
        self.root = root

    @staticmethod
    def slug(text: str) -> str:
        return re.sub(r"[^A-Za-z0-9.]+", "_", text).strip("_") or "unknown"

    def path(self, onnx_sha: str, tensorrt: str, gpu: str, precision: str) -> str:
        name = "{}-trt{}-{}-{}.engine".format(onnx_sha[:20], tensorrt, self.slug(gpu), precision)
        return os.path.join(self.root, name)

    def lookup(self, onnx_sha: str, tensorrt: str, gpu: str, precision: str) -> Optional[str]:
        """The cached engine for this key, or None (absent, or its sidecar names another key)."""
        path = self.path(onnx_sha, tensorrt, gpu, precision)
        try:
            with open(path + ".json") as fh:
                meta = json.load(fh)
        except (OSError, ValueError):
            return None
        want = {"onnx_sha256": onnx_sha, "tensorrt": tensorrt, "gpu": gpu, "precision": precision}
        if any(meta.get(k) != v for k, v in want.items()) or not os.path.isfile(path):
            return None
        return path

    def record(self, path: str, onnx_sha: str, tensorrt: str, gpu: str, precision: str) -> None:
        """Write the sidecar of a freshly built engine (after the engine itself)."""
        tmp = path + ".json.tmp"
        with open(tmp, "w") as fh:
            json.dump({"onnx_sha256": onnx_sha, "tensorrt": tensorrt, "gpu": gpu, "precision": precision}, fh)
        os.replace(tmp, path + ".json")


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
    precision = "fp16"

    def check(self) -> None:
        find_trtexec()

    def install_hint(self) -> str:
        return "install TensorRT with its trtexec (JetPack has it in /usr/src/tensorrt/bin) or set PLAID_TRTEXEC"

    def __init__(self) -> None:
        self._ident = None  # {"tensorrt", "gpu"} from a trtexec run

    def _run(self, args: List[str], timeout: float) -> str:
        proc = subprocess.run([find_trtexec()] + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True, timeout=timeout)
        if proc.returncode != 0:
            tail = [ln for ln in proc.stdout.splitlines() if ln.strip()][-1:] or ["(no output)"]
            raise RuntimeError("trtexec exited with {}: {}".format(proc.returncode, tail[0][:300]))
        return proc.stdout

    def identity(self) -> dict:
        """{"tensorrt": from trtexec's header, "gpu": nvidia-smi's name or the Jetson's board}
        (the GPU name is the engine cache's key: stable across runs, unlike a build log)."""
        if self._ident is None:
            self._ident = {"tensorrt": parse_trtexec_log(self._run(["--help"], 60)).get("tensorrt", "unknown"),
                           "gpu": _gpu_name()}
        return self._ident

    def info(self, settings: Optional[dict] = None) -> dict:
        try:
            ident = self.identity()
        except Exception:  # noqa: BLE001 - the models' runs report it
            return {"name": self.name, "version": "unknown"}
        out = {"name": self.name, "version": "TensorRT {}".format(ident["tensorrt"]),
               "gpu": ident["gpu"], "precision": self.precision}
        out.update(jetson_state())
        return out

    def load(self, path: str, settings: dict) -> Callable[[], None]:
        raise RuntimeError("TensorRT models are timed by trtexec (times()), not invoked one by one here")

    def engine(self, path: str) -> str:
        ident = self.identity()
        cache = EngineCache(os.environ.get("PLAID_ENGINE_CACHE") or os.path.expanduser("~/.cache/plaid-engines"))
        from device_bench.trt_build_engine import sha256  # the bundles' builder: the same digest

        sha, trt, gpu = sha256(path), ident["tensorrt"], ident["gpu"]
        found = cache.lookup(sha, trt, gpu, self.precision)
        if found:
            return found
        os.makedirs(cache.root, exist_ok=True)
        dest = cache.path(sha, trt, gpu, self.precision)
        self._run(["--onnx=" + path, "--saveEngine=" + dest + ".part", "--" + self.precision], 3600)
        os.replace(dest + ".part", dest)
        cache.record(dest, sha, trt, gpu, self.precision)
        return dest

    def times(self, path: str, settings: dict) -> List[float]:
        engine = self.engine(path)
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
        """The per-layer profile of the last run (where TensorRT fused what), slowest first."""
        try:
            with open(self.engine(path) + ".profile.json") as fh:
                prof = parse_export_profile(json.load(fh))
        except (OSError, ValueError, KeyError):
            return {}
        prof["layers"] = sorted(prof["layers"], key=lambda r: -r["average_ms"])[:20]
        return {"profile": prof}


def _gpu_name() -> str:
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


_NVP_MODE = re.compile(r"NV Power Mode:\s*(\S+)")


def jetson_state(root: str = "/") -> dict:
    """What a Jetson user checks before trusting a timing: the L4T release, the nvpmodel power
    mode, and whether the GPU clock is pinned (jetson_clocks sets its min to its max), with
    the GPU's current and maximum frequency. Empty off a Jetson."""
    import glob

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
    for dev in sorted(glob.glob(os.path.join(root, "sys/devices/gpu.0/devfreq/*"))
                      + glob.glob(os.path.join(root, "sys/devices/platform/*gpu*/devfreq/*")))[:1]:
        freqs = {}
        for name in ("cur_freq", "min_freq", "max_freq"):
            try:
                with open(os.path.join(dev, name)) as fh:
                    freqs[name] = int(fh.read().strip())
            except (OSError, ValueError):
                pass
        if "cur_freq" in freqs and "max_freq" in freqs:
            out["gpu_mhz"], out["gpu_max_mhz"] = freqs["cur_freq"] // 10**6, freqs["max_freq"] // 10**6
            out["clocks_pinned"] = freqs.get("min_freq") == freqs["max_freq"]
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
    return out
