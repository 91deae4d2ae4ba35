"""The built-in proxy trainer: a short, seeded SGD run whose val top-1 ranks architectures.

SGD with momentum (no Nesterov), weight decay 1e-4 (the POP authors' advice), a cosine
learning-rate schedule over all steps, cross-entropy. Seeds are fixed (``torch.manual_seed``
and a ``torch.Generator`` for the shuffling) and cuDNN is held to deterministic kernels while
training, so the same model, data and config give the same top-1 on the same machine.
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
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 1e-4
    resolution: int = 32
    seed: int = 0
    device: str = "cpu"
    threads: int | None = None

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "resolution"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UsageError(f"proxy config: {name} must be a positive integer, got {value!r}")
        if self.threads is not None and (isinstance(self.threads, bool) or not isinstance(self.threads, int)
                                         or self.threads < 1):
            raise UsageError(f"proxy config: threads must be a positive integer, got {self.threads!r}")
        for name in ("lr", "momentum", "weight_decay"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
                raise UsageError(f"proxy config: {name} must be a non-negative number, got {value!r}")
        if self.lr == 0:
            raise UsageError("proxy config: lr must be positive")

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


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
    """Train ``model`` on ``dataset.train`` for ``cfg.epochs`` and measure top-1 on
    ``dataset.val``. Returns {"top1", "loss" (last epoch's mean train loss), "val_loss",
    "epochs", "train_seconds", "params", "diverged"}."""
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
    try:
        torch.manual_seed(cfg.seed)
        gen = torch.Generator().manual_seed(cfg.seed)
        model = model.to(device)
        x_train = torch.from_numpy(dataset.train.x).to(device)
        y_train = torch.from_numpy(dataset.train.y).to(device)
        n = len(y_train)
        # a trailing batch of one sample would break BatchNorm in train mode: drop it
        per_epoch = n // cfg.batch_size + (1 if n % cfg.batch_size >= 2 else 0)
        if per_epoch == 0:
            raise UsageError(f"dataset {dataset.name!r}: too few training samples ({n})")
        opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                              weight_decay=cfg.weight_decay, nesterov=False)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs * per_epoch)
        start = time.perf_counter()
        epoch_loss, diverged, epochs_done = float("nan"), False, 0
        for epoch in range(cfg.epochs):
            model.train()
            order = torch.randperm(n, generator=gen).to(device)
            total, seen = 0.0, 0
            for b in range(per_epoch):
                idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
                logits = model(x_train[idx])
                if logits.ndim != 2:
                    raise UsageError(f"the proxy trainer needs classification logits (N, classes), the model "
                                     f"gives shape {tuple(logits.shape)}")
                loss = F.cross_entropy(logits, y_train[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total += float(loss.detach()) * len(idx)
                seen += len(idx)
            epoch_loss, epochs_done = total / seen, epoch + 1
            if progress is not None:
                progress(epoch + 1, cfg.epochs, epoch_loss)
            if not math.isfinite(epoch_loss):
                diverged = True
                break
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        train_seconds = time.perf_counter() - start
        top1, val_loss = _evaluate(model, dataset, device, max(cfg.batch_size, 256))
    finally:
        if cfg.threads is not None:
            torch.set_num_threads(old_threads)
        cudnn.deterministic, cudnn.benchmark = old_cudnn
    return {"top1": top1, "loss": epoch_loss, "val_loss": val_loss, "epochs": epochs_done,
            "train_seconds": train_seconds, "params": sum(p.numel() for p in model.parameters()),
            "diverged": diverged}


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


def save_checkpoint(model, path: Path | str) -> Path:
    """Write ``model``'s state_dict (CPU tensors) with ``torch.save``, atomically; load it
    back with ``torch.load(path, weights_only=True)``."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path
