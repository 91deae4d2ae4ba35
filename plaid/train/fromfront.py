"""Front members of a search run as training jobs: what `plaid train --front RUN` reads.

A run folder (:mod:`plaid.search.run`) has ``config.json`` (the resolved search config:
dataset, proxy resolution, seed, evaluator) and ``front.json`` (the boundary, sorted by
latency, each member with its arch string, latency, proxy accuracy and checkpoint)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plaid.errors import UsageError


@dataclass(frozen=True)
class Front:
    run: Path
    members: list[dict[str, Any]]  # front.json's "front", in its order (fastest first)
    target: str
    resolution: tuple[int, int] | None  # the latency (deployment) resolution of the search
    config: dict[str, Any]  # config.json's "config"

    def best(self) -> int:
        """Index of the most accurate member (the slowest of the front)."""
        return max(range(len(self.members)), key=lambda i: (self.members[i]["accuracy"], -i))

    @property
    def proxy_resolution(self) -> int | None:
        side = self.config.get("proxy_resolution")
        return side if isinstance(side, int) and not isinstance(side, bool) and side > 0 else None


def _read(path: Path, what: str) -> Any:
    if not path.is_file():
        raise UsageError(f"{path.parent} is not a finished search run (no {path.name}); {what}")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: unreadable ({exc})") from None


def read_front(run: Path) -> Front:
    run = Path(run).expanduser()
    if not run.is_dir():
        raise UsageError(f"--front {str(run)!r} is not a folder (give a search run folder, e.g. runs/RUN)")
    conf = _read(run / "config.json", "give the folder `plaid search` printed as 'run'")
    doc = _read(run / "front.json", "has its search finished? (plaid search --resume RUN)")
    members = doc.get("front") if isinstance(doc, dict) else None
    if not isinstance(members, list) or not all(isinstance(m, dict) and isinstance(m.get("arch"), str)
                                                and isinstance(m.get("accuracy"), (int, float))
                                                for m in members):
        raise UsageError(f"{run / 'front.json'}: no list of front members with 'arch' and 'accuracy'")
    if not members:
        raise UsageError(f"{run / 'front.json'}: the front is empty")
    res = doc.get("resolution")
    res = tuple(res) if isinstance(res, list) and len(res) == 2 else None
    cfg = conf.get("config") if isinstance(conf, dict) and isinstance(conf.get("config"), dict) else {}
    return Front(run, members, str(doc.get("target", "")), res, cfg)


def pick(front: Front, member: int | None, every: bool) -> list[int]:
    """The member indices to train: ``member``, all of them, or the most accurate one."""
    n = len(front.members)
    if every:
        return list(range(n))
    if member is None:
        return [front.best()]
    if not 0 <= member < n:
        raise UsageError(f"--member {member}: the front of {front.run} has {n} member{'s' if n != 1 else ''} "
                         f"(0..{n - 1}, fastest first)")
    return [member]


def source(front: Front, k: int) -> dict[str, Any]:
    """What a trained member records of where it came from."""
    m = front.members[k]
    return {"front": str(front.run), "member": k, "proxy_top1": m["accuracy"], "latency_ms": m.get("latency"),
            "target": front.target, "latency_resolution": list(front.resolution) if front.resolution else None,
            "proxy_checkpoint": m.get("checkpoint")}
