"""How fast are the exported models on the host? DF1 and ResNet-18 at 224x224 as TFLite fp32,
TFLite full-int8 (XNNPACK), onnxruntime (CPU) and PyTorch eager, all with the same thread
count and the same timing protocol (device_bench: warm-up, then runs until both a minimum
count and a minimum time; median reported). One run; random weights (speed does not depend
on them); int8 calibrated on 100 digits images (real data, not noise). Goal: TFLite int8 at
least 1.5x faster than fp32. The DF1/ResNet-18 latency ratio is reported next to the paper's
TX2 ratio (2.5 ms / 4.4 ms). Writes benchmarks/results/export_speed.json.

    .venv/bin/python benchmarks/export_speed.py [--threads 1] [--min-seconds 3]
"""

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine, write_report  # noqa: E402

NETS = ["df1", "resnet18"]
PAPER_TX2_MS = {"df1": 2.5, "resnet18": 4.4}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--min-seconds", type=float, default=3.0)
    ap.add_argument("--resolution", type=int, default=224)
    ap.add_argument("-o", "--output", type=Path,
                    default=Path(__file__).resolve().parent / "results" / "export_speed.json")
    args = ap.parse_args()

    import numpy as np
    import torch

    from device_bench.runner import measure_model, stats, timed_runs
    from device_bench.schema import validate_settings
    from plaid.convert import export_onnx, onnx2tf_variants, transposes_near_convs
    from plaid.export.data import export_data
    from plaid.export.onnx_format import run_onnx
    from plaid.zoo import resolve

    hw = (args.resolution, args.resolution)
    settings = validate_settings({"threads": args.threads, "warmup_runs": 10, "min_runs": 30, "max_runs": 5000,
                                  "min_seconds": args.min_seconds, "max_seconds": 60.0})
    calib = export_data("digits", hw, calib_samples=100, parity_samples=1).calib
    torch.set_num_threads(args.threads)
    results = {}
    for net in NETS:
        model = resolve(net).build().eval()
        with tempfile.TemporaryDirectory() as tmp:
            onnx_path = export_onnx(model, (1, 3, *hw), Path(tmp) / "model.onnx")
            print(f"{net}: converting (fp32 + int8) ...", flush=True)
            tfl = onnx2tf_variants(onnx_path, Path(tmp) / "tflite", calib=calib.transpose(0, 2, 3, 1))
            assert not transposes_near_convs(tfl["float32"]) and not transposes_near_convs(tfl["int8"])
            row = {}
            for variant, key in (("float32", "tflite_fp32"), ("int8", "tflite_int8")):
                row[key] = measure_model(str(tfl[variant]), settings)
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.intra_op_num_threads, opts.inter_op_num_threads = args.threads, 1
            sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
            x = np.random.default_rng(0).standard_normal((1, 3, *hw), dtype=np.float32)
            row["onnxruntime"] = stats(timed_runs(lambda: sess.run(["output"], {"input": x}), settings))
            run_onnx(onnx_path, x, args.threads)  # same call path the parity check uses
            xt = torch.from_numpy(x)
            with torch.no_grad():
                row["torch_eager"] = stats(timed_runs(lambda: model(xt), settings))
        results[net] = {k: {"median_ms": v["median_ms"], "p90_ms": v["p90_ms"], "cv": v["cv"], "runs": v["runs"]}
                        for k, v in row.items()}
        results[net]["int8_speedup_vs_fp32"] = row["tflite_fp32"]["median_ms"] / row["tflite_int8"]["median_ms"]
        print(f"{net}: " + ", ".join(f"{k} {v['median_ms']:.2f} ms" for k, v in row.items())
              + f"; int8 {results[net]['int8_speedup_vs_fp32']:.2f}x fp32", flush=True)
    ratios = {rt: results["df1"][rt]["median_ms"] / results["resnet18"][rt]["median_ms"]
              for rt in ("tflite_fp32", "tflite_int8", "onnxruntime", "torch_eager")}
    report = {
        "benchmark": "export_speed",
        "machine": machine(),
        "settings": {**settings, "resolution": list(hw), "weights": "random", "int8_calibration": "100 digits images"},
        "results": results,
        "df1_over_resnet18": ratios,
        "paper_tx2_df1_over_resnet18": PAPER_TX2_MS["df1"] / PAPER_TX2_MS["resnet18"],
        "goal_int8_at_least_1_5x_fp32": {net: results[net]["int8_speedup_vs_fp32"] >= 1.5 for net in NETS},
    }
    write_report(args.output, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
