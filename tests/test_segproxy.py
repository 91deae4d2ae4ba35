"""The segmentation proxy (plaid.train.segproxy) and its evaluator: mIoU, decoder training on
cached backbone features, the backbone from a checkpoint or the cache, the search's choice of
evaluator and dataset for a decoder space, the seg baselines."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch

from plaid.errors import UsageError
from plaid.spaces import get_space
from plaid.train import segproxy
from plaid.train.segproxy import SegProxyConfig, confusion_matrix, iou_scores, load_backbone

SMALL_BACKBONE = "pl1a:24x1-48x1-96x1"


@pytest.fixture(autouse=True)
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def small_space():
    return get_space("pl1aseg", backbone=SMALL_BACKBONE)


@pytest.fixture(scope="module")
def tiny_data():
    from plaid.train.datasets import load_seg_dataset

    return load_seg_dataset("digits-seg", 32, limit=96, val_limit=32)


def test_iou_from_a_hand_made_confusion_matrix():
    conf = np.array([[5, 1, 0], [2, 3, 0], [0, 0, 0]])  # rows truth, columns prediction; class 2 absent
    s = iou_scores(conf)
    assert s["iou"] == [pytest.approx(5 / 8), pytest.approx(3 / 6), None]
    assert s["miou"] == pytest.approx((5 / 8 + 3 / 6) / 2)  # the absent class is left out of the mean
    assert s["pixel_accuracy"] == pytest.approx(8 / 11) and s["pixels"] == 11
    # a class predicted but never in the truth has IoU 0 and counts
    assert iou_scores(np.array([[2, 2], [0, 0]]))["iou"] == [0.5, 0.0]
    assert iou_scores(np.zeros((3, 3), int))["miou"] == 0.0


def test_confusion_matrix_leaves_ignored_pixels_out():
    target = torch.tensor([[0, 1, 255], [2, 255, 1]])
    pred = torch.tensor([[0, 2, 1], [2, 0, 1]])
    conf = confusion_matrix(pred, target, 3, ignore_index=255).numpy()
    assert conf.sum() == 4  # two of the six pixels are ignored, whatever was predicted there
    assert conf.tolist() == [[1, 0, 0], [0, 1, 1], [0, 0, 1]]


def test_a_tiny_decoder_beats_the_all_background_baseline(small_space, tiny_data):
    cfg = SegProxyConfig(resolution=32, steps=300, lr=0.02)
    torch.manual_seed(0)
    net = small_space.build(small_space.decode(f"pl1aseg:{'-'.join(['64'] * 7)}@{SMALL_BACKBONE}"),
                            num_classes=tiny_data.num_classes)
    feats = segproxy.extract_features(net.backbone, tiny_data, cfg)
    assert [tuple(f.shape[1:]) for f in feats.train] == [(24, 8, 8), (48, 4, 4), (96, 2, 2)]  # stem unstrided
    frozen = {k: v.clone() for k, v in net.backbone.state_dict().items()}
    result = segproxy.train_decoder(net, feats, cfg, tiny_data.num_classes)
    y = tiny_data.val.y
    background = np.zeros((tiny_data.num_classes,) * 2, np.int64)
    np.add.at(background, (y.ravel(), np.zeros(y.size, np.int64)), 1)
    baseline = iou_scores(background)["miou"]
    assert result["miou"] > baseline + 0.01, (result["miou"], baseline)
    assert len(result["iou"]) == tiny_data.num_classes and result["steps"] == 300 and not result["diverged"]
    assert all(torch.equal(v, frozen[k]) for k, v in net.backbone.state_dict().items())  # backbone untouched
    short = SegProxyConfig(resolution=32, steps=20, lr=0.02)
    twice = []
    for _ in range(2):  # the same seed, the same mIoU
        torch.manual_seed(0)
        again = small_space.build(small_space.decode(f"pl1aseg:{'-'.join(['32'] * 7)}@{SMALL_BACKBONE}"),
                                  num_classes=tiny_data.num_classes)
        again.backbone.load_state_dict(frozen)
        twice.append(segproxy.train_decoder(again, feats, short, tiny_data.num_classes))
    assert twice[0]["miou"] == twice[1]["miou"] and twice[0]["loss"] == twice[1]["loss"]


def test_segnet_decode_is_forward_after_the_backbone(small_space):
    net = small_space.build(small_space.decode(f"pl1aseg:{'-'.join(['16'] * 7)}@{SMALL_BACKBONE}"), num_classes=5)
    net.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        assert torch.equal(net(x), net.decode(*net.backbone(x)[-3:]))
        assert net.decode(*net.backbone(x)[-3:], upsample=False).shape == (2, 5, 8, 8)


def test_backbone_checkpoint_loads_and_a_wrong_file_is_one_line(small_space, tmp_path):
    bspace = small_space.backbone_space
    classifier = bspace.build(bspace.decode(SMALL_BACKBONE), num_classes=10)
    torch.save(classifier.state_dict(), tmp_path / "classifier.pt")  # backbone.* and head.* keys
    torch.save({"state_dict": classifier.backbone.state_dict(), "plaid": {"kind": "x"}}, tmp_path / "wrapped.pt")
    for name in ("classifier.pt", "wrapped.pt"):
        fresh = bspace.build(bspace.decode(SMALL_BACKBONE), num_classes=1).backbone
        load_backbone(fresh, tmp_path / name, SMALL_BACKBONE)
        assert all(torch.equal(v, classifier.backbone.state_dict()[k]) for k, v in fresh.state_dict().items())
    other = bspace.build(bspace.decode("pl1a:24x1-48x2-96x1"), num_classes=10)
    torch.save(other.state_dict(), tmp_path / "other.pt")
    (tmp_path / "notes.txt").write_text("not a checkpoint\n")
    target = bspace.build(bspace.decode(SMALL_BACKBONE), num_classes=1).backbone
    for name, fragment in (("other.pt", "does not fit the backbone"), ("notes.txt", "is not a torch checkpoint"),
                           ("missing.pt", "no such file")):
        with pytest.raises(UsageError, match=fragment) as err:
            load_backbone(target, tmp_path / name, SMALL_BACKBONE)
        assert "\n" not in str(err.value)


def test_the_cached_backbone_is_trained_once(monkeypatch, tmp_path, small_space):
    from plaid.train import proxy
    from plaid.train.proxy import ProxyConfig

    monkeypatch.setenv("PLAID_CACHE", str(tmp_path / "cache"))
    calls = []

    def fake_train(model, dataset, cfg, progress=None):
        calls.append(cfg)
        time.sleep(0.3)  # long enough for a second thread to arrive while the first trains
        return {"top1": 0.5, "loss": 1.0, "val_loss": 1.0, "epochs": 1, "steps": 1, "train_seconds": 0.3,
                "params": 1, "diverged": False, "unstrided": 1}

    monkeypatch.setattr(proxy, "train_and_evaluate", fake_train)
    cfg = ProxyConfig(epochs=1)
    paths = []
    threads = [threading.Thread(target=lambda: paths.append(segproxy.cached_backbone(
        small_space.backbone_space, SMALL_BACKBONE, cfg, train_limit=64))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(set(paths)) == 1 and paths[0].is_file()
    assert paths[0].parent == tmp_path / "cache" / "backbones"
    assert segproxy.cached_backbone(small_space.backbone_space, SMALL_BACKBONE, cfg, train_limit=64) == paths[0]
    assert len(calls) == 1  # reused
    fresh = small_space.backbone_space.build(small_space.backbone_space.decode(SMALL_BACKBONE), num_classes=1)
    load_backbone(fresh.backbone, paths[0], SMALL_BACKBONE)  # the cached file is a loadable checkpoint
    other = segproxy.cached_backbone(small_space.backbone_space, SMALL_BACKBONE, ProxyConfig(epochs=2),
                                     train_limit=64)
    assert other != paths[0] and len(calls) == 2  # other settings, another backbone
    assert not list((tmp_path / "cache" / "backbones").glob("*.tmp"))


def test_the_search_picks_the_segmentation_proxy_for_a_decoder_space(tmp_path):
    from plaid.search.run import SearchConfig
    from plaid.train.evaluators import SegProxyEvaluator, evaluator_for_search, make_evaluator

    space = get_space("pl1aseg")
    bspace = space.backbone_space
    torch.manual_seed(0)
    torch.save(bspace.build(bspace.decode(space.backbone), num_classes=10).state_dict(), tmp_path / "bb.pt")
    run = tmp_path / "run"
    cfg = SearchConfig(space="pl1aseg", train_limit=32, backbone_checkpoint=str(tmp_path / "bb.pt"))
    ev = evaluator_for_search(cfg, space, run)
    assert isinstance(ev, SegProxyEvaluator) and ev.dataset.name == "digits-seg"
    assert ev.cfg.backbone_unstride == 0  # a user's backbone runs as built
    assert ev.describe()["metric"] == "mIoU" and ev.describe()["backbone"]["sha256"]
    with pytest.raises(UsageError, match="segproxy"):
        make_evaluator("proxy", space, dataset=ev.dataset, cfg=None)
    ev.cfg = SegProxyConfig(steps=5, backbone_unstride=0)  # a short training: the files, not the figure
    arch = "pl1aseg:16-16-16-16-16-16-16@" + space.backbone
    miou = ev(arch)
    assert 0.0 <= miou <= 1.0 and ev(arch) == miou
    (doc_path,) = (run / "segmentation").glob("*.json")
    assert doc_path == ev.iou_path(arch)
    doc = json.loads(doc_path.read_text())
    assert doc["arch"] == arch and doc["miou"] == miou and set(doc["iou"]) == set(ev.dataset.classes)
    from types import SimpleNamespace

    from plaid.search.baselines import beaten
    from plaid.search.run import _front_entry, metric_label

    entry = _front_entry(SimpleNamespace(key=arch, to_json=lambda: {"arch": arch}), ev)  # a front member
    assert entry["per_class_iou"] == str(doc_path) and entry["checkpoint"] == str(ev.checkpoint_path(arch))
    assert metric_label(space) == "mIoU" and metric_label(get_space("pl1a")) == "accuracy"
    line, = beaten([], [{"name": "pl1a-seg", "latency": 2.0, "accuracy": 0.3}], metric_label(space))
    assert "mIoU 0.3000" in line
    record = torch.load(ev.checkpoint_path(arch), weights_only=True)
    assert record["plaid"]["task"] == "segmentation" and "backbone.stem.dw1.conv.weight" in record["state_dict"]
    torch.save(bspace.build(bspace.decode(SMALL_BACKBONE), num_classes=10).state_dict(), tmp_path / "other.pt")
    wrong = SearchConfig(space="pl1aseg", train_limit=32, backbone_checkpoint=str(tmp_path / "other.pt"))
    with pytest.raises(UsageError, match="does not fit the backbone"):
        evaluator_for_search(wrong, space, tmp_path / "run2")


def test_dataset_follows_the_space_task():
    from plaid.train.evaluators import dataset_for

    seg, cls = get_space("pl1aseg"), get_space("pl1a")
    assert dataset_for("", seg) == "digits-seg" and dataset_for("", cls) == "digits-affine"
    assert dataset_for("cityscapes:/data/cs", seg) == "cityscapes:/data/cs"
    with pytest.raises(UsageError, match="'digits-affine' is a classification dataset"):
        dataset_for("digits-affine", seg)
    with pytest.raises(UsageError, match="'digits-seg' is a segmentation dataset"):
        dataset_for("digits-seg", cls)


@pytest.mark.parametrize("args,fragment", [
    (["--space", "pl1aseg", "--dataset", "digits-affine"], "is a classification dataset"),
    (["--space", "pl1a", "--dataset", "segfolder:/nowhere"], "is a segmentation dataset"),
    (["--space", "pl1a", "--backbone-checkpoint", __file__], "for segmentation spaces"),
    (["--space", "pl1aseg", "--backbone-checkpoint", "/nowhere/bb.pt"], "no such file"),
])
def test_search_cli_task_mistakes_are_one_line(args, fragment, tmp_path):
    out = subprocess.run([sys.executable, "-m", "plaid", "search", "--runs-dir", str(tmp_path), *args],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, (out.returncode, out.stderr)
    assert len(out.stderr.strip().splitlines()) == 1 and fragment in out.stderr, out.stderr
    assert not list(tmp_path.iterdir())  # no run folder left behind


def test_the_search_backbone_option_sets_the_decoder_space_backbone():
    from plaid.search.run import SearchConfig, search_space
    from plaid.zoo import DF1

    space = search_space(SearchConfig(space="dfseg", backbone="df1"))
    assert space.name == "dfseg" and space.backbone == space.backbone_space.encode(space.backbone_space.decode(DF1))
    assert search_space(SearchConfig(space="dfseg", backbone=DF1)) is space
    assert search_space(SearchConfig(space="dfseg")).backbone != space.backbone
    with pytest.raises(UsageError, match="--backbone is for decoder spaces"):
        search_space(SearchConfig(space="pl1a", backbone="df1"))
    with pytest.raises(UsageError, match="not a df architecture"):
        search_space(SearchConfig(space="dfseg", backbone="pl1a:48x4-96x8-192x4"))


def test_seg_baselines_are_the_zoo_nets_on_the_space_backbone():
    from plaid.search.baselines import space_baselines
    from plaid.zoo import DF1

    assert [n for n, _ in space_baselines(get_space("pl1aseg"))] == ["pl1a-seg"]
    assert [n for n, _ in space_baselines(get_space("dfseg"))] == ["df2-seg1", "df2-seg2"]  # DF2 by default
    assert [n for n, _ in space_baselines(get_space("dfseg", backbone=DF1))] == ["df1-seg"]
    assert [n for n, _ in space_baselines(get_space("pl1a"))] == ["pl1a-seg backbone"]
