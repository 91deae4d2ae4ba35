"""`plaid train` (issue 17): real training on the built-in digits at 32x32 for a few epochs,
a resume after ``kill -9`` that ends with the same weights as a run never interrupted, the
checkpoint's record of how it was made (a proxy checkpoint's too), export's defaults taken
from it, and usage errors. The path search -> train -> export on a real search run is in
tests/test_train_e2e.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import run_plaid

SMALL = "pl1a:24x1-48x1-96x1"  # the space's default resolution is 224x224: a 32x32 export comes from the record
OTHER = "pl1a:24x1-48x1-48x1"
EPOCHS = 4
ARGS = ["--dataset", "digits", "--epochs", str(EPOCHS), "--threads", "1"]


def _job(model: str = SMALL, **source):
    from plaid.train.full import TrainConfig, TrainJob

    return TrainJob(model, "digits", (32, 32), TrainConfig(epochs=EPOCHS, threads=1), source=source)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """SMALL trained without interruption, in this process."""
    from plaid.train.full import train

    out = tmp_path_factory.mktemp("ref") / "ref"
    metrics = train(_job(), out)
    return out, metrics


def _states_equal(a: Path, b: Path) -> bool:
    sa = torch.load(a, weights_only=True)["state_dict"]
    sb = torch.load(b, weights_only=True)["state_dict"]
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_training_records_how_the_weights_were_made(reference):
    out, metrics = reference
    assert metrics["status"] == "done" and metrics["top1"] > 0.8, metrics  # digits: chance is 0.1
    assert [h["epoch"] for h in metrics["history"]] == list(range(1, EPOCHS + 1))
    assert metrics["history"][-1]["lr"] < 0.01  # cosine to 0
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "metrics.json", "model.pt"]  # state.pt dropped
    saved = torch.load(out / "model.pt", weights_only=True)
    rec = saved["plaid"]
    assert rec["schema"] == "plaid.checkpoint/1" and rec["kind"] == "full"
    assert rec["arch"] == SMALL and rec["dataset"] == "digits" and rec["resolution"] == [32, 32]
    assert rec["epochs"] == EPOCHS and rec["num_classes"] == 10 and rec["top1"] == metrics["top1"]
    assert len(rec["normalization"]["mean"]) == 3 and all(s > 0 for s in rec["normalization"]["std"])
    assert rec["config"]["weight_decay"] == 1e-4
    from plaid.spaces import parse_arch

    space, arch = parse_arch(SMALL)
    space.build(arch, num_classes=10).load_state_dict(saved["state_dict"])  # a plain state_dict inside


def test_kill_9_resumes_from_the_last_checkpoint_to_the_same_weights(reference, tmp_path):
    out = tmp_path / "t"
    argv = [sys.executable, "-m", "plaid", "train", SMALL, *ARGS, "-o", str(out)]
    env = {k: v for k, v in os.environ.items() if k != "PLAID_DEBUG"}
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                held = len(json.loads((out / "metrics.json").read_text())["history"])
            except (OSError, ValueError, KeyError):
                held = 0
            if held >= 1:
                break
            time.sleep(0.02)
        assert proc.poll() is None, f"finished before it could be killed: {proc.stderr.read()[-2000:]}"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert (out / "state.pt").is_file() and not (out / "model.pt").exists()
    again = run_plaid("train", SMALL, *ARGS, "-o", str(out))
    assert again.returncode == 0, again.stderr
    assert "resuming" in again.stderr and "top-1" in again.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert [h["epoch"] for h in metrics["history"]] == list(range(1, EPOCHS + 1))
    assert metrics["top1"] == reference[1]["top1"]
    assert _states_equal(out / "model.pt", reference[0] / "model.pt")
    from plaid.train.full import train

    log = []
    assert train(_job(), out, log=log.append)["top1"] == metrics["top1"]  # finished: left as it is
    assert len(log) == 1 and "already trained" in log[0] and "--force" in log[0]


def test_a_save_inside_an_epoch_resumes_exactly(reference, tmp_path):
    from dataclasses import replace

    from plaid.train.full import train

    job = _job()
    job = replace(job, cfg=replace(job.cfg, save_every_s=0.0))  # a save after every batch
    steps = []

    def stop_in_epoch_two(phase, done, total, label):
        steps.append(done)
        if done == total // EPOCHS + 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(job, tmp_path / "t", progress=stop_in_epoch_two)
    state = torch.load(tmp_path / "t" / "state.pt", weights_only=True)
    assert state["epoch"] == 1 and state["batch"] == 4  # the save before the interrupted step
    log = []
    train(job, tmp_path / "t", log=log.append)
    assert any("resuming" in line and "epoch 2/" in line for line in log), log
    assert _states_equal(tmp_path / "t" / "model.pt", reference[0] / "model.pt")


def _fake_run(tmp_path: Path, proxy_state=None) -> Path:
    """A search run folder as plaid.search.run writes it: config, front (two members), and a
    proxy checkpoint of the most accurate one."""
    from plaid.train.evaluators import arch_sha1

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"config": {
        "evaluator": "proxy", "dataset": "digits", "proxy_resolution": 32, "epochs": 1, "seed": 0}}))
    ckpt = run / "checkpoints" / f"{arch_sha1(SMALL)}.pt"
    if proxy_state is not None:
        torch.save(proxy_state, ckpt)
    front = [{"index": 0, "arch": OTHER, "latency": 1.0, "accuracy": 0.5},
             {"index": 1, "arch": SMALL, "latency": 2.0, "accuracy": 0.6, "checkpoint": str(ckpt)}]
    (run / "front.json").write_text(json.dumps({"target": "host", "space": "pl1a", "resolution": [384, 640],
                                                "front": front}))
    return run


def test_front_member_is_trained_and_exported_with_its_record(reference, tmp_path):
    from plaid.export.pipeline import ExportRequest, run_export

    run = _fake_run(tmp_path)
    out = tmp_path / "best"
    proc = run_plaid("train", "--front", str(run), "--epochs", "1", "--threads", "1", "-o", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads(proc.stdout)
    assert metrics["arch"] == SMALL and metrics["dataset"] == "digits"  # the most accurate member, the run's data
    assert metrics["source"]["member"] == 1 and metrics["source"]["proxy_top1"] == 0.6
    log = []
    result = run_export(ExportRequest(SMALL, tmp_path / "bundle", formats=("onnx",), checkpoint=out / "model.pt",
                                      calib="digits", parity_samples=16, measure=False), log=log.append)
    assert result.passed
    m = result.manifest
    assert (m["input"]["height"], m["input"]["width"]) == (32, 32)  # the record's, not the space's 224x224
    assert "the checkpoint's training" in m["input"]["normalization"]["source"]
    rec = torch.load(out / "model.pt", weights_only=True)["plaid"]
    assert m["input"]["normalization"]["mean"] == rec["normalization"]["mean"]
    trained = m["model"]["checkpoint"]["trained"]
    assert trained["top1"] == metrics["top1"] and trained["kind"] == "full" and trained["source"]["member"] == 1
    assert any("exporting at 32x32, the resolution the weights were trained at" in line for line in log)
    assert not any(line.startswith("warning") for line in log)


@pytest.mark.parametrize("written", ["with its record", "bare, as older searches wrote it"])
def test_proxy_checkpoint_at_another_resolution_warns_and_explains(reference, tmp_path, monkeypatch, written):
    from plaid.export import parity
    from plaid.export.onnx_format import ONNX
    from plaid.export.pipeline import ExportRequest, failure_summary, run_export
    from plaid.train.provenance import save_trained

    saved = torch.load(reference[0] / "model.pt", weights_only=True)
    run = _fake_run(tmp_path, proxy_state=saved["state_dict"])
    ckpt = next((run / "checkpoints").iterdir())
    if written == "with its record":  # what the search writes now (the run folder says the same)
        save_trained(saved["state_dict"], ckpt, {"kind": "proxy", "arch": SMALL, "dataset": "digits", "epochs": 1,
                                                 "resolution": [32, 32], "top1": 0.6,
                                                 "normalization": saved["plaid"]["normalization"]})
    monkeypatch.setattr(ONNX, "thresholds", parity.Thresholds(max_rel_error=1e-15))  # parity must fail
    log = []
    result = run_export(ExportRequest(SMALL, tmp_path / "b", formats=("onnx",), checkpoint=ckpt,
                                      resolution=(64, 64), parity_samples=4, measure=False), log=log.append)
    warnings = [line for line in log if line.startswith("warning")]
    assert len(warnings) == 1 and "exporting at 64x64" in warnings[0], log
    assert "a proxy checkpoint of the search (1 epochs at 32x32 on digits, top-1 0.6000)" in warnings[0]
    assert not result.passed
    line = failure_summary(result.manifest)
    assert "proxy checkpoint" in line and "--resolution 32x32" in line and f"plaid train --front {run}" in line
    report = json.loads((tmp_path / "b" / "parity-report.json").read_text())
    assert report["diagnosis"] in line


def test_a_proxy_checkpoint_carries_its_record_and_older_ones_stay_readable(tmp_path):
    import shutil

    from plaid.export.checkpoint import load_checkpoint
    from plaid.spaces import parse_arch
    from plaid.train.datasets import load_dataset
    from plaid.train.evaluators import ProxyEvaluator
    from plaid.train.proxy import ProxyConfig

    run = _fake_run(tmp_path)
    space, _ = parse_arch(SMALL)
    digits = load_dataset("digits", 32)
    ev = ProxyEvaluator(space, digits, ProxyConfig(steps=20, resolution=32, threads=1),
                        checkpoint_dir=run / "checkpoints")
    top1 = ev(SMALL)
    path = Path(ev.results[SMALL]["checkpoint"])
    saved = torch.load(path, weights_only=True)  # no pickled code: tensors and plain data
    assert set(saved) == {"state_dict", "plaid"} and saved["plaid"]["schema"] == "plaid.checkpoint/1"
    ckpt = load_checkpoint(path)
    rec = ckpt.record
    assert rec["kind"] == "proxy" and rec["arch"] == SMALL and rec["dataset"] == "digits" and rec["top1"] == top1
    assert rec["resolution"] == [32, 32] and rec["steps"] == 20 and rec["num_classes"] == 10
    assert rec["normalization"] == {"mean": list(digits.mean), "std": list(digits.std)}
    assert rec["config"]["lr"] == ProxyConfig().lr and rec["run"] == str(run.resolve())  # where it lies now
    moved = tmp_path / "elsewhere.pt"
    shutil.copy(path, moved)  # out of its run folder: the record is still there, the run is not
    assert load_checkpoint(moved).record == {k: v for k, v in rec.items() if k != "run"}
    torch.save(saved["state_dict"], path)  # a checkpoint of an older run: a bare state_dict
    old = load_checkpoint(path)
    assert old.record["kind"] == "proxy" and old.record["resolution"] == [32, 32]  # read from the run folder
    assert old.record["top1"] == 0.6 and old.record["run"] == str(run.resolve())
    assert all(torch.equal(old.state[k], ckpt.state[k]) for k in ckpt.state)


@pytest.mark.parametrize("args, text", [
    ([SMALL], "give -o OUT"),
    (["-o", "x"], "give a network (ARCH or zoo NAME) or --front RUN"),
    ([SMALL, "--front", "r", "-o", "x"], "one of the two"),
    ([SMALL, "--member", "1", "-o", "x"], "--member and --all pick members of a front"),
    (["--front", "r", "--member", "1", "--all", "-o", "x"], "not both"),
    (["--front", "{tmp}/nope", "-o", "x"], "is not a folder"),
    (["--front", "{tmp}", "-o", "x"], "is not a finished search run (no config.json)"),
    (["--front", "{run}", "--member", "2", "-o", "x"], "has 2 members (0..1, fastest first)"),
    ([SMALL, "--epochs", "0", "-o", "x"], "--epochs must be within"),
    ([SMALL, "--lr", "nan", "-o", "x"], "--lr must be a non-negative number"),
    ([SMALL, "--resolution", "16", "-o", "x"], "bad resolution '16'"),
    (["df1-seg", "-o", "x"], "plaid train trains classification nets"),
    (["nonsense", "-o", "x"], "unknown model 'nonsense'"),
])
def test_usage_errors_are_one_line_and_exit_2(args, text, tmp_path):
    run = _fake_run(tmp_path / "r")
    args = [a.replace("{tmp}", str(tmp_path)).replace("{run}", str(run)) for a in args]
    proc = run_plaid("train", *args)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("plaid: error:") and text in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_an_out_folder_of_another_training_is_refused(reference, tmp_path, capsys):
    from plaid.cli.main import main

    def error(*argv: str) -> str:
        assert main(["train", SMALL, *argv]) == 2
        captured = capsys.readouterr()
        assert captured.out == "" and len(captured.err.strip().splitlines()) == 1, captured.err
        return captured.err

    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    assert "holds no plaid train run" in error(*ARGS, "-o", str(foreign))
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    line = error("--dataset", "digits", "--epochs", "7", "-o", str(reference[0]))
    assert f"epochs {EPOCHS} there, 7 here" in line and "--force" in line
    if not torch.cuda.is_available():
        assert "CUDA is not available here" in error("--device", "cuda", "-o", str(tmp_path / "c"))
        assert not (tmp_path / "c").exists()
