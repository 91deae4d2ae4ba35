"""The files of a `plaid train` output folder, and the training state that makes it resumable.

``config.json`` (the job, once), ``state.pt`` (weights, optimiser, RNG, position; read with
``torch.load(weights_only=True)``), ``metrics.json`` (per-epoch history; ``status``
``running`` or ``done``) and ``model.pt`` (the weights and their record). All written
atomically through :mod:`plaid.fsio`."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plaid.errors import UsageError
from plaid.fsio import atomic_path, atomic_write_text

FILES = ("config.json", "state.pt", "metrics.json", "model.pt")


@dataclass
class Position:
    """Where a training is: epochs done, batches into the current one, optimizer steps."""

    epoch: int = 0
    batch: int = 0
    step: int = 0
    order: Any = None  # this epoch's permutation (a CPU tensor), None before it is drawn
    loss_sum: float = 0.0
    seen: int = 0
    seconds: float = 0.0  # training time so far, over every session
    history: list[dict[str, Any]] = field(default_factory=list)

    def next_epoch(self, seconds: float) -> None:
        self.epoch, self.batch, self.order, self.loss_sum, self.seen, self.seconds = \
            self.epoch + 1, 0, None, 0.0, 0, seconds


def _canon(doc: Any) -> str:
    return json.dumps(doc, sort_keys=True, default=str)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    out = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{k}.")
        elif _canon(a) != _canon(b):
            out.append(f"{prefix}{k} {a!r} there, {b!r} here")
    return out


def _check_same(out: Path, held: Any, job) -> None:
    if not isinstance(held, dict):
        raise UsageError(f"{out / 'config.json'} is not a plaid train config; use another -o or --force")
    if _canon(held) != _canon(job.identity()):
        diff = "; ".join(_differences(held, job.identity())[:3])
        raise UsageError(f"{out} holds a training with other settings ({diff}): use another -o, "
                         "or --force to start over")


def check(out: Path, job, force: bool) -> None:
    """Refuse, in one line and without touching anything, an ``out`` that is not a folder,
    a non-empty folder of something else, or (without ``force``) one of another training."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"output {str(out)!r} exists and is not a folder")
    if not out.is_dir() or force:
        return
    if (out / "config.json").is_file():
        conf = _read_json(out / "config.json")
        _check_same(out, conf.get("identity") if isinstance(conf, dict) else None, job)
    elif any(out.iterdir()):
        raise UsageError(f"output folder {str(out)!r} is not empty and holds no plaid train run "
                         "(use another -o, or --force)")


def finished(out: Path, job) -> dict[str, Any] | None:
    """The metrics of a finished training of ``job`` in ``out``, else None (a folder of
    another job is refused in one line)."""
    conf = _read_json(out / "config.json")
    if conf is None:
        return None
    _check_same(out, conf.get("identity") if isinstance(conf, dict) else None, job)
    metrics = _read_json(out / "metrics.json")
    if isinstance(metrics, dict) and metrics.get("status") == "done" and (out / "model.pt").is_file():
        return metrics
    return None


def start(out: Path, job, force: bool) -> None:
    """Prepare ``out`` for a new training: absent or empty, or (with ``force``) a folder of
    ours, whose files are removed first."""
    from plaid import __version__

    if out.exists() and not out.is_dir():
        raise UsageError(f"output {str(out)!r} exists and is not a folder")
    if out.is_dir():
        ours = (out / "config.json").is_file()
        if force:
            for name in FILES:
                (out / name).unlink(missing_ok=True)
        elif any(out.iterdir()) and not ours:
            raise UsageError(f"output folder {str(out)!r} is not empty and holds no plaid train run "
                             "(use another -o, or --force)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create {str(out)!r}: {exc.strerror or exc}") from None
    atomic_write_text(out / "config.json", json.dumps({"plaid": __version__, "identity": job.identity(),
                                                       "job": job.to_json()}, indent=2) + "\n")


def load_state(out: Path, job) -> dict[str, Any] | None:
    """The saved state of ``job`` in ``out``, or None when there is none (a new training)."""
    import torch

    path = out / "state.pt"
    if not (out / "config.json").is_file():
        if out.is_dir() and any(out.iterdir()):
            start(out, job, force=False)  # refuses a foreign non-empty folder in one line
        return None
    _check_same(out, (_read_json(out / "config.json") or {}).get("identity"), job)
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - torch raises many kinds for a bad file
        raise UsageError(f"{path}: unreadable training state; --force starts over") from None
    if not isinstance(state, dict) or _canon(state.get("identity")) != _canon(job.identity()):
        raise UsageError(f"{path} belongs to another training; --force starts over")
    return state


def save_state(out: Path, job, model, opt, gen, pos: Position) -> None:
    import torch

    state = {
        "identity": job.identity(),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": opt.state_dict(),
        "generator": gen.get_state(),
        "epoch": pos.epoch, "batch": pos.batch, "step": pos.step,
        "order": None if pos.order is None else pos.order.cpu(),
        "loss_sum": pos.loss_sum, "seen": pos.seen, "seconds": pos.seconds, "history": pos.history,
    }
    with atomic_path(out / "state.pt") as tmp:
        torch.save(state, tmp)


def restore(state: dict[str, Any], model, opt, gen) -> Position:
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    gen.set_state(state["generator"])
    return Position(epoch=int(state["epoch"]), batch=int(state["batch"]), step=int(state["step"]),
                    order=state["order"], loss_sum=float(state["loss_sum"]), seen=int(state["seen"]),
                    seconds=float(state["seconds"]), history=list(state["history"]))


def record(job, item, data, pos: Position, steps: int, top1: float, val_loss: float) -> dict[str, Any]:
    """How ``model.pt`` was made (see :mod:`plaid.train.provenance`)."""
    from plaid import __version__

    return {"kind": "full", "model": item.label, "arch": item.arch_string, "task": item.task,
            "dataset": job.dataset, "split_seed": job.split_seed, "train_limit": job.train_limit,
            "num_classes": data.num_classes, "classes": list(data.classes),
            "resolution": list(job.resolution),
            "normalization": {"mean": list(data.mean), "std": list(data.std)},
            "epochs": job.cfg.epochs, "steps": steps, "top1": top1, "val_loss": val_loss,
            "config": job.cfg.identity(), "source": dict(job.source), "plaid": __version__}


def write_metrics(out: Path, job, item, history: list[dict], params: int, status: str,
                  final: dict[str, Any] | None = None) -> dict[str, Any]:
    from plaid import __version__

    doc = {"plaid": __version__, "status": status, "model": item.label, "arch": item.arch_string,
           "dataset": job.dataset, "resolution": list(job.resolution), "epochs": job.cfg.epochs,
           "params": params, "source": dict(job.source), **(final or {}), "history": history,
           "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    atomic_write_text(out / "metrics.json", json.dumps(doc, indent=2) + "\n")
    return doc


def finish(out: Path, job, item, model, rec: dict[str, Any], history: list[dict], params: int,
           seconds: float) -> dict[str, Any]:
    """Write ``model.pt`` and the final metrics, then drop the training state."""
    from plaid.train.provenance import save_trained

    save_trained(model.state_dict(), out / "model.pt", rec)
    best = max(history, key=lambda h: h["val_top1"]) if history else None
    final = {"top1": rec["top1"], "val_loss": rec["val_loss"], "steps": rec["steps"], "train_seconds": seconds,
             "best_epoch": best and {"epoch": best["epoch"], "val_top1": best["val_top1"]},
             "checkpoint": str(out / "model.pt")}
    doc = write_metrics(out, job, item, history, params, "done", final)
    (out / "state.pt").unlink(missing_ok=True)
    return doc
