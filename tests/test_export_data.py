"""plaid.export.data: calibration and parity inputs are built from the picked samples only,
never from the whole dataset at the export size (at 384x640 that was 9-49 GB), and they are
the same samples, at the same values, as a pick from ``load_dataset`` at that size."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from plaid.export import data as export_data_mod
from plaid.export.data import export_data


def _picked_from_load_dataset(spec: str, side: int, calib: int, parity: int, seed: int = 0):
    """What export_data gave when it loaded the whole dataset at ``side`` and picked from it."""
    from plaid.train.datasets import load_dataset

    ds = load_dataset(spec, side, seed=seed)
    rng = np.random.default_rng(seed)
    pick = rng.permutation(len(ds.train))[:calib]
    pick_val = rng.permutation(len(ds.val))[:parity]
    return ds, ds.train.x[pick], ds.val.x[pick_val], ds.val.y[pick_val]


@pytest.mark.parametrize("spec", ["digits", "digits-affine"])
def test_the_same_samples_as_a_pick_from_the_whole_dataset(spec):
    ds, calib, parity, labels = _picked_from_load_dataset(spec, 32, 40, 24)
    got = export_data(spec, (32, 32), calib_samples=40, parity_samples=24)
    np.testing.assert_allclose(got.calib, calib, rtol=0, atol=1e-5)
    np.testing.assert_allclose(got.parity, parity, rtol=0, atol=1e-5)
    assert (got.labels == labels).all() and got.labels.dtype == np.int64
    np.testing.assert_allclose(got.mean, ds.mean, atol=1e-6)
    np.testing.assert_allclose(got.std, ds.std, atol=1e-6)
    assert got.info == {"num_classes": 10, "classes": ds.classes}


def _counting_reads(monkeypatch):
    """Record (split, how many images, side asked) of every read of the dataset."""
    reads = []
    real = export_data_mod.open_source

    def open_source(spec, hw, seed=0):
        source = real(spec, hw, seed)

        def read(split, idx, side):
            out = source.read(split, idx, side)
            reads.append((split, len(idx), side, out.nbytes))
            return out

        return export_data_mod.Source(source.train_y, source.val_y, source.classes, read)

    monkeypatch.setattr(export_data_mod, "open_source", open_source)
    return reads


def test_at_a_large_export_size_only_the_picked_samples_are_built(monkeypatch):
    hw, calib, parity = (192, 320), 16, 8
    reads = _counting_reads(monkeypatch)
    tracemalloc.start()
    try:
        got = export_data("digits", hw, calib_samples=calib, parity_samples=parity)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got.calib.shape == (calib, 3, *hw) and got.parity.shape == (parity, 3, *hw)
    # the whole train split is only ever read for its mean/std, a batch at a time, at <= 64x64
    stats = [r for r in reads if r[2] == export_data_mod.RAW_SIDE]
    built = [r for r in reads if r[2] == max(hw)]
    assert len(stats) + len(built) == len(reads)
    assert sum(n for _, n, _, _ in stats) == 1438  # digits' train split (1,797 images, 359 in val)
    assert max(n for _, n, _, _ in stats) <= 64
    assert sum(n for s, n, _, _ in built if s == "train") == calib  # the calibration samples, no more
    assert sum(n for s, n, _, _ in built if s == "val") == parity
    assert max(n for _, n, _, _ in built) <= export_data_mod.BATCH
    outputs = got.calib.nbytes + got.parity.nbytes  # 17.7 MB
    whole = 1438 * 3 * hw[0] * hw[1] * 4  # the train split alone at this size, as float32: 1.06 GB
    assert peak < outputs + 48 * 2**20, (peak, outputs, whole)
    assert peak < whole / 10


def _write_folder(root, sizes):
    from PIL import Image

    rng = np.random.default_rng(0)
    for c, name in enumerate(("cat", "dog")):
        (root / name).mkdir(parents=True)
        for i, (w, h) in enumerate(sizes):
            pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8) // (c + 1)
            Image.fromarray(pixels).save(root / name / f"{i}.png")


def test_an_imagefolder_reads_only_the_picked_files_at_the_export_size(tmp_path, monkeypatch):
    import plaid.train.datasets.imagefolder as imagefolder

    _write_folder(tmp_path / "imgs", [(40, 30), (50, 50), (20, 60), (64, 48), (33, 33)] * 2)
    spec = f"imagefolder:{tmp_path / 'imgs'}"
    _, calib, parity, labels = _picked_from_load_dataset(spec, 24, 3, 2)
    got = export_data(spec, (16, 24), calib_samples=3, parity_samples=2)  # read at 24x24, then stretched
    resize = export_data_mod._resize
    np.testing.assert_allclose(got.calib, resize(calib, (16, 24)), atol=1e-5)
    np.testing.assert_allclose(got.parity, resize(parity, (16, 24)), atol=1e-5)
    assert (got.labels == labels).all()
    opened = []
    real = imagefolder._read_image
    monkeypatch.setattr(imagefolder, "_read_image", lambda path, side: opened.append(side) or real(path, side))
    export_data(spec, (72, 96), calib_samples=3, parity_samples=2)
    assert opened.count(96) == 3 + 2  # at the export size: the picked files only
    assert opened.count(64) == 16 and len(opened) == 21  # the mean/std: the 16 train files at 64x64


def test_without_a_dataset_parity_inputs_are_seeded_noise():
    got = export_data(None, (8, 12), parity_samples=3)
    assert got.calib is None and got.parity.shape == (3, 3, 8, 12) and got.source == ""
    assert (export_data(None, (8, 12), parity_samples=3).parity == got.parity).all()
