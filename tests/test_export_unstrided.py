"""`plaid export` of a search proxy checkpoint: the proxy trains at 32x32 with the stem's
last stride-2 convolution at stride 1 (its record says so). Exported as named, the net is
not the one trained (a warning says so); with --as-trained it is, and its held-out top-1
in the exported file is the trained one's."""

import json
from pathlib import Path

import pytest
import torch

from conftest import run_plaid

ARCH = "pl1a:24x1-48x1-96x1"
RES = 32

pytestmark = [pytest.mark.tflite, pytest.mark.slow]


@pytest.fixture(scope="module")
def proxy_checkpoint(tmp_path_factory) -> Path:
    """A proxy checkpoint as a search writes it: the proxy's own stem setting (1 stride at 1)
    and the record proxy_made() gives."""
    from plaid.spaces import parse_arch
    from plaid.train.datasets import load_dataset
    from plaid.train.proxy import ProxyConfig, save_checkpoint, train_and_evaluate
    from plaid.train.provenance import proxy_made

    torch.manual_seed(0)
    space, arch = parse_arch(ARCH)
    model = space.build(arch, num_classes=10)
    data = load_dataset("digits", RES)
    cfg = ProxyConfig(epochs=3, resolution=RES, steps=120, threads=None, stem_unstride=1)
    result = train_and_evaluate(model, data, cfg)
    assert result["unstrided"] == 1 and result["top1"] > 0.8, result
    path = tmp_path_factory.mktemp("proxy") / "proxy.pt"
    return save_checkpoint(model, path, proxy_made(ARCH, data, cfg, result))


def _export(ckpt: Path, out: Path, *extra: str):
    proc = run_plaid("export", ARCH, "--checkpoint", str(ckpt), "--format", "tflite-fp32", "--calib", "digits",
                     "--parity-samples", "200", "--no-measure", "-o", str(out), *extra)
    manifest = json.loads((out / "manifest.json").read_text()) if (out / "manifest.json").is_file() else None
    return proc, manifest


def test_as_trained_exports_the_net_the_proxy_trained(proxy_checkpoint, tmp_path):
    proc, manifest = _export(proxy_checkpoint, tmp_path / "trained", "--as-trained")
    assert proc.returncode == 0, proc.stderr
    assert "exporting the net as trained" in proc.stderr
    assert manifest["model"]["stem_unstride"] == 1
    held = manifest["artifacts"][0]["parity"]["held_out"]
    assert held["top1_torch"] > 0.8 and abs(held["top1_change"]) <= 0.02, held
    assert "Exported as trained" in (tmp_path / "trained" / "README.md").read_text()


def test_as_named_warns_that_the_accuracy_was_never_measured(proxy_checkpoint, tmp_path):
    proc, manifest = _export(proxy_checkpoint, tmp_path / "named")
    assert "--as-trained" in proc.stderr and "stride 1" in proc.stderr
    if manifest is not None:  # parity compares the file with the same net, so it may pass
        assert manifest["model"]["stem_unstride"] == 0


def test_as_trained_without_an_unstrided_record_is_one_line(tmp_path):
    from plaid.spaces import parse_arch
    from plaid.train.proxy import save_checkpoint

    space, arch = parse_arch(ARCH)
    plain = save_checkpoint(space.build(arch, num_classes=10), tmp_path / "plain.pt")
    for args in (["--checkpoint", str(plain), "--as-trained"], ["--as-trained"]):
        proc = run_plaid("export", ARCH, *args, "--format", "tflite-fp32", "-o", str(tmp_path / "out"))
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert "--as-trained" in proc.stderr and "Traceback" not in proc.stderr
        assert not (tmp_path / "out").exists()


def test_masks_are_scaled_to_an_output_a_whole_multiple_of_their_size():
    """A segmentation net exported --as-trained outputs 2x its input per stem stride at 1:
    the held-out masks are scaled up to it (nearest), other sizes are left out."""
    from types import SimpleNamespace

    import numpy as np

    from plaid.export.pipeline import _held_out_labels

    masks = np.arange(2 * 2 * 3).reshape(2, 2, 3) % 5
    data = SimpleNamespace(labels=masks, info={"ignore_index": 255})
    scaled = _held_out_labels(data, np.zeros((2, 5, 4, 6)))
    assert scaled.shape == (2, 4, 6) and (scaled[:, ::2, ::2] == masks).all() and (scaled[:, 1::2, 1::2] == masks).all()
    assert _held_out_labels(data, np.zeros((2, 5, 2, 3))) is masks
    assert _held_out_labels(data, np.zeros((2, 5, 4, 3))) is None  # not the same factor both ways
    assert _held_out_labels(data, np.zeros((2, 4, 2, 3))) is None  # class 4 has no output
