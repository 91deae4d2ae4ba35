"""A stand-in for NVIDIA's trtexec (TensorRT cannot be installed here), named as such in
everything it prints. It takes the flags device_bench passes, prints trtexec's output
format (the `&&&& RUNNING TensorRT.trtexec [TensorRT vNNNN]` header, `[I]` lines with
the device, `&&&& PASSED` at the end) and writes the JSON files trtexec writes
(--exportTimes: a list of per-inference records with startInMs ... endToEndMs;
--exportProfile: [{"count"}, per-layer records]). An "engine" is a JSON file naming the
ONNX model; timing runs the model with onnxruntime on this CPU, so the numbers are real
times of the model, just not TensorRT's. Environment: TRTEXEC_STANDIN_VERSION (the header
number, default 8205 = TensorRT 8.2.5), TRTEXEC_STANDIN_DEVICE, TRTEXEC_STANDIN_LOG (a file
each call's arguments are appended to), TRTEXEC_STANDIN_FAIL (exit 1 on a build). With
--calib it reads the calibration cache as TensorRT does (its version's header, then
`name: <float32 hex>` lines; anything else fails the build) and records in the "engine"
which of the ONNX model's tensors had a scale."""

import json
import os
import sys
import time

HEADER = "[TensorRT v{}]".format(os.environ.get("TRTEXEC_STANDIN_VERSION", "8205"))
DEVICE = os.environ.get("TRTEXEC_STANDIN_DEVICE", "stand-in GPU (no TensorRT here)")


def log(msg, level="I"):
    print("[{}] [{}] {}".format(time.strftime("%m/%d/%Y-%H:%M:%S"), level, msg))


def read_calibration_cache(path):
    """(problem or "", {tensor: scale}) of a calibration cache in TensorRT's text format."""
    import struct

    with open(path) as fh:
        lines = fh.read().splitlines()
    want = "TRT-{}-EntropyCalibration2".format(os.environ.get("TRTEXEC_STANDIN_VERSION", "8205"))
    if not lines or lines[0] != want:
        return "header {!r} is not {!r}".format(lines[0] if lines else "", want), {}
    scales = {}
    for line in lines[1:]:
        name, sep, value = line.rpartition(": ")
        if not sep or len(value) != 8:
            return "malformed line {!r}".format(line), {}
        scales[name] = struct.unpack(">f", bytes.fromhex(value))[0]
    return "", scales


def main(argv):
    opts = {}
    for a in argv:
        k, _, v = a.lstrip("-").partition("=")
        opts[k] = v
    if os.environ.get("TRTEXEC_STANDIN_LOG"):
        with open(os.environ["TRTEXEC_STANDIN_LOG"], "a") as fh:
            fh.write(json.dumps(argv) + "\n")
    cmd = "trtexec " + " ".join(argv)
    print("&&&& RUNNING TensorRT.trtexec {} # {}".format(HEADER, cmd))
    if "help" in opts:
        print("=== Model Options ===\n  --onnx=<file>  ONNX model (stand-in)")
        return 0
    log("=== Device Information ===")
    log("Selected Device: " + DEVICE)
    log("Compute Capability: 6.2")
    if "onnx" in opts:
        if os.environ.get("TRTEXEC_STANDIN_FAIL"):
            log("ModelImporter.cpp:726: ERROR: builtin_op_importers (stand-in failure)", "E")
            print("&&&& FAILED TensorRT.trtexec {} # {}".format(HEADER, cmd))
            return 1
        engine = {"standin_engine": os.path.abspath(opts["onnx"]), "fp16": "fp16" in opts, "int8": "int8" in opts}
        if "calib" in opts:  # read it as TensorRT would: a header of this version, then name: hex-scale lines
            problem, scales = read_calibration_cache(opts["calib"])
            if problem:
                log("Calibration cache {}: {} (stand-in)".format(opts["calib"], problem), "E")
                print("&&&& FAILED TensorRT.trtexec {} # {}".format(HEADER, cmd))
                return 1
            import onnx

            model = onnx.load(opts["onnx"])
            produced = [i.name for i in model.graph.input] + [o for n in model.graph.node
                                                              if n.op_type != "Constant" for o in n.output]
            engine["calibrated"] = sorted(scales)
            engine["missing_scales"] = [t for t in produced if t not in scales]
            for t in engine["missing_scales"]:
                log("Missing scale and zero-point for tensor {}, expect fall back to non-int8 implementation "
                    "(stand-in)".format(t), "W")
        with open(opts["saveEngine"], "w") as fh:
            json.dump(engine, fh)
        log("Engine built in 0.1 sec.")
        log("Engine generation completed in 0.1 seconds.")
    elif "loadEngine" in opts:
        import numpy as np
        import onnxruntime as ort

        with open(opts["loadEngine"]) as fh:
            engine = json.load(fh)
        sess = ort.InferenceSession(engine["standin_engine"], providers=["CPUExecutionProvider"])
        inp = sess.get_inputs()[0]
        feed = {inp.name: np.zeros([d if isinstance(d, int) else 1 for d in inp.shape], dtype=np.float32)}
        end = time.perf_counter() + float(opts.get("warmUp", 200)) / 1000
        while time.perf_counter() < end:
            sess.run(None, feed)
        records, t0 = [], time.perf_counter()
        while len(records) < int(opts.get("iterations", 10)) or time.perf_counter() - t0 < float(opts.get("duration", 3)):
            a = (time.perf_counter() - t0) * 1000
            sess.run(None, feed)
            b = (time.perf_counter() - t0) * 1000
            records.append({"startInMs": a, "endInMs": a, "startComputeMs": a, "endComputeMs": b,
                            "startOutMs": b, "endOutMs": b, "inMs": 0.0, "computeMs": b - a, "outMs": 0.0,
                            "latencyMs": b - a, "endToEndMs": b - a})
        med = sorted(r["computeMs"] for r in records)[len(records) // 2]
        log("GPU Compute Time: min = {:.4f} ms, max = {:.4f} ms, mean = {:.4f} ms, median = {:.4f} ms".format(
            min(r["computeMs"] for r in records), max(r["computeMs"] for r in records),
            sum(r["computeMs"] for r in records) / len(records), med))
        if opts.get("exportTimes"):
            with open(opts["exportTimes"], "w") as fh:
                json.dump(records, fh)
        if opts.get("exportProfile"):
            with open(opts["exportProfile"], "w") as fh:
                json.dump([{"count": len(records)},
                           {"name": "conv1 + relu1 (stand-in)", "timeMs": med * len(records) * 0.7,
                            "averageMs": med * 0.7, "medianMs": med * 0.7, "percentage": 70.0},
                           {"name": "pool + fc (stand-in)", "timeMs": med * len(records) * 0.3,
                            "averageMs": med * 0.3, "medianMs": med * 0.3, "percentage": 30.0}], fh)
    print("&&&& PASSED TensorRT.trtexec {} # {}".format(HEADER, cmd))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
