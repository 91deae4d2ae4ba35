"""Hand-designed nets next to every search report (the POP paper's comparison): the zoo's
classifiers that live in the searched space, with the PL1A-Seg backbone for ``pl1a``.
They are timed by the same predictor and trained by the same evaluator as the candidates,
cached in the run folder (``baselines.json``) so a resume does not train them again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from plaid.errors import PlaidError

EXTRA = {"pl1a": [("pl1a-seg backbone", "pl1a:48x4-96x8-192x4")]}


def space_baselines(space: Any) -> list[tuple[str, Any]]:
    """(name, arch) of the zoo nets of the space's task inside ``space`` (plus EXTRA), sorted
    by name, one per arch. For a decoder space these are the seed's seg nets (PL1A-Seg in
    ``pl1aseg``; DF1-Seg, DF2-Seg1/2, DFlite-Seg in ``dfseg``) whose backbone is the space's
    fixed backbone: a seg net on another backbone is not in the space (``contains`` refuses
    it), so it is left out rather than timed or trained on a backbone it does not have. The
    zoo's ``-d8`` variants (the same decoder without the final x8 upsample) are left out too:
    the space's nets are the full ones."""
    from plaid.zoo import ZOO

    task = getattr(space, "task", "classification")
    found, seen = [], set()
    entries = (ZOO.get(n) for n in ZOO.names())
    named = [(e.name, e.arch) for e in entries if e.arch and e.task == task and not e.options.get("d8")]
    for name, text in sorted(named + EXTRA.get(space.name, [])):
        prefix, _, body = text.partition(":")
        if prefix != space.name:
            continue
        try:
            arch = space.decode(text)
        except PlaidError:
            continue
        if space.contains(arch) and space.key(arch) not in seen:
            seen.add(space.key(arch))
            found.append((name, arch))
    return found


def evaluate_baselines(space: Any, latency: Callable, accuracy: Callable, run: Path, evaluator_id: str,
                       log: Callable[[str], None] = print) -> list[dict]:
    """Latency and accuracy of each baseline; trained ones are kept in ``run/baselines.json``."""
    from plaid.fsio import atomic_write_text

    cache_path = run / "baselines.json"
    try:
        cache = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    except (OSError, json.JSONDecodeError):
        cache = {}
    if cache.get("evaluator") != evaluator_id:
        cache = {"evaluator": evaluator_id, "nets": {}}
    out = []
    for name, arch in space_baselines(space):
        key = space.key(arch)
        acc = cache["nets"].get(key)
        if acc is None:
            log(f"training baseline {name} ({key}) with the same evaluator")
            try:
                acc = float(accuracy(arch))
            except PlaidError as exc:
                log(f"baseline {name}: not evaluated ({exc})")
                continue
            cache["nets"][key] = acc
            atomic_write_text(cache_path, json.dumps(cache, indent=2) + "\n")
        out.append({"name": name, "arch": key, "latency": float(latency(arch)), "accuracy": acc})
    return out


def beaten(front: list, baselines: list[dict], metric: str = "accuracy") -> list[str]:
    """One line per baseline: which front members beat it on both axes (``metric`` names
    the accuracy axis: accuracy, or mIoU for a segmentation space)."""
    lines = []
    label = "acc" if metric == "accuracy" else metric
    for b in baselines:
        better = [e for e in front if e.latency < b["latency"] and e.accuracy > b["accuracy"]]
        head = f"{b['name']} ({b['latency']:.3f} ms, {label} {b['accuracy']:.4f}):"
        if better:
            lines.append(f"{head} beaten on both axes by {len(better)} front member(s): "
                         + ", ".join(f"{e.key} ({e.latency:.3f} ms, {e.accuracy:.4f})" for e in better[:4])
                         + (" ..." if len(better) > 4 else ""))
        else:
            lines.append(f"{head} no front member beats it on both axes")
    return lines
