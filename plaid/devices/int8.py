"""Per-tensor ranges of an ONNX model for TensorRT int8 latency engines, measured here.

A latency table of int8 engines needs each unit built with int8 kernels, and TensorRT
builds int8 kernels only for tensors that have a scale. trtexec cannot calibrate from data
(it reads a calibration cache with ``--calib`` or makes up placeholder scales), so the
workstation measures the ranges: every float tensor of the model (the inputs and each
node's outputs) over a few random-normal inputs with onnxruntime, max |x|. They go to the
board as the model's sidecar (``MODEL.onnx.int8.json``, schema ``plaid.int8-ranges/1``)
and device_bench/tensorrt.py writes them as a TensorRT calibration cache with the board's
own version header. The scales are those of random inputs: right for timing (the kernels
are int8's either way), not for accuracy, which `plaid export --format tensorrt-int8`
calibrates on real samples.
"""

from __future__ import annotations

import json
from pathlib import Path

from plaid.errors import PlaidError
from plaid.fsio import atomic_write_text, file_digest

SUFFIX = ".int8.json"  # device_bench.tensorrt.RANGES_SUFFIX
SCHEMA = "plaid.int8-ranges/1"
SAMPLES = 4
FLOOR = 1e-6  # a tensor that is all zeros on these inputs still gets a (tiny) positive range


def tensor_ranges(onnx_path: Path, samples: int = SAMPLES, seed: int = 0) -> dict[str, float]:
    """{tensor name: max |x|} over ``samples`` random-normal inputs, for every float tensor
    the graph computes (initializers and Constant outputs excluded: TensorRT quantizes
    weights itself)."""
    import numpy as np
    import onnx
    import onnxruntime as ort

    from device_bench.runtimes import random_input

    model = onnx.load(str(onnx_path))
    graph = onnx.shape_inference.infer_shapes(model).graph
    float_t = onnx.TensorProto.FLOAT
    typed = {vi.name: vi.type.tensor_type.elem_type for vi in [*graph.value_info, *graph.input, *graph.output]}
    weights = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in weights]
    names = [i.name for i in inputs if typed.get(i.name) == float_t]
    names += [o for n in model.graph.node if n.op_type != "Constant" for o in n.output
              if o and typed.get(o) == float_t and o not in weights]
    outputs = {o.name for o in model.graph.output}
    for name in names:
        if name not in outputs:
            model.graph.output.append(onnx.helper.make_tensor_value_info(name, float_t, None))
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every tensor
    opts.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), sess_options=opts, providers=["CPUExecutionProvider"])
    rng = np.random.RandomState(seed)
    amax = dict.fromkeys(names, 0.0)
    for _ in range(max(1, samples)):
        feed = {}
        for i in sess.get_inputs():
            shape = [d if isinstance(d, int) and d > 0 else 1 for d in i.shape]
            feed[i.name] = random_input(shape, np.float32, rng)
        for name, value in zip(names, sess.run(names, feed)):
            if value.size:
                amax[name] = max(amax[name], float(np.max(np.abs(value))))
    return {k: max(v, FLOOR) if np.isfinite(v) else FLOOR for k, v in amax.items()}


def ranges_sidecar(onnx_path: Path) -> Path:
    """``onnx_path``'s ranges sidecar, written next to it unless one for these exact bytes is there."""
    onnx_path = Path(onnx_path)
    side = onnx_path.with_name(onnx_path.name + SUFFIX)
    sha = file_digest(onnx_path)
    try:
        if json.loads(side.read_text()).get("onnx_sha256") == sha:
            return side
    except (OSError, ValueError, AttributeError):
        pass
    try:
        ranges = tensor_ranges(onnx_path)
    except ImportError as exc:
        raise PlaidError(f"int8 ranges need onnx and onnxruntime here ({exc}): run `make setup`") from None
    atomic_write_text(side, json.dumps({"schema": SCHEMA, "onnx_sha256": sha, "samples": SAMPLES,
                                        "method": "max |x| over random-normal inputs (onnxruntime, CPU)",
                                        "ranges": ranges}, sort_keys=True))
    return side
