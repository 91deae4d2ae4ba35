"""The bundle folder: written whole in a hidden staging folder next to OUT, then renamed
into place, so OUT is either absent, the previous bundle, or complete; never half-written.
``manifest.json`` says what every file is; ``README.md`` says it to the app developer."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from plaid.errors import UsageError
from plaid.procs import pid_alive

MANIFEST_SCHEMA = "plaid.bundle/1"


def check_out(out: Path, force: bool) -> None:
    """Refuse an OUT that exists and is not a folder, or is a non-empty folder without --force."""
    out = out.expanduser()
    if out.exists() and not out.is_dir():
        raise UsageError(f"output {str(out)!r} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UsageError(f"output folder {str(out)!r} is not empty (use --force to replace it)")


def prepare(out: Path, force: bool) -> Path:
    """Check OUT can be written and return a fresh staging folder beside it."""
    out = out.expanduser()
    check_out(out, force)
    parent = out.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot write {str(out)!r}: {exc.strerror or exc}") from None
    _sweep(parent, out.name)
    stage = parent / f".{out.name}.partial-{os.getpid()}"
    try:
        shutil.rmtree(stage, ignore_errors=True)
        stage.mkdir()
    except OSError as exc:
        raise UsageError(f"cannot write to {str(parent)!r}: {exc.strerror or exc}") from None
    return stage


def _sweep(parent: Path, name: str) -> None:
    """Remove staging folders left by exports that were killed (their process is gone)."""
    for old in parent.glob(f".{name}.partial-*"):
        pid = old.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)


def publish(stage: Path, out: Path) -> None:
    """Move the finished staging folder to OUT (replacing an old bundle there)."""
    out = out.expanduser()
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    try:
        os.replace(stage, out)
    except OSError:
        if old is not None:
            os.replace(old, out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def discard(stage: Path) -> None:
    shutil.rmtree(stage, ignore_errors=True)


def _fmt_parity(p: dict[str, Any] | None) -> str:
    if not p:
        return "not checked"
    agree = p.get("top1_agreement", p.get("pixel_agreement"))
    kind = "top-1" if "top1_agreement" in p else "pixel"
    text = f"max abs err {p['max_abs_error']:.2e} ({p['max_rel_error']:.1e} of scale), cosine {p['cosine_min']:.6f}"
    if agree is not None:
        text += f", {kind} agreement {agree:.2%}"
    return text + (" — passed" if p.get("passed") else " — FAILED")


def readme(manifest: dict[str, Any]) -> str:
    """A short README for the app developer."""
    inp = manifest["input"]
    norm = inp["normalization"]
    lines = [
        f"# {manifest['model']['name']} — deployment bundle",
        "",
        f"Made by plaid {manifest['plaid_version']} for target `{manifest['target']}`"
        + (f"; architecture `{manifest['model']['arch']}`." if manifest["model"].get("arch") else "."),
        f"Task: {manifest['model']['task']}, {manifest['model']['num_classes']} classes. "
        + ("Weights: " + manifest["model"]["checkpoint"]["file"] if manifest["model"].get("checkpoint")
           else "Weights: none given (random initialisation) — for latency work only."),
        *([f"Exported as trained: the last {manifest['model']['stem_unstride']} stride-2 convolution(s) of the stem "
           "at stride 1 (the search proxy's setting), so not the architecture exactly as named."]
          if manifest["model"].get("stem_unstride") else []),
        "",
        "## Input",
        f"One RGB image, {inp['height']}x{inp['width']}. Normalise each channel: "
        f"`{norm['formula']}` with mean {['%.4f' % v for v in norm['mean']]} and std "
        f"{['%.4f' % v for v in norm['std']]} ({norm['source']}).",
        "TFLite files take NHWC (1, H, W, 3); ONNX/TensorRT take NCHW (1, 3, H, W).",
        "",
        "## Files",
        "",
        "| file | format | input | output | parity vs PyTorch | latency |",
        "|---|---|---|---|---|---|",
    ]
    for art in manifest["artifacts"]:
        i, o = art["input"], art["output"]
        q = i.get("quantization")
        inp_text = f"{i['dtype']} {i['shape']}" + (f", q = round(x / {q['scale']:.6g}) {q['zero_point']:+d}" if q else "")
        qo = o.get("quantization")
        out_text = f"{o['dtype']} {o['shape']}" + (f", y = {qo['scale']:.6g} * (q {-qo['zero_point']:+d})" if qo else "")
        lat = art.get("latency")
        lat_text = f"{lat['median_ms']:.2f} ms ({lat['where']})" if lat else "not measured"
        lines.append(f"| {', '.join(art['files'])} | {art['format']} | {inp_text} | {out_text} | "
                     f"{_fmt_parity(art.get('parity'))} | {lat_text} |")
    notes = [n for art in manifest["artifacts"] for n in art.get("notes", [])]
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    lines += ["", "`manifest.json` has all of this in machine-readable form, with the sha256 of every file.", ""]
    return "\n".join(lines)
