"""``cifar10:PATH``: the CIFAR-10 python format (``data_batch_*``, ``test_batch``,
``batches.meta``). These are pickles, so they are read with an unpickler that refuses every
global except the three numpy ones an array needs; whatever else goes wrong with a file is a
one-line :class:`UsageError` naming it."""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np

from plaid.errors import UsageError
from plaid.train.datasets.base import DATASETS, Raw, existing_dir


class _CifarUnpickler(pickle.Unpickler):
    """Only what a pickled numpy array needs; CIFAR batches hold dicts, lists, bytes, ints
    and one uint8 array. ``numpy._core`` is numpy 2's spelling of the same module."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load global '{module}.{name}' (a CIFAR batch holds only "
                                     "numpy arrays, lists and bytes)")


def _unpickle(path: Path) -> dict:
    try:
        with path.open("rb") as fh:
            obj = _CifarUnpickler(fh, encoding="bytes").load()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except Exception as exc:  # an untrusted file can fail in any way; report it as one line
        raise UsageError(f"{path}: not a CIFAR-10 python batch: {exc}") from None
    if not isinstance(obj, dict):
        raise UsageError(f"{path}: not a CIFAR-10 python batch: holds a {type(obj).__name__}, not a dict")
    return obj


def _field(d: dict, key: str) -> Any:
    return d.get(key.encode(), d.get(key))


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    d = _unpickle(path)
    data, labels = _field(d, "data"), _field(d, "labels")
    if not isinstance(data, np.ndarray) or labels is None:
        raise UsageError(f"{path}: not a CIFAR-10 python batch: needs a numpy 'data' array and 'labels'")
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise UsageError(f"{path}: CIFAR-10 'data' must be uint8 of shape (N, 3072), got {data.dtype} {data.shape}")
    try:
        y = np.asarray(labels, dtype=np.int64).reshape(-1)
    except (TypeError, ValueError):
        raise UsageError(f"{path}: CIFAR-10 'labels' must be a list of integers") from None
    if len(y) != len(data):
        raise UsageError(f"{path}: {len(data)} images but {len(y)} labels")
    return data.reshape(-1, 3, 32, 32), y


def _batch_number(p: Path) -> int:
    return int(p.name.rsplit("_", 1)[1])


@DATASETS.register("cifar10")
def _load_cifar10(arg: str, resolution: int) -> Raw:
    root = existing_dir(arg, "cifar10")
    train_files = sorted((p for p in root.iterdir() if re.fullmatch(r"data_batch_\d+", p.name)), key=_batch_number)
    if not train_files:
        raise UsageError(f"cifar10 dataset: no data_batch_* files in {root} (expected the CIFAR-10 python "
                         "format: data_batch_1..5, test_batch, batches.meta)")
    test_file = root / "test_batch"
    if not test_file.is_file():
        raise UsageError(f"cifar10 dataset: {test_file} is missing")
    meta_file = root / "batches.meta"
    classes = [str(i) for i in range(10)]
    if meta_file.is_file():
        names = _field(_unpickle(meta_file), "label_names")
        if not isinstance(names, list) or not all(isinstance(n, (bytes, str)) for n in names):
            raise UsageError(f"{meta_file}: 'label_names' must be a list of strings")
        classes = [n.decode("utf-8", "replace") if isinstance(n, bytes) else n for n in names]
    parts = [_read_batch(p) for p in train_files]
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    val_x, val_y = _read_batch(test_file)
    for name, labels in (("train", y), ("test", val_y)):
        if labels.size and (labels.min() < 0 or labels.max() >= len(classes)):
            raise UsageError(f"cifar10 dataset {root}: {name} labels outside 0..{len(classes) - 1}")
    return Raw(x, y, val_x, val_y, classes)
