"""Issue 17's path end to end on the embedded default (digits-affine, PL1A, host) with a
small budget: a real `plaid search` (2 proxy trainings), `plaid train --front RUN` of its
most accurate member at the proxy's resolution for more epochs, and `plaid export` of the
result to TFLite int8 and fp32, whose parity passes and whose manifest carries the trained
top-1. The space is a four-net PL1A preset and the latency table is filled by hand (real
SQLite, made-up numbers: no unit is converted or timed for it); the proxy trainings, the
full training and both conversions are real. About 90 s of CPU (search 26, train 25, export
40: onnx2tf); 180 s wall on a loaded 2-core machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import preset_env, run_plaid
from test_search_resume import FILL_TABLE

# Four nets with the default PL1A stem, one unit a stage. The search tests' tiny preset (stages
# of 16-48 channels) trains too, but its nets sat on the edge of the int8 parity bar (97.7% and
# 98.8% top-1 agreement); these agreed on 99.6% (24x1-48x1-96x1) and 100% (48x1-96x1-96x1).
E2E_PL1A = """
description = "four one-unit nets for the train/export test"
stem = [8, 24]
resolution = [64, 64]
[[stages]]
name = "stage1"
widths = [24, 48]
units = [1, 1]
[[stages]]
name = "stage2"
widths = [48, 96]
units = [1, 1]
[[stages]]
name = "stage3"
widths = [96]
units = [1, 1]
"""

EPOCHS = 3  # 3 x 125 steps on digits-affine's 8,000 images; the proxy: 1 epoch, raised to its 200-step floor


@pytest.mark.slow
@pytest.mark.tflite
def test_search_train_the_best_member_and_export_it_to_tflite(tmp_path, tflite_cache):
    env = preset_env(tmp_path, tflite_cache, "pl1a", E2E_PL1A, {"pl1a = [384, 640]": "pl1a = [64, 64]"})
    subprocess.run([sys.executable, "-c", FILL_TABLE], env={**os.environ, **env}, check=True, timeout=120)

    found = run_plaid("search", "--budget", "2", "--epochs", "1", "--runs-dir", str(tmp_path / "runs"), "--json",
                      env=env)
    assert found.returncode == 0, found.stderr
    s = json.loads(found.stdout)
    assert s["trained"] == 2 and s["candidates"] == 4
    run = Path(s["run"])
    members = json.loads((run / "front.json").read_text())["front"]
    best = max(range(len(members)), key=lambda i: (members[i]["accuracy"], -i))
    proxy = torch.load(members[best]["checkpoint"], weights_only=True)  # the record travels inside the file
    rec = proxy["plaid"]
    assert rec["kind"] == "proxy" and rec["arch"] == members[best]["arch"] and rec["dataset"] == "digits-affine"
    assert rec["resolution"] == [32, 32] and rec["top1"] == members[best]["accuracy"]
    assert len(rec["normalization"]["mean"]) == 3 and rec["steps"] == 200 and set(proxy) == {"state_dict", "plaid"}

    out = tmp_path / "best"
    trained = run_plaid("train", "--front", str(run), "--epochs", str(EPOCHS), "--threads", "1", "-o", str(out),
                        "--json", env=env)
    assert trained.returncode == 0, trained.stderr
    metrics = json.loads(trained.stdout)
    assert metrics["arch"] == members[best]["arch"] and metrics["source"]["member"] == best
    assert metrics["dataset"] == "digits-affine" and metrics["resolution"] == [32, 32]  # the proxy's
    assert metrics["epochs"] == EPOCHS and metrics["steps"] > rec["steps"]  # trained longer than the proxy

    # 1,024 val images, not the default 256: the best member here (48x1-48x1-96x1) disagreed in int8 on
    # 3 of 256 (98.8%) but on 4 of 1,024 (99.6%); the larger sample keeps the 98% bar away from its noise
    bundle = tmp_path / "bundle"
    exported = run_plaid("export", metrics["arch"], "--checkpoint", str(out / "model.pt"), "--format",
                         "tflite-int8,tflite-fp32", "--calib", "digits-affine", "--parity-samples", "1024", "--no-measure",
                         "-o", str(bundle), env=env)
    assert exported.returncode == 0, exported.stderr
    assert "exporting at 32x32, the resolution the weights were trained at" in exported.stderr
    m = json.loads((bundle / "manifest.json").read_text())
    assert m["status"] == "ok" and (m["input"]["height"], m["input"]["width"]) == (32, 32)
    assert sorted(a["format"] for a in m["artifacts"]) == ["tflite-fp32", "tflite-int8"]
    assert all(a["parity"]["passed"] for a in m["artifacts"]), [a["parity"] for a in m["artifacts"]]
    got = m["model"]["checkpoint"]["trained"]
    assert got["kind"] == "full" and got["top1"] == metrics["top1"] and got["source"]["member"] == best
    assert metrics["top1"] > members[best]["accuracy"] - 0.05, (metrics["top1"], members[best]["accuracy"])
