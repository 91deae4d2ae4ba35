"""Inputs for an export: representative calibration samples (int8) and a held-out parity
batch, drawn from a real dataset (``--calib digits``, ``cifar10:PATH``, ``imagefolder:PATH``).

Calibration comes from the train split and parity from the val split, so the parity figures
of an int8 model are measured on images its quantisation ranges never saw. Without a dataset
there is no calibration (int8 refuses to run) and parity uses seeded standard-normal inputs,
which the manifest says plainly."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from plaid.errors import UsageError

# Assumed input normalisation when no dataset tells it (torchvision's ImageNet values).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True, eq=False)
class ExportData:
    calib: np.ndarray | None  # (N, 3, H, W) float32, normalised; None without a dataset
    parity: np.ndarray  # (M, 3, H, W) float32, normalised
    labels: np.ndarray | None  # (M,) val labels when the dataset has them
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str  # the dataset spec, or "" for synthetic inputs
    info: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return {
            "normalization": {
                "formula": "x = (pixel / 255 - mean) / std, per channel (RGB)",
                "mean": list(self.mean), "std": list(self.std),
                "source": f"train split of {self.source}" if self.source else
                "assumed ImageNet values (no --calib dataset given)",
            },
            "calibration": None if self.calib is None else {
                "dataset": self.source, "split": "train", "samples": int(len(self.calib))},
            "parity_inputs": {"source": f"val split of {self.source}" if self.source else
                              "synthetic: seeded standard-normal tensors (no --calib dataset given)",
                              "samples": int(len(self.parity))},
        }


def _resize(x: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    if x.shape[-2:] == tuple(hw):
        return x
    import torch
    import torch.nn.functional as F

    with torch.no_grad():
        return F.interpolate(torch.from_numpy(x), size=hw, mode="bilinear", align_corners=False).numpy()


def export_data(spec: str | None, hw: tuple[int, int], calib_samples: int = 200, parity_samples: int = 256,
                seed: int = 0) -> ExportData:
    """Calibration + parity inputs at ``hw`` (H, W); see the module docstring."""
    if calib_samples < 1 or parity_samples < 1:
        raise UsageError("--calib-samples and --parity-samples must be at least 1")
    if not spec:
        rng = np.random.default_rng(seed)
        parity = rng.standard_normal((parity_samples, 3, *hw), dtype=np.float32)
        return ExportData(None, parity, None, IMAGENET_MEAN, IMAGENET_STD, "")
    from plaid.train.datasets import load_dataset

    # square load at the larger side, then resized to H x W (a non-square target is stretched)
    ds = load_dataset(spec, max(hw), seed=seed)
    rng = np.random.default_rng(seed)
    pick = rng.permutation(len(ds.train))[:calib_samples]
    calib = _resize(np.ascontiguousarray(ds.train.x[pick]), hw)
    pick_val = rng.permutation(len(ds.val))[:parity_samples]
    parity = _resize(np.ascontiguousarray(ds.val.x[pick_val]), hw)
    return ExportData(calib.astype(np.float32), parity.astype(np.float32), ds.val.y[pick_val],
                      ds.mean, ds.std, spec, {"num_classes": ds.num_classes, "classes": ds.classes})
