"""`plaid train`: full training of a front member or a zoo net, at the resolution it will be
deployed at, resumable from its own checkpoints.

The schedule is what real training looks like, built from the proxy trainer's pieces
(:mod:`plaid.train.proxy`: the random shift, BN recalibration): SGD with momentum and
weight decay 1e-4 (the POP authors' advice), a linear warm-up then cosine to 0, random
shift (a crop of the edge-padded image) as augmentation, optional label smoothing, val
top-1 after every epoch, and BN statistics re-estimated under the final weights.

An output folder holds ``config.json`` (the resolved job, written once), ``state.pt`` (the
whole training state: weights, optimiser, RNG, position in the epoch; rewritten atomically
after every epoch and every ``save_every_s`` seconds inside one), ``metrics.json``
(updated each epoch) and, at the end, ``model.pt``: the weights with the record of how they
were made (:mod:`plaid.train.provenance`), which ``plaid export`` reads. Every file goes
through :mod:`plaid.fsio`, so ``kill -9`` at any instant loses at most the work since the
last save, and the same command resumes; the RNG state is saved with the rest, so a
resumed run ends with the same weights as one never interrupted (same machine, same device).

Images are held in memory at most ``HOLD_MAX`` pixels on a side (at the training size when
it is smaller) and resized per batch to the training size: digits and CIFAR-10 have no more
detail than that, and 8,000 digits at 384x640 would need 24 GB as floats.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

from plaid.errors import PlaidError, UsageError

HOLD_MAX = 128
Progress = Callable[[str, int, int, str], None]  # (phase, done, total, label), as the CLI's bars take
Log = Callable[[str], None]


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30
    batch_size: int = 64
    # momentum 0.5 / lr 0.4, the proxy's measured settings: on digits-affine at 32x32 the
    # default search's best member (pl1a:64x2-64x9-256x5) ends 8 epochs at 0.960 with them and at
    # 0.931 with momentum 0.9 (Nesterov) / lr 0.1
    lr: float = 0.4
    momentum: float = 0.5
    weight_decay: float = 1e-4
    warmup: float = 0.05  # share of the steps with a linear LR warm-up
    label_smoothing: float = 0.0
    shift: int | None = None  # random shift in pixels; None: 1/8 of the shorter side
    bn_recalibrate: bool = True
    seed: int = 0
    # how the run is executed, not what it computes: may change on resume
    device: str = "cpu"
    threads: int | None = None
    save_every_s: float = 120.0

    RUNTIME = ("device", "threads", "save_every_s")

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise UsageError(f"--{name.replace('_', '-')} must be a positive integer, got {v!r}")
        if not 2 <= self.batch_size <= 65536:
            raise UsageError(f"--batch-size must be within 2..65536 (BatchNorm needs two samples), "
                             f"got {self.batch_size}")
        for name in ("lr", "momentum", "weight_decay", "warmup", "label_smoothing"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise UsageError(f"--{name.replace('_', '-')} must be a non-negative number, got {v!r}")
        if self.lr == 0:
            raise UsageError("--lr must be positive")
        for name in ("warmup", "label_smoothing", "momentum"):
            if getattr(self, name) >= 1:
                raise UsageError(f"--{name.replace('_', '-')} must be below 1, got {getattr(self, name)!r}")
        if self.shift is not None and (isinstance(self.shift, bool) or not isinstance(self.shift, int)
                                       or not 0 <= self.shift <= 4096):
            raise UsageError(f"--shift must be an integer within 0..4096, got {self.shift!r}")
        if self.threads is not None and (isinstance(self.threads, bool) or not isinstance(self.threads, int)
                                         or not 1 <= self.threads <= 1024):
            raise UsageError(f"--threads must be within 1..1024, got {self.threads!r}")

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def identity(self) -> dict[str, Any]:
        """The settings a resume must match (everything but how the run is executed)."""
        return {k: v for k, v in self.to_dict().items() if k not in self.RUNTIME}


@dataclass(frozen=True)
class TrainJob:
    model: str  # zoo name or arch string
    dataset: str = "digits-affine"
    resolution: tuple[int, int] = (32, 32)
    cfg: TrainConfig = TrainConfig()
    split_seed: int = 0  # the train/val split of datasets without one of their own
    train_limit: int | None = None
    source: dict[str, Any] = field(default_factory=dict)  # where the net came from (front run, member)

    def identity(self) -> dict[str, Any]:
        return {"model": self.model, "dataset": self.dataset, "resolution": list(self.resolution),
                "split_seed": self.split_seed, "train_limit": self.train_limit, "config": self.cfg.identity()}

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["resolution"] = list(self.resolution)
        d["cfg"] = self.cfg.to_dict()
        return d


def check_device(name: str) -> str:
    import torch

    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"--device {name!r} is not a device (use cpu or cuda)") from None
    if device.type not in ("cpu", "cuda"):
        raise UsageError(f"--device {name!r} is not supported (use cpu or cuda)")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {name}: CUDA is not available here (use --device cpu)")
    return name


def lr_factor(step: int, steps: int, warmup: int) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine from 1 to 0 at ``steps``."""
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(steps - warmup, 1)))


def resolve_job(job: TrainJob):
    """(the zoo/arch entry, its label) for a classification net; one line otherwise."""
    from plaid.archinfo import check_resolution
    from plaid.zoo import resolve

    item = resolve(job.model)
    if item.task != "classification":
        raise UsageError(f"plaid train trains classification nets; {item.label} is a {item.task} net "
                         "(train it with your own script: plaid search --train-cmd documents the contract)")
    check_resolution(item.task, job.resolution)
    return item


def load_data(job: TrainJob):
    """The dataset, held at min(training size, HOLD_MAX) on a side."""
    from plaid.train.datasets import load_dataset

    hold = min(max(job.resolution), HOLD_MAX)
    return load_dataset(job.dataset, hold, seed=job.split_seed, limit=job.train_limit)


class _Batches:
    """Batches at the training size: resized from the held size, shifted when training."""

    def __init__(self, x, hw: tuple[int, int]) -> None:
        self.x, self.hw = x, tuple(hw)

    def __call__(self, idx, shift: int = 0, gen=None):
        import torch.nn.functional as F

        from plaid.train.proxy import random_shift

        x = self.x[idx]
        if tuple(x.shape[-2:]) != self.hw:
            x = F.interpolate(x, size=self.hw, mode="bilinear", align_corners=False)
        return random_shift(x, shift, gen) if shift else x


def evaluate(model, batches: _Batches, y, batch_size: int = 256) -> tuple[float, float]:
    """(top-1, mean cross-entropy) on ``batches.x`` / ``y``."""
    import torch
    import torch.nn.functional as F

    model.eval()
    correct, loss_sum, n = 0, 0.0, len(y)
    with torch.inference_mode():
        for i in range(0, n, batch_size):
            idx = torch.arange(i, min(i + batch_size, n), device=y.device)
            logits = model(batches(idx))
            loss_sum += float(F.cross_entropy(logits, y[idx], reduction="sum"))
            correct += int((logits.argmax(1) == y[idx]).sum())
    return correct / n, loss_sum / n


def train(job: TrainJob, out: Path, force: bool = False, progress: Progress | None = None,
          log: Log = lambda m: None) -> dict[str, Any]:
    """Train ``job`` into ``out`` (resuming what ``out`` holds of the same job); returns the
    metrics written to ``out/metrics.json``."""
    from plaid.train import fullstate

    out = Path(out)
    item = resolve_job(job)
    check_device(job.cfg.device)
    fullstate.check(out, job, force)
    done = None if force else fullstate.finished(out, job)
    if done is not None:
        log(f"{out}: already trained (top-1 {done['top1']:.4f}); --force trains it again")
        return done
    state = None if force else fullstate.load_state(out, job)
    data = load_data(job)
    if state is None:
        fullstate.start(out, job, force)
    return _run(job, item, data, out, state, progress or (lambda *a: None), log)


def _run(job: TrainJob, item, data, out: Path, state, progress: Progress, log: Log) -> dict[str, Any]:
    import torch
    import torch.nn.functional as F

    from plaid.train import fullstate
    from plaid.train.proxy import recalibrate_bn

    cfg = job.cfg
    device = torch.device(cfg.device)
    old_threads = torch.get_num_threads()
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    try:
        torch.manual_seed(cfg.seed)
        model = item.build(num_classes=data.num_classes).to(device)
        x_train = torch.from_numpy(data.train.x).to(device)
        y_train = torch.from_numpy(data.train.y).to(device)
        x_val = torch.from_numpy(data.val.x).to(device)
        y_val = torch.from_numpy(data.val.y).to(device)
        train_b, val_b = _Batches(x_train, job.resolution), _Batches(x_val, job.resolution)
        n = len(y_train)
        per_epoch = n // cfg.batch_size + (1 if n % cfg.batch_size >= 2 else 0)
        if per_epoch == 0:
            raise UsageError(f"dataset {job.dataset!r}: too few training samples ({n})")
        steps = per_epoch * cfg.epochs
        warmup = round(cfg.warmup * steps)
        shift = cfg.shift if cfg.shift is not None else max(1, min(job.resolution) // 8)
        if shift >= min(job.resolution):
            raise UsageError(f"--shift {shift} is not below the shorter side of {job.resolution[0]}x"
                             f"{job.resolution[1]}")
        opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        gen = torch.Generator().manual_seed(cfg.seed)
        pos = fullstate.Position()
        if state is not None:
            pos = fullstate.restore(state, model, opt, gen)
            log(f"resuming {out} at epoch {pos.epoch + 1}/{cfg.epochs}, step {pos.step}/{steps}")
        t_start, t_saved = time.perf_counter() - pos.seconds, time.perf_counter()
        params = sum(p.numel() for p in model.parameters())
        while pos.epoch < cfg.epochs:
            if pos.order is None:
                pos.order = torch.randperm(n, generator=gen)
            model.train()
            order = pos.order.to(device)
            while pos.batch < per_epoch:
                idx = order[pos.batch * cfg.batch_size:(pos.batch + 1) * cfg.batch_size]
                for g in opt.param_groups:
                    g["lr"] = cfg.lr * lr_factor(pos.step, steps, warmup)
                loss = F.cross_entropy(model(train_b(idx, shift, gen)), y_train[idx],
                                       label_smoothing=cfg.label_smoothing)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                pos.loss_sum += float(loss.detach()) * len(idx)
                pos.seen += len(idx)
                pos.batch += 1
                pos.step += 1
                if not math.isfinite(pos.loss_sum):
                    raise PlaidError(f"training diverged in epoch {pos.epoch + 1} (loss {float(loss):.3g}); "
                                     f"try a lower --lr than {cfg.lr:g}")
                progress("training", pos.step, steps, f"epoch {pos.epoch + 1}/{cfg.epochs} "
                                                      f"loss {pos.loss_sum / pos.seen:.4f}")
                if time.perf_counter() - t_saved >= cfg.save_every_s and pos.batch < per_epoch:
                    pos.seconds = time.perf_counter() - t_start
                    fullstate.save_state(out, job, model, opt, gen, pos)
                    t_saved = time.perf_counter()
            top1, val_loss = evaluate(model, val_b, y_val)
            elapsed = time.perf_counter() - t_start
            pos.history.append({"epoch": pos.epoch + 1, "loss": pos.loss_sum / pos.seen, "val_top1": top1,
                                "val_loss": val_loss, "lr": opt.param_groups[0]["lr"], "seconds": elapsed})
            pos.next_epoch(elapsed)
            fullstate.save_state(out, job, model, opt, gen, pos)
            t_saved = time.perf_counter()
            fullstate.write_metrics(out, job, item, pos.history, params, status="running")
            log(f"epoch {pos.epoch}/{cfg.epochs}: loss {pos.history[-1]['loss']:.4f}, val top-1 {top1:.4f}, "
                f"val loss {val_loss:.4f} ({elapsed:.1f} s)")
        if cfg.bn_recalibrate:
            sample = torch.randperm(n, generator=gen)[:2048].to(device)
            recalibrate_bn(model, train_b(sample), cfg.batch_size)
        top1, val_loss = evaluate(model, val_b, y_val)
        seconds = time.perf_counter() - t_start
    finally:
        if cfg.threads is not None:
            torch.set_num_threads(old_threads)
    record = fullstate.record(job, item, data, pos, steps, top1, val_loss)
    return fullstate.finish(out, job, item, model, record, pos.history, params, seconds)

