"""The export-friendly building blocks compute what they claim."""

import torch
import torch.nn.functional as F

from plaid.models.layers import AdaptiveAvgPool, BilinearUp, ShuffleSplit, bilinear_kernel


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


def test_shuffle_split_keeps_the_even_channels_and_works_on_the_odd():
    x = torch.arange(8.0).view(1, 8, 1, 1) + torch.zeros(1, 1, 3, 5)
    keep, work = ShuffleSplit()(x)
    assert keep.shape == work.shape == (1, 4, 3, 5)
    assert keep[0, :, 2, 4].tolist() == [0, 2, 4, 6] and work[0, :, 1, 3].tolist() == [1, 3, 5, 7]


def _fates(split, c: int, units: int) -> dict[int, list]:
    """Route channel labels through a stage: a stride-2 unit's output (labels 0..c-1; its
    two branches give c/2 each), then ``units`` stride-1 units (``split``: input -> keep,
    work; a unit's output is [keep, its branch]). Per producer (0, 1: the stride-2 unit's
    branches, k + 2: the k-th stride-1 unit), the sorted units at which its channels were
    taken into a branch (None: never)."""
    labels = torch.arange(float(c)).view(1, c, 1, 1)
    producer = {i: int(i >= c // 2) for i in range(c)}
    taken: dict[int, object] = {}
    for k in range(units):
        keep, work = split(labels)
        for v in work.flatten().tolist():
            taken[int(v)] = k
        new = torch.arange(float(c // 2)).view(1, c // 2, 1, 1) + len(producer)
        producer.update({int(v): k + 2 for v in new.flatten().tolist()})
        labels = torch.cat([keep, new], dim=1)
    fates: dict[int, list] = {}
    for label, p in producer.items():
        fates.setdefault(p, []).append(taken.get(label))
    return {p: sorted(f, key=lambda t: (t is None, t)) for p, f in fates.items()}


def test_shuffle_split_routes_channels_as_shufflenet_v2_does():
    """The same network as torchvision's ShuffleNetV2 (shuffle after every unit, then
    chunk), up to relabelling each branch's output channels: along a stage, every producer's
    channels are taken into later branches at the same units (1x1 convs see a branch's input
    in any order). A split that is not a shuffle (halves; middle quarters swapped) differs."""
    def torchvision(x):  # the shuffle at the end of the unit before (a stride-2 one too), then the chunk
        n, c, h, w = x.shape
        return x.view(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w).chunk(2, dim=1)

    def quarters(x):
        a, b, c_, d = x.chunk(4, dim=1)
        return torch.cat([a, c_], dim=1), torch.cat([b, d], dim=1)

    for c, units in ((16, 6), (48, 8), (96, 12)):
        want = _fates(torchvision, c, units)
        assert _fates(ShuffleSplit(), c, units) == want
        assert _fates(lambda x: x.chunk(2, dim=1), c, units) != want
        assert _fates(quarters, c, units) != want


def test_shuffle_split_mixes_a_units_identity_half_with_its_branch():
    c = 16
    keep, work = ShuffleSplit()(torch.arange(float(c)).view(1, c, 1, 1))
    for half in (keep, work):  # half of each half comes from the identity half
        assert sorted(v < c // 2 for v in half.flatten().tolist()) == [False] * (c // 4) + [True] * (c // 4)
