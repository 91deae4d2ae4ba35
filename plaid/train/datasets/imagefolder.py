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


def tree_files(root: Path, classes: list[str], require_all: bool) -> tuple[list[Path], np.ndarray]:
    """The image files under ``root/<class>/`` in class order, and their labels."""
    files, ys = [], []
    for label, name in enumerate(classes):
        folder = root / name
        found = _images(folder) if folder.is_dir() else []
        if require_all and not found:
            raise UsageError(f"imagefolder dataset: {folder} has no .png/.jpg/.jpeg images")
        files.extend(found)
        ys.extend([label] * len(found))
    if not files:
        raise UsageError(f"imagefolder dataset: no .png/.jpg/.jpeg images under {root}")
    return files, np.asarray(ys, dtype=np.int64)


def folders(arg: str) -> tuple[Path, Path | None, list[str]]:
    """(train root, val root or None, class names) of an ``imagefolder:PATH`` spec, checked."""
    root = existing_dir(arg, "imagefolder")
    if importlib.util.find_spec("PIL") is None:
        raise UsageError("the 'imagefolder' dataset needs Pillow (pip install pillow)")
    train_root = root / "train" if (root / "train").is_dir() else root
    classes = [p.name for p in _class_dirs(train_root)]
    if len(classes) < 2:
        raise UsageError(f"imagefolder dataset: {train_root} needs at least 2 class folders, found {len(classes)}")
    val_root = root / "val"
    if train_root is root or not val_root.is_dir():
        return train_root, None, classes
    extra = sorted(set(p.name for p in _class_dirs(val_root)) - set(classes))
    if extra:
        raise UsageError(f"imagefolder dataset: {val_root} has class folders that train/ lacks: {', '.join(extra)}")
    return train_root, val_root, classes


def read_images(files: list[Path], resolution: int) -> np.ndarray:
    """``files`` read and resized to ``resolution`` x ``resolution``: (N, 3, r, r) uint8."""
    return np.stack([_read_image(f, resolution) for f in files])


@DATASETS.register("imagefolder")
def _load_imagefolder(arg: str, resolution: int) -> Raw:
    train_root, val_root, classes = folders(arg)
    files, y = tree_files(train_root, classes, require_all=True)
    x = read_images(files, resolution)
    if val_root is None:
        return Raw(x, y, None, None, classes)
    val_files, val_y = tree_files(val_root, classes, require_all=False)
    return Raw(x, y, read_images(val_files, resolution), val_y, classes)
