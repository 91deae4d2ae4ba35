"""`plaid search` end to end on a tiny PL1A preset: real latency table (converted and
timed on this host), table/proxy/command evaluators, run folder, journal and resume."""

import json
from pathlib import Path

import pytest

from conftest import preset_env, run_plaid

TINY_PL1A = """
description = "tiny test preset"
stem = [8, 16]
resolution = [64, 64]
[[stages]]
name = "stage1"
widths = [16, 24]
units = [1, 2]
[[stages]]
name = "stage2"
widths = [32]
units = [1, 2]
[[stages]]
name = "stage3"
widths = [48]
units = [1, 1]
"""


@pytest.fixture
def env(tmp_path, tflite_cache):
    return preset_env(tmp_path, tflite_cache, "pl1a", TINY_PL1A,
                      {"pl1a = [384, 640]": "pl1a = [64, 64]", "min_seconds = 0.5": "min_seconds = 0.1"})


def all_archs():
    out = []
    for w1 in (16, 24):
        for n1 in (1, 2):
            for n2 in (1, 2):
                out.append(f"pl1a:{w1}x{n1}-32x{n2}-48x1")
    return out


@pytest.mark.slow
@pytest.mark.tflite
def test_search_with_table_evaluator_and_resume(env, tmp_path):
    archs = all_archs()
    accs = {a: 0.5 + 0.05 * i for i, a in enumerate(sorted(archs))}  # any values: the engine must cope
    table = tmp_path / "accs.json"
    table.write_text(json.dumps(accs))
    runs = tmp_path / "runs"
    out = run_plaid("search", "--accuracy-table", str(table), "--budget", "3", "--runs-dir", str(runs),
                    "--json", env=env)
    assert out.returncode == 0, out.stderr
    s = json.loads(out.stdout)
    assert s["space"] == "pl1a" and s["candidates"] == 8 and s["trained"] == 3
    run = Path(s["run"])
    for f in ("config.json", "journal.sqlite", "front.json", "result.json", "front.png"):
        assert (run / f).is_file(), f
    assert all(e["accuracy"] == accs[e["arch"]] for e in s["evaluated"])
    # resume with a larger budget: the first 3 are replayed, the rest trained
    again = run_plaid("search", "--resume", str(run), "--budget", "8", "--json", env=env)
    assert again.returncode == 0, again.stderr
    s2 = json.loads(again.stdout)
    assert s2["replayed_from_journal"] == 3
    assert [e["arch"] for e in s2["evaluated"][:3]] == [e["arch"] for e in s["evaluated"]]
    assert s2["trained"] + s2["pruned"] <= 8
    human = run_plaid("search", "--resume", str(run), "--budget", "8", env=env)
    assert human.returncode == 0 and "front:" in human.stdout and "pruned" in human.stdout


@pytest.mark.slow
@pytest.mark.tflite
def test_search_latencies_at_another_resolution(env, tmp_path):
    """--resolution HxW: the table's units are measured at it, and the run says so."""
    table = tmp_path / "accs.json"
    table.write_text(json.dumps({a: 0.5 + 0.01 * i for i, a in enumerate(sorted(all_archs()))}))
    out = run_plaid("search", "--accuracy-table", str(table), "--budget", "2", "--resolution", "96x96",
                    "--runs-dir", str(tmp_path / "runs"), "--json", env=env)
    assert out.returncode == 0, out.stderr
    run = Path(json.loads(out.stdout)["run"])
    assert json.loads((run / "config.json").read_text())["config"]["resolution"] == [96, 96]
    assert json.loads((run / "front.json").read_text())["resolution"] == [96, 96]
    at_64 = run_plaid("search", "--accuracy-table", str(table), "--budget", "2", "--runs-dir",
                      str(tmp_path / "runs64"), "--json", env=env)
    assert at_64.returncode == 0, at_64.stderr
    fronts = [json.loads((Path(json.loads(o.stdout)["run"]) / "front.json").read_text())["front"] for o in (out, at_64)]
    lat = [{m["arch"]: m["latency"] for m in f} for f in fronts]
    shared = set(lat[0]) & set(lat[1])
    assert shared and all(lat[0][a] > lat[1][a] for a in shared)  # 96x96 inputs take longer than 64x64
    refused = run_plaid("search", "--resume", str(run), "--resolution", "64x64", env=env)
    assert refused.returncode == 2 and "--resolution" in refused.stderr


@pytest.mark.slow
@pytest.mark.tflite
def test_search_with_the_proxy_trainer_on_digits(env, tmp_path):
    out = run_plaid("search", "--budget", "2", "--epochs", "1", "--train-limit", "300",
                    "--runs-dir", str(tmp_path / "runs"), "--json", env=env)
    assert out.returncode == 0, out.stderr
    s = json.loads(out.stdout)
    assert s["trained"] == 2 and all(0.0 <= e["accuracy"] <= 1.0 for e in s["evaluated"])
    assert list((Path(s["run"]) / "checkpoints").glob("*.pt"))
    # the front names each member's weights, and plaid export takes them as they are
    best = json.loads((Path(s["run"]) / "front.json").read_text())["front"][-1]
    bundle = tmp_path / "bundle"
    exported = run_plaid("export", best["arch"], "--checkpoint", best["checkpoint"], "--format", "onnx",
                         "--resolution", "32x32", "--calib", "digits", "--parity-samples", "32", "-o", str(bundle),
                         env=env)
    assert exported.returncode == 0, exported.stderr
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["model"]["num_classes"] == 10 and manifest["artifacts"][0]["parity"]["top1_agreement"] == 1.0


@pytest.mark.parametrize("args,fragment", [
    (["search", "--strategy", "greedy"], "unknown strategy"),
    (["search", "--budget", "0"], "--budget must be >= 1"),
    (["search", "--window", "5"], "bad --window"),
    (["search", "--window", "5:1"], "bad --window"),
    (["search", "--train-cmd", "x {arch} {out}", "--accuracy-table", "a.csv"], "not both"),
    (["search", "--resume", "/nonexistent/run"], "not a search run folder"),
    (["search", "--space", "nope"], "unknown space"),
    (["search", "--resume", "somewhere", "--strategy", "random"], "only --budget may change (got --strategy)"),
])
def test_search_usage_errors(args, fragment, tmp_path):
    out = run_plaid(*args, "--runs-dir", str(tmp_path))
    assert out.returncode == 2, (out.returncode, out.stderr)
    assert len(out.stderr.strip().splitlines()) == 1 and fragment in out.stderr
