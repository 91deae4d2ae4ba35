"""TFLite formats through onnx2tf: fp32, fp16 (fp16 weights, fp32 math on CPU) and full
integer int8 (int8 input and output, per-channel weights, activation ranges from the
calibration data). The input is NHWC. A Transpose feeding or fed by a convolution means
the conversion went wrong (it makes phones several times slower): the export fails."""

from __future__ import annotations

import shutil
from typing import Any, Callable, ClassVar

import numpy as np

from plaid.errors import PlaidError
from plaid.export import parity
from plaid.export.formats import EXPORTERS, Artifact, ExportContext, Exporter


def _tensor_info(detail: dict[str, Any], name: str) -> dict[str, Any]:
    info: dict[str, Any] = {"name": name, "shape": [int(v) for v in detail["shape"]],
                            "dtype": np.dtype(detail["dtype"]).name}
    scale, zero = detail["quantization"]
    if scale:
        info["quantization"] = {"scale": float(scale), "zero_point": int(zero),
                                "formula": "real = scale * (q - zero_point)"}
    return info


class _TFLite(Exporter):
    uses_tflite = True
    runtime = "tflite"
    variant: ClassVar[str]

    def export(self, ctx: ExportContext) -> Artifact:
        from plaid.convert import transposes_near_convs, tflite_op_names

        src = ctx.tflite()[self.variant]
        bad = transposes_near_convs(src)
        if bad:
            raise PlaidError(f"{self.name}: the converted model has {len(bad)} Transpose op(s) around convolutions "
                             f"({bad[0]}, ...); refusing to ship a model that runs several times slower")
        ops = tflite_op_names(src)
        flex = sorted({op for op in ops if op.startswith("FLEX") or op == "CUSTOM"})
        if flex:
            raise PlaidError(f"{self.name}: the converted model needs non-builtin ops {flex}, which stock TFLite "
                             "runtimes on phones do not have")
        name = f"model_{self.variant if self.variant != 'float32' else 'fp32'}.tflite".replace("float16", "fp16")
        shutil.copyfile(src, ctx.stage / name)
        interp = _interpreter(ctx.stage / name, ctx.threads)
        i, o = interp.get_input_details()[0], interp.get_output_details()[0]
        inp = {**_tensor_info(i, "input"), "layout": "NHWC"}
        out = _tensor_info(o, "output")
        out["layout"] = "NHWC" if len(o["shape"]) == 4 else "NC"
        return Artifact(self.name, [name], inp, out, extra={"ops": sorted(set(ops)), "op_count": len(ops)})

    def load(self, artifact: Artifact, ctx: ExportContext) -> Callable[[np.ndarray], np.ndarray]:
        path = ctx.stage / artifact.files[0]

        def run(x: np.ndarray) -> np.ndarray:
            return run_tflite(path, x, ctx.threads)

        return run


def _interpreter(path, threads: int):
    from ai_edge_litert.interpreter import Interpreter

    from plaid.convert import quiet_fd2

    with quiet_fd2():  # the runtime's "Created TensorFlow Lite XNNPACK delegate" line
        interp = Interpreter(model_path=str(path), num_threads=threads)
        interp.allocate_tensors()
    return interp


def run_tflite(path, x: np.ndarray, threads: int = 1) -> np.ndarray:
    """NCHW float batch (normalised) -> outputs in PyTorch's layout, one sample at a time,
    quantising the input and dequantising the output of an int8 model as an app would."""
    interp = _interpreter(path, threads)
    i, o = interp.get_input_details()[0], interp.get_output_details()[0]
    outs = []
    for sample in x:
        nhwc = sample.transpose(1, 2, 0)[None]
        if i["dtype"] != np.float32:
            scale, zero = i["quantization"]
            info = np.iinfo(i["dtype"])
            nhwc = np.clip(np.round(nhwc / scale + zero), info.min, info.max).astype(i["dtype"])
        interp.set_tensor(i["index"], np.ascontiguousarray(nhwc))
        interp.invoke()
        y = interp.get_tensor(o["index"])
        if o["dtype"] != np.float32:
            scale, zero = o["quantization"]
            y = (y.astype(np.float32) - zero) * scale
        outs.append(y[0])
    out = np.stack(outs).astype(np.float32)
    return out.transpose(0, 3, 1, 2) if out.ndim == 4 else out


@EXPORTERS.named("tflite-fp32")
class TFLiteFP32(_TFLite):
    summary = "TFLite float32, NHWC input (phones, host CPU; XNNPACK)"
    variant = "float32"
    thresholds = parity.FP32


@EXPORTERS.named("tflite-fp16")
class TFLiteFP16(_TFLite):
    summary = "TFLite with float16 weights (half the size; GPU delegate runs it in fp16)"
    variant = "float16"
    thresholds = parity.FP16


@EXPORTERS.named("tflite-int8")
class TFLiteInt8(_TFLite):
    summary = "TFLite full-integer int8 (int8 input/output), calibrated on --calib data"
    variant = "int8"
    needs_calibration = True
    thresholds = parity.INT8
