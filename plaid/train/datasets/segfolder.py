"""``segfolder:PATH``: a generic folder of images and class-id masks.

``PATH/images/NAME.png|jpg|jpeg`` with ``PATH/masks/NAME.png`` (a single-channel PNG whose
pixel values are class ids, 255 = ignore), split by the pipeline; or the same pair of
folders under ``PATH/train/`` and ``PATH/val/``. The classes are ``0 .. max id`` of the masks
read unless the caller gives ``num_classes`` or ``PATH/classes.txt`` names them, one per
line (give one of them when a ``limit`` may leave the highest class out)."""

from __future__ import annotations

from pathlib import Path

from plaid.errors import UsageError
from plaid.train.datasets.base import existing_dir
from plaid.train.datasets.segmentation import IGNORE, SEG_DATASETS, SegSource
from plaid.train.datasets.segread import IMAGE_SUFFIXES, Pair, need_pillow, read_pairs


def folder_pairs(folder: Path) -> list[Pair]:
    """The (image, mask) pairs of ``folder/images`` + ``folder/masks``, sorted by name."""
    images_dir, masks_dir = folder / "images", folder / "masks"
    for d in (images_dir, masks_dir):
        if not d.is_dir():
            raise UsageError(f"segfolder dataset: {d} is missing (expected images/NAME.png|jpg and masks/NAME.png)")
    images = sorted(p for p in images_dir.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise UsageError(f"segfolder dataset: no .png/.jpg/.jpeg images in {images_dir}")
    pairs, names = [], {}
    for image in images:
        if image.stem in names:
            raise UsageError(f"segfolder dataset: {names[image.stem].name} and {image.name} in {images_dir} "
                             "share one mask name; keep one")
        names[image.stem] = image
        mask = masks_dir / f"{image.stem}.png"
        if not mask.is_file():
            raise UsageError(f"segfolder dataset: image {image} has no mask (expected {mask})")
        pairs.append(Pair(image, mask))
    return pairs


def class_names(root: Path) -> list[str] | None:
    path = root / "classes.txt"
    if not path.is_file():
        return None
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not 2 <= len(names) <= IGNORE:
        raise UsageError(f"segfolder dataset: {path} names {len(names)} classes; give 2 to {IGNORE}, one per line")
    return names


@SEG_DATASETS.register("segfolder")
def _load_segfolder(arg: str) -> SegSource:
    root = existing_dir(arg, "segfolder")
    need_pillow("segfolder")
    if (root / "train").is_dir():
        train = folder_pairs(root / "train")
        val = folder_pairs(root / "val") if (root / "val").is_dir() else None
    else:
        train, val = folder_pairs(root), None

    def read(pairs, size):
        return read_pairs(pairs, size, "segfolder")

    return SegSource(train=train, val=val, read=read, classes=class_names(root))
