"""`plaid export`: deployment bundles with parity checks."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from plaid.cli.adbopts import add_adb_arguments, session_options
from plaid.cli.sshopts import add_ssh_arguments, ssh_session_options
from plaid.cli.render import console, print_json

EPILOG = """\
examples:
  plaid export --list                                    formats and their parity limits
  plaid export df1 -o out/df1                            host default: TFLite fp32
  plaid export df1 --target sd845 --calib digits -o out/df1-sd845
  plaid export 'pl1a:48x4-96x8-192x4' --checkpoint trained/best/model.pt \\
      --format tflite-int8,tflite-fp32 --calib digits-affine -o out/best
                                                         weights from plaid train: at their resolution
  plaid export 'pl1a:48x4-96x8-192x4' --checkpoint runs/RUN/checkpoints/ab12.pt --as-trained \\
      --format tflite-int8 --calib digits-affine -o out/proxy
                                                         a search's proxy weights (32x32, stem as trained)
  plaid export df1 --target tx2 -o out/df1-tx2           ONNX + build_engine.py for the Jetson
  plaid export df1 --target sd845 --calib digits --adb-serial 8ABX0Y1Z -o out/df1-sd845
                                                         + latency of each TFLite file on the phone
  plaid export pl1a-seg-d8 --target rpi5 --ssh pi@raspberrypi.local -o out/seg-rpi5
                                                         + its latency on the board, over SSH

Weights: --checkpoint takes a state_dict saved with torch.save (read with
weights_only=True) or a .safetensors file; without it the weights are random (latency only).
A checkpoint that says how it was made (plaid train's model.pt, or a search's proxy
checkpoint in its run folder) sets the default --resolution and the input normalisation;
exporting it at another resolution warns, and a failed parity check says so. The search
proxy trains at 32x32 with the stem's last stride-2 convolution at stride 1 (its record
says so): such weights exported as named are near chance, which plaid warns about;
--as-trained exports the net as it was trained (that stride at 1: more latency than the
table's for the arch).
int8 needs --calib (digits, cifar10:PATH or imagefolder:PATH; for segmentation nets
digits-seg, cityscapes:PATH or segfolder:PATH): calibration from its train split, parity on
its val split, where both models are also scored on the ground truth (top-1 or mIoU). OUT is written whole or not at all; a failed parity check
exits 1 and leaves only OUT/parity-report.json.
"""


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="export a network for a target, with parity checks",
                       description="Export a zoo network or arch string to deployment formats, check each "
                                   "against PyTorch in its real runtime, and write a bundle with manifest.json.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", help="zoo name (plaid arch list) or arch string")
    p.add_argument("-o", "--out", type=Path, help="bundle folder to write")
    p.add_argument("--target", default="host", help="target preset: host, sd845, tx2 (default host)")
    p.add_argument("--format", action="append", dest="formats", metavar="FORMAT",
                   help="format (repeat or comma-separate); default: the target's formats")
    p.add_argument("--checkpoint", type=Path, help="trained weights (state_dict .pt or .safetensors)")
    p.add_argument("--resolution", help="input HxW (default: the checkpoint's training resolution, "
                                        "else the network's)")
    p.add_argument("--calib", metavar="DATASET", help="digits, cifar10:PATH or imagefolder:PATH; segmentation: "
                   "digits-seg, cityscapes:PATH or segfolder:PATH")
    p.add_argument("--num-classes", type=int, help="classifier outputs (default: from the checkpoint)")
    p.add_argument("--calib-samples", type=int, default=200, help="int8 calibration images (default 200)")
    p.add_argument("--parity-samples", type=int, default=256, help="held-out images for parity (default 256)")
    p.add_argument("--no-measure", action="store_true",
                   help="skip timing the deployed files on the target (host, the phone given by --adb-serial, "
                        "the board given by --ssh)")
    p.add_argument("--as-trained", action="store_true",
                   help="a proxy checkpoint trained with stem strides at 1: export the net that way (its record "
                        "says how many), not as named")
    p.add_argument("--force", action="store_true", help="replace a non-empty OUT")
    p.add_argument("--list", action="store_true", help="list the formats and exit")
    p.add_argument("--json", action="store_true", help="print the manifest as JSON")
    add_adb_arguments(p)
    add_ssh_arguments(p)
    p.set_defaults(func=cmd_export)


def _formats(values: list[str] | None) -> tuple[str, ...]:
    return tuple(f.strip() for v in values or () for f in v.split(",") if f.strip())


MAX_SAMPLES = 10_000  # parity runs every held-out image through each runtime


def _check_args(args) -> None:
    """What can be checked before torch loads: counts, formats, the checkpoint and OUT."""
    from plaid.errors import UsageError
    from plaid.export.bundle import check_out

    for flag, n in (("--calib-samples", args.calib_samples), ("--parity-samples", args.parity_samples)):
        if not 1 <= n <= MAX_SAMPLES:
            raise UsageError(f"{flag} must be within 1..{MAX_SAMPLES}, got {n}")
    if args.formats is not None and not _formats(args.formats):
        raise UsageError("--format is empty: name a format (plaid export --list), or leave the flag out "
                         "for the target's formats")
    if args.checkpoint is not None and not args.checkpoint.expanduser().is_file():
        raise UsageError(f"checkpoint {str(args.checkpoint)!r} does not exist or is not a file")
    check_out(args.out, args.force)


def cmd_export(args) -> int:
    from plaid.errors import UsageError

    if args.list:
        return _list(args.json)
    if not args.model or args.out is None:
        raise UsageError("give a network and -o OUT, e.g. 'plaid export df1 -o out/df1' (see 'plaid export --help')")
    _check_args(args)
    from plaid.archinfo import parse_resolution
    from plaid.export.pipeline import ExportRequest, failure_summary, run_export

    req = ExportRequest(
        model=args.model, out=args.out, target=args.target, formats=_formats(args.formats),
        checkpoint=args.checkpoint, resolution=parse_resolution(args.resolution) if args.resolution else None,
        calib=args.calib, num_classes=args.num_classes, calib_samples=args.calib_samples,
        parity_samples=args.parity_samples, measure=not args.no_measure, force=args.force,
        as_trained=args.as_trained)

    def log(msg: str) -> None:
        print(f"plaid: {msg}", file=sys.stderr, flush=True)

    from plaid.targets import load_target

    target = load_target(args.target)
    options = session_options(args, target) or ssh_session_options(args, target)
    if options.get("serial") or options.get("ssh"):
        from plaid.lut.session import open_session

        with open_session(target, options):
            result = run_export(req, log=log)
    else:
        result = run_export(req, log=log)
    for name in result.skipped:
        log(f"{name} skipped: it needs --calib DATASET for representative calibration data")
    if args.json:
        print_json(result.manifest)
    else:
        _summary(result)
    if not result.passed:
        print(f"plaid: error: parity check failed ({failure_summary(result.manifest)}); "
              f"report in {result.out / 'parity-report.json'}", file=sys.stderr)
        return 1
    return 0


def held_out_text(h: dict | None) -> str:
    """``mIoU 0.396 → 0.395 (-0.001)``: both models on the held-out ground truth."""
    if not h:
        return "-"
    name, key = ("mIoU", "miou") if "miou_torch" in h else ("top-1", "top1")
    return f"{name} {h[key + '_torch']:.3f} → {h[key + '_exported']:.3f} ({h[key + '_change']:+.3f})"


def _summary(result) -> None:
    from rich.table import Table

    m = result.manifest
    table = Table(title=f"{m['model']['name']} -> {result.out}/ (target {m['target']})")
    for col in ("format", "files", "max abs err", "agreement", "held-out (torch → file)", "latency"):
        table.add_column(col)
    for art in m["artifacts"]:
        p = art.get("parity") or {}
        agree = p.get("top1_agreement", p.get("pixel_agreement"))
        lat = art.get("latency")
        table.add_row(art["format"], ", ".join(f for f in art["files"] if not f.endswith(".npy")),
                      f"{p['max_abs_error']:.2e}" if p else "-",
                      f"{agree:.2%}" if agree is not None else "-",
                      held_out_text(p.get("held_out")),
                      f"{lat['median_ms']:.2f} ms" if lat else "-")
    console().print(table)
    for art in m["artifacts"]:
        for note in art.get("notes", []):
            print(f"note: {note}")


def _list(as_json: bool) -> int:
    from plaid.export.formats import format_table

    rows = format_table()
    if as_json:
        print_json(rows)
        return 0
    from rich.table import Table

    table = Table(title="export formats")
    for col in ("format", "runtime", "calibration", "parity limits", "summary"):
        table.add_column(col)
    names = {"max_rel_error": "err/scale ≤", "min_cosine": "cos ≥", "min_agreement": "agree ≥"}
    for r in rows:
        limits = ", ".join(f"{names[k]} {v:g}" for k, v in r["parity"].items())
        table.add_row(r["format"], r["runtime"], "--calib" if r["needs_calibration"] else "", limits, r["summary"])
    console().print(table)
    return 0
