"""Residual backbones: the DF space's networks and the torchvision-style ResNet baselines."""

from __future__ import annotations

import torch
from torch import nn

from plaid.models.layers import CAFFE_BN_EPS, Classifier, ConvBN, StagedBackbone


class BasicBlock(nn.Module):
    """3x3 (stride here) -> 3x3, identity or 1x1 projection shortcut, ReLU after the sum."""

    def __init__(self, cin: int, width: int, out: int, stride: int, project: bool, eps: float) -> None:
        super().__init__()
        self.conv1 = ConvBN(cin, width, 3, stride, eps=eps)
        self.conv2 = ConvBN(width, out, 3, relu=False, eps=eps)
        self.skip = ConvBN(cin, out, 1, stride, relu=False, eps=eps, padding=0) if project else None
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.conv1(x))
        return self.relu(out + (self.skip(x) if self.skip is not None else x))


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (stride here) -> 1x1, projection shortcut as above."""

    def __init__(self, cin: int, width: int, out: int, stride: int, project: bool, eps: float) -> None:
        super().__init__()
        self.conv1 = ConvBN(cin, width, 1, eps=eps)
        self.conv2 = ConvBN(width, width, 3, stride, eps=eps)
        self.conv3 = ConvBN(width, out, 1, relu=False, eps=eps)
        self.skip = ConvBN(cin, out, 1, stride, relu=False, eps=eps, padding=0) if project else None
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv3(self.conv2(self.conv1(x)))
        return self.relu(out + (self.skip(x) if self.skip is not None else x))


BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}


def make_stage(kind: str, cin: int, blocks, stride: int, caffe_projections: bool, eps: float) -> tuple[nn.Sequential, int]:
    """``blocks`` is a list of (width, out). With ``caffe_projections`` (the released DF
    prototxts) the first block of every run of equal blocks has a 1x1 projection; else
    (torchvision) only where the stride or channel count changes."""
    layers = []
    prev = None
    for i, (width, out) in enumerate(blocks):
        s = stride if i == 0 else 1
        if caffe_projections:
            project = s != 1 or cin != out or (width, out) != prev
        else:
            project = s != 1 or cin != out
        layers.append(BLOCKS[kind](cin, width, out, s, project, eps))
        cin, prev = out, (width, out)
    return nn.Sequential(*layers), cin


class ResidualBackbone(StagedBackbone):
    """A stem followed by named stages; returns the output of every stage."""

    def __init__(self, stem: nn.Module, stages: list[tuple[str, nn.Module]], out_channels: int,
                 stage_channels: list[int]) -> None:
        super().__init__()
        self.stem = stem
        self.stage_names = [name for name, _ in stages]
        for name, mod in stages:
            self.add_module(name, mod)
        self.out_channels = out_channels
        self.stage_channels = stage_channels


def df_backbone(arch, stem=(32, 64)) -> ResidualBackbone:
    """The DF backbone: conv3x3/2 ->32, conv3x3/2 ->64 (no max-pool), then the stages,
    each starting with stride 2 (strides 8/16/32)."""
    c1, c2 = stem
    stem_mod = nn.Sequential()
    stem_mod.add_module("conv1", ConvBN(3, c1, 3, 2))
    stem_mod.add_module("conv2", ConvBN(c1, c2, 3, 2))
    cin = c2
    stages, chans = [], []
    for i, stage in enumerate(arch.stages):
        mod, cin = make_stage(stage.kind, cin, [(b.inner, b.out) for b in stage.blocks], 2, True, CAFFE_BN_EPS)
        stages.append((f"res{i + 2}", mod))
        chans.append(cin)
    return ResidualBackbone(stem_mod, stages, cin, chans)


def df_classifier(arch, stem=(32, 64), num_classes: int = 1000) -> Classifier:
    return Classifier(df_backbone(arch, stem), num_classes)


def resnet(kind: str, depths: list[int], num_classes: int = 1000) -> Classifier:
    """torchvision-style ResNet (7x7/2 stem + max-pool, four stages, BN eps 1e-5)."""
    eps = 1e-5
    stem = nn.Sequential()
    stem.add_module("conv1", ConvBN(3, 64, 7, 2, eps=eps))
    stem.add_module("maxpool", nn.MaxPool2d(3, 2, 1))
    expansion = 1 if kind == "basic" else 4
    cin, stages, chans = 64, [], []
    for i, (n, width) in enumerate(zip(depths, (64, 128, 256, 512))):
        mod, cin = make_stage(kind, cin, [(width, width * expansion)] * n, 1 if i == 0 else 2, False, eps)
        stages.append((f"layer{i + 1}", mod))
        chans.append(cin)
    return Classifier(ResidualBackbone(stem, stages, cin, chans), num_classes)
