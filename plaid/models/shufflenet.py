"""The PL1A backbone: PL1A stem and ShuffleNetV2 units (as in the released ncnn model)."""

from __future__ import annotations

import torch
from torch import nn

from plaid.models.layers import Classifier, ConvBN, ShuffleSplit, StagedBackbone


class ShuffleUnit(nn.Module):
    """ShuffleNetV2 unit. stride 2: both branches see the whole input and each gives
    out/2 channels; stride 1: channel shuffle and split of the input (:class:`ShuffleSplit`),
    the second half goes through the branch. The output is the concatenation, unshuffled.

    The shuffle sits where the reference implementation (Megvii's) puts it, before a
    stride-1 unit's split, rather than after every unit as torchvision's does. The two differ
    only by fixed channel permutations where a unit's output meets layers that see all its
    channels (a stride-2 unit, the head, the segmentation decoder), which those layers'
    weights absorb: the same function class, FLOPs and parameters (tests/test_layers.py
    checks the routing; weights trained with the other form need their channels permuted)."""

    def __init__(self, cin: int, out: int, stride: int) -> None:
        super().__init__()
        half = out // 2
        self.stride = stride
        if stride == 2:
            self.branch1 = nn.Sequential()
            self.branch1.add_module("dw", ConvBN(cin, cin, 3, 2, groups=-1, relu=False))
            self.branch1.add_module("pw", ConvBN(cin, half, 1))
            b2_in = cin
        else:
            if cin != out:
                raise ValueError(f"a stride-1 ShuffleNetV2 unit keeps its width ({cin} != {out})")
            self.branch1 = None
            b2_in = half
        self.branch2 = nn.Sequential()
        self.branch2.add_module("pw1", ConvBN(b2_in, half, 1))
        self.branch2.add_module("dw", ConvBN(half, half, 3, stride, groups=-1, relu=False))
        self.branch2.add_module("pw2", ConvBN(half, half, 1))
        self.split = ShuffleSplit() if stride == 1 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.branch1 is not None:
            return torch.cat([self.branch1(x), self.branch2(x)], dim=1)
        keep, work = self.split(x)
        return torch.cat([keep, self.branch2(work)], dim=1)


class PL1ABackbone(StagedBackbone):
    def __init__(self, arch, stem=(8, 24)) -> None:
        super().__init__()
        c1, c2 = stem
        self.stem = nn.Sequential()
        self.stem.add_module("dw1", ConvBN(3, 3, 3, 2, groups=-1, relu=False))
        self.stem.add_module("pw1", ConvBN(3, c1, 1))
        self.stem.add_module("dw2", ConvBN(c1, c1, 3, 2, groups=-1, relu=False))
        self.stem.add_module("conv2", ConvBN(c1, c2, 3))
        cin = c2
        self.stage_names, self.stage_channels = [], []
        for i, (width, units) in enumerate(arch.stages):
            stage = nn.Sequential(*[ShuffleUnit(cin if j == 0 else width, width, 2 if j == 0 else 1)
                                    for j in range(units)])
            name = f"stage{i + 1}"
            self.add_module(name, stage)
            self.stage_names.append(name)
            self.stage_channels.append(width)
            cin = width
        self.out_channels = cin


def pl1a_backbone(arch, stem=(8, 24)) -> PL1ABackbone:
    return PL1ABackbone(arch, stem)


def pl1a_classifier(arch, stem=(8, 24), num_classes: int = 1000) -> Classifier:
    return Classifier(PL1ABackbone(arch, stem), num_classes)
