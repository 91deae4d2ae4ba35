"""ONNX (opset 20, NCHW input named ``input``), checked with onnxruntime on the CPU."""

from __future__ import annotations

import shutil
from typing import Callable

import numpy as np

from plaid.export import parity
from plaid.export.formats import EXPORTERS, INPUT_NAME, OUTPUT_NAME, Artifact, ExportContext, Exporter


def onnx_io(path) -> tuple[dict, dict]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)

    def info(value) -> dict:
        t = value.type.tensor_type
        dtype = onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name
        return {"name": value.name, "shape": [d.dim_value for d in t.shape.dim], "dtype": dtype}

    return info(model.graph.input[0]), info(model.graph.output[0])


def run_onnx(path, x: np.ndarray, threads: int = 1) -> np.ndarray:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return np.concatenate([sess.run([OUTPUT_NAME], {INPUT_NAME: x[i:i + 1]})[0] for i in range(len(x))])


@EXPORTERS.named("onnx")
class ONNX(Exporter):
    summary = "ONNX opset 20, NCHW input (onnxruntime; TensorRT builds engines from it)"
    runtime = "onnxruntime"
    thresholds = parity.FP32

    def export(self, ctx: ExportContext) -> Artifact:
        shutil.copyfile(ctx.onnx(), ctx.stage / "model.onnx")
        inp, out = onnx_io(ctx.stage / "model.onnx")
        inp["layout"] = "NCHW"
        out["layout"] = "NCHW" if len(out["shape"]) == 4 else "NC"
        return Artifact(self.name, ["model.onnx"], inp, out)

    def load(self, artifact: Artifact, ctx: ExportContext) -> Callable[[np.ndarray], np.ndarray]:
        path = ctx.stage / artifact.files[0]
        return lambda x: run_onnx(path, x, ctx.threads)
