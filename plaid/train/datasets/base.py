"""The values a dataset is made of, and the registry of loaders.

A loader is registered by name (``@DATASETS.register("cifar10")``) as a function
``(arg, resolution) -> Raw``: ``arg`` is what follows the ``:`` of the spec (``""`` for
none); the images it returns may be of any size (the pipeline resizes them)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from plaid.errors import UsageError
from plaid.registry import Registry


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
class Raw:
    """What a loader returns: images (uint8 or float32 in [0, 1]), NCHW, any size."""

    x: np.ndarray
    y: np.ndarray
    val_x: np.ndarray | None  # None: split x/y by val_fraction
    val_y: np.ndarray | None
    classes: list[str]


DATASETS: Registry[Callable[[str, int], Raw]] = Registry("dataset")


def dataset_names() -> list[str]:
    return DATASETS.names()


def existing_dir(arg: str, kind: str) -> Path:
    """The folder a ``kind:PATH`` spec names; a one-line :class:`UsageError` if it is not one."""
    if not arg:
        raise UsageError(f"dataset {kind!r} needs a path: '{kind}:PATH'")
    path = Path(arg).expanduser()
    if not path.exists():
        raise UsageError(f"{kind} dataset: {path} does not exist")
    if not path.is_dir():
        raise UsageError(f"{kind} dataset: {path} is not a directory")
    return path
