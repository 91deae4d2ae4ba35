"""The export-friendly building blocks compute what they claim."""

import torch
import torch.nn.functional as F

from plaid.models.layers import AdaptiveAvgPool, BilinearUp, ChannelShuffle, bilinear_kernel


def test_adaptive_pool_matches_torch_semantics():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 12, 20)
    for grid in [(1, 2), (2, 4), (4, 8), (8, 16), (6, 10), (5, 7), (12, 20), (16, 32)]:
        got = AdaptiveAvgPool(grid)(x)
        want = F.adaptive_avg_pool2d(x, (min(grid[0], 12), min(grid[1], 20)))
        torch.testing.assert_close(got, want)


def test_bilinear_up_is_fixed_bilinear_interpolation_inside():
    up = BilinearUp(3, 2)
    assert not up.weight.requires_grad
    x = torch.randn(1, 3, 8, 8)
    y = up(x)
    assert y.shape == (1, 3, 16, 16)
    want = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    # away from the border (where the deconv sees zero padding) the two agree
    torch.testing.assert_close(y[..., 1:-1, 1:-1], want[..., 1:-1, 1:-1])
    k = bilinear_kernel(4)
    assert torch.allclose(k.sum(), torch.tensor(4.0))  # 2x2 outputs per input, weight 1 each


def test_bilinear_up_computes_the_transposed_conv_everywhere():
    """Pad + resize + crop gives the released deconv's values, borders included (so
    checkpoints and parity figures are unchanged), for every scale the models use."""
    torch.manual_seed(0)
    for scale, (h, w) in [(2, (8, 8)), (2, (3, 5)), (8, (4, 6)), (8, (48, 80)), (4, (1, 1))]:
        up = BilinearUp(5, scale)
        x = torch.randn(2, 5, h, w)
        want = F.conv_transpose2d(x, up.weight, stride=scale, padding=scale // 2, groups=5)
        torch.testing.assert_close(up(x), want, rtol=1e-5, atol=1e-5)


def test_bilinear_up8_shape():
    assert BilinearUp(19, 8)(torch.zeros(1, 19, 4, 6)).shape == (1, 19, 32, 48)


def test_channel_shuffle_interleaves_halves():
    x = torch.arange(6.0).view(1, 6, 1, 1)
    assert ChannelShuffle(2)(x).flatten().tolist() == [0, 3, 1, 4, 2, 5]
