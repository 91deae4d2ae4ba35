"""Parity between an exported model, run in its real runtime, and the PyTorch model.

Figures on the held-out batch: max abs error (and relative to the output scale, the largest
|PyTorch output|), cosine similarity of the flattened outputs, and top-1 agreement
(classification) or per-pixel argmax agreement plus the mIoU of the exported model's label
map scored against PyTorch's (segmentation). With the held-out ground truth (a ``--calib``
dataset), both models' top-1 or mIoU on it and the change the export makes. Each format
states its thresholds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np


@dataclass(frozen=True)
class Thresholds:
    max_rel_error: float | None = None  # max |exported - torch| / output scale
    min_cosine: float | None = None
    min_agreement: float | None = None  # top-1 (classification) or pixel (segmentation)

    def to_json(self) -> dict[str, float]:
        return {k: v for k, v in (("max_rel_error", self.max_rel_error), ("min_cosine", self.min_cosine),
                                  ("min_agreement", self.min_agreement)) if v is not None}


FP32 = Thresholds(max_rel_error=1e-4, min_cosine=0.99999)
FP16 = Thresholds(max_rel_error=2e-2, min_cosine=0.999, min_agreement=0.98)
INT8 = Thresholds(min_cosine=0.95, min_agreement=0.98)


def torch_outputs(model, x: np.ndarray, batch: int = 32) -> np.ndarray:
    import torch

    model = model.eval()
    outs = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            outs.append(model(torch.from_numpy(x[i:i + batch])).numpy())
    return np.concatenate(outs).astype(np.float32)


def _miou(pred: np.ndarray, ref: np.ndarray, classes: int) -> float:
    ious = []
    for c in range(classes):
        inter = np.logical_and(pred == c, ref == c).sum()
        union = np.logical_or(pred == c, ref == c).sum()
        if union:
            ious.append(inter / union)
    return float(np.mean(ious)) if ious else 1.0


def held_out(exported: np.ndarray, reference: np.ndarray, labels: np.ndarray, task: str,
             ignore_index: int = 255) -> dict[str, Any]:
    """Both models scored against the held-out ground truth: top-1 accuracy
    (classification) or mIoU over the classes present (segmentation, ``ignore_index`` left
    out, the same definition as the proxy's), and the change the export makes."""
    if task == "segmentation":
        import torch

        from plaid.train.segproxy import confusion_matrix, iou_scores

        k, truth = reference.shape[1], torch.from_numpy(np.ascontiguousarray(labels))

        def miou(out: np.ndarray) -> float:
            conf = confusion_matrix(torch.from_numpy(out.argmax(1)), truth, k, ignore_index)
            return iou_scores(conf.numpy())["miou"]

        torch_, exp = miou(reference), miou(exported)
        return {"miou_torch": torch_, "miou_exported": exp, "miou_change": exp - torch_}
    torch_ = float((reference.argmax(1) == labels).mean())
    exp = float((exported.argmax(1) == labels).mean())
    return {"top1_torch": torch_, "top1_exported": exp, "top1_change": exp - torch_}


def compare(exported: np.ndarray, reference: np.ndarray, task: str, labels: np.ndarray | None = None) -> dict[str, Any]:
    """Figures for one exported model; both arrays in PyTorch's layout (N, C[, H, W]);
    with ``labels`` (the held-out ground truth) also what each scores on them."""
    exported = exported.astype(np.float64)
    reference = reference.astype(np.float64)
    diff = np.abs(exported - reference)
    scale = float(np.abs(reference).max()) or 1.0
    a, b = exported.reshape(len(exported), -1), reference.reshape(len(reference), -1)
    cos = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-30)
    figures: dict[str, Any] = {
        "samples": int(len(exported)),
        "max_abs_error": float(diff.max()),
        "mean_abs_error": float(diff.mean()),
        "output_scale": scale,
        "max_rel_error": float(diff.max() / scale),
        "cosine_min": float(cos.min()),
        "cosine_mean": float(cos.mean()),
    }
    agree = exported.argmax(1) == reference.argmax(1)
    if task == "segmentation":
        figures["pixel_agreement"] = float(agree.mean())
        figures["miou_vs_torch"] = _miou(exported.argmax(1), reference.argmax(1), reference.shape[1])
    else:
        figures["top1_agreement"] = float(agree.mean())
    if labels is not None:
        figures["held_out"] = held_out(exported, reference, labels, task)
    return figures


def judge(figures: dict[str, Any], limits: Thresholds) -> list[str]:
    """Threshold violations as short sentences (empty: passed)."""
    failures = []
    if limits.max_rel_error is not None and figures["max_rel_error"] > limits.max_rel_error:
        failures.append(f"max abs error {figures['max_abs_error']:.3g} is {figures['max_rel_error']:.2e} of the "
                        f"output scale (limit {limits.max_rel_error:.0e})")
    if limits.min_cosine is not None and figures["cosine_min"] < limits.min_cosine:
        failures.append(f"cosine similarity {figures['cosine_min']:.6f} < {limits.min_cosine}")
    agreement = figures.get("top1_agreement", figures.get("pixel_agreement"))
    if limits.min_agreement is not None and agreement < limits.min_agreement:
        kind = "top-1" if "top1_agreement" in figures else "pixel"
        failures.append(f"{kind} agreement {agreement:.2%} < {limits.min_agreement:.0%}")
    return failures


def check(run: Callable[[np.ndarray], np.ndarray], x: np.ndarray, reference: np.ndarray, task: str,
          limits: Thresholds, labels: np.ndarray | None = None) -> dict[str, Any]:
    """Run ``run`` (NCHW float batch -> outputs in PyTorch's layout) on ``x`` and judge it."""
    figures = compare(run(x), reference, task, labels)
    failures = judge(figures, limits)
    return {**figures, "thresholds": limits.to_json(), "passed": not failures, "failures": failures}
