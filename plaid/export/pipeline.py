"""`plaid export`: model + weights -> formats -> parity -> latency -> bundle.

Every input is checked before the slow work starts (format names, calibration data for
int8, the checkpoint against the architecture, OUT writable), and the bundle is staged and
renamed into place, so a bad input or an interrupted export leaves nothing behind. A format
whose parity check fails makes the export fail; OUT then holds only ``parity-report.json``."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from plaid.errors import UsageError
from plaid.export import bundle
from plaid.export.formats import EXPORTERS, ExportContext, load_formats, scratch

Log = Callable[[str], None]


@dataclass(frozen=True)
class ExportRequest:
    model: str  # zoo name or arch string
    out: Path
    target: str = "host"
    formats: tuple[str, ...] = ()  # empty: the target's defaults
    checkpoint: Path | None = None
    resolution: tuple[int, int] | None = None
    calib: str | None = None
    num_classes: int | None = None
    calib_samples: int = 200
    parity_samples: int = 256
    measure: bool = True
    force: bool = False
    as_trained: bool = False  # a proxy checkpoint's net as it was trained (its stem strides at 1)

    def __post_init__(self) -> None:
        if self.num_classes is not None:
            from plaid.archinfo import check_num_classes

            check_num_classes(self.num_classes, "--num-classes")


@dataclass
class ExportResult:
    out: Path
    manifest: dict[str, Any]
    passed: bool
    skipped: list[str] = field(default_factory=list)


def choose_formats(req: ExportRequest, target) -> tuple[list[str], list[str]]:
    """(formats to make, defaulted formats skipped for want of --calib)."""
    load_formats()
    asked = list(dict.fromkeys(req.formats)) or list(target.export_formats)
    if not asked:
        raise UsageError(f"target {target.name!r} names no default export formats; pass --format")
    for name in asked:
        EXPORTERS.get(name)  # unknown -> one line listing the known ones
    needy = [f for f in asked if EXPORTERS.get(f).needs_calibration]
    if needy and not req.calib:
        if req.formats:
            raise UsageError(f"{needy[0]} needs representative calibration data: pass --calib digits, "
                             "--calib cifar10:PATH or --calib imagefolder:PATH (random noise is never used)")
        return [f for f in asked if f not in needy], needy
    return asked, []


def _build_model(req: ExportRequest, resolved, ckpt) -> tuple[Any, str]:
    """The model (with ``ckpt``'s weights, if any) and a line for the log about its weights."""
    from plaid.export.checkpoint import apply_checkpoint, num_classes_hint

    num_classes = req.num_classes if req.num_classes is not None else (num_classes_hint(ckpt.state) if ckpt else None)
    opts = {"num_classes": num_classes} if num_classes is not None else {}
    try:
        model = resolved.build(**opts).eval()
    except TypeError as exc:
        raise UsageError(f"cannot build {resolved.label}: {exc}") from None
    if ckpt is not None:
        apply_checkpoint(model, ckpt, resolved.label)
        note = f"loaded {ckpt.path.name} ({ckpt.format}, {len(ckpt.state)} tensors)"
        if ckpt.record is not None:
            from plaid.train.provenance import summary

            note += f": {summary(ckpt.record)}"
        return model, note
    return model, "no --checkpoint: random weights (fine for latency, meaningless for accuracy)"


def unstrided(ckpt) -> int:
    """How many of the stem's last stride-2 convolutions ran at stride 1 when ``ckpt`` was
    trained (the search proxy's setting at 32x32; 0 when unknown or none)."""
    if ckpt is None or not ckpt.record:
        return 0
    try:
        return max(0, int(ckpt.record.get("stem_unstride") or 0))
    except (TypeError, ValueError):
        return 0


def apply_as_trained(req: ExportRequest, model, ckpt, label: str) -> tuple[int, str | None]:
    """With --as-trained, set the strides the weights were trained with; returns (strides
    set to 1, a line for the log). Without it, a checkpoint trained unstrided gets a
    warning: the net as named is not the one whose accuracy was measured."""
    k = unstrided(ckpt)
    s = "s" if k > 1 else ""
    if req.as_trained:
        if not k:
            raise UsageError("--as-trained: the checkpoint was trained as its architecture is named (its record has "
                             "no stem stride set to 1), so there is nothing to change; leave the flag out")
        from plaid.train.proxy import unstride_stem

        changed = len(unstride_stem(model, k))
        return changed, (f"exporting the net as trained: the last {changed} stride-2 convolution{s} of the stem at "
                         f"stride 1, as the search proxy trained it; its latency is not that of {label} as named "
                         f"(the latency table's)")
    if k:
        hint = (f"plaid train --front {ckpt.record['run']}" if ckpt.record.get("kind") == "proxy"
                and ckpt.record.get("run") else "plaid train")
        return 0, (f"warning: {ckpt.path.name} was trained with the last {k} stride-2 convolution{s} of the stem at "
                   f"stride 1 (the search proxy's setting); exported as named, its accuracy was never measured and "
                   f"may be near chance: pass --as-trained to export the net as trained, or train it as named "
                   f"first ({hint})")
    return 0, None


def export_resolution(req: ExportRequest, resolved, ckpt) -> tuple[tuple[int, int], str | None]:
    """(H, W) to export at: --resolution, else the checkpoint's, else the network's; and a
    one-line warning when --resolution differs from the one the weights were trained at."""
    trained = ckpt.resolution if ckpt is not None else None
    if req.resolution is None:
        return tuple(trained or resolved.resolution), None
    hw = tuple(req.resolution)
    if trained is None or hw == trained:
        return hw, None
    from plaid.train.provenance import summary

    return hw, (f"warning: exporting at {hw[0]}x{hw[1]}, but {ckpt.path.name} is {summary(ckpt.record)}: "
                f"its accuracy at {hw[0]}x{hw[1]} was never measured")


def resolution_diagnosis(ckpt, hw: tuple[int, int]) -> str | None:
    """Why parity may fail: the weights were trained at another resolution (None if not)."""
    trained = ckpt.resolution if ckpt is not None else None
    if trained is None or tuple(hw) == trained:
        return None
    from plaid.train.provenance import summary

    h, w = trained
    what = summary(ckpt.record)
    text = (f"the weights are {what}, exported at {hw[0]}x{hw[1]}: their activations there are out of the "
            f"range they were trained and calibrated for; export at --resolution {h}x{w}")
    if ckpt.record.get("kind") == "proxy" and ckpt.record.get("run"):
        text += (f", or train it at {hw[0]}x{hw[1]} first (plaid train --front {ckpt.record['run']} "
                 f"--resolution {hw[0]}x{hw[1]})")
    return text


def with_checkpoint_normalization(data, ckpt):
    """``data`` re-expressed in the normalisation the weights were trained with: the images
    back to pixels with the calibration set's mean/std, then normalised with the checkpoint's."""
    import dataclasses

    import numpy as np

    norm = ckpt.normalization if ckpt is not None else None
    if norm is None:
        return data
    mean_c = np.asarray(norm["mean"], np.float32)[None, :, None, None]
    std_c = np.asarray(norm["std"], np.float32)[None, :, None, None]
    if not data.source:  # synthetic parity inputs are drawn in the normalised space already
        return dataclasses.replace(data, mean=tuple(norm["mean"]), std=tuple(norm["std"]))
    mean_d = np.asarray(data.mean, np.float32)[None, :, None, None]
    std_d = np.asarray(data.std, np.float32)[None, :, None, None]

    def remap(x):
        return None if x is None else (((x * std_d + mean_d) - mean_c) / std_c).astype(np.float32)

    return dataclasses.replace(data, calib=remap(data.calib), parity=remap(data.parity),
                               mean=tuple(norm["mean"]), std=tuple(norm["std"]))


def _output_classes(model, hw: tuple[int, int]) -> int:
    import torch

    with torch.no_grad():
        return int(model(torch.zeros(1, 3, *hw)).shape[1])


def _latency(art, ctx: ExportContext, target, log: Log) -> dict[str, Any] | None:
    """Latency of an artifact the target's runtime reads (TFLite for tflite, ONNX for
    onnxruntime) on the target, with the target's measurement protocol, when the target is
    reachable: the host, or a device whose session is open (--adb-serial, --ssh)."""
    from device_bench.runtimes import RUNTIMES
    from plaid.lut.bench import measure_models
    from plaid.lut.session import has_session, session_for

    runtime = RUNTIMES.get(target.runtime)
    if runtime is None or not art.files[0].endswith(runtime.suffix) or not has_session(target):
        return None
    got: dict[str, Any] = {}
    log(f"{art.format}: timing on {target.name}")
    measure_models(target, [(art.format, ctx.stage / art.files[0])],
                   lambda key, lat, err: got.update(lat=lat, err=err))
    lat = got.get("lat")
    if lat is None:
        art.notes.append(f"{art.format}: timing on {target.name} failed: {got.get('err', 'no result')}")
        return None
    where = session_for(target).describe() if target.transport != "local" else {}
    return {"median_ms": lat.median_ms, "p90_ms": lat.p90_ms, "runs": lat.runs,
            "threads": target.measure.threads,
            "where": f"{target.name}" + (f" {where.get('device', '')} via {where.get('runner', '')}" if where else
                                         f", {target.measure.threads} thread(s)")}


def run_export(req: ExportRequest, log: Log = lambda msg: None) -> ExportResult:
    from plaid import __version__
    from plaid.convert import tool_versions
    from plaid.export.data import export_data
    from plaid.export.parity import check, torch_outputs
    from plaid.fsio import file_digest
    from plaid.targets import load_target
    from plaid.zoo import resolve

    target = load_target(req.target)
    formats, skipped = choose_formats(req, target)
    resolved = resolve(req.model)
    bundle.check_out(req.out, req.force)
    from plaid.export.checkpoint import load_checkpoint

    ckpt = load_checkpoint(req.checkpoint) if req.checkpoint else None
    hw, warning = export_resolution(req, resolved, ckpt)
    if req.as_trained and ckpt is None:
        raise UsageError("--as-trained needs --checkpoint (a search's proxy checkpoint trained with its stem "
                         "strides at 1)")
    model, weights_note = _build_model(req, resolved, ckpt)
    restrided, stride_note = apply_as_trained(req, model, ckpt, resolved.label)
    # the data before the staging folder: a bad --calib creates nothing (not even OUT's parent)
    data = with_checkpoint_normalization(export_data(req.calib, hw, req.calib_samples, req.parity_samples), ckpt)
    task = data.info.get("task", "classification") if data.source else resolved.task
    if task != resolved.task:
        raise UsageError(f"--calib {req.calib} is a {task} dataset; {resolved.label} is a {resolved.task} model "
                         f"(e.g. {'digits-seg' if resolved.task == 'segmentation' else 'digits'})")
    if data.info.get("num_classes") and resolved.task == "classification" and ckpt is not None \
            and _output_classes(model, hw) != data.info["num_classes"]:
        raise UsageError(f"--calib {req.calib} has {data.info['num_classes']} classes but the model outputs "
                         f"{_output_classes(model, hw)}")
    log(weights_note)  # after every usage check: a usage error is one line on its own
    for line in (warning, stride_note):
        if line:
            log(line)
    if ckpt is not None and ckpt.resolution is not None and req.resolution is None:
        log(f"exporting at {hw[0]}x{hw[1]}, the resolution the weights were trained at")
    stage = bundle.prepare(req.out, req.force)
    try:
        with scratch() as work:
            threads = target.measure.threads
            reference = torch_outputs(model, data.parity)
            ctx = ExportContext(model, resolved.label, resolved.task, hw, data, formats, stage, Path(work),
                                reference=reference, threads=threads, log=log)
            artifacts, passed = [], True
            for name in formats:
                exporter = EXPORTERS.get(name)()
                t0 = time.perf_counter()
                art = exporter.export(ctx)
                log(f"{name}: wrote {', '.join(art.files)} ({time.perf_counter() - t0:.1f} s); checking parity")
                run = exporter.load(art, ctx)
                figures = check(run, data.parity, reference, resolved.task, exporter.thresholds,
                                labels=_held_out_labels(data, reference)) if run else None
                passed &= bool(figures is None or figures["passed"])
                latency = _latency(art, ctx, target, log) if req.measure and (figures is None or figures["passed"]) \
                    else None
                artifacts.append({
                    "format": name, "runtime": exporter.runtime,
                    "files": art.files, "input": art.input, "output": art.output,
                    "parity": figures, "latency": latency, "notes": art.notes, **art.extra,
                })
            manifest = {
                "schema": bundle.MANIFEST_SCHEMA,
                "plaid_version": __version__,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "status": "ok" if passed else "failed-parity",
                "target": target.name,
                "model": {"name": resolved.label, "arch": resolved.arch_string, "task": resolved.task,
                          "num_classes": _output_classes(model, hw),
                          "checkpoint": ckpt.describe() if ckpt else None,
                          # stem convolutions exported at stride 1 (--as-trained): not the arch as named
                          "stem_unstride": restrided},
                "input": {"name": "input", "height": hw[0], "width": hw[1], "channels": 3,
                          **_describe_data(data, ckpt)},
                "artifacts": artifacts,
                "skipped_formats": {f: "needs --calib" for f in skipped},
                "tools": tool_versions(),
                "files": {},
            }
            for path in sorted(p for p in stage.iterdir() if p.is_file()):
                manifest["files"][path.name] = {"sha256": file_digest(path), "bytes": path.stat().st_size}
            if not passed:
                diagnosis = resolution_diagnosis(ckpt, hw) or (stride_note if unstrided(ckpt) and not restrided
                                                               else None)
                if diagnosis:
                    manifest["diagnosis"] = diagnosis
                for path in list(stage.iterdir()):
                    path.unlink()
                (stage / "parity-report.json").write_text(json.dumps(manifest, indent=2) + "\n")
            else:
                (stage / "README.md").write_text(bundle.readme(manifest))
                (stage / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        bundle.publish(stage, req.out)
    except BaseException:
        bundle.discard(stage)
        raise
    return ExportResult(req.out, manifest, passed, skipped)


def _held_out_labels(data, reference):
    """The val ground truth to score both models on, when it fits the model's outputs (a
    class id the model has no output for, or masks of another size, leave it out). Masks
    whose size the output is a whole multiple of (a segmentation net exported --as-trained
    outputs twice the input's size per stem stride at 1) are scaled up to it, nearest."""
    import numpy as np

    labels = data.labels
    if labels is None:
        return None
    k = reference.shape[1]
    if labels.ndim == 1:
        return labels if labels.max(initial=0) < k else None
    (h, w), (oh, ow) = labels.shape[1:], reference.shape[2:]
    if (oh, ow) != (h, w) and oh % h == 0 and ow % w == 0 and oh // h == ow // w:
        labels = np.repeat(np.repeat(labels, oh // h, axis=1), ow // w, axis=2)
    if labels.shape[1:] != reference.shape[2:]:
        return None
    valid = labels[labels != data.info.get("ignore_index", 255)]
    return labels if valid.max(initial=0) < k else None


def _describe_data(data, ckpt) -> dict[str, Any]:
    d = data.describe()
    if ckpt is not None and ckpt.normalization is not None:
        dataset = ckpt.record.get("dataset")
        d["normalization"]["source"] = ("the checkpoint's training" + (f" (train split of {dataset})"
                                                                       if dataset else ""))
    return d


def failure_summary(manifest: dict[str, Any]) -> str:
    """The failed checks in one line, and why they may have failed when that is known."""
    bad = [(a["format"], a["parity"]["failures"]) for a in manifest["artifacts"]
           if a.get("parity") and not a["parity"]["passed"]]
    text = "; ".join(f"{fmt}: {', '.join(f)}" for fmt, f in bad)
    return text + (f" — {manifest['diagnosis']}" if manifest.get("diagnosis") else "")
