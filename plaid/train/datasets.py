"""Proxy datasets as normalised NCHW float32 arrays.

``load_dataset(spec, resolution)`` where ``spec`` is one of (registered by name):

- ``digits``: scikit-learn's 8x8 digits (ship inside scikit-learn, no download), grey -> 3
  channels, resized bilinearly; stratified, seeded train/val split;
- ``digits-affine`` (the embedded default): a harder, larger set made from the same digits
  (see ``_load_digits_affine``), on which small nets do not saturate;
- ``cifar10:PATH``: the CIFAR-10 python format (``data_batch_*``, ``test_batch``,
  ``batches.meta``); these are pickles, read with an unpickler that refuses every global
  except the three numpy ones an array needs;
- ``imagefolder:PATH``: ``PATH/train/<class>/*.png|jpg|jpeg`` and ``PATH/val/<class>/...``;
  without ``val/`` the class folders (under ``train/`` or ``PATH`` itself) are split.

Images are kept as uint8 until the split and the ``limit`` subset are taken, then converted,
resized and normalised with the per-channel mean/std of the train split. Everything is held
in memory: this is for proxy training, not full-scale ImageNet.
"""

from __future__ import annotations

import importlib.util
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from plaid.errors import UsageError
from plaid.registry import Registry

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


@dataclass(frozen=True, eq=False)  # eq=False: arrays have no single truth value
class Split:
    x: np.ndarray  # (N, 3, H, W) float32, normalised
    y: np.ndarray  # (N,) int64

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclass(frozen=True, eq=False)
class Dataset:
    name: str
    train: Split
    val: Split
    num_classes: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    classes: list[str]

    @property
    def resolution(self) -> int:
        return int(self.train.x.shape[-1])

    def describe(self) -> dict[str, Any]:
        """JSON-able summary for run folders."""
        return {"name": self.name, "num_classes": self.num_classes, "train": len(self.train),
                "val": len(self.val), "resolution": self.resolution, "mean": list(self.mean),
                "std": list(self.std)}


@dataclass(frozen=True, eq=False)
class _Raw:
    """What a loader returns: images (uint8 or float32 in [0, 1]), NCHW, any size."""

    x: np.ndarray
    y: np.ndarray
    val_x: np.ndarray | None  # None: split x/y by val_fraction
    val_y: np.ndarray | None
    classes: list[str]


DATASETS: Registry[Callable[[str, int], _Raw]] = Registry("dataset")


def dataset_names() -> list[str]:
    return DATASETS.names()


def load_dataset(spec: str, resolution: int, val_fraction: float = 0.2, seed: int = 0,
                 limit: int | None = None) -> Dataset:
    """Load ``spec`` (``digits``, ``cifar10:PATH``, ``imagefolder:PATH``) at ``resolution``
    x ``resolution``; ``limit`` caps the training samples (a seeded, stratified subset)."""
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 1:
        raise UsageError(f"dataset resolution must be a positive integer, got {resolution!r}")
    if not 0.0 < val_fraction < 1.0:
        raise UsageError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise UsageError(f"dataset limit must be a positive integer, got {limit!r}")
    kind, _, arg = spec.strip().partition(":")
    if kind not in DATASETS:
        raise UsageError(DATASETS.unknown_message(kind) + " (e.g. 'digits', 'cifar10:PATH', 'imagefolder:PATH')")
    raw = DATASETS.get(kind)(arg.strip(), resolution)

    rng = np.random.default_rng(seed)
    if raw.val_x is None:
        tr, va = stratified_split(raw.y, val_fraction, rng)
        train_x, train_y, val_x, val_y = raw.x[tr], raw.y[tr], raw.x[va], raw.y[va]
    else:
        train_x, train_y, val_x, val_y = raw.x, raw.y, raw.val_x, raw.val_y
    if limit is not None and limit < len(train_y):
        keep = stratified_subset(train_y, limit, rng)
        train_x, train_y = train_x[keep], train_y[keep]
    if len(np.unique(train_y)) < 2:
        raise UsageError(f"dataset {spec!r}: the train split has fewer than 2 classes")
    if len(val_y) == 0:
        raise UsageError(f"dataset {spec!r}: the val split is empty")

    train_x = _as_float(train_x, resolution)
    val_x = _as_float(val_x, resolution)
    mean = train_x.mean(axis=(0, 2, 3), dtype=np.float64)
    std = train_x.std(axis=(0, 2, 3), dtype=np.float64)
    std = np.where(std < 1e-8, 1.0, std)
    for x in (train_x, val_x):
        x -= mean.astype(np.float32)[None, :, None, None]
        x /= std.astype(np.float32)[None, :, None, None]
    return Dataset(
        name=spec.strip(),
        train=Split(train_x, train_y.astype(np.int64)),
        val=Split(val_x, val_y.astype(np.int64)),
        num_classes=len(raw.classes),
        mean=tuple(float(v) for v in mean),
        std=tuple(float(v) for v in std),
        classes=list(raw.classes),
    )


# ---- splitting ---------------------------------------------------------------------------

def stratified_split(y: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) indices; each class with >= 2 samples puts round(fraction * n), at least
    1 and at most n - 1, into val."""
    val = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        idx = idx[rng.permutation(len(idx))]
        k = min(max(int(round(fraction * len(idx))), 1), len(idx) - 1)
        val.append(idx[:k])
    val_idx = np.sort(np.concatenate(val)) if val else np.zeros(0, np.int64)
    return np.setdiff1d(np.arange(len(y)), val_idx), val_idx


def stratified_subset(y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` indices with the class proportions of ``y`` (largest remainder), seeded."""
    classes, counts = np.unique(y, return_counts=True)
    exact = n * counts / counts.sum()
    quota = np.floor(exact).astype(int)
    order = np.argsort(-(exact - quota), kind="stable")
    quota[order[: n - quota.sum()]] += 1
    picked = []
    for c, q in zip(classes, quota):
        idx = np.flatnonzero(y == c)
        picked.append(idx[rng.permutation(len(idx))[:q]])
    return np.sort(np.concatenate(picked))


def _as_float(x: np.ndarray, resolution: int) -> np.ndarray:
    """uint8 or [0, 1] float images -> float32 NCHW at resolution x resolution (bilinear)."""
    x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
    if x.shape[-2:] == (resolution, resolution):
        return x
    import torch
    import torch.nn.functional as F

    out = np.empty((x.shape[0], x.shape[1], resolution, resolution), np.float32)
    down = resolution < max(x.shape[-2:])
    with torch.no_grad():
        for i in range(0, len(x), 512):
            out[i:i + 512] = F.interpolate(torch.from_numpy(x[i:i + 512]), size=(resolution, resolution),
                                           mode="bilinear", align_corners=False, antialias=down).numpy()
    return out


def _existing_dir(arg: str, kind: str) -> Path:
    if not arg:
        raise UsageError(f"dataset {kind!r} needs a path: '{kind}:PATH'")
    path = Path(arg).expanduser()
    if not path.exists():
        raise UsageError(f"{kind} dataset: {path} does not exist")
    if not path.is_dir():
        raise UsageError(f"{kind} dataset: {path} is not a directory")
    return path


# ---- digits ------------------------------------------------------------------------------

@DATASETS.register("digits")
def _load_digits(arg: str, resolution: int) -> _Raw:
    if arg:
        raise UsageError(f"dataset 'digits' is embedded and takes no path (got 'digits:{arg}')")
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise UsageError("the 'digits' dataset needs scikit-learn (pip install scikit-learn)") from None
    d = load_digits()
    x = np.repeat((d.images.astype(np.float32) / 16.0)[:, None], 3, axis=1)
    return _Raw(x, d.target.astype(np.int64), None, None, [str(c) for c in d.target_names])


AFFINE_TRAIN, AFFINE_VAL = 8000, 2000  # images generated per split
AFFINE_SEED = 20190601  # fixed: digits-affine is one dataset, the same for every run seed


@DATASETS.register("digits-affine")
def _load_digits_affine(arg: str, resolution: int) -> _Raw:
    """scikit-learn's digits split 80/20 (stratified, fixed seed) into source pools, then
    ``AFFINE_TRAIN`` / ``AFFINE_VAL`` images drawn from the train / val pool, each under its
    own random affine map (rotation ±15°, scale 0.8-1.2, shift ±20% of the side) plus
    Gaussian pixel noise (σ 0.2), clipped to [0, 1]. Val images come from digits the train
    split never sees. On plain ``digits`` at 32x32 every PL1A net reaches ~97% after 200
    steps, so the proxy cannot rank them; here accuracy spreads from ~0.90 to ~0.96 with
    width (benchmarks/proxy_order.py)."""
    if arg:
        raise UsageError(f"dataset 'digits-affine' is embedded and takes no path (got 'digits-affine:{arg}')")
    base = _load_digits("", resolution)
    rng = np.random.default_rng(AFFINE_SEED)
    tr, va = stratified_split(base.y, 0.2, rng)
    import torch

    gen = torch.Generator().manual_seed(AFFINE_SEED)
    x_tr, y_tr = _affine_images(base.x[tr, :1], base.y[tr], AFFINE_TRAIN, resolution, gen)
    x_va, y_va = _affine_images(base.x[va, :1], base.y[va], AFFINE_VAL, resolution, gen)
    return _Raw(x_tr, y_tr, x_va, y_va, base.classes)


def _affine_images(x: np.ndarray, y: np.ndarray, n: int, resolution: int, gen) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images drawn with replacement from ``x`` (N, 1, h, w in [0, 1]), each resized to
    ``resolution`` and moved by its own random affine map, plus noise; 3 channels, float32."""
    import torch
    import torch.nn.functional as F

    idx = torch.randint(len(x), (n,), generator=gen)
    theta = (torch.rand(n, generator=gen) * 2 - 1) * (15 * np.pi / 180)
    scale = 0.8 + 0.4 * torch.rand(n, generator=gen)
    shift = (torch.rand(n, 2, generator=gen) * 2 - 1) * 0.4  # affine_grid spans [-1, 1]: 0.4 = 20% of the side
    noise_seed = int(torch.randint(2**31 - 1, (1,), generator=gen))
    cos, sin = torch.cos(theta) / scale, torch.sin(theta) / scale
    maps = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    out = np.empty((n, 3, resolution, resolution), np.float32)
    noise_gen = torch.Generator().manual_seed(noise_seed)
    with torch.no_grad():
        for i in range(0, n, 1024):
            src = torch.from_numpy(x[idx[i:i + 1024].numpy()])
            src = F.interpolate(src, size=(resolution, resolution), mode="bilinear", align_corners=False)
            grid = F.affine_grid(maps[i:i + 1024], list(src.shape), align_corners=False)
            img = F.grid_sample(src, grid, align_corners=False, padding_mode="zeros")
            img = (img + 0.2 * torch.randn(img.shape, generator=noise_gen)).clamp_(0, 1)
            out[i:i + 1024] = img.expand(-1, 3, -1, -1).numpy()
    return out, y[idx.numpy()].astype(np.int64)


# ---- CIFAR-10 (python format) --------------------------------------------------------------

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
def _load_cifar10(arg: str, resolution: int) -> _Raw:
    root = _existing_dir(arg, "cifar10")
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
    return _Raw(x, y, val_x, val_y, classes)


# ---- image folders -------------------------------------------------------------------------

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
def _load_imagefolder(arg: str, resolution: int) -> _Raw:
    root = _existing_dir(arg, "imagefolder")
    if importlib.util.find_spec("PIL") is None:
        raise UsageError("the 'imagefolder' dataset needs Pillow (pip install pillow)")
    train_root = root / "train" if (root / "train").is_dir() else root
    classes = [p.name for p in _class_dirs(train_root)]
    if len(classes) < 2:
        raise UsageError(f"imagefolder dataset: {train_root} needs at least 2 class folders, found {len(classes)}")
    x, y = _read_tree(train_root, classes, resolution, require_all=True)
    val_root = root / "val"
    if train_root is root or not val_root.is_dir():
        return _Raw(x, y, None, None, classes)
    extra = sorted(set(p.name for p in _class_dirs(val_root)) - set(classes))
    if extra:
        raise UsageError(f"imagefolder dataset: {val_root} has class folders that train/ lacks: {', '.join(extra)}")
    val_x, val_y = _read_tree(val_root, classes, resolution, require_all=False)
    return _Raw(x, y, val_x, val_y, classes)
