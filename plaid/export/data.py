"""Inputs for an export: representative calibration samples (int8) and a held-out parity
batch, drawn from a real dataset (``--calib digits``, ``cifar10:PATH``, ``imagefolder:PATH``;
for segmentation nets ``digits-seg``, ``cityscapes:PATH``, ``segfolder:PATH``, whose val masks
come along so parity can score both models against the ground truth).

Calibration comes from the train split and parity from the val split, so the parity figures
of an int8 model are measured on images its quantisation ranges never saw. Without a dataset
there is no calibration (int8 refuses to run) and parity uses seeded standard-normal inputs,
which the manifest says plainly.

Only the samples an export uses are ever built at the export size: indices are drawn first,
then the picked images are read (an imagefolder's files one by one), converted, normalised
and resized in batches of ``BATCH`` into the two arrays. Loaders that hold their whole set in
memory (``digits``, ``cifar10``, ``digits-affine``) are asked for it at no more than
``RAW_SIDE`` pixels a side: digits (8x8) and CIFAR-10 (32x32) are the same at any size they
are asked for, while ``digits-affine`` is then drawn at 64x64 and upsampled, not drawn at the
export size. Without a normalisation from the checkpoint, the mean/std are measured over the
whole train split at ``min(export side, RAW_SIDE)``, a batch at a time (for exports up to
64x64 exactly what ``load_dataset`` at that size gives). Memory: the two output arrays, one
batch at the export size, and the raw set at ``RAW_SIDE`` (an imagefolder: none)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from plaid.errors import UsageError

# Assumed input normalisation when no dataset tells it (torchvision's ImageNet values).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True, eq=False)
class ExportData:
    calib: np.ndarray | None  # (N, 3, H, W) float32, normalised; None without a dataset
    parity: np.ndarray  # (M, 3, H, W) float32, normalised
    labels: np.ndarray | None  # (M,) val labels, or (M, H, W) val masks, when the dataset has them
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


RAW_SIDE = 64  # the largest side an in-memory loader is asked for
BATCH = 32  # images built at the export size at a time
VAL_FRACTION = 0.2  # load_dataset's default: the same train/val split as a training on it


def _resize(x: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    if x.shape[-2:] == tuple(hw):
        return x
    import torch
    import torch.nn.functional as F

    with torch.no_grad():
        return F.interpolate(torch.from_numpy(x), size=hw, mode="bilinear", align_corners=False).numpy()


@dataclass(frozen=True, eq=False)
class Source:
    """A dataset's labels and a way to read some of its images (uint8 or float in [0, 1],
    NCHW) at a given square side, without reading the others."""

    train_y: np.ndarray
    val_y: np.ndarray
    classes: list[str]
    # (split "train"|"val", indices, side) -> those images, at ``side`` or (an in-memory set) its own
    read: Callable[[str, np.ndarray, int], np.ndarray]


def open_source(spec: str, hw: tuple[int, int], seed: int = 0) -> Source:
    """The train/val split of ``spec`` as ``load_dataset(spec, ..., seed=seed)`` makes it."""
    from plaid.train.datasets import DATASETS, stratified_split

    kind, _, arg = spec.strip().partition(":")
    if kind not in DATASETS:
        raise UsageError(DATASETS.unknown_message(kind) + " (e.g. 'digits', 'cifar10:PATH', 'imagefolder:PATH')")
    if kind == "imagefolder":
        return _imagefolder_source(arg.strip(), seed)
    side = min(max(hw), RAW_SIDE)
    raw = DATASETS.get(kind)(arg.strip(), side)
    if raw.val_x is None:
        tr, va = stratified_split(raw.y, VAL_FRACTION, np.random.default_rng(seed))
        pools = {"train": (raw.x, tr), "val": (raw.x, va)}
        train_y, val_y = raw.y[tr], raw.y[va]
    else:
        pools = {"train": (raw.x, np.arange(len(raw.y))), "val": (raw.val_x, np.arange(len(raw.val_y)))}
        train_y, val_y = raw.y, raw.val_y

    def read(split: str, idx: np.ndarray, _side: int) -> np.ndarray:
        x, pool = pools[split]
        return x[pool[idx]]

    return Source(train_y, val_y, list(raw.classes), read)


def _imagefolder_source(arg: str, seed: int) -> Source:
    from plaid.train.datasets import stratified_split
    from plaid.train.datasets.imagefolder import folders, read_images, tree_files

    train_root, val_root, classes = folders(arg)
    files, y = tree_files(train_root, classes, require_all=True)
    if val_root is None:
        tr, va = stratified_split(y, VAL_FRACTION, np.random.default_rng(seed))
        lists: dict[str, list[Path]] = {"train": [files[i] for i in tr], "val": [files[i] for i in va]}
        train_y, val_y = y[tr], y[va]
    else:
        val_files, val_y = tree_files(val_root, classes, require_all=False)
        lists, train_y = {"train": files, "val": val_files}, y

    def read(split: str, idx: np.ndarray, side: int) -> np.ndarray:
        return read_images([lists[split][i] for i in idx], side)

    return Source(train_y, val_y, classes, read)


def samples(source: Source, split: str, idx: np.ndarray, hw: tuple[int, int], mean: np.ndarray, std: np.ndarray,
            batch: int = BATCH) -> Iterator[np.ndarray]:
    """The images ``idx`` of ``split`` at ``hw``, normalised, ``batch`` at a time (float32):
    read at the larger side (a square), then stretched to H x W, as before an export."""
    from plaid.train.datasets.pipeline import _as_float

    side = max(hw)
    for i in range(0, len(idx), batch):
        x = _as_float(source.read(split, idx[i:i + batch], side), side)
        x -= mean[None, :, None, None]
        x /= std[None, :, None, None]
        yield _resize(x, hw).astype(np.float32, copy=False)


def _fill(batches: Iterator[np.ndarray], n: int, hw: tuple[int, int]) -> np.ndarray:
    out = np.empty((n, 3, *hw), np.float32)
    at = 0
    for x in batches:
        out[at:at + len(x)] = x
        at += len(x)
    return out


def train_stats(source: Source, side: int, batch: int = 64) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of the whole train split at ``side`` x ``side``, read a batch
    at a time (sums in float64)."""
    from plaid.train.datasets.pipeline import _as_float

    n = len(source.train_y)
    total, squares = np.zeros(3), np.zeros(3)
    for i in range(0, n, batch):
        x = _as_float(source.read("train", np.arange(i, min(i + batch, n)), side), side).astype(np.float64)
        total += x.sum(axis=(0, 2, 3))
        squares += (x * x).sum(axis=(0, 2, 3))
    count = n * side * side
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean * mean, 0.0))
    std = np.where(std < 1e-8, 1.0, std)
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


def export_data(spec: str | None, hw: tuple[int, int], calib_samples: int = 200, parity_samples: int = 256,
                seed: int = 0) -> ExportData:
    """Calibration + parity inputs at ``hw`` (H, W); see the module docstring."""
    if calib_samples < 1 or parity_samples < 1:
        raise UsageError("--calib-samples and --parity-samples must be at least 1")
    if not spec:
        rng = np.random.default_rng(seed)
        parity = rng.standard_normal((parity_samples, 3, *hw), dtype=np.float32)
        return ExportData(None, parity, None, IMAGENET_MEAN, IMAGENET_STD, "")
    from plaid.train.datasets.segmentation import SEG_DATASETS

    if spec.strip().partition(":")[0] in SEG_DATASETS:
        return seg_export_data(spec, hw, calib_samples, parity_samples, seed)
    source = open_source(spec, hw, seed)
    if len(np.unique(source.train_y)) < 2:
        raise UsageError(f"dataset {spec!r}: the train split has fewer than 2 classes")
    if len(source.val_y) == 0:
        raise UsageError(f"dataset {spec!r}: the val split is empty")
    mean, std = train_stats(source, min(max(hw), RAW_SIDE))
    m, s = np.asarray(mean, np.float32), np.asarray(std, np.float32)
    rng = np.random.default_rng(seed)
    pick = rng.permutation(len(source.train_y))[:calib_samples]
    pick_val = rng.permutation(len(source.val_y))[:parity_samples]
    calib = _fill(samples(source, "train", pick, hw, m, s), len(pick), hw)
    parity = _fill(samples(source, "val", pick_val, hw, m, s), len(pick_val), hw)
    return ExportData(calib, parity, source.val_y[pick_val].astype(np.int64), mean, std, spec,
                      {"num_classes": len(source.classes), "classes": source.classes})


def seg_export_data(spec: str, hw: tuple[int, int], calib_samples: int, parity_samples: int,
                    seed: int = 0) -> ExportData:
    """A segmentation set (``digits-seg``, ``cityscapes:PATH``, ``segfolder:PATH``) at ``hw``:
    calibration images from its train split, parity images and their masks (``labels``,
    (M, H, W), the ignore label 255 where unlabelled) from its val split; only that many of
    each are read (``load_seg_dataset``'s limits), normalised with their train images'
    mean/std."""
    from plaid.train.datasets.segmentation import load_seg_dataset

    ds = load_seg_dataset(spec, tuple(hw), seed=seed, limit=calib_samples, val_limit=parity_samples)
    if len(ds.val) == 0:
        raise UsageError(f"dataset {spec!r}: the val split is empty")
    return ExportData(ds.train.x, ds.val.x, ds.val.y.astype(np.int64), tuple(ds.mean), tuple(ds.std), spec,
                      {"num_classes": ds.num_classes, "classes": list(ds.classes), "task": "segmentation",
                       "ignore_index": ds.ignore_index})
