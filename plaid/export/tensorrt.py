"""TensorRT formats. An engine is only valid on the TensorRT version and GPU that built it,
so the bundle carries the ONNX file and ``build_engine.py`` (a copy of
``device_bench/trt_build_engine.py``, which needs no plaid) to build it on the Jetson. Where TensorRT
and a CUDA GPU are present, plaid runs that same script right away and the engine, its
sidecar (TensorRT version, GPU) and its parity figures join the bundle."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
from pathlib import Path
from typing import ClassVar

import numpy as np

import device_bench
from plaid import procs
from plaid.errors import PlaidError
from plaid.export import parity
from plaid.export.formats import EXPORTERS, Artifact, ExportContext, Exporter
from plaid.export.onnx_format import onnx_io

PARITY_ON_DEVICE = 64  # samples shipped for build_engine.py's check
SCRIPT = Path(device_bench.__file__).resolve().with_name("trt_build_engine.py")  # the device half


def tensorrt_available() -> bool:
    if importlib.util.find_spec("tensorrt") is None:
        return False
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


class _TensorRT(Exporter):
    runtime = "tensorrt"
    precision: ClassVar[str]

    def export(self, ctx: ExportContext) -> Artifact:
        stage = ctx.stage
        if not (stage / "model.onnx").is_file():
            shutil.copyfile(ctx.onnx(), stage / "model.onnx")
        shutil.copyfile(SCRIPT, stage / "build_engine.py")
        os.chmod(stage / "build_engine.py", 0o755)
        files = ["model.onnx", "build_engine.py", "parity_input.npy", "parity_reference.npy"]
        # the on-device parity check compares the engine with these PyTorch outputs
        np.save(stage / "parity_input.npy", ctx.data.parity[:PARITY_ON_DEVICE])
        np.save(stage / "parity_reference.npy", ctx.reference[:PARITY_ON_DEVICE])
        if self.needs_calibration:
            np.save(stage / "calib.npy", ctx.data.calib)
            files.append("calib.npy")
        inp, out = onnx_io(stage / "model.onnx")
        inp["layout"] = "NCHW"
        engine = f"model.{self.precision}.engine"
        command = f"python3 build_engine.py --precision {self.precision}"
        art = Artifact(self.name, files, inp, out, extra={"build_command": command, "engine": engine})
        if tensorrt_available():
            ctx.log(f"building the TensorRT {self.precision} engine on this machine")
            proc = procs.run([sys.executable, str(stage / "build_engine.py"), "--precision", self.precision],
                             cwd=stage, capture_output=True, text=True)
            if proc.returncode not in (0, 1) or not (stage / engine).is_file():
                tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
                raise PlaidError(f"{self.name}: building the engine failed: {tail[:300]}")
            art.files += [engine, f"model.{self.precision}.json"]
            art.extra["device"] = json.loads((stage / f"model.{self.precision}.json").read_text())
            art.extra["engine_parity"] = json.loads(proc.stdout[proc.stdout.index("{"):])
        else:
            art.notes.append(f"engine not built: TensorRT is not installed here. Copy this folder to the Jetson "
                             f"and run `{command}` there; it writes {engine} and checks it against "
                             "parity_reference.npy")
        return art

    def load(self, artifact: Artifact, ctx: ExportContext):
        """Parity here is that of the ONNX file the engine is built from (onnxruntime); the
        engine's own figures come from build_engine.py on the device."""
        from plaid.export.onnx_format import run_onnx

        path = ctx.stage / "model.onnx"
        return lambda x: run_onnx(path, x, ctx.threads)


@EXPORTERS.named("tensorrt-fp16")
class TensorRTFP16(_TensorRT):
    summary = "TensorRT fp16 engine, built on the Jetson by build_engine.py (limits here: its ONNX source)"
    precision = "fp16"
    thresholds = parity.FP32  # checked here on the ONNX source; the engine's limits are in build_engine.py


@EXPORTERS.named("tensorrt-int8")
class TensorRTInt8(_TensorRT):
    summary = "TensorRT int8 engine, calibrated on the Jetson with the bundled samples (limits here: its ONNX source)"
    precision = "int8"
    needs_calibration = True
    thresholds = parity.FP32
