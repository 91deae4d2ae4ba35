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
    """(name, arch) of the zoo classifiers inside ``space`` (plus EXTRA), sorted by name."""
    from plaid.zoo import ZOO

    found = []
    named = [(e.name, e.arch) for e in (ZOO.get(n) for n in ZOO.names()) if e.arch and e.task == "classification"]
    for name, text in named + EXTRA.get(space.name, []):
        prefix, _, body = text.partition(":")
        if prefix != space.name:
            continue
        try:
            arch = space.decode(text)
        except PlaidError:
            continue
        if space.contains(arch):
            found.append((name, arch))
    return sorted(found, key=lambda p: p[0])


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


def beaten(front: list, baselines: list[dict]) -> list[str]:
    """One line per baseline: which front members beat it on both axes."""
    lines = []
    for b in baselines:
        better = [e for e in front if e.latency < b["latency"] and e.accuracy > b["accuracy"]]
        head = f"{b['name']} ({b['latency']:.3f} ms, acc {b['accuracy']:.4f}):"
        if better:
            lines.append(f"{head} beaten on both axes by {len(better)} front member(s): "
                         + ", ".join(f"{e.key} ({e.latency:.3f} ms, {e.accuracy:.4f})" for e in better[:4])
                         + (" ..." if len(better) > 4 else ""))
        else:
            lines.append(f"{head} no front member beats it on both axes")
    return lines
