"""`plaid export` of a segmentation net trained by the segmentation proxy: int8 calibrated on
digits-seg, and parity that scores both PyTorch and each exported file on the held-out
masks (mIoU and its change), not only against each other."""

import json

import numpy as np
import pytest
import torch

from conftest import run_plaid

ARCH = "pl1aseg:32-32-48-32-32-32-32@pl1a:24x1-48x1-96x1"
RES = 64

pytestmark = [pytest.mark.tflite, pytest.mark.slow]


@pytest.fixture(scope="module")
def seg_checkpoint(tmp_path_factory):
    """A small decoder net that segments digits-seg at 64x64: trained end to end here, 300
    steps of AdamW (a frozen, untrained backbone leaves every decoder at all-background),
    saved with the segmentation proxy's record (normalisation, resolution)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # restored below: a test file sharing this process expects torch's own count
    try:
        return _train_seg_checkpoint(tmp_path_factory)
    finally:
        torch.set_num_threads(threads)


def _train_seg_checkpoint(tmp_path_factory):
    import torch.nn.functional as F

    from plaid.spaces import parse_arch
    from plaid.train import segproxy
    from plaid.train.datasets import load_seg_dataset

    data = load_seg_dataset("digits-seg", RES, limit=256, val_limit=64)
    space, arch = parse_arch(ARCH)
    torch.manual_seed(0)
    net = space.build(arch, num_classes=data.num_classes)
    x, y = torch.from_numpy(data.train.x), torch.from_numpy(data.train.y)
    opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=0.01)
    gen = torch.Generator().manual_seed(0)
    net.train()
    for _ in range(300):
        i = torch.randint(0, len(x), (16,), generator=gen)
        loss = F.cross_entropy(net(x[i]), y[i], ignore_index=data.ignore_index)
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        pred = net(torch.from_numpy(data.val.x)).argmax(1)
    conf = segproxy.confusion_matrix(pred, torch.from_numpy(data.val.y), data.num_classes).numpy()
    result = {"steps": 300, **segproxy.iou_scores(conf)}
    cfg = segproxy.SegProxyConfig(resolution=RES, backbone_unstride=0)  # the net as built
    path = tmp_path_factory.mktemp("segckpt") / "seg.pt"
    segproxy.save_seg_checkpoint(net, path, ARCH, data, cfg, result)
    return path, result


def test_seg_export_reports_the_held_out_miou_of_each_format(seg_checkpoint, tmp_path):
    path, trained = seg_checkpoint
    out = tmp_path / "bundle"
    proc = run_plaid("export", ARCH, "--checkpoint", str(path), "--calib", "digits-seg", "--format",
                     "tflite-fp32,tflite-int8", "--calib-samples", "64", "--parity-samples", "48", "--no-measure",
                     "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "mIoU" in proc.stdout and "held-out" in proc.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"]["task"] == "segmentation" and manifest["input"]["height"] == RES
    parity = {a["format"]: a["parity"] for a in manifest["artifacts"]}
    for fmt in ("tflite-fp32", "tflite-int8"):
        h = parity[fmt]["held_out"]
        assert set(h) == {"miou_torch", "miou_exported", "miou_change"}
        assert h["miou_change"] == pytest.approx(h["miou_exported"] - h["miou_torch"])
        assert parity[fmt]["passed"]
    # a trained decoder: well above painting everything background (1 of 11 classes, ~0.08)
    assert parity["tflite-fp32"]["held_out"]["miou_torch"] > 0.15, (parity, trained["miou"])
    assert abs(parity["tflite-fp32"]["held_out"]["miou_change"]) < 1e-3
    assert parity["tflite-fp32"]["pixel_agreement"] > 0.999
    assert abs(parity["tflite-int8"]["held_out"]["miou_change"]) < 0.05
    # the same torch figure for every format: the same held-out batch and reference
    assert parity["tflite-fp32"]["held_out"]["miou_torch"] == parity["tflite-int8"]["held_out"]["miou_torch"]


def test_a_dataset_of_the_other_task_is_one_line(seg_checkpoint, tmp_path):
    path, _ = seg_checkpoint
    for args, text in ((["export", ARCH, "--checkpoint", str(path), "--calib", "digits"],
                        "is a classification dataset"),
                       (["export", "dflite", "--calib", "digits-seg", "--resolution", "32x32"],
                        "is a segmentation dataset")):
        proc = run_plaid(*args, "--no-measure", "-o", str(tmp_path / "b"))
        assert proc.returncode == 2 and text in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "b").exists()


def test_held_out_scores_leave_the_ignore_label_out():
    from plaid.export.parity import held_out

    labels = np.array([[[0, 1], [255, 1]]])  # one image, 2x2, one pixel unlabelled
    ref = np.zeros((1, 2, 2, 2))
    ref[0, 1] = [[0, 1], [1, 1]]  # torch: class 1 except the top-left pixel (right everywhere labelled)
    exp = ref.copy()
    exp[0, 1, 1, 0] = -1  # the export differs only on the ignored pixel
    h = held_out(exp, ref, labels, "segmentation")
    assert h == {"miou_torch": 1.0, "miou_exported": 1.0, "miou_change": 0.0}
    exp[0, 1, 0, 1] = -1  # ... and now on a labelled one: class 1 pixel read as 0
    h = held_out(exp, ref, labels, "segmentation")
    assert h["miou_exported"] == pytest.approx((1 / 2 + 1 / 2) / 2) and h["miou_change"] < 0
