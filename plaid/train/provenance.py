"""How a checkpoint was made: the record a trained checkpoint carries, and the one export
reads back.

``plaid train`` writes ``{"state_dict": {...tensors}, "plaid": {...}}`` with ``torch.save``;
everything under ``"plaid"`` is plain JSON-like data (str, int, float, bool, None, lists,
dicts), so ``torch.load(weights_only=True)`` reads it, and readers that only know the
``{"state_dict": ...}`` wrapper still find the weights. The record (``kind`` ``"full"``):

    schema, kind, model, arch, task, dataset, split_seed, num_classes, classes,
    resolution [H, W], normalization {mean, std}, epochs, steps, top1, val_loss,
    config (the trainer's settings), source (the front run and member it came from), plaid

The search's proxy checkpoints (``RUN/checkpoints/<sha1 of the arch>.pt``) are written the
same way with a record of ``kind`` ``"proxy"`` (:func:`proxy_made`: arch, dataset,
resolution, normalisation, epochs, steps, top-1 and the proxy's settings). Proxy checkpoints
of older runs are bare state_dicts; their record is read from the run folder they sit in
(``config.json``, ``result.json``, ``front.json``) by :func:`proxy_record`.

This module does not import torch at import time."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

SCHEMA = "plaid.checkpoint/1"


def save_trained(state: dict[str, Any], path: Path, record: dict[str, Any]) -> Path:
    """Write ``state`` (a state_dict) and ``record`` to ``path`` atomically."""
    import torch

    from plaid.fsio import atomic_path

    path = Path(path)
    cpu = {k: v.detach().cpu() for k, v in state.items()}
    with atomic_path(path) as tmp:
        torch.save({"state_dict": cpu, "plaid": {"schema": SCHEMA, **record}}, tmp)
    return path


def proxy_made(arch: str, dataset: Any, cfg: Any, result: dict[str, Any]) -> dict[str, Any]:
    """The record of a proxy training: ``arch`` trained on ``dataset`` (a
    :class:`plaid.train.datasets.Dataset`) with ``cfg`` (a ``ProxyConfig``), giving
    ``result`` (what ``train_and_evaluate`` returned)."""
    from plaid import __version__

    side = int(cfg.resolution)
    return {"kind": "proxy", "arch": arch, "task": "classification", "dataset": dataset.name,
            "num_classes": int(dataset.num_classes), "classes": list(dataset.classes),
            "train_samples": len(dataset.train),
            "resolution": [side, side], "normalization": {"mean": list(dataset.mean), "std": list(dataset.std)},
            "epochs": result.get("epochs"), "steps": result.get("steps"), "top1": result.get("top1"),
            "val_loss": result.get("val_loss"), "stem_unstride": int(result.get("unstrided", 0)),
            "config": cfg.to_dict(), "plaid": __version__}


def _resolution(value: Any) -> list[int] | None:
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
        return [int(value[0]), int(value[1])]
    return None


def _numbers(value: Any, n: int = 3) -> list[float] | None:
    if isinstance(value, (list, tuple)) and len(value) == n and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value):
        return [float(v) for v in value]
    return None


def clean(record: Any) -> dict[str, Any] | None:
    """The record with its resolution and normalisation checked (dropped when malformed);
    None when ``record`` is not a plaid record at all."""
    if not isinstance(record, dict) or not str(record.get("schema", "")).startswith("plaid.checkpoint/"):
        return None
    out = dict(record)
    out["resolution"] = _resolution(record.get("resolution"))
    norm = record.get("normalization") if isinstance(record.get("normalization"), dict) else {}
    mean, std = _numbers(norm.get("mean")), _numbers(norm.get("std"))
    out["normalization"] = {"mean": mean, "std": std} if mean and std and all(s > 0 for s in std) else None
    return out


def record_of(obj: Any) -> dict[str, Any] | None:
    """The record inside a loaded checkpoint object (what ``torch.load`` returned), if any."""
    return clean(obj.get("plaid")) if isinstance(obj, dict) else None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def run_of(path: Path) -> Path | None:
    """The search run folder a proxy checkpoint lies in (``RUN/checkpoints/NAME.pt`` next to
    ``RUN/config.json``), or None."""
    folder = Path(path).resolve().parent
    return folder.parent if folder.name == "checkpoints" and (folder.parent / "config.json").is_file() else None


def with_run(record: dict[str, Any] | None, path: Path) -> dict[str, Any] | None:
    """A proxy record read from its file, with the run folder the file lies in now (the
    record cannot know where its run folder will be moved to)."""
    if record is None or record.get("kind") != "proxy":
        return record
    run = run_of(path)
    return {**record, "run": str(run)} if run is not None else record


def proxy_record(path: Path) -> dict[str, Any] | None:
    """The record of an older run's proxy checkpoint (a bare state_dict), from the run folder
    it lies in (``RUN/checkpoints/NAME.pt`` next to ``RUN/config.json`` of a proxy-evaluated
    run); None for any other file."""
    path = Path(path)
    run = run_of(path)
    if run is None:
        return None
    doc = _read_json(run / "config.json")
    cfg = doc.get("config") if isinstance(doc, dict) else None
    if not isinstance(cfg, dict) or cfg.get("evaluator", "proxy") != "proxy":
        return None
    side = cfg.get("proxy_resolution")
    if isinstance(side, bool) or not isinstance(side, int) or side < 1:
        return None
    record: dict[str, Any] = {"schema": SCHEMA, "kind": "proxy", "run": str(run), "dataset": cfg.get("dataset"),
                              "split_seed": cfg.get("seed"), "resolution": [side, side],
                              "epochs": cfg.get("epochs"), "normalization": None}
    result = _read_json(run / "result.json")
    ev = result.get("evaluator") if isinstance(result, dict) else None
    data = ev.get("dataset") if isinstance(ev, dict) else None
    if isinstance(data, dict):
        record["normalization"] = {"mean": data.get("mean"), "std": data.get("std")}
        record["num_classes"] = data.get("num_classes")
    if isinstance(ev, dict) and isinstance(ev.get("config"), dict):
        record["steps_min"] = ev["config"].get("min_steps")
    from plaid.train.evaluators import arch_sha1

    entries = []
    for doc in (_read_json(run / "front.json"), result):
        for key in ("front", "evaluated"):
            if isinstance(doc, dict) and isinstance(doc.get(key), list):
                entries += [e for e in doc[key] if isinstance(e, dict) and isinstance(e.get("arch"), str)]
    for e in entries:
        if arch_sha1(e["arch"]) == path.stem and not e.get("seed"):
            record["arch"], record["top1"] = e["arch"], e.get("accuracy")
            break
    return clean(record)


def summary(record: dict[str, Any]) -> str:
    """One phrase: 'a proxy checkpoint (3 epochs at 32x32 on digits-affine, top-1 0.9455)'."""
    kind = {"proxy": "a proxy checkpoint of the search", "full": "a plaid train checkpoint"}.get(
        record.get("kind"), "a checkpoint")
    bits = []
    if record.get("epochs"):
        bits.append(f"{record['epochs']} epochs")
    if record.get("resolution"):
        h, w = record["resolution"]
        bits.append(f"at {h}x{w}")
    if record.get("dataset"):
        bits.append(f"on {record['dataset']}")
    if record.get("stem_unstride"):  # the top-1 is that of the net with its last stem strides at 1
        bits.append(f"with {record['stem_unstride']} stem stride(s) at 1")
    text = " ".join(bits)
    if isinstance(record.get("top1"), (int, float)):
        text += f", top-1 {record['top1']:.4f}"
    return f"{kind} ({text})" if text else kind
