"""The built-in proxy trainer: a short, seeded SGD run whose val top-1 ranks architectures.

POP prunes on a ≼ b ⇒ Acc(a) ≤ Acc(b), so the proxy must not under-train big nets. The
same step budget for every net (``epochs`` passes, at least ``min_steps`` = 200; on the
embedded ``digits-affine`` 3 epochs are 375 steps), SGD with weight decay 1e-4 (the POP
authors' advice), a linear warm-up over the first 20% of the steps then cosine to 0,
cross-entropy, and BN statistics re-estimated under the final weights (on 2,048 train
images) before validating.

The settings were measured, not guessed (benchmarks/proxy_order.py and the grid in
benchmarks/README.md). At 32x32 the PL1A and DF stems leave stage 3 a 1x1 map (stage 1
4x4, stage 2 2x2): depth there is a pointwise MLP that cannot help and costs optimisation,
so the proxy runs the last stride-2 convolution of the stem at stride 1 (``stem_unstride``
= 1; the weights are the same, the checkpoint is the net as built): stage 3 gets a 2x2 map.
On the embedded default (pl1a, digits-affine, 20 comparable pairs, seed noise 1.3 points)
that, with lr 0.8, took the share of pairs in order from 60% to 95% (strict: 35% to 55%)
and Kendall's tau against a 4x longer training from 0.19 to 0.37, at about 1.3x the
seconds per training. A 28-unit narrow net (24x8-48x12-96x8) reached 0.61-0.69 with the
stem as built whatever the optimiser did, 0.92 with one stride at 1 (the 3-unit 24x1-48x1-96x1:
0.95). Momentum 0.5 with a large lr trains deep nets best of what was tried (momentum
0/0.5/0.9, lr 0.01-1.6, warm-up 0-0.4, batch 64-256, gradient clipping, LARS-style
layer-wise steps, AdamW, Kaiming init, small-γ branch init, label smoothing); depth still
costs a little accuracy that width does not, which is what the search's margin and audit
are there for. Two strides at 1 (stage 3 at 4x4) spread nets further apart (24x1-48x1-96x1
0.92, 48x4-96x8-192x4 0.97) but cost ~2.5x per training. Shift augmentation, label smoothing and zero-init of residual branches are
options, off by default (compare them with ``benchmarks/proxy_order.py --set``). Seeds are fixed
(``torch.manual_seed`` and a ``torch.Generator`` for the shuffling, shifts and the BN
sample) and cuDNN is held to deterministic kernels while training, so the same model, data
and config give the same top-1 on the same machine.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable

from plaid.errors import UsageError
from plaid.fsio import atomic_path
from plaid.train.datasets import Dataset

Progress = Callable[[int, int, float], None]  # (epoch, epochs, mean train loss)


@dataclass(frozen=True)
class ProxyConfig:
    epochs: int = 3
    steps: int | None = None  # exact optimizer steps; None: epochs x batches per epoch, at least min_steps
    min_steps: int = 200  # floor of the epoch-derived budget, so that a small dataset does not under-train
    batch_size: int = 64
    lr: float = 0.8
    momentum: float = 0.5
    weight_decay: float = 1e-4
    warmup: float = 0.2  # share of the steps with a linear LR warm-up
    label_smoothing: float = 0.0
    shift: int = 0  # random translation of each training image by up to this many pixels
    zero_init_residual: bool = False  # zero the last BN of each residual block (DF/ResNet)
    bn_recalibrate: bool = True  # re-estimate BN statistics on the train split before validating
    recalibrate_samples: int = 2048  # ... on this many train images (a seeded sample), 0: all
    resolution: int = 32
    # the last N stride-2 convolutions of the net's stem run at stride 1 while the proxy trains and
    # validates (the weights are the same; the checkpoint is the net as the space builds it), so a
    # small proxy input leaves the stages a map to work on: at 32x32 the PL1A/DF stems leave
    # stage 3 a 1x1 map, where depth cannot help
    stem_unstride: int = 1
    seed: int = 0
    device: str = "cpu"
    # intra-op threads; 1 by default: the proxy's tiny nets gain little from more, and lose ~10x
    # when another process holds a core (threads spin-waiting for each other). None: torch's own.
    threads: int | None = 1

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "resolution"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UsageError(f"proxy config: {name} must be a positive integer, got {value!r}")
        for name in ("threads", "steps"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise UsageError(f"proxy config: {name} must be a positive integer, got {value!r}")
        for name in ("shift", "min_steps", "recalibrate_samples", "stem_unstride"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise UsageError(f"proxy config: {name} must be a non-negative integer, got {value!r}")
        for name in ("lr", "momentum", "weight_decay", "warmup", "label_smoothing"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
                raise UsageError(f"proxy config: {name} must be a non-negative number, got {value!r}")
        if self.lr == 0:
            raise UsageError("proxy config: lr must be positive")
        for name in ("warmup", "label_smoothing"):
            if getattr(self, name) >= 1:
                raise UsageError(f"proxy config: {name} must be below 1, got {getattr(self, name)!r}")

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def batches_per_epoch(self, n_train: int) -> int:
        """Batches in one pass over ``n_train`` samples; a trailing batch of one sample would
        break BatchNorm in train mode, so it is dropped."""
        return n_train // self.batch_size + (1 if n_train % self.batch_size >= 2 else 0)

    def step_budget(self, n_train: int) -> int:
        """Optimizer steps on a train split of ``n_train`` samples: ``steps`` if set, else
        ``epochs`` passes but never fewer than ``min_steps``. Every net gets the same budget."""
        if self.steps is not None:
            return self.steps
        return max(self.epochs * self.batches_per_epoch(n_train), self.min_steps)


def _device(name: str):
    import torch

    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"proxy config: unknown device {name!r} (use 'cpu' or 'cuda')") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"proxy config: device {name!r} asked but CUDA is not available here (use 'cpu')")
    if device.type not in ("cpu", "cuda"):
        raise UsageError(f"proxy config: device {name!r} is not supported (use 'cpu' or 'cuda')")
    return device


def train_and_evaluate(model, dataset: Dataset, cfg: ProxyConfig, progress: Progress | None = None) -> dict[str, Any]:
    """Train ``model`` on ``dataset.train`` for ``cfg.steps`` optimizer steps (default: ``cfg.epochs``
    passes) and measure top-1 on ``dataset.val``. Returns {"top1", "loss" (last epoch's mean
    train loss), "val_loss", "epochs", "steps", "train_seconds", "params", "diverged"}."""
    import torch
    import torch.nn.functional as F

    if dataset.resolution != cfg.resolution:
        raise UsageError(f"dataset {dataset.name!r} is at resolution {dataset.resolution}, the proxy config "
                         f"asks for {cfg.resolution}")
    device = _device(cfg.device)
    old_threads = torch.get_num_threads()
    cudnn = torch.backends.cudnn
    old_cudnn = (cudnn.deterministic, cudnn.benchmark)
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    if device.type == "cuda":  # cuDNN's fastest kernels are not run-to-run deterministic
        cudnn.deterministic, cudnn.benchmark = True, False
    restride: list = []
    try:
        torch.manual_seed(cfg.seed)
        gen = torch.Generator().manual_seed(cfg.seed)
        if cfg.zero_init_residual:
            zero_init_residual(model)
        restride = unstride_stem(model, cfg.stem_unstride)
        model = model.to(device)
        x_train = torch.from_numpy(dataset.train.x).to(device)
        y_train = torch.from_numpy(dataset.train.y).to(device)
        n = len(y_train)
        per_epoch = cfg.batches_per_epoch(n)
        if per_epoch == 0:
            raise UsageError(f"dataset {dataset.name!r}: too few training samples ({n})")
        steps = cfg.step_budget(n)
        epochs = math.ceil(steps / per_epoch)
        opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                              weight_decay=cfg.weight_decay, nesterov=False)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, _schedule(steps, round(cfg.warmup * steps)))
        start = time.perf_counter()
        epoch_loss, diverged, epochs_done, step = float("nan"), False, 0, 0
        for epoch in range(epochs):
            model.train()
            order = torch.randperm(n, generator=gen).to(device)
            total, seen = 0.0, 0
            for b in range(min(per_epoch, steps - step)):
                idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
                x = x_train[idx] if cfg.shift == 0 else random_shift(x_train[idx], cfg.shift, gen)
                logits = model(x)
                if logits.ndim != 2:
                    raise UsageError(f"the proxy trainer needs classification logits (N, classes), the model "
                                     f"gives shape {tuple(logits.shape)}")
                loss = F.cross_entropy(logits, y_train[idx], label_smoothing=cfg.label_smoothing)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                step += 1
                total += float(loss.detach()) * len(idx)
                seen += len(idx)
            epoch_loss, epochs_done = total / seen, epoch + 1
            if progress is not None:
                progress(epoch + 1, epochs, epoch_loss)
            if not math.isfinite(epoch_loss):
                diverged = True
                break
        if cfg.bn_recalibrate and not diverged:
            sample = x_train
            if 0 < cfg.recalibrate_samples < n:
                sample = x_train[torch.randperm(n, generator=gen)[:cfg.recalibrate_samples].to(device)]
            recalibrate_bn(model, sample, cfg.batch_size)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        train_seconds = time.perf_counter() - start
        top1, val_loss = _evaluate(model, dataset, device, max(cfg.batch_size, 256))
    finally:
        for conv, stride in restride:
            conv.stride = stride
        if cfg.threads is not None:
            torch.set_num_threads(old_threads)
        cudnn.deterministic, cudnn.benchmark = old_cudnn
    return {"top1": top1, "loss": epoch_loss, "val_loss": val_loss, "epochs": epochs_done, "steps": step,
            "train_seconds": train_seconds, "params": sum(p.numel() for p in model.parameters()),
            "diverged": diverged, "unstrided": len(restride)}


def _schedule(steps: int, warmup: int) -> Callable[[int], float]:
    """LR factor at step ``i``: linear warm-up over ``warmup`` steps, then cosine to 0."""
    def factor(i: int) -> float:
        if i < warmup:
            return (i + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (i - warmup) / max(steps - warmup, 1)))
    return factor


def random_shift(x, pixels: int, gen):
    """Translate each image by its own (dy, dx) in [-pixels, pixels], edges replicated."""
    import torch
    import torch.nn.functional as F

    n, _, h, w = x.shape
    d = torch.randint(0, 2 * pixels + 1, (2, n), generator=gen).to(x.device)
    padded = F.pad(x, (pixels,) * 4, mode="replicate")
    rows = (d[0][:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (d[1][:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    chans = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[torch.arange(n, device=x.device)[:, None, None, None], chans, rows, cols]


def unstride_stem(model, n: int) -> list:
    """Set the last ``n`` stride-2 convolutions of ``model``'s stem (its first submodule named
    ``stem``) to stride 1; returns ``[(conv, old stride)]`` to put back. A model without a
    stem, or with fewer strided convolutions in it, gets what it has."""
    from torch import nn

    if n <= 0:
        return []
    stem = next((m for name, m in model.named_modules() if name.rsplit(".", 1)[-1] == "stem"), None)
    if stem is None:
        return []
    strided = [m for m in stem.modules() if isinstance(m, nn.Conv2d) and tuple(m.stride) == (2, 2)]
    changed = [(conv, conv.stride) for conv in strided[len(strided) - min(n, len(strided)):]]
    for conv, _ in changed:
        conv.stride = (1, 1)
    return changed


def zero_init_residual(model) -> int:
    """Zero the scale of the BN that ends each residual branch of DF/ResNet blocks, so each
    block starts as (nearly) the identity; returns how many were zeroed. ShuffleNetV2 units
    are left alone: their branch ends in BN -> ReLU, where a zero BN gets no gradient."""
    import torch

    from plaid.models.resnets import BasicBlock, Bottleneck

    count = 0
    with torch.no_grad():
        for m in model.modules():
            last = m.conv2 if isinstance(m, BasicBlock) else m.conv3 if isinstance(m, Bottleneck) else None
            if last is not None:
                last.bn.weight.zero_()
                count += 1
    return count


def recalibrate_bn(model, x, batch_size: int) -> None:
    """Replace every BN's running mean/var by their average over ``x`` under the final
    weights (a no-grad train-mode pass): the momentum averages lag behind weights that
    moved a lot in a short run, and deep nets suffer most from that lag."""
    import torch
    from torch import nn

    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    model.train()
    n = len(x)
    try:
        with torch.no_grad():
            for i in range(0, n - n % batch_size if n % batch_size < 2 else n, batch_size):
                model(x[i:i + batch_size])
    finally:
        for m, mom in zip(bns, saved):
            m.momentum = mom


def _evaluate(model, dataset: Dataset, device, batch_size: int) -> tuple[float, float]:
    import torch
    import torch.nn.functional as F

    model.eval()
    correct, loss_sum = 0, 0.0
    n = len(dataset.val)
    with torch.inference_mode():
        for i in range(0, n, batch_size):
            x = torch.from_numpy(dataset.val.x[i:i + batch_size]).to(device)
            y = torch.from_numpy(dataset.val.y[i:i + batch_size]).to(device)
            logits = model(x)
            loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
            correct += int((logits.argmax(dim=1) == y).sum())
    return correct / n, loss_sum / n


def save_checkpoint(model, path: Path | str, record: dict[str, Any] | None = None) -> Path:
    """Write ``model``'s state_dict (CPU tensors) with ``torch.save``, atomically; load it
    back with ``torch.load(path, weights_only=True)``. With ``record`` (how the weights were
    made, :func:`plaid.train.provenance.proxy_made`) the file is ``{"state_dict": ...,
    "plaid": record}``, as ``plaid train`` writes it; without, a bare state_dict."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if record is not None:
        from plaid.train.provenance import save_trained

        return save_trained(model.state_dict(), path, record)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path

