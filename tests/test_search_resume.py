"""`plaid search --resume` keeps what a run folder reports and refuses a folder that is not
this run; a failed new search leaves no half run folder behind. Driven through the CLI on
the tiny PL1A preset with a hand-filled latency table (real SQLite, made-up numbers, so no
unit is converted or timed) and an accuracy table: each search takes about a second."""

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import preset_env, run_plaid
from test_search_cli import TINY_PL1A, all_archs

FILL_TABLE = """
from plaid.lut.bench import lut_dir, target_meta
from plaid.lut.latency import Latency
from plaid.lut.store import LatencyTable
from plaid.lut.units import space_units
from plaid.spaces import get_space
from plaid.targets import load_target

target, space = load_target("host"), get_space("pl1a")
res = target.resolution("pl1a")
meta = target_meta(target, "pl1a")
path = lut_dir() / f"{meta.name()}.sqlite"
path.parent.mkdir(parents=True, exist_ok=True)
with LatencyTable.open(path, meta, create=True) as table:
    for i, unit in enumerate(space_units(space, res)):
        ms = 0.1 + 0.01 * (i % 7) + unit.cout / 1000
        table.put(unit.key, Latency(ms, ms * 1.1, 0.01, 10), {})
"""


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    # a private conversion cache: it stays absent unless a unit gets converted
    env = preset_env(root, root / "cache", "pl1a", TINY_PL1A, {"pl1a = [384, 640]": "pl1a = [64, 64]"})
    subprocess.run([sys.executable, "-c", FILL_TABLE], env={**os.environ, **env}, check=True, timeout=120)
    accs = root / "accs.json"
    accs.write_text(json.dumps({a: 0.5 + 0.05 * i for i, a in enumerate(sorted(all_archs()))}))
    env["ACCS"] = str(accs)
    return env


@pytest.fixture(scope="module")
def finished(env, tmp_path_factory):
    """A finished budget-3 run (8 candidates) to copy."""
    runs = tmp_path_factory.mktemp("runs")
    out = run_plaid("search", "--accuracy-table", env["ACCS"], "--budget", "3", "--runs-dir", str(runs), "--json",
                    env=env)
    assert out.returncode == 0, out.stderr
    s = json.loads(out.stdout)
    assert s["trained"] == 3 and s["candidates"] == 8
    return Path(s["run"])


@pytest.fixture
def run(finished, tmp_path):
    return Path(shutil.copytree(finished, tmp_path / "run"))


def resume(run, *args, env):
    return run_plaid("search", "--resume", str(run), *args, env=env)


def doc(path):
    return json.loads(path.read_text())


def one_line_error(out, fragment, code=2):
    assert out.returncode == code, (out.returncode, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], out.stderr


def test_resume_without_budget_keeps_the_runs_own(run, env):
    before = doc(run / "result.json")
    out = resume(run, "--json", env=env)
    assert out.returncode == 0, out.stderr
    s = json.loads(out.stdout)
    assert s["trained"] == 3 and s["replayed_from_journal"] == 3  # not the default 12
    assert doc(run / "result.json")["evaluated"] == before["evaluated"]


def test_resume_with_a_lower_budget_keeps_every_journaled_result(run, env):
    result, front = doc(run / "result.json"), doc(run / "front.json")
    out = resume(run, "--budget", "1", "--json", env=env)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["trained"] == 3
    assert doc(run / "result.json")["evaluated"] == result["evaluated"]
    assert doc(run / "front.json")["front"] == front["front"]


def test_a_raised_budget_becomes_the_runs_budget(run, env):
    out = resume(run, "--budget", "5", "--json", env=env)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["trained"] == 5
    assert doc(run / "config.json")["config"]["budget"] == 5
    again = resume(run, "--json", env=env)
    assert again.returncode == 0, again.stderr
    s = json.loads(again.stdout)
    assert s["trained"] == 5 and s["replayed_from_journal"] == 5


def test_resume_refuses_a_budget_below_one(run, env):
    one_line_error(resume(run, "--budget", "0", env=env), "--budget must be >= 1")


def _drop_journal(run):
    for f in run.glob("journal.sqlite*"):
        f.unlink()


def _foreign(run):
    _drop_journal(run)
    with sqlite3.connect(run / "journal.sqlite") as conn:
        conn.execute("CREATE TABLE notes (x TEXT)")


def _edit_config(run, **changes):
    d = doc(run / "config.json")
    d["config"].update(changes)
    (run / "config.json").write_text(json.dumps(d))


@pytest.mark.parametrize("damage,fragment", [
    (_drop_journal, "no search journal"),
    (lambda r: (_drop_journal(r), (r / "journal.sqlite").write_bytes(b"")), "is empty"),
    (lambda r: (_drop_journal(r), (r / "journal.sqlite").write_text("not sqlite\n" * 100)), "not a usable search journal"),
    (_foreign, "not a plaid search journal"),
    (lambda r: _edit_config(r, space="df"), "other inputs (space: 'pl1a' != 'df'"),
    (lambda r: (_drop_journal(r), _edit_config(r, space="df")), "no search journal"),
], ids=["missing", "empty", "not-sqlite", "foreign", "space-edited", "space-edited-no-journal"])
def test_resume_refuses_a_folder_that_is_not_this_run(run, env, damage, fragment):
    damage(run)
    result = (run / "result.json").read_text()
    one_line_error(resume(run, env=env), fragment)
    assert (run / "result.json").read_text() == result
    assert not Path(env["PLAID_CACHE"]).exists()  # refused before any unit was converted for a table


@pytest.mark.parametrize("with_journal", [True, False])
def test_resume_never_runs_a_train_cmd_edited_into_config_json(run, env, tmp_path, with_journal):
    marker = tmp_path / "ran"
    if not with_journal:
        _drop_journal(run)
    _edit_config(run, evaluator="command", train_cmd=f"touch {marker} {{arch}} {{out}}", accuracy_table="")
    one_line_error(resume(run, env=env), "other inputs" if with_journal else "no search journal")
    assert not marker.exists()


def test_foreign_sqlite_file_is_left_as_it_was(run, env):
    _foreign(run)
    one_line_error(resume(run, env=env), "not a plaid search journal")
    with sqlite3.connect(run / "journal.sqlite") as conn:
        assert [n for (n,) in conn.execute("SELECT name FROM sqlite_master")] == ["notes"]


def test_the_journal_records_the_runs_identity(finished):
    from plaid.search.journal import config_digest
    from plaid.search.run import load_run

    with sqlite3.connect(finished / "journal.sqlite") as conn:
        meta = dict(conn.execute("SELECT k, v FROM meta"))
    ident = load_run(finished).identity()
    assert "budget" not in ident and json.loads(meta["config"]) == ident
    assert meta["digest"] == config_digest(ident)


@pytest.mark.parametrize("args,fragment", [
    (["--train-cmd", ""], "--train-cmd is empty"),
    (["--train-cmd", "  "], "--train-cmd is empty"),
    (["--accuracy-table", ""], "--accuracy-table is empty"),
    (["--accuracy-table", "ACCS", "--table", "TYPO.sqlite"], "no latency table file at TYPO.sqlite"),
    (["--accuracy-table", "missing.json"], "accuracy table missing.json does not exist"),
    (["--train-cmd", "x {arch}"], "lacks {out}"),
], ids=["train-cmd-empty", "train-cmd-blank", "accuracy-table-empty", "table-typo", "accs-missing", "template"])
def test_usage_errors_leave_no_run_folder(env, tmp_path, args, fragment):
    runs = tmp_path / "runs"
    args = [env["ACCS"] if a == "ACCS" else a for a in args]
    one_line_error(run_plaid("search", *args, "--runs-dir", str(runs), env=env), fragment)
    assert not runs.exists() or not list(runs.iterdir())
    assert not Path("TYPO.sqlite").exists()


@pytest.mark.parametrize("runs_dir,fragment", [
    ("FILE", "is not a folder"),
    ("FILE/below", "cannot create run folder"),
    ("/proc/plaid-runs", "cannot create run folder"),
])
def test_runs_dir_that_cannot_hold_runs_is_one_line(env, tmp_path, runs_dir, fragment):
    (tmp_path / "FILE").write_text("")
    runs_dir = runs_dir.replace("FILE", str(tmp_path / "FILE"))
    one_line_error(run_plaid("search", "--accuracy-table", env["ACCS"], "--runs-dir", runs_dir, env=env), fragment)


TRAIN_ONCE = """
import json, sys
from pathlib import Path
count = Path(sys.argv[1])
n = int(count.read_text()) if count.exists() else 0
count.write_text(str(n + 1))
if n >= {ok}:
    sys.exit("no GPU left")
Path(sys.argv[2]).write_text(json.dumps({{"accuracy": 0.5}}))
"""


@pytest.mark.parametrize("ok", [0, 1])
def test_a_failed_search_keeps_its_folder_only_when_it_journaled_a_training(env, tmp_path, ok):
    script = tmp_path / "train.py"
    script.write_text(TRAIN_ONCE.format(ok=ok))
    runs = tmp_path / "runs"
    cmd = f"{sys.executable} {script} {tmp_path / 'count'} {{out}} {{arch}}"
    out = run_plaid("search", "--train-cmd", cmd, "--budget", "3", "--runs-dir", str(runs), "--json",
                     env=env)
    one_line_error(out, "exited with code 1", code=1)
    folders = list(runs.iterdir())
    if ok == 0:
        assert folders == []  # nothing trained: no half run folder
        return
    assert len(folders) == 1 and not (folders[0] / "result.json").exists()
    with sqlite3.connect(folders[0] / "journal.sqlite") as conn:
        assert conn.execute("SELECT COUNT(*) FROM trained").fetchone()[0] == 1
    # a failing resume never removes the folder either
    again = resume(folders[0], "--json", env=env)
    one_line_error(again, "exited with code 1", code=1)
    assert (folders[0] / "journal.sqlite").is_file()
