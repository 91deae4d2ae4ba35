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

    tensorrt      .onnx    NVIDIA's trtexec builds an engine per model once (fp16 by default;
                           fp32, or int8 with a calibration cache, by the plan's precision)
                           and times it: device_bench/tensorrt.py

A new runtime is a subclass registered with ``@runtime("name")``; the plan schema accepts
the registered names (``RUNTIMES``)."""

from abc import ABC, abstractmethod
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


import device_bench.tensorrt  # noqa: E402,F401 - registers "tensorrt" (it imports Runtime from here)
