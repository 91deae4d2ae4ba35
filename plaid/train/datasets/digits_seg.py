"""``digits-seg``, the embedded segmentation default: scenes of real handwritten digits.

The digits are scikit-learn's ``load_digits`` (1,797 real 8x8 scans of handwritten digits,
UCI "Optical Recognition of Handwritten Digits", shipped inside scikit-learn: no download),
split 80/20 (stratified, fixed seed) into a train and a val pool, so val scenes hold only
digits the train scenes never show. Each scene is generated at run time at the requested
size (H x W) from its own seed (``DIGITS_SEG_SEED``, the split, the scene's number):

- a flat background of a random dark colour (each channel 0-0.3);
- 1 to 3 digits from the pool, each scaled bilinearly to a square of side 25-50% of
  min(H, W), placed at a random position not overlapping the others (20 tries, else left
  out), and painted in a random bright colour (each channel 0.6-1.0), the digit's grey
  level (0-16 in the scan, here 0-1) as its opacity;
- Gaussian pixel noise (sigma 0.05), clipped to [0, 1].

Labels per pixel: the digit's class + 1 where its ink is (opacity > 0.35), 0 elsewhere:
11 classes (``background``, ``0`` .. ``9``), no ignored pixels. ``DIGITS_SEG_TRAIN`` /
``DIGITS_SEG_VAL`` scenes; the same scene number is the same scene whichever subset
(``limit``) asks for it, and the data do not depend on the run seed."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from plaid.errors import UsageError
from plaid.train.datasets.segmentation import SEG_DATASETS, SegSource

DIGITS_SEG_TRAIN, DIGITS_SEG_VAL = 2000, 500  # scenes per split
DIGITS_SEG_SEED = 20190602  # fixed: digits-seg is one dataset, the same for every run seed
CLASSES = ["background"] + [str(d) for d in range(10)]
INK = 0.35  # opacity above which a pixel is labelled as the digit


@dataclass(frozen=True)
class Scene:
    split: str  # "train" | "val"
    index: int

    def __str__(self) -> str:
        return f"digits-seg {self.split} scene {self.index}"


@lru_cache(maxsize=1)
def _pools() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{"train"|"val": (images (n, 8, 8) float32 in [0, 1], labels (n,) int64)}."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise UsageError("the 'digits-seg' dataset needs scikit-learn (pip install scikit-learn)") from None
    from plaid.train.datasets.splits import stratified_split

    d = load_digits()
    x, y = d.images.astype(np.float32) / 16.0, d.target.astype(np.int64)
    tr, va = stratified_split(y, 0.2, np.random.default_rng(DIGITS_SEG_SEED))
    return {"train": (x[tr], y[tr]), "val": (x[va], y[va])}


def scene(split: str, index: int, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """One scene at ``size`` (h, w): image (3, h, w) float32 in [0, 1], labels (h, w) uint8."""
    from PIL import Image

    h, w = size
    pool_x, pool_y = _pools()[split]
    rng = np.random.default_rng([DIGITS_SEG_SEED, 0 if split == "train" else 1, index])
    img = np.empty((3, h, w), np.float32)
    img[:] = rng.uniform(0.0, 0.3, 3).astype(np.float32)[:, None, None]
    labels = np.zeros((h, w), np.uint8)
    boxes: list[tuple[int, int, int]] = []
    for _ in range(int(rng.integers(1, 4))):
        k = int(rng.integers(len(pool_x)))
        side = min(max(int(round(rng.uniform(0.25, 0.50) * min(h, w))), 2), h, w)
        colour = rng.uniform(0.6, 1.0, 3).astype(np.float32)
        for _try in range(20):
            top, left = int(rng.integers(h - side + 1)), int(rng.integers(w - side + 1))
            if all(top >= t + s or t >= top + side or left >= l + s or l >= left + side for t, l, s in boxes):
                break
        else:
            continue  # no free place: the scene has one digit fewer
        boxes.append((top, left, side))
        glyph = np.asarray(Image.fromarray(pool_x[k], mode="F").resize((side, side), Image.Resampling.BILINEAR))
        glyph = np.clip(glyph, 0.0, 1.0)
        region = img[:, top:top + side, left:left + side]
        region *= 1.0 - glyph
        region += colour[:, None, None] * glyph
        labels[top:top + side, left:left + side][glyph > INK] = pool_y[k] + 1
    noise = rng.standard_normal(img.shape, dtype=np.float32)
    noise *= 0.05
    img += noise
    return np.clip(img, 0.0, 1.0, out=img), labels


def _read(scenes, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    x = np.empty((len(scenes), 3, *size), np.float32)
    y = np.empty((len(scenes), *size), np.uint8)
    for i, s in enumerate(scenes):
        x[i], y[i] = scene(s.split, s.index, size)
    return x, y


@SEG_DATASETS.register("digits-seg")
def _load_digits_seg(arg: str) -> SegSource:
    if arg:
        raise UsageError(f"dataset 'digits-seg' is embedded and takes no path (got 'digits-seg:{arg}')")
    _pools()  # fail here, not at the first read, without scikit-learn
    return SegSource(train=[Scene("train", i) for i in range(DIGITS_SEG_TRAIN)],
                     val=[Scene("val", i) for i in range(DIGITS_SEG_VAL)], read=_read, classes=list(CLASSES))
