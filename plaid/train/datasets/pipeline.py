"""``load_dataset``: from a spec to a normalised :class:`Dataset`, whichever loader reads it.

The loader's images stay as they are (uint8 or float) until the train/val split and the
``limit`` subset are taken; then they are converted to float32, resized bilinearly and
normalised with the per-channel mean/std of the train split."""

from __future__ import annotations

import numpy as np

from plaid.errors import UsageError
from plaid.train.datasets.base import DATASETS, Dataset, Split
from plaid.train.datasets.splits import stratified_split, stratified_subset


def load_dataset(spec: str, resolution: int, val_fraction: float = 0.2, seed: int = 0,
                 limit: int | None = None) -> Dataset:
    """Load ``spec`` (``digits``, ``cifar10:PATH``, ``imagefolder:PATH``) at ``resolution``
    x ``resolution``; ``limit`` caps the training samples (a seeded, stratified subset)."""
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 1:
        raise UsageError(f"dataset resolution must be a positive integer, got {resolution!r}")
    if not 0.0 < val_fraction < 1.0:
        raise UsageError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise UsageError(f"dataset limit must be a positive integer, got {limit!r}")
    kind, _, arg = spec.strip().partition(":")
    if kind not in DATASETS:
        raise UsageError(DATASETS.unknown_message(kind) + " (e.g. 'digits', 'cifar10:PATH', 'imagefolder:PATH')")
    raw = DATASETS.get(kind)(arg.strip(), resolution)

    rng = np.random.default_rng(seed)
    if raw.val_x is None:
        tr, va = stratified_split(raw.y, val_fraction, rng)
        train_x, train_y, val_x, val_y = raw.x[tr], raw.y[tr], raw.x[va], raw.y[va]
    else:
        train_x, train_y, val_x, val_y = raw.x, raw.y, raw.val_x, raw.val_y
    if limit is not None and limit < len(train_y):
        keep = stratified_subset(train_y, limit, rng)
        train_x, train_y = train_x[keep], train_y[keep]
    if len(np.unique(train_y)) < 2:
        raise UsageError(f"dataset {spec!r}: the train split has fewer than 2 classes")
    if len(val_y) == 0:
        raise UsageError(f"dataset {spec!r}: the val split is empty")

    train_x = _as_float(train_x, resolution)
    val_x = _as_float(val_x, resolution)
    mean = train_x.mean(axis=(0, 2, 3), dtype=np.float64)
    std = train_x.std(axis=(0, 2, 3), dtype=np.float64)
    std = np.where(std < 1e-8, 1.0, std)
    for x in (train_x, val_x):
        x -= mean.astype(np.float32)[None, :, None, None]
        x /= std.astype(np.float32)[None, :, None, None]
    return Dataset(
        name=spec.strip(),
        train=Split(train_x, train_y.astype(np.int64)),
        val=Split(val_x, val_y.astype(np.int64)),
        num_classes=len(raw.classes),
        mean=tuple(float(v) for v in mean),
        std=tuple(float(v) for v in std),
        classes=list(raw.classes),
    )


def _as_float(x: np.ndarray, resolution: int) -> np.ndarray:
    """uint8 or [0, 1] float images -> float32 NCHW at resolution x resolution (bilinear)."""
    x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
    if x.shape[-2:] == (resolution, resolution):
        return x
    import torch
    import torch.nn.functional as F

    out = np.empty((x.shape[0], x.shape[1], resolution, resolution), np.float32)
    down = resolution < max(x.shape[-2:])
    with torch.no_grad():
        for i in range(0, len(x), 512):
            out[i:i + 512] = F.interpolate(torch.from_numpy(x[i:i + 512]), size=(resolution, resolution),
                                           mode="bilinear", align_corners=False, antialias=down).numpy()
    return out
