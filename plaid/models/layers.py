"""Building blocks shared by every builder."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

CAFFE_BN_EPS = 1e-4  # the released DF / PL1A models were trained in Caffe


class ConvBN(nn.Module):
    """conv (no bias) -> BN -> optional ReLU. ``groups=-1`` means depthwise."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1,
                 relu: bool = True, eps: float = CAFFE_BN_EPS, padding: int | None = None) -> None:
        super().__init__()
        groups = cin if groups == -1 else groups
        pad = k // 2 if padding is None else padding
        self.conv = nn.Conv2d(cin, cout, k, stride, pad, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=eps)
        self.relu = nn.ReLU(inplace=True) if relu else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return self.relu(x) if self.relu is not None else x


class SepConvBN(nn.Module):
    """Depthwise 3x3 (+BN) then pointwise 1x1 (+BN+ReLU): PL1A-Seg's fusion conv."""

    def __init__(self, cin: int, cout: int, eps: float = CAFFE_BN_EPS) -> None:
        super().__init__()
        self.dw = ConvBN(cin, cin, 3, groups=-1, relu=False, eps=eps)
        self.pw = ConvBN(cin, cout, 1, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pw(self.dw(x))


def bilinear_kernel(k: int) -> torch.Tensor:
    """The Caffe/FCN bilinear filler for a k x k transposed conv."""
    factor = (k + 1) // 2
    center = factor - 1 if k % 2 == 1 else factor - 0.5
    og = torch.arange(k, dtype=torch.float32)
    f = 1 - (og - center).abs() / factor
    return f[:, None] * f[None, :]


class BilinearUp(nn.ConvTranspose2d):
    """×s bilinear upsampling as the released models do it: a depthwise transposed conv
    (kernel 2s, stride s, pad s/2) with fixed bilinear weights, not trained."""

    def __init__(self, channels: int, scale: int) -> None:
        k = 2 * scale
        super().__init__(channels, channels, k, stride=scale, padding=scale // 2,
                         groups=channels, bias=False)
        with torch.no_grad():
            if not self.weight.is_meta:
                self.weight.copy_(bilinear_kernel(k).expand_as(self.weight))
        self.weight.requires_grad_(False)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The transposed conv's values, computed as zero-pad by one, bilinear resize with
        half-pixel centres, crop. Caffe's bilinear filler *is* that interpolation, with zeros
        beyond the border; written this way converters keep it one op: onnx2tf turns a
        depthwise ConvTranspose into a SPLIT and one TRANSPOSE_CONV per channel (the x8 of 19
        channels at 384x640 took 278 ms on this host), a resize into RESIZE_BILINEAR.
        Weights and MACs are counted as the deconv's (the module is still one)."""
        s = self.scale
        h, w = int(x.shape[-2]), int(x.shape[-1])
        y = F.interpolate(F.pad(x, (1, 1, 1, 1)), size=((h + 2) * s, (w + 2) * s), mode="bilinear",
                          align_corners=False)
        return y[..., s:s + s * h, s:s + s * w]


def _pool_matrix(n: int, bins: int, device, dtype) -> torch.Tensor:
    """Row i averages input positions [floor(i*n/bins), ceil((i+1)*n/bins))."""
    m = torch.zeros(bins, n, dtype=dtype, device="cpu")
    for i in range(bins):
        lo, hi = (i * n) // bins, math.ceil((i + 1) * n / bins)
        m[i, lo:hi] = 1.0 / (hi - lo)
    return m.to(device)


class AdaptiveAvgPool(nn.Module):
    """Adaptive average pooling to a fixed grid, clamped to the map size. A plain
    AvgPool when the grid divides the map; otherwise two constant matmuls (same windows
    as torch's adaptive pooling) so that ONNX/TFLite converters see simple ops."""

    def __init__(self, grid: tuple[int, int]) -> None:
        super().__init__()
        self.grid = tuple(grid)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = int(x.shape[-2]), int(x.shape[-1])
        bh, bw = min(self.grid[0], h), min(self.grid[1], w)
        if h % bh == 0 and w % bw == 0:
            return F.avg_pool2d(x, (h // bh, w // bw))
        if x.is_meta:
            return x.new_empty(*x.shape[:-2], bh, bw)
        ph = _pool_matrix(h, bh, x.device, x.dtype)
        pw = _pool_matrix(w, bw, x.device, x.dtype)
        return torch.matmul(torch.matmul(ph, x), pw.t())

    def extra_repr(self) -> str:
        return f"grid={self.grid}"


class ShuffleSplit(nn.Module):
    """ShuffleNetV2's channel shuffle and channel split in one step, at the input of a
    stride-1 unit, as the reference implementation does it (Megvii's ShuffleNet-Series
    ``ShuffleV2Block``): the even channels are the half kept, the odd ones the half the
    branch works on. Returns ``(keep, work)``, NCHW.

    Written channels-last (to NHWC, channels as (C/2, 2) pairs, split the pair axis, back to
    NCHW) so that onnx2tf keeps NHWC and the TFLite graph is RESHAPE, SPLIT, RESHAPEs between
    convolutions, every op of which XNNPACK delegates: a whole PL1A or PL1A-Seg net is one
    delegated partition with no Transpose (tests/test_convert.py). Forms tried before: the NCHW
    view/transpose/view made onnx2tf wrap convolutions in Transposes; a channel gather (units
    v2) stayed in NHWC but XNNPACK does not take GATHER, so every unit split the delegated
    graph; a channels-last shuffle at each unit's output (reverted units v3) left NCHW
    Transposes around the next unit's channel split, next to its convolutions, and turned a
    stride-2 unit's depthwise conv into a grouped CONV_2D."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, c, h, w = x.shape
        keep, work = x.permute(0, 2, 3, 1).reshape(n, h, w, c // 2, 2).chunk(2, dim=4)
        return (keep.reshape(n, h, w, c // 2).permute(0, 3, 1, 2),
                work.reshape(n, h, w, c // 2).permute(0, 3, 1, 2))


class StagedBackbone(nn.Module):
    """A stem, then named stages; ``forward`` returns every stage's output (strides
    8/16/32 for the DF and PL1A backbones). Subclasses set ``stem``, ``stage_names``,
    ``stage_channels`` and ``out_channels`` and add the stages as submodules."""

    stage_names: list[str]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        feats = []
        for name in self.stage_names:
            x = getattr(self, name)(x)
            feats.append(x)
        return feats


class NHWCOut(nn.Module):
    """Permute a module's NCHW output to NHWC: onnx2tf then drops its layout Transpose, so
    a latency unit costs what it costs inside a whole network."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, *x):
        return self.inner(*x).permute(0, 2, 3, 1)


class ClassifierHead(nn.Module):
    """Global average pool + FC."""

    def __init__(self, cin: int, num_classes: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(x), 1))


class Classifier(nn.Module):
    """backbone (returns its stride-8/16/32 features) + head on the last one."""

    def __init__(self, backbone: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = ClassifierHead(backbone.out_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x)[-1])
