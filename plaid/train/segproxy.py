"""The segmentation proxy: a decoder trained on the features of a fixed, frozen backbone; its
val mIoU ranks decoders.

The decoder spaces (``pl1aseg``, ``dfseg``) hold the backbone fixed, so the backbone runs once:
:func:`extract_features` computes its three feature maps (strides 8/16/32 of the net as
built) for every train and val image, and :func:`train_decoder` trains the head of a
:class:`~plaid.models.seg.SegNet` on them (``SegNet.decode``): a decoder training costs the
decoder's compute only. The backbone's weights come from a checkpoint the user gives
(:func:`load_backbone`) or from the classification proxy, trained once on its embedded default
at the proxy resolution and cached under ``$PLAID_CACHE/backbones`` (:func:`cached_backbone`).

Training: AdamW (lr 0.005, weight decay 1e-4) for a fixed step budget, the same for every
decoder (200 steps of 16 images), a linear warm-up over 10% of the steps then cosine to 0,
cross-entropy with ``ignore_index`` on every second mask pixel (``loss_stride``; the score
map upsampled bilinearly to that grid: the full-size upsampling and its backward cost more
than a small decoder). The decoder's BN statistics are re-estimated under the final weights
before validating. Metric: the mIoU of a confusion matrix over every val pixel
(:func:`iou_scores`: ignored pixels left out, classes absent from both truth and prediction
left out of the mean). Seeded (``torch.manual_seed`` and a generator for the batches), so
the same decoder, features and config give the same mIoU.

Measured on digits-seg at 64x64 with the cached PL1A backbone, one thread on a shared
2-core machine: features of the 2,500 scenes in 2.5 s (215 MB); a pl1aseg decoder in 3-10
s, mIoU rising with width (all widths 16: 0.08-0.11 over two seeds, PL1A-Seg 0.27-0.28,
96-128-192-128-128-96-96: 0.49-0.52). SGD with momentum 0.9 learnt far less: in the same
200 steps of 16 (lr 0.5, 1.0) all-16/48/96 decoders reached 0.08-0.10 (AdamW: 0.08-0.53),
and with 300 steps of 32 (lr 0.05-0.5) width 96 reached 0.27-0.33. A dfseg decoder takes ~20 s: the
DF-Seg PSP fusion is a full 3x3 conv, 1024 -> 512 channels, trained with every decoder.

The backbone runs with the last ``backbone_unstride`` stride-2 convolutions of its stem at
stride 1, as the classification proxy trained it (``ProxyConfig.stem_unstride``): at the
default 64x64 the digits of ``digits-seg`` then reach the stages at the scale the backbone
learnt them, and the stride-8 map is 16x16 instead of 8x8.

This module imports torch only inside its functions.
"""

from __future__ import annotations

import json
import math
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from plaid.errors import UsageError

CLASSIFICATION_DEFAULT = "digits-affine"  # what a cached backbone is trained on


@dataclass(frozen=True)
class SegProxyConfig:
    steps: int = 200  # optimizer steps, the same for every decoder
    optimizer: str = "adam"  # adam (AdamW, decoupled weight decay) | sgd (with momentum)
    batch_size: int = 16
    lr: float = 0.005
    momentum: float = 0.9  # sgd only
    weight_decay: float = 1e-4
    warmup: float = 0.1  # share of the steps with a linear LR warm-up
    resolution: int = 64  # square input of the segmentation data
    backbone_unstride: int = 1  # stem strides at 1 while extracting features (as the backbone was trained)
    # the loss is taken on every Nth mask pixel (each axis), the scores upsampled to that size: the
    # full-size upsampling and its backward cost more than a small decoder; val uses every pixel
    loss_stride: int = 2
    recalibrate_samples: int = 512  # train images whose features re-estimate the decoder's BN (0: all)
    seed: int = 0
    device: str = "cpu"
    threads: int | None = 1

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "resolution", "loss_stride"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UsageError(f"segmentation proxy config: {name} must be a positive integer, got {value!r}")
        for name in ("backbone_unstride", "recalibrate_samples", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise UsageError(f"segmentation proxy config: {name} must be a non-negative integer, got {value!r}")
        if self.threads is not None and (isinstance(self.threads, bool) or not isinstance(self.threads, int)
                                         or self.threads < 1):
            raise UsageError(f"segmentation proxy config: threads must be a positive integer, got {self.threads!r}")
        for name in ("lr", "momentum", "weight_decay", "warmup"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise UsageError(f"segmentation proxy config: {name} must be a non-negative number, got {value!r}")
        if self.optimizer not in ("sgd", "adam"):
            raise UsageError(f"segmentation proxy config: optimizer must be 'sgd' or 'adam', got {self.optimizer!r}")
        if self.lr == 0 or self.warmup >= 1:
            raise UsageError("segmentation proxy config: lr must be positive and warmup below 1")

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# ---- the metric -------------------------------------------------------------------------------

def confusion_matrix(pred, target, num_classes: int, ignore_index: int = 255):
    """(K, K) int64 counts, rows the ground truth and columns the prediction, of the pixels
    whose ground truth is not ``ignore_index`` (torch tensors of the same shape in, a
    torch tensor out)."""
    import torch

    keep = target != ignore_index
    idx = target[keep].long() * num_classes + pred[keep].long()
    return torch.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def iou_scores(conf: np.ndarray) -> dict[str, Any]:
    """Per-class IoU = TP / (TP + FP + FN) from a confusion matrix (rows truth, columns
    prediction; ignored pixels already left out). A class absent from both the ground truth
    and the predictions has no IoU (None) and is left out of the mean; the mIoU is the mean
    over the classes that have one (0 when none has). Also the pixel accuracy (the share of
    counted pixels predicted right)."""
    conf = np.asarray(conf, dtype=np.int64)
    tp = np.diag(conf).astype(np.float64)
    union = conf.sum(axis=0) + conf.sum(axis=1) - np.diag(conf)
    iou = [float(t / u) if u > 0 else None for t, u in zip(tp, union)]
    present = [v for v in iou if v is not None]
    total = int(conf.sum())
    return {"miou": float(np.mean(present)) if present else 0.0, "iou": iou,
            "pixel_accuracy": float(tp.sum() / total) if total else 0.0, "pixels": total}


# ---- the backbone ------------------------------------------------------------------------------

def load_backbone(backbone, path: Path | str, arch: str) -> None:
    """Load the weights in ``path`` into ``backbone`` (the feature extractor of ``arch``).
    Accepted: a state_dict of the backbone, of a classifier built from ``arch`` (its
    ``backbone.*`` keys; the head is dropped), of a seg net (its ``backbone.*`` keys), or
    either wrapped as ``{"state_dict": ..., "plaid": ...}`` (what ``plaid train`` and the
    proxy write). Anything else is one :class:`UsageError` line."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"backbone checkpoint {path}: no such file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and torch errors alike: the file is not a checkpoint
        raise UsageError(f"backbone checkpoint {path} is not a torch checkpoint of tensors "
                         f"({type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in state.items()):
        raise UsageError(f"backbone checkpoint {path} holds no state_dict (a mapping of names to tensors)")
    if any(k.startswith("backbone.") for k in state):
        state = {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}
    own = backbone.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or wrong:
        parts = [f"{len(missing)} missing (e.g. {missing[0]})" if missing else "",
                 f"{len(unexpected)} unexpected (e.g. {unexpected[0]})" if unexpected else "",
                 f"{len(wrong)} of another shape (e.g. {wrong[0]}: {tuple(state[wrong[0]].shape)} here, "
                 f"{tuple(own[wrong[0]].shape)} in the backbone)" if wrong else ""]
        raise UsageError(f"backbone checkpoint {path} does not fit the backbone {arch}: "
                         + ", ".join(p for p in parts if p) + " keys")
    backbone.load_state_dict(state)


def backbone_cache_key(arch: str, proxy_cfg, dataset: str, train_limit: int | None) -> dict[str, Any]:
    """What a cached backbone depends on: its arch, the classification proxy's settings, the
    data, and the plaid version (the threads it ran on are not part of it)."""
    from plaid import __version__

    settings = {k: v for k, v in proxy_cfg.to_dict().items() if k != "threads"}
    return {"arch": arch, "proxy": settings, "dataset": dataset, "train_limit": train_limit, "plaid": __version__}


def backbone_cache_path(arch: str, proxy_cfg, dataset: str = CLASSIFICATION_DEFAULT,
                        train_limit: int | None = None) -> Path:
    """``$PLAID_CACHE/backbones/<space>-<hash of the key>.pt`` (the cache folder plaid's
    conversions use: $PLAID_CACHE, else $XDG_CACHE_HOME/plaid or ~/.cache/plaid)."""
    import hashlib

    from plaid.convert import cache_dir

    key = json.dumps(backbone_cache_key(arch, proxy_cfg, dataset, train_limit), sort_keys=True, default=str)
    digest = hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]
    return cache_dir() / "backbones" / f"{arch.split(':', 1)[0]}-{digest}.pt"


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing, links not followed): a second
    process asking for the same backbone waits for the first instead of training it again."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0), 0o666)
    except OSError as exc:
        raise UsageError(f"cannot lock {path} in the backbone cache: {exc.strerror or exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def cached_backbone(backbone_space, arch: str, proxy_cfg, dataset: str = CLASSIFICATION_DEFAULT,
                    train_limit: int | None = None, log: Callable[[str], None] | None = None) -> Path:
    """The path of ``arch``'s weights as the classification proxy (``proxy_cfg``, a
    :class:`~plaid.train.proxy.ProxyConfig`) trains them on ``dataset``: trained the first time
    and cached (written atomically, under a lock, so concurrent processes neither train it twice
    nor see half a file), read from the cache after."""
    from plaid.train import proxy
    from plaid.train.datasets import load_dataset
    from plaid.train.provenance import proxy_made

    path = backbone_cache_path(arch, proxy_cfg, dataset, train_limit)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create the backbone cache {path.parent}: {exc.strerror or exc}") from None
    with _locked(path.with_name(path.name + ".lock")):
        if path.is_file():
            return path
        import torch

        if log is not None:
            log(f"training the backbone {arch} once with the classification proxy on {dataset} "
                f"({proxy_cfg.resolution}x{proxy_cfg.resolution}); cached as {path}")
        data = load_dataset(dataset, proxy_cfg.resolution, seed=proxy_cfg.seed, limit=train_limit)
        torch.manual_seed(proxy_cfg.seed)
        model = backbone_space.build(backbone_space.decode(arch), num_classes=data.num_classes)
        result = proxy.train_and_evaluate(model, data, proxy_cfg)
        proxy.save_checkpoint(model, path, record=proxy_made(arch, data, proxy_cfg, result))
        if log is not None:
            log(f"backbone {arch}: top-1 {result['top1']:.4f} on {dataset}, {result['train_seconds']:.1f} s")
    return path


# ---- features and the decoder's training ------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Features:
    """The frozen backbone's three maps for every image of both splits, with their masks."""

    train: tuple  # (f8, f16, f32) float32 tensors, N first
    val: tuple
    y_train: Any  # (N, H, W) int64 tensor
    y_val: Any

    @property
    def nbytes(self) -> int:
        return sum(int(t.numel() * t.element_size()) for t in (*self.train, *self.val))


def extract_features(backbone, dataset, cfg: SegProxyConfig) -> Features:
    """Run ``backbone`` (eval mode, no gradients, its stem unstrided by
    ``cfg.backbone_unstride``) over ``dataset``'s train and val images once."""
    import torch

    from plaid.train.proxy import _device, unstride_stem

    device = _device(cfg.device)
    with _threads(cfg.threads):
        restride = unstride_stem(backbone, cfg.backbone_unstride)
        try:
            backbone = backbone.to(device).eval()
            splits = []
            for split in (dataset.train, dataset.val):
                outs: list[list] = [[], [], []]
                with torch.inference_mode():
                    for i in range(0, len(split), 128):
                        feats = backbone(torch.from_numpy(split.x[i:i + 128]).to(device))[-3:]
                        for out, f in zip(outs, feats):
                            out.append(f)
                splits.append(tuple(torch.cat(o).contiguous() for o in outs))
        finally:
            for conv, stride in restride:
                conv.stride = stride
    return Features(splits[0], splits[1], torch.from_numpy(dataset.train.y).to(device),
                    torch.from_numpy(dataset.val.y).to(device))


@contextmanager
def _threads(n: int | None) -> Iterator[None]:
    import torch

    old = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if n is not None:
            torch.set_num_threads(old)


def train_decoder(model, feats: Features, cfg: SegProxyConfig, num_classes: int, ignore_index: int = 255,
                  progress: Callable[[int, int, float], None] | None = None) -> dict[str, Any]:
    """Train the head of ``model`` (a SegNet; its backbone is left as it is) on ``feats`` for
    ``cfg.steps`` steps; returns {"miou", "iou" (per class, None where absent), "pixel_accuracy",
    "loss" (mean train loss of the last tenth of the steps), "val_loss", "steps",
    "train_seconds", "params" (the head's), "diverged"}."""
    import torch
    import torch.nn.functional as F

    from plaid.train.proxy import _device, _schedule

    device = _device(cfg.device)
    n = int(feats.y_train.shape[0])
    if n < 2:
        raise UsageError(f"the segmentation proxy needs at least 2 training images, got {n}")
    s = cfg.loss_stride
    y_train = feats.y_train if s == 1 else feats.y_train[:, s // 2::s, s // 2::s].contiguous()
    size = tuple(y_train.shape[-2:])
    with _threads(cfg.threads):
        torch.manual_seed(cfg.seed)
        gen = torch.Generator().manual_seed(cfg.seed)
        model = model.to(device)
        model.backbone.eval()
        params = model.head_parameters()
        trainable = [p for p in params if p.requires_grad]
        if cfg.optimizer == "adam":
            opt = torch.optim.AdamW(trainable, lr=cfg.lr, weight_decay=cfg.weight_decay)
        else:
            opt = torch.optim.SGD(trainable, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, _schedule(cfg.steps, round(cfg.warmup * cfg.steps)))
        batch = min(cfg.batch_size, n)
        start = time.perf_counter()
        tail, tail_n, diverged, order, pos, step = 0.0, 0, False, None, n, 0
        _head_mode(model, train=True)
        for step in range(1, cfg.steps + 1):
            if pos + batch > n:
                order, pos = torch.randperm(n, generator=gen).to(device), 0
            idx = order[pos:pos + batch]
            pos += batch
            logits = _scores(model, [f[idx] for f in feats.train], size)
            loss = F.cross_entropy(logits, y_train[idx], ignore_index=ignore_index)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            value = float(loss.detach())
            if not math.isfinite(value):
                diverged = True
                break
            if step > cfg.steps - max(cfg.steps // 10, 1):
                tail, tail_n = tail + value, tail_n + 1
            if progress is not None and step % max(cfg.steps // 10, 1) == 0:
                progress(step, cfg.steps, value)
        if not diverged:
            _recalibrate_head(model, feats, cfg, gen)
        train_seconds = time.perf_counter() - start
        scores, val_loss = _validate(model, feats, num_classes, ignore_index, batch=256)
    return {**scores, "loss": tail / tail_n if tail_n else float("nan"), "val_loss": val_loss, "steps": step,
            "train_seconds": train_seconds, "params": sum(p.numel() for p in params), "diverged": diverged}


def _scores(model, feats, size):
    import torch.nn.functional as F

    logits = model.decode(*feats, upsample=False)
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


def _head_mode(model, train: bool) -> None:
    """The head in train (or eval) mode; the frozen backbone stays in eval mode."""
    model.train(train)
    model.backbone.eval()


def _recalibrate_head(model, feats: Features, cfg: SegProxyConfig, gen) -> None:
    """The head's BN running statistics re-estimated under the final weights (a no-grad
    train-mode pass over a seeded sample of the train features)."""
    import torch
    from torch import nn

    inside = {id(m) for m in model.backbone.modules()}
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and id(m) not in inside]
    if not bns:
        return
    n = int(feats.y_train.shape[0])
    idx = torch.randperm(n, generator=gen)[:cfg.recalibrate_samples or n].to(feats.y_train.device)
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    _head_mode(model, train=True)
    try:
        with torch.no_grad():
            for i in range(0, len(idx), cfg.batch_size):
                part = idx[i:i + cfg.batch_size]
                if len(part) >= 2 or i == 0:
                    model.decode(*[f[part] for f in feats.train], upsample=False)
    finally:
        for m, mom in zip(bns, saved):
            m.momentum = mom


def _validate(model, feats: Features, num_classes: int, ignore_index: int, batch: int):
    import torch
    import torch.nn.functional as F

    _head_mode(model, train=False)
    conf = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=feats.y_val.device)
    loss_sum, counted = 0.0, 0
    n, size = int(feats.y_val.shape[0]), tuple(feats.y_val.shape[-2:])
    with torch.inference_mode():
        for i in range(0, n, batch):
            y = feats.y_val[i:i + batch]
            logits = _scores(model, [f[i:i + batch] for f in feats.val], size)
            loss_sum += float(F.cross_entropy(logits, y, ignore_index=ignore_index, reduction="sum"))
            counted += int((y != ignore_index).sum())
            conf += confusion_matrix(logits.argmax(dim=1), y, num_classes, ignore_index)
    return iou_scores(conf.cpu().numpy()), loss_sum / max(counted, 1)


# ---- what a training leaves in the run folder -------------------------------------------------

def seg_proxy_made(arch: str, dataset, cfg: SegProxyConfig, result: dict[str, Any]) -> dict[str, Any]:
    """The provenance record of a segmentation proxy training (cf. ``provenance.proxy_made``)."""
    from plaid import __version__

    return {"kind": "proxy", "arch": arch, "task": "segmentation", "dataset": dataset.name,
            "num_classes": int(dataset.num_classes), "classes": list(dataset.classes),
            "ignore_index": int(dataset.ignore_index), "train_samples": len(dataset.train),
            "resolution": list(dataset.resolution), "normalization": {"mean": list(dataset.mean),
                                                                      "std": list(dataset.std)},
            "steps": result.get("steps"), "miou": result.get("miou"),
            "pixel_accuracy": result.get("pixel_accuracy"), "val_loss": result.get("val_loss"),
            "stem_unstride": int(cfg.backbone_unstride), "config": cfg.to_dict(), "plaid": __version__}


def save_seg_checkpoint(model, path: Path, arch: str, dataset, cfg: SegProxyConfig, result: dict[str, Any]) -> Path:
    """The whole net (backbone + trained decoder) with its record, atomically."""
    from plaid.train.provenance import save_trained

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return save_trained(model.state_dict(), Path(path), seg_proxy_made(arch, dataset, cfg, result))


def write_iou(path: Path, arch: str, dataset, cfg: SegProxyConfig, result: dict[str, Any]) -> Path:
    """``path``: the per-class IoU of one training as JSON (None for a class absent from both
    the val masks and the predictions), with the mIoU and pixel accuracy; atomically."""
    from plaid.fsio import atomic_write_text

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"arch": arch, "seed": cfg.seed, "dataset": dataset.name, "miou": result["miou"],
           "pixel_accuracy": result["pixel_accuracy"], "val_pixels": result.get("pixels"),
           "iou": dict(zip(dataset.classes, result["iou"])), "steps": result["steps"],
           "train_seconds": round(float(result["train_seconds"]), 3), "diverged": result["diverged"]}
    atomic_write_text(path, json.dumps(doc, indent=2) + "\n")
    return path
