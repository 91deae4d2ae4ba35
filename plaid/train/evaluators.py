"""What the search engine calls as ``accuracy(arch) -> float`` (top-1 in [0, 1], higher is
better). Evaluators register by name; ``make_evaluator("proxy" | "command" | "table", space, ...)``
builds one from its options, ``evaluator_for_search(cfg, space, run)`` the one a search config names.

- ``proxy``: the built-in trainer (:mod:`plaid.train.proxy`) on a loaded dataset; for a
  segmentation space the search's ``proxy`` is ``segproxy``;
- ``segproxy``: decoders of a segmentation space trained on the features of its frozen
  backbone (:mod:`plaid.train.segproxy`); the accuracy is the val mIoU;
- ``command``: the user's own training, e.g. ``python train.py --arch {arch} --out {out}``,
  which writes ``{"accuracy": 0.71}`` (or ``"top1"``) as JSON to ``{out}``; running it is
  :mod:`plaid.train.command`;
- ``table``: accuracies already known (CSV ``arch,accuracy`` or JSON), for benchmarking; the
  file is read by :mod:`plaid.train.tables`.

``evaluator(arch, seed=k)`` trains again with seed offset ``k`` (the search's repeats, which
measure the seed noise): the proxy with ``cfg.seed + k``, the command with ``{seed}`` and
``PLAID_SEED`` set to its base seed + k. A table has one accuracy per net and takes no seed.

This module does not import torch; the proxy trainer imports it when it first trains.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
import inspect
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from plaid.errors import PlaidError, UsageError
from plaid.registry import Registry
from plaid.train import command, tables

if TYPE_CHECKING:
    from plaid.train.datasets import Dataset
    from plaid.train.proxy import ProxyConfig

EVALUATORS: Registry[type["Evaluator"]] = Registry("evaluator")


def register_evaluator(name: str):
    """Class decorator: ``@register_evaluator("proxy")`` makes ``make_evaluator("proxy", ...)`` build it."""
    return EVALUATORS.named(name)


def make_evaluator(kind: str, space, **kw: Any) -> "Evaluator":
    """Build the evaluator registered as ``kind`` for ``space``; options go to its constructor."""
    cls = EVALUATORS.get(kind)
    try:
        inspect.signature(cls).bind(space, **kw)
    except TypeError as exc:
        raise UsageError(f"evaluator {kind!r}: {exc}") from None
    return cls(space, **kw)


def evaluator_for_search(cfg, space, run: Path, log: Callable[[str], None] | None = None) -> "Evaluator":
    """The evaluator a search config names (``cfg.evaluator``), with its options taken from
    the config (plaid.search.run.SearchConfig) and its files kept in the run folder ``run``."""
    return EVALUATORS.get(cfg.evaluator).for_search(cfg, space, Path(run), log)


def arch_sha1(key: str) -> str:
    return hashlib.sha1(key.encode("utf-8")).hexdigest()


class Evaluator(ABC):
    """``evaluator(arch) -> top-1 in [0, 1]``; ``arch`` is a value of the space or its string."""

    name: str = ""

    def __init__(self, space) -> None:
        self.space = space

    @classmethod
    def for_search(cls, cfg, space, run: Path, log: Callable[[str], None] | None) -> "Evaluator":
        """Built from a search config and its run folder (see :func:`evaluator_for_search`)."""
        raise UsageError(f"evaluator {cls.name!r} cannot be built from a search config")

    def key(self, arch: Any) -> str:
        """The canonical arch string (equivalent spellings give the same key)."""
        if isinstance(arch, str):
            arch = self.space.decode(arch)
        return self.space.encode(arch)

    @abstractmethod
    def __call__(self, arch: Any) -> float:
        """The top-1 of ``arch`` in [0, 1]."""

    def describe(self) -> dict[str, Any]:
        """JSON-able config written to the run folder."""
        return {"kind": self.name, "space": getattr(self.space, "name", "")}


def _check_accuracy(value: Any, where: str, error: type[PlaidError]) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise error(f"{where}: accuracy must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise error(f"{where}: accuracy is {value}, not a finite number")
    if not 0.0 <= value <= 1.0:
        raise error(f"{where}: accuracy {value} is outside [0, 1] (a percentage? give top-1 as a fraction)")
    return value


# ---- built-in proxy trainer -------------------------------------------------------------------

@register_evaluator("proxy")
class ProxyEvaluator(Evaluator):
    """Train each arch with the built-in proxy trainer; cached in memory by arch string.
    ``log`` is an optional ``callable(str)`` that gets one line per trained arch."""

    def __init__(self, space, dataset: "Dataset", cfg: "ProxyConfig", checkpoint_dir: Path | None = None,
                 log: Callable[[str], None] | None = None,
                 progress: Callable[[int, int, float], None] | None = None) -> None:
        super().__init__(space)
        if getattr(space, "task", "classification") != "classification":
            raise UsageError(f"the proxy trainer trains classification spaces; {space.name!r} is {space.task} "
                             f"(the segmentation proxy is the 'segproxy' evaluator, which plaid search picks for it)")
        if dataset.resolution != cfg.resolution:
            raise UsageError(f"dataset {dataset.name!r} is at resolution {dataset.resolution}, the proxy config "
                             f"asks for {cfg.resolution}")
        self.dataset, self.cfg = dataset, cfg
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.log, self.progress = log, progress
        self.results: dict[str, dict[str, Any]] = {}  # arch string -> trainer result
        self.repeats: dict[tuple[str, int], dict[str, Any]] = {}  # (arch string, seed offset) -> result

    @classmethod
    def for_search(cls, cfg, space, run: Path, log: Callable[[str], None] | None) -> "Evaluator":
        """The proxy of the space's task: this trainer for classification, the segmentation
        proxy (:class:`SegProxyEvaluator`) for a decoder space."""
        from plaid.train.datasets import load_dataset
        from plaid.train.proxy import ProxyConfig

        if getattr(space, "task", "classification") == "segmentation":
            return SegProxyEvaluator.for_search(cfg, space, run, log)
        dataset = load_dataset(dataset_for(cfg.dataset, space), cfg.proxy_resolution, seed=cfg.seed,
                               limit=cfg.train_limit)
        proxy = ProxyConfig(epochs=cfg.epochs, resolution=cfg.proxy_resolution, seed=cfg.seed, device=cfg.device,
                            stem_unstride=cfg.proxy_unstride, lr=cfg.proxy_lr)
        return make_evaluator(cls.name, space, dataset=dataset, cfg=proxy, checkpoint_dir=run / "checkpoints",
                              log=log)

    def checkpoint_path(self, key: str) -> Path | None:
        return None if self.checkpoint_dir is None else self.checkpoint_dir / f"{arch_sha1(key)}.pt"

    def __call__(self, arch: Any, seed: int = 0) -> float:
        """Top-1 of ``arch`` trained with seed ``cfg.seed + seed``; only the seed-0
        training keeps its weights (the checkpoint a front entry points to)."""
        key = self.key(arch)
        cache = self.results if not seed else self.repeats
        slot = key if not seed else (key, seed)
        if slot in cache:
            return cache[slot]["top1"]
        import dataclasses

        import torch

        from plaid.train.provenance import proxy_made
        from plaid.train.proxy import save_checkpoint, train_and_evaluate

        cfg = dataclasses.replace(self.cfg, seed=self.cfg.seed + seed) if seed else self.cfg
        value = self.space.decode(arch) if isinstance(arch, str) else arch
        torch.manual_seed(cfg.seed)  # the same initial weights for the same arch and seed
        model = self.space.build(value, num_classes=self.dataset.num_classes)
        result = train_and_evaluate(model, self.dataset, cfg, progress=self.progress)
        path = self.checkpoint_path(key) if not seed else None
        if path is not None:
            save_checkpoint(model, path, record=proxy_made(key, self.dataset, cfg, result))
            result["checkpoint"] = str(path)
        cache[slot] = result
        if self.log is not None:
            again = f" (seed {cfg.seed})" if seed else ""
            self.log(f"{key}{again}: top-1 {result['top1']:.4f}, loss {result['loss']:.4f}, "
                     f"{result['train_seconds']:.1f} s, {result['params'] / 1e6:.3f} M params")
        return result["top1"]

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "dataset": self.dataset.describe(), "config": self.cfg.to_dict(),
                "checkpoint_dir": None if self.checkpoint_dir is None else str(self.checkpoint_dir)}


# ---- the segmentation proxy --------------------------------------------------------------------

DEFAULT_DATASETS = {"classification": "digits-affine", "segmentation": "digits-seg"}


def dataset_for(spec: str, space) -> str:
    """The dataset a search of ``space`` trains on: ``spec``, or the embedded default of the
    space's task when ``spec`` is empty; a dataset of the other task is one UsageError line."""
    from plaid.train.datasets import DATASETS, SEG_DATASETS

    task = getattr(space, "task", "classification")
    spec = (spec or "").strip() or DEFAULT_DATASETS.get(task, "")
    kind = spec.partition(":")[0]
    if task == "segmentation" and kind in DATASETS:
        raise UsageError(f"dataset {spec!r} is a classification dataset and space {space.name!r} is a segmentation "
                         f"space (give digits-seg, cityscapes:PATH or segfolder:PATH, or leave --dataset out "
                         f"for digits-seg)")
    if task == "classification" and kind in SEG_DATASETS:
        raise UsageError(f"dataset {spec!r} is a segmentation dataset and space {space.name!r} is a classification "
                         f"space (give digits-affine, digits, cifar10:PATH or imagefolder:PATH, or leave --dataset "
                         f"out for digits-affine)")
    return spec


@register_evaluator("segproxy")
class SegProxyEvaluator(Evaluator):
    """Train each decoder of a segmentation space with the segmentation proxy
    (:mod:`plaid.train.segproxy`) on the cached features of the space's fixed backbone; the
    accuracy is the val mIoU in [0, 1]. The backbone's weights are the file ``backbone``
    (a user's checkpoint, or the classification proxy's cached one), checked when the
    evaluator is built. The features are computed on the first training (and not shipped
    when the evaluator travels to another process). Each training's per-class IoU goes to
    ``results_dir/<sha1 of the arch>.json`` (``-seed<k>`` for a repeat), the seed-0 weights
    of the whole net to ``checkpoint_dir``."""

    metric = "mIoU"

    def __init__(self, space, dataset, cfg, backbone: Path, checkpoint_dir: Path | None = None,
                 results_dir: Path | None = None, log: Callable[[str], None] | None = None,
                 progress: Callable[[int, int, float], None] | None = None) -> None:
        super().__init__(space)
        if getattr(space, "task", "classification") != "segmentation":
            raise UsageError(f"the segmentation proxy trains decoder spaces; {space.name!r} is "
                             f"{getattr(space, 'task', 'classification')} (use the 'proxy' evaluator)")
        if getattr(dataset, "ignore_index", None) is None:
            raise UsageError(f"dataset {dataset.name!r} is not a segmentation dataset (no per-pixel masks)")
        if tuple(dataset.resolution) != (cfg.resolution, cfg.resolution):
            raise UsageError(f"dataset {dataset.name!r} is at {dataset.resolution[0]}x{dataset.resolution[1]}, the "
                             f"segmentation proxy config asks for {cfg.resolution}x{cfg.resolution}")
        from plaid.fsio import file_digest
        from plaid.train.segproxy import load_backbone

        self.dataset, self.cfg, self.backbone = dataset, cfg, Path(backbone)
        probe = space.build(space.decode(self._any_arch()), num_classes=dataset.num_classes).backbone
        load_backbone(probe, self.backbone, space.backbone)  # a wrong file fails here, before any run folder
        self.backbone_state = probe.state_dict()
        self.backbone_sha256 = file_digest(self.backbone)
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.results_dir = Path(results_dir) if results_dir is not None else None
        self.log, self.progress = log, progress
        self.results: dict[str, dict[str, Any]] = {}
        self.repeats: dict[tuple[str, int], dict[str, Any]] = {}
        self._features = None

    def _any_arch(self) -> str:
        return self.space.encode(next(iter(self.space.enumerate())))

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_features"] = None  # hundreds of MB; the other process computes its own
        return state

    @classmethod
    def for_search(cls, cfg, space, run: Path, log: Callable[[str], None] | None) -> "Evaluator":
        from plaid.train.datasets import load_seg_dataset
        from plaid.train.proxy import ProxyConfig
        from plaid.train.segproxy import SegProxyConfig, cached_backbone

        spec = dataset_for(cfg.dataset, space)
        checkpoint = getattr(cfg, "backbone_checkpoint", "")
        # a cached backbone was trained with its stem's last strides at 1 (the classification
        # proxy's stem_unstride) and extracts features so; a user's checkpoint runs as built
        seg = SegProxyConfig(resolution=getattr(cfg, "seg_resolution", SegProxyConfig.resolution), seed=cfg.seed,
                             device=cfg.device, backbone_unstride=0 if checkpoint else cfg.proxy_unstride)
        dataset = load_seg_dataset(spec, seg.resolution, seed=cfg.seed, limit=cfg.train_limit)
        if checkpoint:
            backbone = Path(checkpoint)
        else:
            proxy = ProxyConfig(epochs=cfg.epochs, resolution=cfg.proxy_resolution, seed=cfg.seed, device=cfg.device,
                                stem_unstride=cfg.proxy_unstride, lr=cfg.proxy_lr)
            backbone = cached_backbone(space.backbone_space, space.backbone, proxy, log=log)
        return make_evaluator(cls.name, space, dataset=dataset, cfg=seg, backbone=backbone,
                              checkpoint_dir=run / "checkpoints", results_dir=run / "segmentation", log=log)

    def checkpoint_path(self, key: str) -> Path | None:
        return None if self.checkpoint_dir is None else self.checkpoint_dir / f"{arch_sha1(key)}.pt"

    def iou_path(self, key: str, seed: int = 0) -> Path | None:
        """Where the per-class IoU of ``key``'s training (seed offset ``seed``) is written."""
        if self.results_dir is None:
            return None
        return self.results_dir / (arch_sha1(key) + (f"-seed{self.cfg.seed + seed}" if seed else "") + ".json")

    def features(self):
        """The backbone's feature maps of every image (computed on the first call)."""
        if self._features is None:
            import torch

            from plaid.train.segproxy import extract_features

            torch.manual_seed(self.cfg.seed)
            net = self.space.build(self.space.decode(self._any_arch()), num_classes=self.dataset.num_classes)
            net.backbone.load_state_dict(self.backbone_state)
            self._features = extract_features(net.backbone, self.dataset, self.cfg)
        return self._features

    def __call__(self, arch: Any, seed: int = 0) -> float:
        """Val mIoU of ``arch``'s decoder trained with seed ``cfg.seed + seed``."""
        key = self.key(arch)
        cache = self.results if not seed else self.repeats
        slot = key if not seed else (key, seed)
        if slot in cache:
            return cache[slot]["miou"]
        import dataclasses

        import torch

        from plaid.train.segproxy import save_seg_checkpoint, train_decoder, write_iou

        cfg = dataclasses.replace(self.cfg, seed=self.cfg.seed + seed) if seed else self.cfg
        value = self.space.decode(arch) if isinstance(arch, str) else arch
        feats = self.features()
        torch.manual_seed(cfg.seed)  # the same initial weights for the same arch and seed
        model = self.space.build(value, num_classes=self.dataset.num_classes)
        model.backbone.load_state_dict(self.backbone_state)
        result = train_decoder(model, feats, cfg, self.dataset.num_classes, self.dataset.ignore_index,
                               progress=self.progress)
        iou_path = self.iou_path(key, seed)
        if iou_path is not None:
            result["iou_file"] = str(write_iou(iou_path, key, self.dataset, cfg, result))
        path = self.checkpoint_path(key) if not seed else None
        if path is not None:
            save_seg_checkpoint(model, path, key, self.dataset, cfg, result)
            result["checkpoint"] = str(path)
        cache[slot] = result
        if self.log is not None:
            again = f" (seed {cfg.seed})" if seed else ""
            self.log(f"{key}{again}: mIoU {result['miou']:.4f}, pixel accuracy {result['pixel_accuracy']:.4f}, "
                     f"loss {result['loss']:.4f}, {result['train_seconds']:.1f} s, "
                     f"{result['params'] / 1e6:.3f} M decoder params")
        return result["miou"]

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "metric": self.metric, "dataset": self.dataset.describe(),
                "config": self.cfg.to_dict(), "backbone": {"path": str(self.backbone), "sha256": self.backbone_sha256,
                                                           "arch": self.space.backbone},
                "checkpoint_dir": None if self.checkpoint_dir is None else str(self.checkpoint_dir),
                "results_dir": None if self.results_dir is None else str(self.results_dir)}


# ---- the user's own training command ------------------------------------------------------------

@register_evaluator("command")
class CommandEvaluator(Evaluator):
    """Run the user's training command (:mod:`plaid.train.command`): ``template`` with
    ``{arch}`` (the arch string), ``{out}`` (a fresh JSON path in ``workdir``) and, where
    written, ``{seed}`` (``seed`` + the call's seed offset) substituted, each value
    shell-quoted, then split into an argv (no shell); the seed is also in the environment as
    ``PLAID_SEED``. The command writes JSON with a numeric ``accuracy`` (or ``top1``) key to
    ``{out}``; its stdout and stderr are kept beside it (``<out>.stdout``, ``<out>.stderr``)."""

    def __init__(self, space, template: str, workdir: Path, timeout: float | None = None, seed: int = 0) -> None:
        super().__init__(space)
        command.check_template(template)
        if timeout is not None and not timeout > 0:
            raise UsageError(f"command timeout must be positive, got {timeout!r}")
        self.template, self.timeout, self.seed = template, timeout, int(seed)
        self.workdir = Path(workdir)
        self.results: dict[str, float] = {}
        self.repeats: dict[tuple[str, int], float] = {}  # (arch string, seed offset) -> accuracy

    @classmethod
    def for_search(cls, cfg, space, run: Path, log: Callable[[str], None] | None) -> "Evaluator":
        return make_evaluator(cls.name, space, template=cfg.train_cmd, workdir=run / "train", seed=cfg.seed)

    def __call__(self, arch: Any, seed: int = 0) -> float:
        key = self.key(arch)
        cache = self.results if not seed else self.repeats
        slot = key if not seed else (key, seed)
        if slot in cache:
            return cache[slot]
        where = f"training command for {key!r}" + (f" (seed {self.seed + seed})" if seed else "")
        value = command.run(self.template, key, self.seed + seed, self.workdir, arch_sha1(key)[:16],
                            self.timeout, where)
        cache[slot] = _check_accuracy(value, where, PlaidError)
        return cache[slot]

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "template": self.template, "workdir": str(self.workdir),
                "timeout": self.timeout}


# ---- accuracies from a file -----------------------------------------------------------------

@register_evaluator("table")
class TableEvaluator(Evaluator):
    """Accuracies from a CSV (header with ``arch`` and ``accuracy`` columns) or JSON
    (``{"arch": acc}`` or ``[{"arch": ..., "accuracy": ...}]``) file, read by
    :mod:`plaid.train.tables`; arch strings are re-keyed through the space so equivalent
    spellings match."""

    def __init__(self, space, path: Path) -> None:
        super().__init__(space)
        self.path = Path(path)
        self.table: dict[str, float] = {}
        for where, arch, acc in tables.read_rows(self.path):
            where = f"accuracy table {self.path} {where}"
            if not isinstance(arch, str):
                raise UsageError(f"{where}: arch must be a string, got {arch!r}")
            try:
                key = self.key(arch)
            except UsageError as exc:
                raise UsageError(f"{where}: {exc}") from None
            if isinstance(acc, str):
                try:
                    acc = float(acc)
                except ValueError:
                    raise UsageError(f"{where}: accuracy {acc!r} is not a number") from None
            acc = _check_accuracy(acc, where, UsageError)
            if key in self.table and self.table[key] != acc:
                raise UsageError(f"{where}: {key!r} appears twice with different accuracies "
                                 f"({self.table[key]} and {acc})")
            self.table[key] = acc
        if not self.table:
            raise UsageError(f"accuracy table {self.path} has no entries")

    @classmethod
    def for_search(cls, cfg, space, run: Path, log: Callable[[str], None] | None) -> "Evaluator":
        return make_evaluator(cls.name, space, path=Path(cfg.accuracy_table))

    def __call__(self, arch: Any) -> float:
        key = self.key(arch)
        try:
            return self.table[key]
        except KeyError:
            raise PlaidError(f"arch {key!r} is not in the accuracy table {self.path} "
                             f"({len(self.table)} entries)") from None

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "path": str(self.path), "entries": len(self.table)}
