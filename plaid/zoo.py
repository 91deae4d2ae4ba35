"""The zoo: the paper's released networks and the baselines users compare against,
registered by name. ``resolve`` turns a zoo name or an arch string into something
buildable."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from plaid.errors import UsageError
from plaid.registry import Registry


@dataclass(frozen=True)
class ZooEntry:
    name: str
    summary: str
    task: str  # classification | segmentation
    resolution: tuple[int, int]
    arch: str | None = None  # arch string when the net lives in a plaid space
    builder: Callable[..., Any] | None = None  # for baselines outside every space
    reference: dict[str, Any] = field(default_factory=dict)  # published figures
    options: dict[str, Any] = field(default_factory=dict)  # build options (d8, ...)

    def build(self, **options: Any):
        opts = {**self.options, **options}
        if self.builder is not None:
            return self.builder(**opts)
        from plaid.spaces import parse_arch

        space, arch = parse_arch(self.arch)
        return space.build(arch, **opts)


ZOO: Registry[ZooEntry] = Registry("model")


def register_model(entry: ZooEntry) -> ZooEntry:
    ZOO.add(entry.name, entry)
    return entry


DF1 = "df:R64x3-R128x3-R256x3,512"
DF2 = "df:R64x2,128-R128x10,256-R256x4,512x2"
DF2A = "df:R64x2,128-B128x10,256-B256x4,512:1024x2"
DFLITE = "df:R64x2-R128x2-R256,512"
PL1A = "pl1a:48x4-96x8-192x4"
CITYSCAPES = (1024, 2048)

_CLASSIFIERS = [
    ("df1", DF1, "DF1 (POP, TX2 69.78% top-1 @ 2.5 ms)", {"macs_g": 0.7467, "params_m": 8.52, "layers": "df1_layers_224.txt"}),
    ("df2", DF2, "DF2 (POP, TX2 73.92% top-1 @ 5.0 ms)", {"macs_g": 1.7743, "params_m": 17.97, "layers": "df2_layers_224.txt"}),
    ("df2a", DF2A, "DF2A, bottleneck res3/res4 (TX2 76.00% @ 6.5 ms)", {"macs_g": 1.9161, "params_m": 19.10, "layers": "df2a_layers_224.txt"}),
    ("dflite", DFLITE, "DFlite, the backbone of DFlite-Seg", {"macs_g": 0.5155}),
]

_SEGMENTERS = [
    ("df1-seg", f"dfseg:19-32-128-32-32-19-19@{DF1}", "DF1-Seg (Cityscapes val 74.1 mIoU)",
     {"macs_g": 41.72, "layers": "df1seg_layers_1024x2048.txt"}),
    ("df2-seg1", f"dfseg:19-19-32-19-19-19-19@{DF2}", "DF2-Seg1 (75.9 mIoU)",
     {"macs_g": 84.51, "layers": "df2seg1_layers_1024x2048.txt"}),
    ("df2-seg2", f"dfseg:19-256-512-256-256-19-19@{DF2}", "DF2-Seg2 (76.9 mIoU)",
     {"macs_g": 95.43, "layers": "df2seg2_layers_1024x2048.txt"}),
    ("dflite-seg", f"dfseg:32-32-512-32-32-32-32@{DFLITE}", "DFlite-Seg (73.4 mIoU)",
     {"macs_g": 32.98, "layers": "dflite_seg_layers_1024x2048.txt"}),
    # the published ~0.266 GMACs / 0.36 M are the 1/8 output (pl1a-seg-d8); ×8 up adds 0.019 G
    ("pl1a-seg", f"pl1aseg:48-96-192-96-96-48-48@{PL1A}", "PL1A-Seg, searched for Snapdragon 845 (68.7 mIoU, 52 FPS)",
     {"layers": "pl1a_seg_ncnn_layers_384x640.txt"}),
]


_D8_REFERENCE = {"pl1a-seg": {"macs_g": 0.266, "params_m": 0.36}}


def _resnet18(num_classes: int = 1000, **_: Any):
    from plaid.models.resnets import resnet

    return resnet("basic", [2, 2, 2, 2], num_classes)


def _resnet50(num_classes: int = 1000, **_: Any):
    from plaid.models.resnets import resnet

    return resnet("bottleneck", [3, 4, 6, 3], num_classes)


for _name, _arch, _summary, _ref in _CLASSIFIERS:
    register_model(ZooEntry(_name, _summary, "classification", (224, 224), arch=_arch, reference=_ref))
for _name, _arch, _summary, _ref in _SEGMENTERS:
    _res = (384, 640) if _name.startswith("pl1a") else CITYSCAPES
    register_model(ZooEntry(_name, _summary, "segmentation", _res, arch=_arch, reference=_ref))
    register_model(ZooEntry(f"{_name}-d8", _summary.split(" (")[0] + ", output at 1/8 (no ×8 upsample)",
                            "segmentation", _res, arch=_arch, options={"d8": True},
                            reference=_D8_REFERENCE.get(_name, {})))
register_model(ZooEntry("resnet18", "ResNet-18 baseline (torchvision layout; TX2 69.0% @ 4.4 ms)",
                        "classification", (224, 224), builder=_resnet18,
                        reference={"macs_g": 1.8142, "params_all_m": 11.6895}))
register_model(ZooEntry("resnet50", "ResNet-50 baseline (torchvision layout; TX2 75.3% @ 10.6 ms)",
                        "classification", (224, 224), builder=_resnet50,
                        reference={"macs_g": 4.0890, "params_all_m": 25.5570}))


@dataclass(frozen=True)
class Resolved:
    """A zoo name or arch string, ready to build and describe."""

    label: str
    task: str
    resolution: tuple[int, int]
    arch_string: str | None
    space: Any = None
    arch: Any = None
    entry: ZooEntry | None = None

    def build(self, **options: Any):
        if self.entry is not None:
            return self.entry.build(**options)
        return self.space.build(self.arch, **options)


def resolve(text: str) -> Resolved:
    """Zoo name (``df1``) or arch string (``df:R64x3-...``) -> :class:`Resolved`."""
    from plaid.spaces import parse_arch

    text = text.strip()
    if text in ZOO:
        entry = ZOO.get(text)
        space = arch = None
        if entry.arch is not None:
            space, arch = parse_arch(entry.arch)
        return Resolved(text, entry.task, entry.resolution, entry.arch, space, arch, entry)
    if ":" not in text:
        raise UsageError(
            f"{ZOO.unknown_message(text)}; or give an architecture string such as 'df:R64x3-R128x3-R256x3,512'"
        )
    space, arch = parse_arch(text)
    return Resolved(space.encode(arch), space.task, space.resolution, space.encode(arch), space, arch)
