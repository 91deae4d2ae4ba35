"""What `plaid arch ...` reports, as plain data (the CLI only renders it)."""

from __future__ import annotations

import random
import re
from typing import Any

from plaid.errors import UsageError

MAX_CLASSES = 100_000  # ImageNet-21k has 21,841; a bigger head is a typo, not a model
MAX_SAMPLES = 1000  # `arch sample -n`: ~50 ms each (build + count on the meta device)


def check_num_classes(n: int, flag: str = "--num-classes") -> int:
    """A classifier/segmentation head size given by the user, within 1..MAX_CLASSES."""
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_CLASSES:
        raise UsageError(f"{flag} must be within 1..{MAX_CLASSES}, got {n}")
    return n


def parse_resolution(text: str) -> tuple[int, int]:
    """``224`` -> (224, 224); ``1024x2048`` -> (1024, 2048) as (H, W)."""
    m = re.fullmatch(r"\s*(\d+)\s*(?:[xX×]\s*(\d+))?\s*", text)
    if not m:
        raise UsageError(f"bad resolution {text!r}: expected N or HxW, e.g. 224 or 1024x2048")
    h = int(m.group(1))
    w = int(m.group(2)) if m.group(2) else h
    if not (32 <= h <= 8192 and 32 <= w <= 8192):
        raise UsageError(f"bad resolution {text!r}: height and width must be within 32..8192")
    return h, w


def check_resolution(task: str, resolution: tuple[int, int]) -> None:
    if task == "segmentation" and (resolution[0] % 32 or resolution[1] % 32):
        raise UsageError(
            f"segmentation nets need a resolution divisible by 32 (stride-32 backbone, ×2 decoder steps), "
            f"got {resolution[0]}x{resolution[1]}"
        )


def describe(text: str, resolution: tuple[int, int] | None = None, d8: bool = False,
             num_classes: int | None = None) -> dict[str, Any]:
    """Everything `plaid arch show` prints: arch string, space membership, layer table,
    MACs and parameters at a resolution."""
    from plaid.complexity import build_on_meta, profile
    from plaid.zoo import resolve

    item = resolve(text)
    res = resolution or item.resolution
    check_resolution(item.task, res)
    opts: dict[str, Any] = {}
    if d8:
        if item.task != "segmentation":
            raise UsageError(f"--d8 applies to segmentation nets; {item.label} is a {item.task} net")
        opts["d8"] = True
    if num_classes is not None:
        opts["num_classes"] = check_num_classes(num_classes, "--classes")
    model = build_on_meta(item.build, **opts)
    prof = profile(model, res)
    info: dict[str, Any] = {
        "name": item.label,
        "task": item.task,
        "arch": item.arch_string,
        "space": item.space.name if item.space is not None else None,
        "summary": item.entry.summary if item.entry is not None else None,
        "reference": dict(item.entry.reference) if item.entry is not None else {},
        **prof.to_json(),
    }
    if item.space is not None:
        info["member"], info["member_note"] = _membership(item.space, item.arch)
    return info


def _membership(space, arch) -> tuple[bool, str]:
    from plaid.spaces import get_space
    from plaid.errors import ArchError

    if space.task == "segmentation":  # judge the decoder against a space on its own backbone
        space = get_space(space.name, backbone=arch.backbone)
    try:
        space.validate(arch)
    except ArchError as exc:
        return False, str(exc)
    return True, f"in space {space.name!r} (preset {space.preset})"


def list_all() -> dict[str, Any]:
    """Registered spaces and zoo networks, with MACs/params at their default resolution."""
    from plaid.complexity import build_on_meta, profile
    from plaid.spaces import get_space, space_names
    from plaid.zoo import ZOO

    spaces = []
    for name in space_names():
        sp = get_space(name)
        d = sp.describe()
        d["resolution"] = list(sp.resolution)
        spaces.append(d)
    models = []
    for name, entry in ZOO.items():
        prof = profile(build_on_meta(entry.build), entry.resolution)
        models.append({
            "name": name,
            "task": entry.task,
            "summary": entry.summary,
            "resolution": list(entry.resolution),
            "macs": prof.macs,
            "params": prof.params,
            "arch": entry.arch,
        })
    return {"spaces": spaces, "models": models}


def sample(space_name: str, n: int, seed: int, resolution: tuple[int, int] | None = None,
           backbone: str | None = None, progress=None) -> list[dict[str, Any]]:
    """``n`` random members of a space, with MACs at the space's default resolution;
    ``progress(phase, done, total, label)`` is told after each one."""
    from plaid.complexity import build_on_meta, profile
    from plaid.spaces import get_space, space_names

    if n < 1 or n > MAX_SAMPLES:
        raise UsageError(f"-n must be within 1..{MAX_SAMPLES}, got {n} (each takes ~50 ms to build and count; "
                         "run several seeds for more)")
    opts = {"backbone": backbone} if backbone else {}
    if backbone and get_space(space_name).task != "segmentation":
        decoders = ", ".join(s for s in space_names() if get_space(s).task == "segmentation")
        raise UsageError(f"--backbone applies to decoder spaces ({decoders}); {space_name!r} is a backbone "
                         "space, its members are the backbones")
    if backbone:
        from plaid.zoo import ZOO

        if backbone in ZOO and ZOO.get(backbone).arch:
            opts["backbone"] = ZOO.get(backbone).arch
    space = get_space(space_name, **opts)
    res = resolution or space.resolution
    check_resolution(space.task, res)
    rng = random.Random(seed)
    out = []
    for i in range(n):
        arch = space.sample(rng)
        prof = profile(build_on_meta(space.build, arch), res)
        out.append({"arch": space.encode(arch), "macs": prof.macs, "params": prof.params,
                    "resolution": list(res)})
        if progress is not None:
            progress("sample", i + 1, n, out[-1]["arch"])
    return out
