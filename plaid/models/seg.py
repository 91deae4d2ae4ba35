"""DF-Seg / PL1A-Seg: backbone + PSP + two-step decoder + score conv at 1/8 (+ ×8 up)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from plaid.models.layers import AdaptiveAvgPool, BilinearUp, ConvBN, SepConvBN


def fusion_conv(cin: int, cout: int, separable: bool) -> nn.Module:
    return SepConvBN(cin, cout) if separable else ConvBN(cin, cout, 3)


class PSP(nn.Module):
    """Pyramid pooling with adaptive bins: each branch pools to a fixed grid (clamped to
    the map), 1x1 conv, bilinear back; concat with the input; 3x3 fusion conv."""

    def __init__(self, cin: int, branch: int, bins, separable: bool) -> None:
        super().__init__()
        self.pools = nn.ModuleList(AdaptiveAvgPool(tuple(b)) for b in bins)
        self.convs = nn.ModuleList(ConvBN(cin, branch, 1) for _ in bins)
        self.fuse = fusion_conv(cin + branch * len(bins), cin, separable)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        outs = [x]
        for pool, conv in zip(self.pools, self.convs):
            outs.append(F.interpolate(conv(pool(x)), size=size, mode="bilinear", align_corners=False))
        return self.fuse(torch.cat(outs, dim=1))


class SegNet(nn.Module):
    def __init__(self, backbone: nn.Module, widths: dict[str, int], style, num_classes: int, d8: bool) -> None:
        super().__init__()
        c8, c16, c32 = backbone.stage_channels[-3:]
        w = widths
        self.backbone = backbone
        self.psp = PSP(c32, c32 // style.psp_div, style.psp_bins, style.separable)
        self.wc3 = ConvBN(c8, w["wc3"], 1)
        self.wc4 = ConvBN(c16, w["wc4"], 1)
        self.wc5 = ConvBN(c32, w["wc5"], 1)
        self.proj4 = ConvBN(w["wc5"], w["proj4"], 1)
        self.up4 = BilinearUp(w["proj4"], 2)
        self.dec4 = fusion_conv(w["wc4"] + w["proj4"], w["dec4"], style.separable)
        self.proj3 = ConvBN(w["dec4"], w["proj3"], 1)
        self.up3 = BilinearUp(w["proj3"], 2)
        self.dec3 = fusion_conv(w["wc3"] + w["proj3"], w["dec3"], style.separable)
        self.score = nn.Conv2d(w["dec3"], num_classes, 3, padding=1)
        self.up8 = None if d8 else BilinearUp(num_classes, 8)
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(*self.backbone(x)[-3:])

    def decode(self, f8: torch.Tensor, f16: torch.Tensor, f32: torch.Tensor, upsample: bool = True) -> torch.Tensor:
        """Everything after the backbone, on its last three feature maps (strides 8/16/32),
        so a decoder can be trained on features computed once with a frozen backbone.
        ``upsample=False`` stops at the score map (1/8 of the input, as a -d8 net does)."""
        ctx = self.wc5(self.psp(f32))
        y = self.dec4(torch.cat([self.wc4(f16), self.up4(self.proj4(ctx))], dim=1))
        y = self.dec3(torch.cat([self.wc3(f8), self.up3(self.proj3(y))], dim=1))
        y = self.score(y)
        return self.up8(y) if upsample and self.up8 is not None else y

    def head_parameters(self):
        """The decoder's parameters (everything but the backbone's)."""
        inside = {id(p) for p in self.backbone.parameters()}
        return [p for p in self.parameters() if id(p) not in inside]


def seg_model(backbone: nn.Module, widths: dict[str, int], style, d8: bool = False,
              num_classes: int = 19) -> SegNet:
    """``backbone``: a classifier's feature extractor (its ``stage_channels`` name the widths
    of its outputs); ``widths``: the decoder's convs by name (wc3, wc4, wc5, proj4, dec4,
    proj3, dec3); ``style``: separable, psp_bins and psp_div. Plain values, so the model
    builder needs nothing from the spaces."""
    return SegNet(backbone, widths, style, num_classes, d8)
