"""Segmentation data: Cityscapes layout, segfolder, digits-seg (plaid.train.datasets.segmentation).

The trees are built here with Pillow in the Cityscapes layout (32x64 images). The errors
are checked through the Python API, each a one-line UsageError (exit code 2 from the CLI:
`plaid search --space pl1aseg --dataset cityscapes:PATH` and `plaid export --calib` read
them through the same loaders)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from plaid.errors import UsageError
from plaid.train.datasets import IGNORE, SEG_DATASETS, load_seg_dataset, seg_dataset_names
from plaid.train.datasets import segread
from plaid.train.datasets.cityscapes import LABEL_TO_TRAIN, TRAIN_IDS

H, W = 32, 64
# label ids in the masks: 19 evaluated classes plus ids that must become 255
# (unlabeled 0, ego vehicle 1, parking 9, rail track 10, guard rail 14, polegroup 18, caravan 29, trailer 30)
LABEL_IDS = np.array([0, 1, 7, 8, 9, 10, 11, 12, 13, 14, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30,
                      31, 32, 33], np.uint8)


def _label_mask(seed: int) -> np.ndarray:
    """Vertical stripes of 2 columns, each a label id, rotated per image: (H, W) uint8."""
    ids = np.roll(np.resize(LABEL_IDS, W // 2), seed)
    return np.repeat(ids, 2)[None, :].repeat(H, axis=0)


def _cityscapes(root: Path, splits=(("train", ("aachen", "bochum"), 3), ("val", ("frankfurt",), 2))) -> Path:
    rng = np.random.default_rng(0)
    k = 0
    for split, cities, n in splits:
        for city in cities:
            (root / "leftImg8bit" / split / city).mkdir(parents=True, exist_ok=True)
            (root / "gtFine" / split / city).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                stem = f"{city}_{i:06d}_000019"
                Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)).save(
                    root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png")
                Image.fromarray(_label_mask(k)).save(root / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png")
                # the other gtFine files of the real layout, which must not be taken for masks
                Image.fromarray(_label_mask(k)).save(root / "gtFine" / split / city / f"{stem}_gtFine_instanceIds.png")
                k += 1
    return root


def _error(excinfo) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg and excinfo.value.exit_code == 2
    return msg


# --- Cityscapes -----------------------------------------------------------------------------

def test_train_id_table_is_the_official_one():
    expected = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12,
                26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}
    assert {label: train for label, train, _ in TRAIN_IDS} == expected
    assert [n for _, _, n in TRAIN_IDS][:3] == ["road", "sidewalk", "building"] and TRAIN_IDS[-1][2] == "bicycle"
    others = [i for i in range(256) if i not in expected]
    assert (LABEL_TO_TRAIN[others] == IGNORE).all()
    assert [int(LABEL_TO_TRAIN[i]) for i in expected] == list(expected.values())


def test_cityscapes_maps_label_ids_to_train_ids(tmp_path):
    root = _cityscapes(tmp_path)
    ds = load_seg_dataset(f"cityscapes:{root}", (H, W))
    assert ds.num_classes == 19 and ds.classes[0] == "road" and ds.ignore_index == 255
    assert (len(ds.train), len(ds.val)) == (6, 2) and ds.resolution == (H, W)
    assert ds.train.x.shape == (6, 3, H, W) and ds.train.x.dtype == np.float32
    assert ds.train.y.shape == (6, H, W) and ds.train.y.dtype == np.int64
    # train: aachen 0-2 then bochum 0-2 (sorted), masks 0-5; val: frankfurt 0-1, masks 6-7
    for i, y in enumerate(ds.train.y):
        np.testing.assert_array_equal(y, LABEL_TO_TRAIN[_label_mask(i)])
    np.testing.assert_array_equal(ds.val.y[1], LABEL_TO_TRAIN[_label_mask(7)])
    # ids outside the 19 are ignored: road (7) -> 0, bicycle (33) -> 18, caravan (29) / unlabeled (0) -> 255
    m, y = _label_mask(0), ds.train.y[0]
    assert (y[m == 7] == 0).all() and (y[m == 33] == 18).all()
    assert (y[np.isin(m, [0, 1, 9, 10, 14, 18, 29, 30])] == 255).all()
    assert set(np.unique(ds.train.y)) == set(range(19)) | {255}
    # normalised with the train split's statistics
    assert np.allclose(ds.train.x.mean(axis=(0, 2, 3)), 0, atol=1e-4)
    assert np.allclose(ds.train.x.std(axis=(0, 2, 3)), 1, atol=1e-3)


def test_cityscapes_resizes_masks_nearest(tmp_path):
    root = _cityscapes(tmp_path)
    ds = load_seg_dataset(f"cityscapes:{root}", (16, 24))
    assert ds.train.x.shape[1:] == (3, 16, 24) and ds.val.y.shape[1:] == (16, 24)
    assert set(np.unique(ds.train.y)) <= set(range(19)) | {255}  # no blended ids
    sq = load_seg_dataset(f"cityscapes:{root}", 20)
    assert sq.resolution == (20, 20)


def test_cityscapes_limit_reads_only_what_it_keeps(tmp_path, monkeypatch):
    root = _cityscapes(tmp_path)
    read = []
    real = segread.read_pair
    monkeypatch.setattr(segread, "read_pair", lambda pair, size, kind: read.append(pair) or real(pair, size, kind))
    ds = load_seg_dataset(f"cityscapes:{root}", (H, W), limit=2, val_limit=1, seed=3)
    assert (len(ds.train), len(ds.val)) == (2, 1) and len(read) == 3
    again = load_seg_dataset(f"cityscapes:{root}", (H, W), limit=2, val_limit=1, seed=3)
    np.testing.assert_array_equal(ds.train.y, again.train.y)


def test_cityscapes_without_val_splits_train(tmp_path):
    root = _cityscapes(tmp_path, splits=(("train", ("aachen",), 5),))
    ds = load_seg_dataset(f"cityscapes:{root}", (H, W), val_fraction=0.4)
    assert (len(ds.train), len(ds.val)) == (3, 2)


def test_cityscapes_missing_mask_is_named(tmp_path):
    root = _cityscapes(tmp_path)
    mask = root / "gtFine/train/bochum/bochum_000001_000019_gtFine_labelIds.png"
    mask.unlink()
    with pytest.raises(UsageError) as e:
        load_seg_dataset(f"cityscapes:{root}", (H, W))
    msg = _error(e)
    assert "bochum_000001_000019_leftImg8bit.png" in msg and "has no mask" in msg and str(mask) in msg


def test_cityscapes_size_mismatch_names_both_sizes(tmp_path):
    root = _cityscapes(tmp_path)
    mask = root / "gtFine/val/frankfurt/frankfurt_000000_000019_gtFine_labelIds.png"
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(mask)
    with pytest.raises(UsageError) as e:
        load_seg_dataset(f"cityscapes:{root}", (H, W))
    msg = _error(e)
    assert "32x32" in msg and "64x32" in msg and mask.name in msg and "frankfurt_000000_000019_leftImg8bit" in msg


@pytest.mark.parametrize("remove", ["gtFine", "leftImg8bit", "leftImg8bit/train", "gtFine/val"])
def test_cityscapes_missing_folder(tmp_path, remove):
    import shutil

    root = _cityscapes(tmp_path)
    shutil.rmtree(root / remove)
    with pytest.raises(UsageError) as e:
        load_seg_dataset(f"cityscapes:{root}", (H, W))
    assert remove.split("/")[0] in _error(e)


def test_cityscapes_no_images_and_bad_paths(tmp_path):
    for sub in ("leftImg8bit/train/aachen", "gtFine/train/aachen"):
        (tmp_path / sub).mkdir(parents=True)
    with pytest.raises(UsageError) as e:
        load_seg_dataset(f"cityscapes:{tmp_path}", (H, W))
    assert "no *_leftImg8bit.png images" in _error(e)
    for spec, words in ((f"cityscapes:{tmp_path / 'nope'}", "does not exist"), ("cityscapes", "needs a path"),
                        ("cityscape:/x", "did you mean 'cityscapes'"), ("digits", "unknown segmentation dataset")):
        with pytest.raises(UsageError) as e:
            load_seg_dataset(spec, (H, W))
        assert words in _error(e)


def test_bad_arguments_are_one_line(tmp_path):
    root = _cityscapes(tmp_path)
    for kw in ({"resolution": 0}, {"resolution": (32,)}, {"resolution": (True, 3)}, {"limit": 0},
               {"val_fraction": 1.0}, {"num_classes": 256}, {"num_classes": 20}):
        args = {"resolution": (H, W), **kw}
        with pytest.raises(UsageError) as e:
            load_seg_dataset(f"cityscapes:{root}", args.pop("resolution"), **args)
        _error(e)


# --- segfolder ------------------------------------------------------------------------------

def _segfolder(root: Path, n: int = 5, max_id: int = 3) -> Path:
    rng = np.random.default_rng(1)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)).save(root / "images" / f"s{i}.jpg")
        mask = rng.integers(0, max_id + 1, (H, W)).astype(np.uint8)
        mask[:4] = IGNORE
        Image.fromarray(mask).save(root / "masks" / f"s{i}.png")
    return root


def test_segfolder_classes_from_max_id_or_given(tmp_path):
    root = _segfolder(tmp_path / "a")
    ds = load_seg_dataset(f"segfolder:{root}", (H, W))
    assert ds.num_classes == 4 and ds.classes == ["0", "1", "2", "3"]
    assert (len(ds.train), len(ds.val)) == (4, 1)
    assert set(np.unique(np.concatenate([ds.train.y.ravel(), ds.val.y.ravel()]))) == {0, 1, 2, 3, 255}
    assert load_seg_dataset(f"segfolder:{root}", (H, W), num_classes=6).num_classes == 6
    with pytest.raises(UsageError) as e:
        load_seg_dataset(f"segfolder:{root}", (H, W), num_classes=3)
    assert "holds class id 3" in _error(e) and "3 classes" in str(e.value)
    (root / "classes.txt").write_text("sky\nroad\ncar\nperson\nbike\n")
    assert load_seg_dataset(f"segfolder:{root}", (H, W)).classes == ["sky", "road", "car", "person", "bike"]


def test_segfolder_train_val_folders(tmp_path):
    _segfolder(tmp_path / "train", n=3)
    _segfolder(tmp_path / "val", n=2)
    ds = load_seg_dataset(f"segfolder:{tmp_path}", 16)
    assert (len(ds.train), len(ds.val)) == (3, 2) and ds.resolution == (16, 16)


def test_segfolder_errors(tmp_path):
    root = _segfolder(tmp_path / "a")
    (root / "masks" / "s2.png").unlink()
    with pytest.raises(UsageError) as e:
        load_seg_dataset(f"segfolder:{root}", (H, W))
    assert "s2.jpg has no mask" in _error(e)
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(root / "masks" / "s2.png")
    with pytest.raises(UsageError) as e:
        load_seg_dataset(f"segfolder:{root}", (H, W))
    assert "mode RGB" in _error(e)
    Image.fromarray(np.zeros((H + 1, W), np.uint8)).save(root / "masks" / "s2.png")
    with pytest.raises(UsageError) as e:
        load_seg_dataset(f"segfolder:{root}", (H, W))
    assert "64x33" in _error(e) and "64x32" in str(e.value)
    with pytest.raises(UsageError) as e:
        load_seg_dataset(f"segfolder:{tmp_path}", (H, W))
    assert "images is missing" in _error(e)


# --- digits-seg -----------------------------------------------------------------------------

def test_digits_seg_is_seeded_and_in_range():
    a = load_seg_dataset("digits-seg", 32, limit=48, val_limit=16)
    b = load_seg_dataset("digits-seg", 32, limit=48, val_limit=16)
    assert a.num_classes == 11 and a.classes[0] == "background" and a.classes[1:] == [str(d) for d in range(10)]
    assert (len(a.train), len(a.val)) == (48, 16)
    np.testing.assert_array_equal(a.train.x, b.train.x)
    np.testing.assert_array_equal(a.val.y, b.val.y)
    labels = np.concatenate([a.train.y.ravel(), a.val.y.ravel()])
    assert labels.min() == 0 and labels.max() <= 10 and not (labels == IGNORE).any()
    assert len(np.unique(a.train.y)) >= 8  # background and most digits in 48 scenes
    fg = (a.train.y > 0).mean()
    assert 0.03 < fg < 0.3
    # ink is where the labels say: foreground pixels are brighter than background on average
    x = a.train.x.mean(axis=1)
    assert x[a.train.y > 0].mean() > x[a.train.y == 0].mean() + 1.0


def test_digits_seg_scene_does_not_depend_on_subset_or_seed():
    from plaid.train.datasets.digits_seg import scene

    a = load_seg_dataset("digits-seg", (24, 40), limit=10, val_limit=4, seed=0)
    b = load_seg_dataset("digits-seg", (24, 40), limit=10, val_limit=4, seed=5)
    assert a.resolution == (24, 40)
    assert not np.array_equal(a.train.y, b.train.y)  # another subset of scenes ...
    img, lab = scene("val", 7, (24, 40))  # ... but each scene is one fixed scene
    img2, lab2 = scene("val", 7, (24, 40))
    np.testing.assert_array_equal(img, img2)
    np.testing.assert_array_equal(lab, lab2)
    assert img.shape == (3, 24, 40) and 0 <= img.min() and img.max() <= 1
    with pytest.raises(UsageError) as e:
        load_seg_dataset("digits-seg:/x", 32)
    assert "takes no path" in _error(e)


# every registered segmentation dataset is built by one of these and loads
BUILDERS = {"digits-seg": lambda tmp: "digits-seg",
            "cityscapes": lambda tmp: f"cityscapes:{_cityscapes(tmp)}",
            "segfolder": lambda tmp: f"segfolder:{_segfolder(tmp)}"}


def test_every_segmentation_dataset_has_a_builder():
    assert set(BUILDERS) == set(seg_dataset_names()) == set(SEG_DATASETS)


@pytest.mark.parametrize("name", seg_dataset_names())
def test_registered_dataset_loads(tmp_path, name):
    ds = load_seg_dataset(BUILDERS[name](tmp_path), (16, 32), limit=4, val_limit=2)
    assert ds.train.x.shape[1:] == (3, 16, 32) and ds.train.y.shape[1:] == (16, 32)
    assert len(ds.val) >= 1 and ds.describe()["task"] == "segmentation"
    valid = (ds.train.y < ds.num_classes) | (ds.train.y == IGNORE)
    assert valid.all() and ds.train.y.min() >= 0
