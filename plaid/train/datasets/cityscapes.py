"""``cityscapes:PATH``: Cityscapes in its standard layout, with the 19 evaluation classes.

``PATH/leftImg8bit/{train,val}/CITY/CITY_SEQ_FRAME_leftImg8bit.png`` and, for each,
``PATH/gtFine/{train,val}/CITY/CITY_SEQ_FRAME_gtFine_labelIds.png``. The label ids are
mapped to the train ids of cityscapesScripts' ``helpers/labels.py`` (the 19 classes with
``ignoreInEval`` False); every other id (unlabeled, ego vehicle, parking, rail track, guard
rail, bridge, tunnel, polegroup, caravan, trailer, license plate, ...) becomes 255.
``val/`` is used as the val split when present (``test/`` has no public labels and is
never read); without it the pipeline splits ``train/``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from plaid.errors import UsageError
from plaid.train.datasets.base import existing_dir
from plaid.train.datasets.segmentation import IGNORE, SEG_DATASETS, SegSource
from plaid.train.datasets.segread import Pair, need_pillow, read_pairs

# (label id, train id, name) of the 19 evaluated classes, from cityscapesScripts' labels.py
TRAIN_IDS = (
    (7, 0, "road"), (8, 1, "sidewalk"), (11, 2, "building"), (12, 3, "wall"), (13, 4, "fence"),
    (17, 5, "pole"), (19, 6, "traffic light"), (20, 7, "traffic sign"), (21, 8, "vegetation"),
    (22, 9, "terrain"), (23, 10, "sky"), (24, 11, "person"), (25, 12, "rider"), (26, 13, "car"),
    (27, 14, "truck"), (28, 15, "bus"), (31, 16, "train"), (32, 17, "motorcycle"), (33, 18, "bicycle"),
)
CLASSES = [name for _, _, name in TRAIN_IDS]

LABEL_TO_TRAIN = np.full(256, IGNORE, np.uint8)  # label id -> train id, 255 for the rest
for _label, _train, _ in TRAIN_IDS:
    LABEL_TO_TRAIN[_label] = _train

IMAGE_END = "_leftImg8bit.png"
MASK_END = "_gtFine_labelIds.png"


def mask_of(image: Path, root: Path) -> Path:
    """The ``gtFine`` labelIds file that goes with a ``leftImg8bit`` image."""
    rel = image.relative_to(root / "leftImg8bit")
    return root / "gtFine" / rel.parent / (image.name[: -len(IMAGE_END)] + MASK_END)


def split_pairs(root: Path, split: str) -> list[Pair]:
    """The (image, mask) pairs of ``leftImg8bit/<split>/*/``, sorted; each image must have its mask."""
    images_dir, masks_dir = root / "leftImg8bit" / split, root / "gtFine" / split
    if not masks_dir.is_dir():
        raise UsageError(f"cityscapes dataset: {images_dir} has no labels: {masks_dir} is missing")
    images = sorted(p for city in images_dir.iterdir() if city.is_dir()
                    for p in city.iterdir() if p.name.endswith(IMAGE_END) and p.is_file())
    if not images:
        raise UsageError(f"cityscapes dataset: no *{IMAGE_END} images under {images_dir}/CITY/")
    pairs = []
    for image in images:
        mask = mask_of(image, root)
        if not mask.is_file():
            raise UsageError(f"cityscapes dataset: image {image} has no mask (expected {mask})")
        pairs.append(Pair(image, mask))
    return pairs


@SEG_DATASETS.register("cityscapes")
def _load_cityscapes(arg: str) -> SegSource:
    root = existing_dir(arg, "cityscapes")
    for sub in ("leftImg8bit", "gtFine", "leftImg8bit/train"):
        if not (root / sub).is_dir():
            raise UsageError(f"cityscapes dataset: {root / sub} is missing (expected leftImg8bit/{{train,val}}/CITY/"
                             f"*{IMAGE_END} and gtFine/{{train,val}}/CITY/*{MASK_END})")
    need_pillow("cityscapes")
    train = split_pairs(root, "train")
    val = split_pairs(root, "val") if (root / "leftImg8bit" / "val").is_dir() else None

    def read(pairs, size):
        return read_pairs(pairs, size, "cityscapes", lut=LABEL_TO_TRAIN)

    return SegSource(train=train, val=val, read=read, classes=list(CLASSES))
