"""plaid.train: dataset loaders, the proxy trainer and the accuracy evaluators, on real data
(scikit-learn's digits, CIFAR-10-format pickles and PNG folders written here) with real
training and real subprocesses."""

import json
import math
import os
import pickle
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from plaid.errors import PlaidError, UsageError
from plaid.spaces import get_space, parse_arch
from plaid.train.datasets import digits as datasets  # the digits loaders: AFFINE_*, _affine_images
from plaid.train.datasets import load_dataset
from plaid.train.evaluators import (EVALUATORS, CommandEvaluator, ProxyEvaluator, TableEvaluator, arch_sha1,
                                    make_evaluator)

SMALL = "pl1a:24x1-48x1-96x1"


def one_line(exc_info) -> str:
    msg = str(exc_info.value)
    assert "\n" not in msg and msg
    return msg


# ---- datasets: digits ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", 32)


def test_digits_shapes_and_normalisation(digits):
    assert digits.num_classes == 10 and digits.classes == [str(i) for i in range(10)]
    n_train, n_val = len(digits.train), len(digits.val)
    assert n_train + n_val == 1797 and abs(n_val / 1797 - 0.2) < 0.01
    assert digits.train.x.shape == (n_train, 3, 32, 32) and digits.train.x.dtype == np.float32
    assert digits.val.x.shape == (n_val, 3, 32, 32)
    assert digits.train.y.dtype == np.int64 and set(digits.train.y) == set(range(10))
    per_channel = digits.train.x.mean(axis=(0, 2, 3))
    assert np.all(np.abs(per_channel) < 1e-4)
    assert np.allclose(digits.train.x.std(axis=(0, 2, 3)), 1.0, atol=1e-3)
    assert 0.2 < digits.mean[0] < 0.4 and digits.std[0] > 0  # digits scaled to [0, 1] before normalising
    # stratified: every class is ~20% in val
    for c in range(10):
        share = (digits.val.y == c).sum() / ((digits.val.y == c).sum() + (digits.train.y == c).sum())
        assert abs(share - 0.2) < 0.02
    json.dumps(digits.describe())


def test_digits_split_is_seeded(digits):
    again = load_dataset("digits", 32, seed=0)
    assert np.array_equal(again.val.y, digits.val.y) and np.array_equal(again.val.x, digits.val.x)
    other = load_dataset("digits", 32, seed=1)
    assert not np.array_equal(other.val.x, digits.val.x)


def test_digits_limit_and_resolution():
    d = load_dataset("digits", 40, limit=100, seed=3)
    assert len(d.train) == 100 and d.train.x.shape[1:] == (3, 40, 40)
    assert set(d.train.y) == set(range(10))  # the subset keeps the class mix
    assert abs(len(d.val) - 359) <= 5  # limit caps the training samples only
    again = load_dataset("digits", 40, limit=100, seed=3)
    assert np.array_equal(again.train.x, d.train.x)


def test_digits_affine_is_one_fixed_harder_dataset():
    d = load_dataset("digits-affine", 16, seed=0)
    assert (len(d.train), len(d.val)) == (datasets.AFFINE_TRAIN, datasets.AFFINE_VAL)
    assert d.train.x.shape[1:] == (3, 16, 16) and d.num_classes == 10
    for split in (d.train, d.val):  # drawn with replacement, but every class is there in its share
        share = np.bincount(split.y, minlength=10) / len(split)
        assert share.min() > 0.06 and share.max() < 0.14
    again = load_dataset("digits-affine", 16, seed=7)  # the run seed does not change the dataset
    # same images up to float rounding (torch kernels may run on another thread count)
    assert np.allclose(again.train.x, d.train.x, atol=1e-4) and np.array_equal(again.val.y, d.val.y)
    plain = load_dataset("digits", 16, seed=0)
    assert 0.8 * plain.mean[0] < d.mean[0] < 1.5 * plain.mean[0]  # still digits on black, in [0, 1] before normalising
    # each image has its own map: no two train images of the first 200 are equal
    flat = d.train.x[:200].reshape(200, -1)
    assert len(np.unique(flat.round(4), axis=0)) == 200


def test_digits_affine_val_comes_from_digits_train_never_sees(monkeypatch):
    seen = []
    real = datasets._affine_images

    def spy(x, y, n, resolution, gen):
        seen.append(x.reshape(len(x), -1))
        return real(x, y, n, resolution, gen)

    monkeypatch.setattr(datasets, "_affine_images", spy)
    load_dataset("digits-affine", 8)
    train_src, val_src = seen
    assert len(train_src) + len(val_src) == 1797 and abs(len(val_src) / 1797 - 0.2) < 0.01
    common = {r.tobytes() for r in train_src} & {r.tobytes() for r in val_src}
    # sklearn's digits hold a few exact duplicates; the two pools share at most those
    assert len(common) <= 5


@pytest.mark.parametrize("spec, needle", [
    ("mnist", "unknown dataset 'mnist'"),
    ("digits:/somewhere", "takes no path"),
    ("digits-affine:/somewhere", "takes no path"),
    ("cifar10", "needs a path"),
    ("cifar10:/nonexistent/cifar", "/nonexistent/cifar does not exist"),
    ("imagefolder:/nonexistent/images", "/nonexistent/images does not exist"),
])
def test_bad_dataset_specs(spec, needle):
    with pytest.raises(UsageError) as exc:
        load_dataset(spec, 32)
    assert needle in one_line(exc)


# ---- datasets: CIFAR-10 python format ------------------------------------------------------------

def _cifar_images(n: int, start: int) -> np.ndarray:
    rng = np.random.default_rng(start)
    return rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)


def _write_pickle(path: Path, obj) -> None:
    with path.open("wb") as fh:
        pickle.dump(obj, fh)


@pytest.fixture()
def cifar_dir(tmp_path):
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    _write_pickle(root / "batches.meta", {b"label_names": names, b"num_cases_per_batch": 10, b"num_vis": 3072})
    for i, start in ((1, 0), (2, 10)):
        _write_pickle(root / f"data_batch_{i}", {
            b"batch_label": f"training batch {i} of 2".encode(), b"data": _cifar_images(10, start),
            b"labels": [(start + j) % 10 for j in range(10)],
            b"filenames": [f"img_{start + j}.png".encode() for j in range(10)]})
    _write_pickle(root / "test_batch", {b"batch_label": b"testing batch 1 of 1", b"data": _cifar_images(6, 99),
                                        b"labels": [0, 1, 2, 3, 4, 5], b"filenames": [b"t.png"] * 6})
    return root


def test_cifar10_loads_in_order(cifar_dir):
    d = load_dataset(f"cifar10:{cifar_dir}", 32)
    assert d.classes[0] == "airplane" and d.num_classes == 10
    assert d.train.x.shape == (20, 3, 32, 32) and d.val.x.shape == (6, 3, 32, 32)
    assert list(d.train.y) == [j % 10 for j in range(20)] and list(d.val.y) == [0, 1, 2, 3, 4, 5]
    # undoing the normalisation gives back the raw pixels in CHW order, batch 1 then batch 2
    mean = np.array(d.mean, np.float32)[None, :, None, None]
    std = np.array(d.std, np.float32)[None, :, None, None]
    raw = np.concatenate([_cifar_images(10, 0), _cifar_images(10, 10)]).reshape(20, 3, 32, 32) / 255.0
    assert np.allclose(d.train.x * std + mean, raw, atol=1e-5)


def test_cifar10_resized_and_limited(cifar_dir):
    d = load_dataset(f"cifar10:{cifar_dir}", 40, limit=10)
    assert d.train.x.shape == (10, 3, 40, 40) and d.val.x.shape == (6, 3, 40, 40)


def test_cifar10_refuses_foreign_globals(cifar_dir, tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return os.system, (f"touch {shlex.quote(str(marker))}",)

    _write_pickle(cifar_dir / "data_batch_2", {b"data": Evil(), b"labels": [0]})
    with pytest.raises(UsageError) as exc:
        load_dataset(f"cifar10:{cifar_dir}", 32)
    msg = one_line(exc)
    assert "data_batch_2" in msg and "refusing to load global" in msg and "system" in msg
    assert not marker.exists()


@pytest.mark.parametrize("damage, needle", [
    (lambda root: (root / "test_batch").write_bytes(b"\x80\x04garbage"), "not a CIFAR-10 python batch"),
    (lambda root: (root / "test_batch").unlink(), "test_batch is missing"),
    (lambda root: _write_pickle(root / "data_batch_1", {b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]}),
     "(N, 3072)"),
    (lambda root: _write_pickle(root / "data_batch_1", [1, 2, 3]), "not a dict"),
    (lambda root: _write_pickle(root / "data_batch_1", {b"data": _cifar_images(2, 0), b"labels": [0, 1, 2]}),
     "2 images but 3 labels"),
])
def test_cifar10_malformed(cifar_dir, damage, needle):
    damage(cifar_dir)
    with pytest.raises(UsageError) as exc:
        load_dataset(f"cifar10:{cifar_dir}", 32)
    assert needle in one_line(exc)


def test_cifar10_single_class_refused(cifar_dir):
    for i in (1, 2):
        _write_pickle(cifar_dir / f"data_batch_{i}", {b"data": _cifar_images(4, i), b"labels": [3] * 4})
    with pytest.raises(UsageError) as exc:
        load_dataset(f"cifar10:{cifar_dir}", 32)
    assert "fewer than 2 classes" in one_line(exc)


# ---- datasets: image folders ----------------------------------------------------------------------

COLOURS = {"blue": (0, 0, 230), "red": (230, 0, 0), "zgreen": (0, 200, 0)}


def _write_images(folder: Path, colour, n: int, suffix: str = ".png") -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("RGB", (12, 9), colour).save(folder / f"img{i}{suffix}")


def test_imagefolder_train_val(tmp_path):
    for name, colour in COLOURS.items():
        _write_images(tmp_path / "train" / name, colour, 3)
        _write_images(tmp_path / "val" / name, colour, 2, suffix=".jpg" if name == "red" else ".png")
    (tmp_path / "train" / "red" / "notes.txt").write_text("not an image")
    d = load_dataset(f"imagefolder:{tmp_path}", 16)
    assert d.classes == ["blue", "red", "zgreen"] and d.num_classes == 3
    assert d.train.x.shape == (9, 3, 16, 16) and d.val.x.shape == (6, 3, 16, 16)
    assert list(d.val.y) == [0, 0, 1, 1, 2, 2]
    # the dominant channel of each val image is its class colour's
    dominant = (d.val.x * np.array(d.std)[None, :, None, None] + np.array(d.mean)[None, :, None, None])
    assert list(dominant.mean(axis=(2, 3)).argmax(axis=1)) == [2, 2, 0, 0, 1, 1]


def test_imagefolder_without_val_is_split(tmp_path):
    for name, colour in COLOURS.items():
        _write_images(tmp_path / name, colour, 5)
    d = load_dataset(f"imagefolder:{tmp_path}", 8, val_fraction=0.4)
    assert len(d.train) == 9 and len(d.val) == 6 and list(d.val.y) == [0, 0, 1, 1, 2, 2]


def test_imagefolder_errors(tmp_path):
    _write_images(tmp_path / "only", (1, 2, 3), 3)
    with pytest.raises(UsageError) as exc:
        load_dataset(f"imagefolder:{tmp_path}", 8)
    assert "at least 2 class folders" in one_line(exc)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError) as exc:
        load_dataset(f"imagefolder:{tmp_path}", 8)
    assert "empty has no .png/.jpg/.jpeg images" in one_line(exc)
    (tmp_path / "empty" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(UsageError) as exc:
        load_dataset(f"imagefolder:{tmp_path}", 8)
    assert "broken.png: cannot read image" in one_line(exc)


# ---- the proxy trainer ----------------------------------------------------------------------------

def test_proxy_trains_deterministically_and_checkpoints(digits, tmp_path):
    import torch

    from plaid.train.proxy import ProxyConfig

    space, arch = parse_arch(SMALL)
    cfg = ProxyConfig(epochs=3, resolution=32, seed=0, threads=1)
    lines = []
    ev = ProxyEvaluator(space, digits, cfg, checkpoint_dir=tmp_path / "ckpt", log=lines.append)
    top1 = ev(arch)
    assert top1 > 0.8, top1  # 10 classes: chance is 0.1; this reaches ~0.95
    result = ev.results[SMALL]
    # 3 epochs of digits are 69 steps, under the 200-step floor: 200 steps in 9 passes
    assert result["steps"] == 200 and result["epochs"] == 9
    assert result["params"] > 10_000 and math.isfinite(result["loss"])
    assert len(lines) == 1 and SMALL in lines[0]
    assert ev(SMALL) == top1 and len(lines) == 1  # cached by arch string

    again = ProxyEvaluator(space, digits, cfg)(SMALL)
    assert again == top1  # same seed, same top-1

    path = tmp_path / "ckpt" / f"{arch_sha1(SMALL)}.pt"
    assert path.is_file() and result["checkpoint"] == str(path)
    model = space.build(arch, num_classes=10)
    saved = torch.load(path, weights_only=True)
    model.load_state_dict(saved["state_dict"])
    assert saved["plaid"]["kind"] == "proxy" and saved["plaid"]["arch"] == SMALL  # how it was made
    assert saved["plaid"]["stem_unstride"] == 1  # the proxy's top-1 is that of the net with one stem stride at 1
    from plaid.train.proxy import unstride_stem

    unstride_stem(model, saved["plaid"]["stem_unstride"])
    model.eval()
    with torch.inference_mode():
        pred = model(torch.from_numpy(digits.val.x)).argmax(dim=1).numpy()
    assert (pred == digits.val.y).mean() == pytest.approx(top1)
    json.dumps(ev.describe())


@pytest.mark.gpu
def test_proxy_on_cuda_is_deterministic(digits):
    import torch

    from plaid.train.proxy import ProxyConfig

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    space = get_space("pl1a")
    cfg = ProxyConfig(epochs=3, device="cuda")
    first = ProxyEvaluator(space, digits, cfg)(SMALL)
    assert first > 0.8 and ProxyEvaluator(space, digits, cfg)(SMALL) == first


def test_proxy_config_errors(digits):
    import torch

    from plaid.train.proxy import ProxyConfig, train_and_evaluate

    with pytest.raises(UsageError):
        ProxyConfig(epochs=0)
    space = get_space("pl1a")
    with pytest.raises(UsageError) as exc:
        ProxyEvaluator(space, digits, ProxyConfig(resolution=64))
    assert "resolution 32" in one_line(exc)
    if not torch.cuda.is_available():
        with pytest.raises(UsageError) as exc:
            train_and_evaluate(space.build(space.decode(SMALL), num_classes=10), digits, ProxyConfig(device="cuda"))
        assert "CUDA is not available" in one_line(exc)


@pytest.mark.parametrize("kw, needle", [
    ({"steps": 0}, "steps must be a positive integer"),
    ({"min_steps": -1}, "min_steps must be a non-negative integer"),
    ({"shift": 1.5}, "shift must be a non-negative integer"),
    ({"warmup": 1.0}, "warmup must be below 1"),
    ({"label_smoothing": -0.1}, "label_smoothing must be a non-negative number"),
])
def test_proxy_config_lever_errors(kw, needle):
    from plaid.train.proxy import ProxyConfig

    with pytest.raises(UsageError) as exc:
        ProxyConfig(**kw)
    assert needle in one_line(exc)


def test_proxy_step_budget():
    from plaid.train.proxy import ProxyConfig

    # 1438 digits train samples at batch 64: 22 full batches and one of 30
    assert ProxyConfig(epochs=3, min_steps=0).step_budget(1438) == 69
    assert ProxyConfig(epochs=3, min_steps=200).step_budget(1438) == 200  # the floor lifts a small dataset
    assert ProxyConfig(epochs=3, min_steps=200).step_budget(50_000) == 3 * 782  # and leaves a large one
    assert ProxyConfig(epochs=3, steps=7, min_steps=200).step_budget(1438) == 7  # exact budget wins
    assert ProxyConfig(batch_size=64).batches_per_epoch(129) == 2  # a trailing batch of one is dropped


def test_proxy_runs_exactly_its_step_budget():
    import torch

    from plaid.train.proxy import ProxyConfig, train_and_evaluate

    small = load_dataset("digits", 16, limit=200)  # 4 batches of 64 per epoch
    space, arch = parse_arch(SMALL)
    seen = []
    cfg = ProxyConfig(steps=6, resolution=16, threads=1, warmup=0.3, shift=2, label_smoothing=0.1,
                      bn_recalibrate=True)
    torch.manual_seed(0)
    result = train_and_evaluate(space.build(arch, num_classes=10), small, cfg,
                                progress=lambda e, n, loss: seen.append((e, n)))
    assert result["steps"] == 6 and result["epochs"] == 2 and seen == [(1, 2), (2, 2)]
    torch.manual_seed(0)  # the same initial weights, as ProxyEvaluator does
    again = train_and_evaluate(space.build(arch, num_classes=10), small, cfg)
    assert again["top1"] == result["top1"] and again["loss"] == result["loss"]  # every lever is seeded


def test_schedule_warms_up_then_decays():
    from plaid.train.proxy import _schedule

    f = _schedule(10, 2)
    assert [f(0), f(1), f(2)] == [0.5, 1.0, 1.0]
    assert all(f(i) > f(i + 1) for i in range(2, 9)) and 0 < f(9) < 0.05


def test_random_shift_translates_each_image():
    import torch
    import torch.nn.functional as F

    from plaid.train.proxy import random_shift

    x = torch.randn(8, 3, 6, 7)
    out = random_shift(x, 2, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    padded = F.pad(x, (2, 2, 2, 2), mode="replicate")
    shifts = set()
    for n in range(len(x)):
        found = [(dy, dx) for dy in range(5) for dx in range(5)
                 if torch.equal(out[n], padded[n, :, dy:dy + 6, dx:dx + 7])]
        assert found, n
        shifts.add(found[0])
    assert len(shifts) > 1  # each image gets its own shift
    assert torch.equal(random_shift(x, 2, torch.Generator().manual_seed(0)), out)


def test_recalibrate_bn_uses_the_final_weights():
    import torch
    from torch import nn

    from plaid.train.proxy import recalibrate_bn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, momentum=0.1))
    x = torch.randn(64, 3, 8, 8)
    model[1].running_mean.fill_(5.0)
    recalibrate_bn(model, x, 16)
    with torch.no_grad():
        feats = model[0](x)
    assert torch.allclose(model[1].running_mean, feats.mean(dim=(0, 2, 3)), atol=1e-5)
    assert model[1].momentum == 0.1  # restored


def test_zero_init_residual_only_where_the_branch_is_added():
    from plaid.train.proxy import zero_init_residual

    space, arch = parse_arch("df:R64x2-R128x2-B128x2,512")
    model = space.build(arch, num_classes=10)
    assert zero_init_residual(model) == 7  # 2 + 2 + 3 blocks
    assert float(model.backbone.res2[0].conv2.bn.weight.abs().sum()) == 0.0
    assert float(model.backbone.res4[1].conv3.bn.weight.abs().sum()) == 0.0
    pl1a, small = parse_arch(SMALL)
    assert zero_init_residual(pl1a.build(small, num_classes=10)) == 0



def test_unstride_stem_runs_the_last_stem_strides_at_1_and_training_puts_them_back(digits):
    import torch

    from plaid.train.proxy import ProxyConfig, train_and_evaluate, unstride_stem

    space, arch = parse_arch(SMALL)
    model = space.build(arch, num_classes=10)
    x = torch.zeros(2, 3, 32, 32)
    assert model.backbone(x)[-1].shape[-2:] == (1, 1)  # the PL1A stem leaves stage 3 a 1x1 map at 32x32
    changed = unstride_stem(model, 1)
    assert [c for c, _ in changed] == [model.backbone.stem.dw2.conv]  # the last strided conv of the stem
    assert model.backbone.stem.dw1.conv.stride == (2, 2)
    assert model.backbone(x)[-1].shape[-2:] == (2, 2)
    assert len(unstride_stem(space.build(arch, num_classes=10), 9)) == 2  # only what the stem has
    assert unstride_stem(torch.nn.Sequential(torch.nn.Conv2d(3, 3, 3, 2)), 1) == []  # no stem: nothing

    df, dfarch = parse_arch("df:R64x1-R128x1-R256x1,512")
    dfmodel = df.build(dfarch, num_classes=10)
    assert [c for c, _ in unstride_stem(dfmodel, 1)] == [dfmodel.backbone.stem.conv2.conv]

    fresh = space.build(arch, num_classes=10)
    cfg = ProxyConfig(steps=30, resolution=32, seed=0, threads=1, stem_unstride=1)
    result = train_and_evaluate(fresh, digits, cfg)
    assert result["unstrided"] == 1 and fresh.backbone.stem.dw2.conv.stride == (2, 2)  # put back
    # the top-1 is that of the net with the stride at 1: evaluated that way it is the same
    unstride_stem(fresh, 1)
    fresh.eval()
    with torch.inference_mode():
        pred = fresh(torch.from_numpy(digits.val.x)).argmax(dim=1).numpy()
    assert (pred == digits.val.y).mean() == pytest.approx(result["top1"])
    with pytest.raises(UsageError, match="stem_unstride must be a non-negative integer"):
        ProxyConfig(stem_unstride=-1)


def test_search_config_of_a_run_made_before_proxy_unstride_resumes_without_it():
    from plaid.search.run import SearchConfig

    new = SearchConfig()
    assert new.proxy_unstride == 1 and new.identity()["proxy_unstride"] == 1 and new.identity()["proxy_lr"] == 0.8
    old = {k: v for k, v in new.to_json().items() if k not in ("proxy_unstride", "proxy_lr")}
    cfg = SearchConfig.from_json(old)
    assert (cfg.proxy_unstride, cfg.proxy_lr) == (0, 0.4)  # what runs made before the options did
    assert "proxy_unstride" not in cfg.identity() and "proxy_lr" not in cfg.identity()
    assert SearchConfig.from_json(new.to_json()).proxy_unstride == 1

# ---- the user's training command ------------------------------------------------------------------

SCRIPT = """
import argparse, json, pathlib, sys, time
p = argparse.ArgumentParser()
p.add_argument("--arch", required=True)
p.add_argument("--out", required=True)
p.add_argument("--mode", default="ok")
a = p.parse_args()
out = pathlib.Path(a.out)
out.with_suffix(".arch").write_text(a.arch)
print("training", a.arch)
if a.mode == "fail":
    print("epoch 1 ...", file=sys.stderr)
    print("RuntimeError: CUDA out of memory", file=sys.stderr)
    sys.exit(3)
if a.mode == "sleep":
    time.sleep(30)
payload = {"ok": {"accuracy": 0.5}, "top1": {"top1": 0.25}, "nokey": {"loss": 1.0},
           "nan": {"accuracy": float("nan")}, "percent": {"accuracy": 71.5}}.get(a.mode)
if a.mode == "badjson":
    out.write_text("{not json")
elif a.mode != "silent":
    out.write_text(json.dumps(payload))
"""


@dataclass(frozen=True)
class FakeArch:
    text: str


class FakeSpace:
    name = "fake"

    def encode(self, arch: FakeArch) -> str:
        return arch.text

    def decode(self, text: str) -> FakeArch:
        return FakeArch(text)


WEIRD = """fake:it's a "quoted" arch; $(touch pwned) * {x}"""


@pytest.fixture()
def command(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)

    def make(mode="ok", **kw):
        python, path = shlex.quote(sys.executable), shlex.quote(str(script))
        template = f"{python} {path} --arch {{arch}} --out {{out}} --mode {mode}"
        return CommandEvaluator(FakeSpace(), template, tmp_path / "work", **kw)

    return make


def test_command_evaluator_passes_arch_intact(command, tmp_path):
    ev = command()
    assert ev(FakeArch(WEIRD)) == 0.5
    (received,) = (tmp_path / "work").glob("*.arch")
    assert received.read_text() == WEIRD
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()
    (stdout,) = (tmp_path / "work").glob("*.json.stdout")
    assert WEIRD in stdout.read_text()
    assert ev(FakeArch(WEIRD)) == 0.5 and len(list((tmp_path / "work").glob("*.arch"))) == 1  # cached
    assert command("top1")(FakeArch("fake:b")) == 0.25
    json.dumps(ev.describe())


@pytest.mark.parametrize("mode, needles", [
    ("fail", ["exited with code 3", "RuntimeError: CUDA out of memory"]),
    ("silent", ["did not write"]),
    ("badjson", ["is not valid JSON"]),
    ("nokey", ["no numeric 'accuracy' or 'top1' key"]),
    ("nan", ["not a finite number"]),
    ("percent", ["outside [0, 1]"]),
])
def test_command_evaluator_failures(command, mode, needles):
    with pytest.raises(PlaidError) as exc:
        command(mode)(FakeArch("fake:a b"))
    msg = one_line(exc)
    assert "'fake:a b'" in msg
    for needle in needles:
        assert needle in msg


def test_command_evaluator_timeout(command):
    with pytest.raises(PlaidError) as exc:
        command("sleep", timeout=1.0)(FakeArch("fake:slow"))
    assert "timed out after 1 s" in one_line(exc)


@pytest.mark.parametrize("template, needle", [
    ("python train.py --arch {arch} --out {out} --gpu {gpu}", "unknown placeholder {gpu}"),
    ("python train.py --arch {} --out {out}", "unknown placeholder {}"),
    ("python train.py --arch {arch!r} --out {out}", "without a conversion"),
    ("python train.py --arch {arch}", "lacks {out}"),
    ("python 'train.py --arch {arch} --out {out}", "No closing quotation"),
])
def test_command_template_errors(template, needle, tmp_path):
    with pytest.raises(UsageError) as exc:
        CommandEvaluator(FakeSpace(), template, tmp_path)
    assert needle in one_line(exc)


def test_command_not_found(tmp_path):
    ev = CommandEvaluator(FakeSpace(), "plaid-no-such-trainer {arch} {out}", tmp_path)
    with pytest.raises(PlaidError) as exc:
        ev(FakeArch("fake:x"))
    assert "cannot run 'plaid-no-such-trainer'" in one_line(exc)


# ---- accuracies from a table ------------------------------------------------------------------------

def test_table_csv_and_equivalent_spellings(tmp_path):
    space = get_space("pl1a")
    path = tmp_path / "acc.csv"
    path.write_text("arch,accuracy,latency\n pl1a:024x1-48x1-96x1 ,0.61,3.2\npl1a:48x4-96x8-192x4,0.72,9\n")
    ev = make_evaluator("table", space, path=path)
    assert ev(space.decode(SMALL)) == 0.61 and ev("pl1a:48x4-96x8-192x4") == 0.72
    with pytest.raises(PlaidError) as exc:
        ev("pl1a:32x1-48x1-96x1")
    assert "'pl1a:32x1-48x1-96x1' is not in the accuracy table" in one_line(exc)
    assert ev.describe()["entries"] == 2 and json.dumps(ev.describe())


@pytest.mark.parametrize("payload", [
    {SMALL: 0.61, "pl1a:48x4-96x8-192x4": 0.72},
    [{"arch": "pl1a:24x01-48x1-96x1", "accuracy": 0.61}, {"arch": "pl1a:48x4-96x8-192x4", "accuracy": 0.72}],
])
def test_table_json(tmp_path, payload):
    path = tmp_path / "acc.json"
    path.write_text(json.dumps(payload))
    ev = TableEvaluator(get_space("pl1a"), path)
    assert ev(SMALL) == 0.61 and ev("pl1a:48x4-96x8-192x4") == 0.72


@pytest.mark.parametrize("name, text, needle", [
    ("a.csv", "arch,top5\npl1a:24x1-48x1-96x1,0.9\n", "needs 'arch' and 'accuracy' columns"),
    ("a.csv", "arch,accuracy\npl1a:24x1-48x1-96x1,high\n", "line 2: accuracy 'high' is not a number"),
    ("a.csv", "arch,accuracy\ndf:R64x-R128,0.5\n", "line 2"),
    ("a.csv", "arch,accuracy\n", "has no entries"),
    ("a.csv", f"arch,accuracy\n{SMALL},0.5\npl1a:24x1-048x1-96x1,0.6\n", "appears twice"),
    ("a.json", "{broken", "not valid JSON"),
    ("a.json", "[1, 2]", "item 0"),
    ("a.json", json.dumps({SMALL: "0.5x"}), "not a number"),
    ("a.txt", "whatever", "expected a .csv or .json file"),
])
def test_table_malformed(tmp_path, name, text, needle):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(UsageError) as exc:
        TableEvaluator(get_space("pl1a"), path)
    assert needle in one_line(exc) and str(path) in str(exc.value)


# ---- registry and imports ----------------------------------------------------------------------------

def test_registry(tmp_path):
    from plaid.train.evaluators import Evaluator

    assert {"proxy", "command", "table"} <= set(EVALUATORS)  # others may join; each is checked here
    for name, cls in EVALUATORS.items():
        assert cls.name == name and issubclass(cls, Evaluator)
        assert "for_search" in vars(cls), f"evaluator {name!r} cannot be built by `plaid search`"
        assert not getattr(cls, "__abstractmethods__", None), f"evaluator {name!r} leaves {cls.__abstractmethods__}"
    with pytest.raises(TypeError):  # the base is abstract: an evaluator without __call__ is refused at once
        type("NoCall", (Evaluator,), {})(get_space("pl1a"))
    with pytest.raises(UsageError) as exc:
        make_evaluator("tabel", get_space("pl1a"))
    assert "did you mean 'table'" in one_line(exc)
    with pytest.raises(UsageError) as exc:
        make_evaluator("table", get_space("pl1a"), path=tmp_path / "x.csv", colour="red")
    assert "evaluator 'table'" in one_line(exc)


def test_search_config_picks_the_evaluator_through_the_registry(tmp_path):
    from plaid.search.run import SearchConfig
    from plaid.train.evaluators import evaluator_for_search

    space = get_space("pl1a")
    table = tmp_path / "accs.csv"
    table.write_text(f"arch,accuracy\n{SMALL},0.5\n")
    run = tmp_path / "run"
    ev = evaluator_for_search(SearchConfig(evaluator="table", accuracy_table=str(table)), space, run)
    assert isinstance(ev, TableEvaluator) and ev(SMALL) == 0.5
    ev = evaluator_for_search(SearchConfig(evaluator="command", train_cmd="true {arch} {out}"), space, run)
    assert isinstance(ev, CommandEvaluator) and ev.workdir == run / "train"
    ev = evaluator_for_search(SearchConfig(evaluator="proxy", train_limit=64, epochs=1), space, run)
    assert isinstance(ev, ProxyEvaluator) and ev.checkpoint_dir == run / "checkpoints" and ev.cfg.epochs == 1
    with pytest.raises(UsageError) as exc:
        evaluator_for_search(SearchConfig(evaluator="tabel"), space, run)
    assert "did you mean 'table'" in one_line(exc)


def test_train_package_does_not_import_torch():
    code = ("import sys\nimport plaid.train, plaid.train.evaluators, plaid.train.datasets\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
