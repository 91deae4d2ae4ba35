"""Segmentation datasets: images with per-pixel class ids, for decoder search.

``load_seg_dataset(spec, resolution)`` where ``spec`` is one of (registered by name in
:data:`SEG_DATASETS`, a registry of its own: a segmentation set is not a classification set):

- ``digits-seg`` (the embedded default): scenes of scikit-learn's handwritten digits on a
  canvas, per-pixel labels digit + 1, 0 background, 11 classes (see :mod:`.digits_seg`);
- ``cityscapes:PATH``: the standard layout, ``leftImg8bit/{train,val}/CITY/*_leftImg8bit.png``
  with ``gtFine/{train,val}/CITY/*_gtFine_labelIds.png``; label ids mapped to the 19 train
  ids of cityscapesScripts' ``labels.py``, every other id to 255 (see :mod:`.cityscapes`);
- ``segfolder:PATH``: ``PATH/images/NAME.png|jpg`` with ``PATH/masks/NAME.png`` of class ids
  (or ``PATH/train/{images,masks}`` + ``PATH/val/{images,masks}``); classes = max id + 1
  unless ``num_classes`` (or ``PATH/classes.txt``) gives them (see :mod:`.segfolder`).

What comes back is a :class:`SegDataset`: ``train`` and ``val`` :class:`SegSplit` values with
``x`` (N, 3, H, W) float32, normalised with the per-channel mean/std of the train images, and
``y`` (N, H, W) int64 class ids in ``[0, num_classes)`` or :data:`IGNORE` (255, for
``ignore_index=`` of a cross-entropy loss and to be left out of the confusion matrix).

A loader only *lists* its samples (file pairs, scene numbers) and says how to read a list of
them at a size; the pipeline splits the list (seeded, where the source has no val split),
takes the ``limit`` / ``val_limit`` subsets, and only then reads: asking for 50 Cityscapes
images reads 50 files, not the folder. Images are resized bilinearly, masks with nearest
neighbour, to ``resolution`` (an int for square, or ``(height, width)``). Everything is held
in memory (a 384x640 image is ~3 MB as float32): this is for proxy training.

Mistakes in the data (a missing folder, an image without its mask, a mask of another size,
an id out of range, no images) are one-line :class:`~plaid.errors.UsageError` (exit 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from plaid.errors import UsageError
from plaid.registry import Registry

IGNORE = 255  # the mask value that no loss or metric counts


@dataclass(frozen=True, eq=False)  # eq=False: arrays have no single truth value
class SegSplit:
    x: np.ndarray  # (N, 3, H, W) float32, normalised
    y: np.ndarray  # (N, H, W) int64 class ids, IGNORE where unlabelled

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclass(frozen=True, eq=False)
class SegDataset:
    name: str
    train: SegSplit
    val: SegSplit
    num_classes: int
    classes: list[str]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    ignore_index: int = IGNORE

    @property
    def resolution(self) -> tuple[int, int]:
        """(height, width)."""
        return int(self.train.x.shape[-2]), int(self.train.x.shape[-1])

    def describe(self) -> dict[str, Any]:
        """JSON-able summary for run folders."""
        return {"name": self.name, "task": "segmentation", "num_classes": self.num_classes,
                "classes": list(self.classes), "ignore_index": self.ignore_index, "train": len(self.train),
                "val": len(self.val), "resolution": list(self.resolution), "mean": list(self.mean),
                "std": list(self.std)}


Reader = Callable[[Sequence[Any], tuple[int, int]], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True, eq=False)
class SegSource:
    """What a loader returns: its samples listed, not read.

    ``train`` / ``val`` are sample keys (anything whose ``str`` names the sample in an error);
    ``val`` None: the pipeline splits ``train``. ``read(keys, (h, w))`` gives images (N, 3, h,
    w) uint8 or float32 in [0, 1] and masks (N, h, w) uint8. ``classes`` None: class count =
    max id seen + 1, unless the caller gives ``num_classes``."""

    train: Sequence[Any]
    val: Sequence[Any] | None
    read: Reader
    classes: list[str] | None


SEG_DATASETS: Registry[Callable[[str], SegSource]] = Registry("segmentation dataset")


def seg_dataset_names() -> list[str]:
    return SEG_DATASETS.names()


def seg_size(resolution: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    """``resolution`` as (height, width); an int is square."""
    if isinstance(resolution, int) and not isinstance(resolution, bool):
        resolution = (resolution, resolution)
    if (not isinstance(resolution, (tuple, list)) or len(resolution) != 2
            or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in resolution)):
        raise UsageError(f"segmentation resolution must be a positive integer or (height, width), got {resolution!r}")
    return int(resolution[0]), int(resolution[1])


def load_seg_dataset(spec: str, resolution: int | tuple[int, int], val_fraction: float = 0.2, seed: int = 0,
                     limit: int | None = None, val_limit: int | None = None,
                     num_classes: int | None = None) -> SegDataset:
    """Load ``spec`` (``digits-seg``, ``cityscapes:PATH``, ``segfolder:PATH``) at
    ``resolution``; ``limit`` / ``val_limit`` cap the train / val images read (a seeded
    subset); ``num_classes`` fixes the class count where the source does not."""
    size = seg_size(resolution)
    if not 0.0 < val_fraction < 1.0:
        raise UsageError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction!r}")
    for what, value in (("limit", limit), ("val_limit", val_limit), ("num_classes", num_classes)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise UsageError(f"dataset {what} must be a positive integer, got {value!r}")
    if num_classes is not None and not 2 <= num_classes <= IGNORE:
        raise UsageError(f"num_classes must be between 2 and {IGNORE} ({IGNORE} is the ignore label), "
                         f"got {num_classes}")
    kind, _, arg = spec.strip().partition(":")
    if kind not in SEG_DATASETS:
        raise UsageError(SEG_DATASETS.unknown_message(kind)
                         + " (e.g. 'digits-seg', 'cityscapes:PATH', 'segfolder:PATH')")
    src = SEG_DATASETS.get(kind)(arg.strip())

    rng = np.random.default_rng(seed)
    train_keys, val_keys = list(src.train), src.val
    if not train_keys:
        raise UsageError(f"dataset {spec!r}: no training images")
    if val_keys is None:
        if len(train_keys) < 2:
            raise UsageError(f"dataset {spec!r}: needs at least 2 images to split into train and val, found 1")
        order = rng.permutation(len(train_keys))
        k = min(max(int(round(val_fraction * len(train_keys))), 1), len(train_keys) - 1)
        val_keys = [train_keys[i] for i in np.sort(order[:k])]
        train_keys = [train_keys[i] for i in np.sort(order[k:])]
    train_keys = _subset(train_keys, limit, rng)
    val_keys = _subset(list(val_keys), val_limit, rng)
    if not val_keys:
        raise UsageError(f"dataset {spec!r}: the val split is empty")

    train_x, train_y = src.read(train_keys, size)
    val_x, val_y = src.read(val_keys, size)
    classes = _classes(spec, src.classes, num_classes, (train_keys, train_y), (val_keys, val_y))

    train_x, val_x = _to_float(train_x), _to_float(val_x)
    mean = train_x.mean(axis=(0, 2, 3), dtype=np.float64)
    std = train_x.std(axis=(0, 2, 3), dtype=np.float64)
    std = np.where(std < 1e-8, 1.0, std)
    for x in (train_x, val_x):
        x -= mean.astype(np.float32)[None, :, None, None]
        x /= std.astype(np.float32)[None, :, None, None]
    return SegDataset(
        name=spec.strip(),
        train=SegSplit(train_x, train_y.astype(np.int64)),
        val=SegSplit(val_x, val_y.astype(np.int64)),
        num_classes=len(classes),
        classes=classes,
        mean=tuple(float(v) for v in mean),
        std=tuple(float(v) for v in std),
    )


def _subset(keys: list, n: int | None, rng: np.random.Generator) -> list:
    """``n`` of ``keys`` (seeded, in their listed order); all of them when ``n`` is None or larger."""
    if n is None or n >= len(keys):
        return keys
    return [keys[i] for i in np.sort(rng.permutation(len(keys))[:n])]


def _classes(spec: str, named: list[str] | None, num_classes: int | None,
             *parts: tuple[list, np.ndarray]) -> list[str]:
    """The class names, checked against the ids the masks hold (IGNORE aside)."""
    seen = np.zeros(256, bool)
    for _, y in parts:
        seen |= np.bincount(y.ravel(), minlength=256)[:256] > 0
    seen[IGNORE] = False
    ids = np.flatnonzero(seen)
    if named is not None and num_classes is not None and num_classes != len(named):
        raise UsageError(f"dataset {spec!r} has {len(named)} classes; num_classes={num_classes} disagrees")
    if named is None and num_classes is None:
        if len(ids) == 0:
            raise UsageError(f"dataset {spec!r}: every mask pixel is {IGNORE} (ignored); no class ids")
        named = [str(c) for c in range(int(ids[-1]) + 1)]
    elif named is None:
        named = [str(c) for c in range(num_classes)]
    n = len(named)
    if n < 2:
        raise UsageError(f"dataset {spec!r}: needs at least 2 classes, found {n}")
    if len(ids) and ids[-1] >= n:
        for keys, y in parts:  # name the first mask holding an id out of range
            for key, mask in zip(keys, y):
                bad = mask[(mask >= n) & (mask != IGNORE)]
                if bad.size:
                    raise UsageError(f"dataset {spec!r}: mask of {key} holds class id {int(bad.max())}, but there "
                                     f"are {n} classes (ids 0-{n - 1}, {IGNORE} ignored)")
    return list(named)


def _to_float(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32, copy=False)
