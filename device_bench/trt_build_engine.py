#!/usr/bin/env python3
"""Build (and check) a TensorRT engine from this bundle's model.onnx, on the device that
will run it. Written by `plaid export --format tensorrt-fp16|tensorrt-int8`; needs only
TensorRT's Python package (JetPack ships it), numpy, and torch for the GPU buffers of the
parity check. It does not need plaid.

    python3 build_engine.py --precision fp16            # -> model.fp16.engine + .json
    python3 build_engine.py --precision int8            # calibrates on calib.npy
    python3 build_engine.py --check model.fp16.engine   # parity against parity_*.npy

Engines are specific to the TensorRT version and GPU that built them. Each engine gets a
sidecar JSON naming both, and --check refuses an engine whose sidecar does not match this
device instead of letting TensorRT fail obscurely or, worse, run slowly.
"""

import argparse
import hashlib
import json
import os
import stat
import sys
import tempfile
from pathlib import Path
from typing import List, Optional

HERE = Path(__file__).resolve().parent
# parity thresholds, as in the bundle's manifest
LIMITS = {"fp16": {"max_rel_error": 2e-2, "min_cosine": 0.999, "min_agreement": 0.98},
          "int8": {"min_cosine": 0.95, "min_agreement": 0.98}}


class BuildError(Exception):
    """A problem reported to the user as one line."""


def device_identity() -> dict:
    """TensorRT version and GPU of this machine."""
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise BuildError("TensorRT's Python package is not installed here (on a Jetson it comes with JetPack: "
                         "python3 -c 'import tensorrt')") from exc
    ident = {"tensorrt": trt.__version__}
    try:
        import torch

        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            ident["gpu"] = props.name
            ident["compute_capability"] = f"{props.major}.{props.minor}"
    except ImportError:
        pass
    return ident


def mismatches(built: dict, here: dict) -> List[str]:
    """Why an engine built on ``built`` cannot be used on ``here`` (empty: it can)."""
    problems = []
    for key in ("tensorrt", "gpu", "compute_capability"):
        if key in built and key in here and built[key] != here[key]:
            problems.append(f"{key} {built[key]} (engine) != {here[key]} (this device)")
        elif key in built and key not in here:
            problems.append(f"{key} of this device unknown (engine: {built[key]})")
    return problems


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def refuse_special(path: Path) -> None:
    """BuildError if ``path`` exists and is not a regular file (a link is not followed)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        raise BuildError(f"refusing to write {path}: it exists and is not a regular file")


def write_atomic(path: Path, data: bytes) -> None:
    """Write through an unpredictable temp name (O_EXCL) next to ``path``, fsync, rename
    over it; refuse a ``path`` that exists and is not a regular file. plaid.fsio does the
    same for plaid; this script must run without plaid."""
    refuse_special(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            mask = os.umask(0o077)  # read the umask: give the mode open() would
            os.umask(mask)
            os.fchmod(fh.fileno(), 0o666 & ~mask)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise


def build(onnx_path: Path, engine_path: Path, precision: str, calib_path: Optional[Path], workspace_mb: int) -> dict:
    import numpy as np
    import tensorrt as trt

    for out in (engine_path, engine_path.with_suffix(".json")):
        refuse_special(out)  # before minutes of building, not after
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if hasattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH"):  # TensorRT < 10
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BuildError(f"TensorRT could not parse {onnx_path.name}: {errors[:300]}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    if precision in ("fp16", "int8"):
        if not builder.platform_has_fast_fp16:
            print("warning: this GPU has no fast fp16", file=sys.stderr)
        config.set_flag(trt.BuilderFlag.FP16)
    if precision == "int8":
        if calib_path is None or not calib_path.is_file():
            raise BuildError("int8 needs the calibration samples (calib.npy) written by plaid export")
        config.set_flag(trt.BuilderFlag.INT8)
        config.int8_calibrator = _calibrator(trt, np.load(calib_path), engine_path.with_suffix(".calib.cache"))
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BuildError("TensorRT failed to build the engine (see its log above)")
    write_atomic(engine_path, bytes(serialized))
    meta = {**device_identity(), "precision": precision, "onnx_sha256": sha256(onnx_path),
            "engine_sha256": sha256(engine_path)}
    write_atomic(engine_path.with_suffix(".json"), (json.dumps(meta, indent=2) + "\n").encode())
    return meta


def _calibrator(trt, samples, cache: Path):
    import torch

    class Calibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            super().__init__()
            self.i = 0
            self.buf = torch.empty((1, *samples.shape[1:]), dtype=torch.float32, device="cuda")

        def get_batch_size(self) -> int:
            return 1

        def get_batch(self, names):
            if self.i >= len(samples):
                return None
            self.buf.copy_(torch.from_numpy(samples[self.i:self.i + 1]))
            self.i += 1
            return [int(self.buf.data_ptr())]

        def read_calibration_cache(self):
            return cache.read_bytes() if cache.is_file() else None

        def write_calibration_cache(self, data) -> None:
            write_atomic(cache, bytes(data))

    return Calibrator()


def load_engine(engine_path: Path):
    """Deserialize ``engine_path`` after checking its sidecar against this device."""
    side = engine_path.with_suffix(".json")
    if not side.is_file():
        raise BuildError(f"{engine_path.name} has no {side.name}: rebuild it here with build_engine.py")
    problems = mismatches(json.loads(side.read_text()), device_identity())
    if problems:
        raise BuildError(f"{engine_path.name} was built elsewhere ({'; '.join(problems)}); "
                         "TensorRT engines only run where they were built: rebuild it on this device")
    import tensorrt as trt

    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    engine = runtime.deserialize_cuda_engine(engine_path.read_bytes())
    if engine is None:
        raise BuildError(f"TensorRT could not load {engine_path.name}")
    return engine


def run_engine(engine, x):
    import numpy as np
    import torch

    ctx = engine.create_execution_context()
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    out_name = next(n for n in names if n != "input")
    stream = torch.cuda.current_stream()
    outs = []
    for i in range(len(x)):
        inp = torch.from_numpy(np.ascontiguousarray(x[i:i + 1])).cuda()
        out = torch.empty(tuple(ctx.get_tensor_shape(out_name)), dtype=torch.float32, device="cuda")
        ctx.set_tensor_address("input", inp.data_ptr())
        ctx.set_tensor_address(out_name, out.data_ptr())
        ctx.execute_async_v3(stream.cuda_stream)
        stream.synchronize()
        outs.append(out.cpu().numpy())
    return np.concatenate(outs)


def parity(engine_path: Path, precision: str) -> dict:
    import numpy as np

    x, ref = np.load(HERE / "parity_input.npy"), np.load(HERE / "parity_reference.npy")
    got = run_engine(load_engine(engine_path), x).astype(np.float64)
    ref = ref.astype(np.float64)
    scale = float(np.abs(ref).max()) or 1.0
    a, b = got.reshape(len(got), -1), ref.reshape(len(ref), -1)
    cos = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-30)
    figures = {"samples": int(len(x)), "max_abs_error": float(np.abs(got - ref).max()),
               "max_rel_error": float(np.abs(got - ref).max() / scale), "cosine_min": float(cos.min()),
               "agreement": float((got.argmax(1) == ref.argmax(1)).mean())}
    lim = LIMITS[precision]
    failures = [k for k, ok in (
        ("max_rel_error", figures["max_rel_error"] <= lim.get("max_rel_error", float("inf"))),
        ("cosine", figures["cosine_min"] >= lim["min_cosine"]),
        ("agreement", figures["agreement"] >= lim["min_agreement"])) if not ok]
    return {**figures, "limits": lim, "passed": not failures, "failures": failures}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--precision", choices=("fp16", "int8"), default="fp16")
    ap.add_argument("--onnx", type=Path, default=HERE / "model.onnx")
    ap.add_argument("--engine", type=Path, help="output engine (default model.PRECISION.engine)")
    ap.add_argument("--calib", type=Path, default=HERE / "calib.npy")
    ap.add_argument("--workspace-mb", type=int, default=1024)
    ap.add_argument("--check", type=Path, metavar="ENGINE", help="only check ENGINE: device match and parity")
    args = ap.parse_args(argv)
    try:
        if args.check:
            precision = json.loads(args.check.with_suffix(".json").read_text()).get("precision", args.precision) \
                if args.check.with_suffix(".json").is_file() else args.precision
            report = parity(args.check, precision)
        else:
            device_identity()  # says clearly when TensorRT is missing, before anything else
            engine = args.engine or HERE / f"model.{args.precision}.engine"
            meta = build(args.onnx, engine, args.precision, args.calib, args.workspace_mb)
            print(f"built {engine.name} (TensorRT {meta['tensorrt']}, {meta.get('gpu', 'unknown GPU')})")
            report = parity(engine, args.precision)
        print(json.dumps(report, indent=2))
        return 0 if report["passed"] else 1
    except BuildError as exc:
        print(f"build_engine: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
