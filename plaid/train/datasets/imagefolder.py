"""``imagefolder:PATH``: ``PATH/train/<class>/*.png|jpg|jpeg`` and ``PATH/val/<class>/...``;
without ``val/`` the class folders (under ``train/`` or ``PATH`` itself) are split by the
pipeline. Images are read with Pillow (imported when a folder is read), resized as they are
read, and a decompression bomb is refused."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from plaid.errors import UsageError
from plaid.train.datasets.base import DATASETS, Raw, existing_dir

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def _class_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _read_image(path: Path, resolution: int) -> np.ndarray:
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():  # a decompression bomb is refused, not merely warned about
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                im = im.convert("RGB").resize((resolution, resolution), Image.Resampling.BILINEAR)
                return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UsageError(f"{path}: image too large (over {Image.MAX_IMAGE_PIXELS} pixels, "
                         "a possible decompression bomb); resize it first") from None
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise UsageError(f"{path}: cannot read image: {exc}") from None


def _read_tree(root: Path, classes: list[str], resolution: int, require_all: bool) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for label, name in enumerate(classes):
        folder = root / name
        files = _images(folder) if folder.is_dir() else []
        if require_all and not files:
            raise UsageError(f"imagefolder dataset: {folder} has no .png/.jpg/.jpeg images")
        xs.extend(_read_image(f, resolution) for f in files)
        ys.extend([label] * len(files))
    if not xs:
        raise UsageError(f"imagefolder dataset: no .png/.jpg/.jpeg images under {root}")
    return np.stack(xs), np.asarray(ys, dtype=np.int64)


@DATASETS.register("imagefolder")
def _load_imagefolder(arg: str, resolution: int) -> Raw:
    root = existing_dir(arg, "imagefolder")
    if importlib.util.find_spec("PIL") is None:
        raise UsageError("the 'imagefolder' dataset needs Pillow (pip install pillow)")
    train_root = root / "train" if (root / "train").is_dir() else root
    classes = [p.name for p in _class_dirs(train_root)]
    if len(classes) < 2:
        raise UsageError(f"imagefolder dataset: {train_root} needs at least 2 class folders, found {len(classes)}")
    x, y = _read_tree(train_root, classes, resolution, require_all=True)
    val_root = root / "val"
    if train_root is root or not val_root.is_dir():
        return Raw(x, y, None, None, classes)
    extra = sorted(set(p.name for p in _class_dirs(val_root)) - set(classes))
    if extra:
        raise UsageError(f"imagefolder dataset: {val_root} has class folders that train/ lacks: {', '.join(extra)}")
    val_x, val_y = _read_tree(val_root, classes, resolution, require_all=False)
    return Raw(x, y, val_x, val_y, classes)
