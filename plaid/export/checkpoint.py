"""Trained weights for an export: a ``state_dict`` saved with ``torch.save`` (read with
``torch.load(weights_only=True)``, so no pickled code ever runs) or a ``.safetensors`` file.
The weights are checked against the architecture before anything is converted: a missing
or extra tensor or a shape mismatch is one clear error, not a half-initialised model.

A checkpoint may say how it was made (:mod:`plaid.train.provenance`): ``plaid train``
and a search's proxy checkpoints write the record into the file (``{"state_dict": ...,
"plaid": {...}}``, or a ``plaid`` entry of a safetensors file's metadata, as JSON); a proxy
checkpoint of an older run (a bare state_dict) has it in its run folder. The export takes
its resolution and normalisation from there."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plaid.errors import UsageError
from plaid.fsio import file_digest
from plaid.train.provenance import proxy_record, record_of, with_run


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    format: str  # torch | safetensors
    sha256: str
    state: dict[str, Any]
    record: dict[str, Any] | None = None  # how the weights were made, when known

    @property
    def resolution(self) -> tuple[int, int] | None:
        res = (self.record or {}).get("resolution")
        return (int(res[0]), int(res[1])) if res else None

    @property
    def normalization(self) -> dict[str, list[float]] | None:
        return (self.record or {}).get("normalization")

    def describe(self) -> dict[str, Any]:
        d = {"file": self.path.name, "format": self.format, "sha256": self.sha256, "tensors": len(self.state)}
        if self.record is not None:
            keep = ("kind", "model", "arch", "dataset", "resolution", "normalization", "epochs", "steps", "top1",
                    "stem_unstride", "val_loss", "num_classes", "run", "source")
            d["trained"] = {k: self.record[k] for k in keep if self.record.get(k) is not None}
        return d


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a state_dict from ``path`` (torch or safetensors, told apart by content)."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"checkpoint {str(path)!r} does not exist or is not a file")
    with open(path, "rb") as fh:
        head = fh.read(16)
    if path.suffix == ".safetensors" or _looks_like_safetensors(head):
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state = load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as exc:
            raise UsageError(f"checkpoint {path.name}: not a readable safetensors file ({_first_line(exc)})") from exc
        fmt, record = "safetensors", _safetensors_record(path)
    else:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a bad file
            raise UsageError(f"checkpoint {path.name}: torch.load(weights_only=True) refused it: not a plain "
                             "state_dict of tensors (it holds other objects or code, or is no torch file); "
                             "it was not run") from exc
        fmt, record = "torch", record_of(state)
    state = _unwrap(state, path)
    return Checkpoint(path, fmt, file_digest(path), state, with_run(record, path) or proxy_record(path))


def _safetensors_record(path: Path) -> dict[str, Any] | None:
    import json

    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            text = (fh.metadata() or {}).get("plaid")
        return record_of({"plaid": json.loads(text)}) if text else None
    except Exception:  # noqa: BLE001 - a record that cannot be read is no record; the weights loaded
        return None


def _looks_like_safetensors(head: bytes) -> bool:
    # 8-byte little-endian header length, then a JSON object
    return len(head) >= 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < (1 << 30)


def _unwrap(state: Any, path: Path) -> dict[str, Any]:
    """Accept a bare state_dict or the common ``{"state_dict": ...}`` / ``{"model": ...}`` wrappers."""
    import torch

    if isinstance(state, dict):
        for key in ("state_dict", "model"):
            inner = state.get(key)
            if isinstance(inner, dict) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                state = inner
                break
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UsageError(f"checkpoint {path.name}: expected a state_dict (names -> tensors)")
    return {k.removeprefix("module."): v for k, v in state.items()}


def num_classes_hint(state: dict[str, Any]) -> int | None:
    """The class count of a classifier/segmenter checkpoint: rows of its last weight."""
    last = None
    for name, tensor in state.items():
        if name.endswith(".weight") and getattr(tensor, "ndim", 0) in (2, 4):
            last = tensor
    return int(last.shape[0]) if last is not None else None


def apply_checkpoint(model, ckpt: Checkpoint, label: str) -> None:
    """Load ``ckpt`` into ``model`` strictly; mismatches become one line naming the first few."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in ckpt.state]
    extra = [k for k in ckpt.state if k not in expected]
    shapes = [f"{k} {tuple(ckpt.state[k].shape)} != {tuple(v.shape)}" for k, v in expected.items()
              if k in ckpt.state and tuple(ckpt.state[k].shape) != tuple(v.shape)]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing (e.g. {', '.join(missing[:2])})")
    if extra:
        problems.append(f"{len(extra)} unexpected (e.g. {', '.join(extra[:2])})")
    if shapes:
        problems.append(f"{len(shapes)} with other shapes (e.g. {shapes[0]})")
    if problems:
        raise UsageError(f"checkpoint {ckpt.path.name} does not fit {label}: " + "; ".join(problems)
                         + " (wrong architecture, or --num-classes?)")
    model.load_state_dict(ckpt.state, strict=True)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]
