"""Reading image/mask file pairs for the folder segmentation loaders (Cityscapes, segfolder).

Each pair is checked (same size, a single-channel mask of ids 0-255), then the image is
resized bilinearly and the mask with nearest neighbour, so no id is ever blended into
another. Pillow is imported when a pair is read; a decompression bomb is refused. Files are
read by a few threads (Pillow decodes without the GIL), in order."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from plaid.errors import UsageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
MASK_MODES = ("L", "P", "I", "I;16", "I;16B", "I;16L")  # single channel, integer values


@dataclass(frozen=True)
class Pair:
    """One sample of a folder dataset: an image and the mask of its class ids."""

    image: Path
    mask: Path

    def __str__(self) -> str:
        return str(self.image)


def need_pillow(kind: str) -> None:
    import importlib.util

    if importlib.util.find_spec("PIL") is None:
        raise UsageError(f"the {kind!r} dataset needs Pillow (pip install pillow)")


def read_pairs(pairs: Sequence[Pair], size: tuple[int, int], kind: str,
               lut: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``pairs`` read at ``size`` (h, w): images (N, 3, h, w) uint8, masks (N, h, w) uint8,
    each mask id ``m`` replaced by ``lut[m]`` when a 256-entry ``lut`` is given."""
    from concurrent.futures import ThreadPoolExecutor

    h, w = size
    x = np.empty((len(pairs), 3, h, w), np.uint8)
    y = np.empty((len(pairs), h, w), np.uint8)
    workers = max(1, min(8, os.cpu_count() or 1, len(pairs)))
    with ThreadPoolExecutor(workers) as pool:
        for start in range(0, len(pairs), 64):  # in chunks: a bad file stops the reading within one chunk
            chunk = pairs[start:start + 64]
            for i, (img, mask) in enumerate(pool.map(lambda p: read_pair(p, size, kind), chunk), start):
                x[i], y[i] = img, mask
    if lut is not None:
        y = lut[y]
    return x, y


def read_pair(pair: Pair, size: tuple[int, int], kind: str) -> tuple[np.ndarray, np.ndarray]:
    """One pair at ``size`` (h, w): (3, h, w) uint8 image, (h, w) uint8 mask."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    h, w = size
    try:
        with warnings.catch_warnings():  # a decompression bomb is refused, not merely warned about
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(pair.image) as im, Image.open(pair.mask) as m:
                if im.size != m.size:
                    raise UsageError(f"{kind} dataset: mask {pair.mask} is {m.size[0]}x{m.size[1]} (WxH) but its "
                                     f"image {pair.image} is {im.size[0]}x{im.size[1]}")
                if m.mode not in MASK_MODES:
                    raise UsageError(f"{kind} dataset: mask {pair.mask} has mode {m.mode}; a mask must be a "
                                     "single-channel image of class ids (mode L, P or I)")
                image = im.convert("RGB").resize((w, h), Image.Resampling.BILINEAR)
                mask = np.asarray(m.resize((w, h), Image.Resampling.NEAREST))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UsageError(f"{kind} dataset: {pair.image} or its mask is too large (over {Image.MAX_IMAGE_PIXELS} "
                         "pixels, a possible decompression bomb); resize it first") from None
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise UsageError(f"{kind} dataset: cannot read {pair.image} or {pair.mask}: {exc}") from None
    if mask.dtype != np.uint8:
        if mask.size and (mask.min() < 0 or mask.max() > 255):
            raise UsageError(f"{kind} dataset: mask {pair.mask} holds ids outside 0-255 "
                             f"({int(mask.min())}..{int(mask.max())})")
        mask = mask.astype(np.uint8)
    return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1), mask
