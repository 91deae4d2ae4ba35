"""MACs and parameters counted from the built module (shape inference on the meta device,
so a 1024x2048 segmentation net costs milliseconds). MACs follow the paper: one
multiply-accumulate per weight use; transposed convs count input positions."""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Layer:
    name: str
    op: str  # conv | dwconv | gconv | deconv | fc | avgpool | maxpool
    cin: int
    cout: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    groups: int
    out_shape: tuple[int, ...]  # (C, H, W) or (C,)
    macs: int

    def signature(self) -> tuple:
        """What a reference layer dump pins down: op, channels, kernel, stride, groups, output."""
        return (self.op, self.cin, self.cout, self.kernel, self.stride, self.groups, self.out_shape)


@dataclass
class Profile:
    resolution: tuple[int, int]
    layers: list[Layer] = field(default_factory=list)
    macs: int = 0
    params: int = 0  # paper convention: conv / deconv / FC weights and biases, BN excluded
    params_all: int = 0  # every parameter tensor, BN affine included
    output_shape: tuple[int, ...] = ()

    def to_json(self) -> dict:
        return {
            "resolution": list(self.resolution),
            "macs": self.macs,
            "params": self.params,
            "params_all": self.params_all,
            "output_shape": list(self.output_shape),
            "layers": [asdict(layer) for layer in self.layers],
        }


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _clean(name: str) -> str:
    """``backbone.res2.0.conv1.conv`` -> ``res2.0.conv1``."""
    if name.startswith("backbone."):
        name = name[len("backbone."):]
    if name.endswith(".conv"):
        name = name[: -len(".conv")]
    return name


def profile(model, resolution: tuple[int, int]) -> Profile:
    """Run one shape-only forward of ``model`` at ``resolution`` (H, W), batch 1."""
    import torch
    from torch import nn

    from plaid.models.layers import AdaptiveAvgPool

    if any(not p.is_meta for p in model.parameters()):
        model = copy.deepcopy(model).to("meta")
    model.eval()
    prof = Profile(resolution=tuple(resolution))
    hooks = []

    def record(name: str):
        def hook(mod, inputs, output):
            x = inputs[0]
            out = tuple(int(s) for s in output.shape[1:])
            if isinstance(mod, nn.ConvTranspose2d):
                k, s, g = _pair(mod.kernel_size), _pair(mod.stride), mod.groups
                hin, win = int(x.shape[-2]), int(x.shape[-1])
                macs = hin * win * mod.in_channels * (mod.out_channels // g) * k[0] * k[1]
                op = "deconv"
            elif isinstance(mod, nn.Conv2d):
                k, s, g = _pair(mod.kernel_size), _pair(mod.stride), mod.groups
                macs = out[1] * out[2] * mod.out_channels * (mod.in_channels // g) * k[0] * k[1]
                op = "conv" if g == 1 else ("dwconv" if g == mod.in_channels == mod.out_channels else "gconv")
            elif isinstance(mod, nn.Linear):
                k, s, g = (1, 1), (1, 1), 1
                macs = mod.in_features * mod.out_features
                op = "fc"
                prof.layers.append(Layer(_clean(name), op, mod.in_features, mod.out_features, k, s, g, out, macs))
                return
            else:  # pooling
                cin = int(x.shape[1])
                ih, iw = int(x.shape[-2]), int(x.shape[-1])
                k = (ih // max(out[1], 1), iw // max(out[2], 1))
                s, g, macs = k, 1, 0
                if isinstance(mod, nn.MaxPool2d):
                    k, s = _pair(mod.kernel_size), _pair(mod.stride)
                op = "maxpool" if isinstance(mod, nn.MaxPool2d) else "avgpool"
                prof.layers.append(Layer(_clean(name), op, cin, out[0], k, s, g, out, macs))
                return
            prof.layers.append(Layer(_clean(name), op, mod.in_channels, mod.out_channels, k, s, g, out, macs))

        return hook

    kinds = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.MaxPool2d, nn.AdaptiveAvgPool2d, AdaptiveAvgPool)
    norms = []
    for name, mod in model.named_modules():
        if isinstance(mod, kinds):
            hooks.append(mod.register_forward_hook(record(name)))
        elif isinstance(mod, nn.modules.batchnorm._BatchNorm) and "forward" not in vars(mod):
            # shape-preserving and uncounted; on meta, torch runs it as a slow Python
            # decomposition (~85% of a profile), so it is skipped while counting
            mod.forward = _identity
            norms.append(mod)
    try:
        with torch.no_grad():
            out = model(torch.empty(1, 3, *resolution, device="meta"))
    finally:
        for h in hooks:
            h.remove()
        for mod in norms:
            del mod.forward
    prof.macs = sum(layer.macs for layer in prof.layers)
    weighted = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
    prof.params = sum(p.numel() for m in model.modules() if isinstance(m, weighted) for p in m.parameters())
    prof.params_all = sum(p.numel() for p in model.parameters())
    prof.output_shape = tuple(int(s) for s in out.shape[1:])
    return prof


def _identity(x):
    return x


def build_on_meta(build, *args, **kwargs):
    """Construct a module without allocating weights (for counting only)."""
    import torch

    with torch.device("meta"):
        return build(*args, **kwargs)
