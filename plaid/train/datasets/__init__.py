"""Proxy datasets as normalised NCHW float32 arrays.

``load_dataset(spec, resolution)`` where ``spec`` is one of (registered by name):

- ``digits``: scikit-learn's 8x8 digits (ship inside scikit-learn, no download), grey -> 3
  channels, resized bilinearly; stratified, seeded train/val split;
- ``digits-affine`` (the embedded default): a harder, larger set made from the same digits
  (see :mod:`.digits`), on which small nets do not saturate;
- ``cifar10:PATH``: the CIFAR-10 python format (``data_batch_*``, ``test_batch``,
  ``batches.meta``); these are pickles, read with an unpickler that refuses every global
  except the three numpy ones an array needs;
- ``imagefolder:PATH``: ``PATH/train/<class>/*.png|jpg|jpeg`` and ``PATH/val/<class>/...``;
  without ``val/`` the class folders (under ``train/`` or ``PATH`` itself) are split.

Images are kept as uint8 until the split and the ``limit`` subset are taken, then converted,
resized and normalised with the per-channel mean/std of the train split. Everything is held
in memory: this is for proxy training, not full-scale ImageNet.

One module per idea: :mod:`.base` (the values and the loader registry), :mod:`.pipeline`
(``load_dataset``: split, subset, resize, normalise), :mod:`.splits` (stratified split and
subset), and one module per loader, :mod:`.digits`, :mod:`.cifar` (with its restricted
unpickler) and :mod:`.imagefolder`, each registering itself when this package is imported.

Segmentation data (images with per-pixel class ids, 255 ignored) have a registry of their
own, ``SEG_DATASETS``, and ``load_seg_dataset(spec, resolution)`` -> :class:`SegDataset`:
``digits-seg`` (the embedded default: scenes of scikit-learn's handwritten digits on a
canvas, 11 classes), ``cityscapes:PATH`` (standard layout, the 19 train ids) and
``segfolder:PATH`` (``images/`` + ``masks/``); see :mod:`.segmentation`.
"""

from plaid.train.datasets.base import DATASETS, Dataset, Raw, Split, dataset_names
from plaid.train.datasets.pipeline import load_dataset
from plaid.train.datasets.splits import stratified_split, stratified_subset

# each loader registers itself when imported, in the order the registry (and the CLI) lists them
from plaid.train.datasets import digits, cifar, imagefolder  # noqa: F401  isort: skip
from plaid.train.datasets.digits import AFFINE_TRAIN, AFFINE_VAL
from plaid.train.datasets.segmentation import (IGNORE, SEG_DATASETS, SegDataset, SegSplit, load_seg_dataset,
                                               seg_dataset_names)
from plaid.train.datasets import digits_seg, cityscapes, segfolder  # noqa: F401  isort: skip

__all__ = ["AFFINE_TRAIN", "AFFINE_VAL", "DATASETS", "Dataset", "IGNORE", "Raw", "SEG_DATASETS", "SegDataset",
           "SegSplit", "Split", "dataset_names", "load_dataset", "load_seg_dataset", "seg_dataset_names",
           "stratified_split", "stratified_subset"]
