"""torch modules for micro-benchmark units (imports torch; kept apart from the keys)."""

from __future__ import annotations

from torch import nn

from plaid.models.layers import ClassifierHead, ConvBN
from plaid.models.resnets import BasicBlock, Bottleneck
from plaid.models.shufflenet import ShuffleUnit


class NHWCOut(nn.Module):
    """Permute the NCHW output to NHWC: onnx2tf then drops its layout Transpose, so a
    unit costs what it costs inside a whole network."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x).permute(0, 2, 3, 1)


def build_unit(u) -> nn.Module:
    import torch

    torch.manual_seed(0)  # deterministic weights -> deterministic ONNX bytes -> cache hits
    if u.kind == "head":
        return ClassifierHead(u.cin, u.cout).eval()
    if u.kind == "stem" and u.space == "df":
        m = nn.Sequential(ConvBN(3, u.mid, 3, 2), ConvBN(u.mid, u.cout, 3, 2))
    elif u.kind == "stem":
        m = nn.Sequential(ConvBN(3, 3, 3, 2, groups=-1, relu=False), ConvBN(3, u.mid, 1),
                          ConvBN(u.mid, u.mid, 3, 2, groups=-1, relu=False), ConvBN(u.mid, u.cout, 3))
    elif u.kind == "basic":
        m = BasicBlock(u.cin, u.cout, u.cout, u.stride, u.proj, 1e-4)
    elif u.kind == "bottleneck":
        m = Bottleneck(u.cin, u.mid, u.cout, u.stride, u.proj, 1e-4)
    elif u.kind == "shuffle":
        m = ShuffleUnit(u.cin, u.cout, u.stride)
    else:
        raise ValueError(f"unknown unit kind {u.kind!r}")
    return NHWCOut(m).eval()
