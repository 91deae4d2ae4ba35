"""What `plaid search` reports about its own pruning: margin, violations, probes, audit,
baselines; and its new flags' usage errors. Same cheap setup as test_search_resume."""

import json

from conftest import run_plaid
from test_search_resume import env, one_line_error  # noqa: F401  (fixture)


def test_report_states_margin_audit_and_baselines(env, tmp_path):  # noqa: F811
    out = run_plaid("search", "--accuracy-table", env["ACCS"], "--budget", "6", "--audit", "0.3",
                    "--runs-dir", str(tmp_path), "--json", env=env)
    assert out.returncode == 0, out.stderr
    s = json.loads(out.stdout)
    assert set(s["margin"]) >= {"delta", "fixed", "comparable_pairs", "violations", "latency_inversions"}
    assert s["margin"]["fixed"] is False and s["margin"]["delta"] >= 0
    a = s["audit"]
    assert a["share"] == 0.3 and len(a["false_prune_rate_ci95"]) == 2
    assert a["audited"] == sum(e["role"] == "audit" for e in s["evaluated"])
    assert "baselines" in s and "baselines_beaten" in s
    front = json.loads((tmp_path / s["run"].split("/")[-1] / "front.json").read_text())
    assert "baselines" in front


def test_text_report_and_fixed_margin(env, tmp_path):  # noqa: F811
    out = run_plaid("search", "--accuracy-table", env["ACCS"], "--budget", "4", "--margin", "0.02",
                    "--runs-dir", str(tmp_path), env=env)
    assert out.returncode == 0, out.stderr
    assert "δ = 0.0200 (fixed)" in out.stdout
    assert "audit " in out.stdout


def test_bad_margin_and_audit_are_usage_errors(env, tmp_path):  # noqa: F811
    for args, frag in ((["--margin", "-1"], "--margin"), (["--audit", "0.9"], "--audit"),
                       (["--pool", "0"], "--pool")):
        out = run_plaid("search", "--accuracy-table", env["ACCS"], *args, "--runs-dir", str(tmp_path), env=env)
        one_line_error(out, frag)
    assert not any(tmp_path.iterdir())  # no run folder left by a usage error
