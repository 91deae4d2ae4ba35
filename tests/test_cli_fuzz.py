"""Every subcommand, fed bad input through the real CLI (issue 16).

The subcommands and their options are read from the real argparse parser
(:func:`plaid.cli.main.build_parser`), so a new subcommand or option is fuzzed by being
added. For each case the properties are the same: exit code 2 (usage error) unless the
case says 1 (a file whose content is damaged: the store's class of error), exactly one
non-empty stderr line starting ``plaid: error:``, nothing on stdout, no traceback, no new
file in the working folder (an empty temp folder) or in the input folder, no run folder
left under ``runs/``, and no ``plaid-*`` scratch folder left in TMPDIR. HOME,
XDG_CACHE_HOME, PLAID_CACHE, PLAID_LUT_DIR and TMPDIR point into the case's own temp folder.

Most cases fail in argparse or in the command's checks before torch loads (~0.2 s each);
those that load torch first are marked ``slow``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
HUGE = str(10**30)


def _leaves() -> dict[tuple[str, ...], argparse.ArgumentParser]:
    """Every runnable subcommand (``('arch', 'show')``, ``('bench',)``, ...) and its parser."""
    from plaid.cli.main import build_parser

    found: dict[tuple[str, ...], argparse.ArgumentParser] = {}

    def walk(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs and path:
            found[path] = parser
        for action in subs:
            for name, child in action.choices.items():
                walk(child, (*path, name))

    walk(build_parser(), ())
    return found


LEAVES = _leaves()

# arguments that satisfy a subcommand's required ones and, were a bad value accepted, would
# end in a fast error rather than real work; a subcommand missing here is fuzzed without any
BASE = {
    ("arch", "show"): ["df1"],
    ("arch", "sample"): ["--space", "df"],
    ("bench",): ["--dry-run"],
    ("lut", "show"): ["--table", "{inputs}/missing.sqlite"],
    ("lut", "export"): ["--csv", "--table", "{inputs}/missing.sqlite"],
    ("search",): ["--accuracy-table", "{inputs}/missing.csv"],
    ("export",): ["df1", "-o", "out/df1"],
    ("train",): ["df1", "-o", "{inputs}/dir"],  # a folder of something else: refused before training
}

# every int/float option: the values its command must refuse with exit 2 (after argparse has
# accepted them as numbers), or why any number is fine. A new numeric option fails
# test_every_numeric_option_has_a_decision until it is given one here.
NUMERIC = {
    ("arch", "show", "--classes"): ["-1"],  # 0 and 10**20: tests/test_cli_errors.py
    ("arch", "sample", "-n"): ["0", "-1", HUGE],
    ("arch", "sample", "--seed"): "any integer seeds the generator",
    ("bench", "--threads"): ["0", "-1", HUGE],
    ("bench", "--validate"): ["-1", HUGE],
    ("bench", "--calibrate"): ["-1", HUGE],
    ("bench", "--seed"): "any integer seeds the generator",
    ("search", "--budget"): ["0", "-1", HUGE],
    ("search", "--epochs"): ["0", "-1", HUGE],
    ("search", "--proxy-resolution"): ["0", "-1", "31"],
    ("search", "--proxy-unstride"): ["-1", "5", HUGE],
    ("search", "--seg-resolution"): ["0", "-1", "31", HUGE],
    ("search", "--pool"): ["0", "-1", HUGE],
    ("search", "--margin"): ["nan", "inf", "1e999", "-1", "1"],
    ("search", "--audit"): ["nan", "-inf", "-0.1", "0.5"],
    ("search", "--train-limit"): ["0", "-1", HUGE],
    ("search", "--repeats"): ["-1", "1001", HUGE],  # 0 is the default (no repeats)
    ("search", "--seed"): ["-1", HUGE],
    ("search", "--workers"): ["0", "-1", HUGE],
    # refused without --ray here; with --ray, the ranges (0..1024, whole above 1, not both 0):
    ("search", "--ray-cpus-per-trial"): "checked with --ray in tests/test_search_ray.py (needs a cluster address)",
    ("search", "--ray-gpus-per-trial"): "checked with --ray in tests/test_search_ray.py (needs a cluster address)",
    ("export", "--num-classes"): ["-1"],  # 0 and 10**20: tests/test_cli_errors.py
    ("export", "--calib-samples"): ["0", "-1", HUGE],
    ("export", "--parity-samples"): ["0", "-1", HUGE],
    ("train", "--member"): ["-1"],  # past the front's size: tests/test_train_cli.py
    ("train", "--epochs"): ["0", "-1", HUGE],
    ("train", "--batch-size"): ["0", "1", HUGE],
    ("train", "--lr"): ["0", "-1", "nan", "inf"],
    ("train", "--momentum"): ["-0.1", "1", "nan"],
    ("train", "--weight-decay"): ["-1", "nan", "inf"],
    ("train", "--warmup"): ["-0.1", "1", "nan"],
    ("train", "--label-smoothing"): ["-0.1", "1", "nan"],
    ("train", "--shift"): ["-1", HUGE],
    ("train", "--seed"): ["-1", HUGE],
    ("train", "--threads"): ["0", "-1", HUGE],
}


def _flag(action: argparse.Action) -> str:
    return max(action.option_strings, key=len)


def _options(parser: argparse.ArgumentParser):
    """The options of a subcommand that take one value."""
    for a in parser._actions:
        if a.option_strings and a.nargs is None and not isinstance(a, argparse._HelpAction) \
                and type(a).__name__ in ("_StoreAction", "_AppendAction"):
            yield a


def _generic_cases():
    """(id, argv, fragment of the error line): argparse-level mistakes, for every subcommand."""
    for path, parser in LEAVES.items():
        base = BASE.get(path, [])
        name = " ".join(path)
        yield f"{name} --no-such-flag", [*path, *base, "--no-such-flag"], "unrecognized arguments: --no-such-flag"
        yield f"{name} stray", [*path, *base, "stray-word"], "unrecognized arguments: stray-word"
        if any(a.required for a in parser._actions):
            yield f"{name} (nothing)", [*path], "the following arguments are required"
        for a in _options(parser):
            flag = _flag(a)
            typed = a.type is not None or a.choices is not None
            if typed:
                yield f"{name} {flag} (no value)", [*path, *base, flag], f"argument {a.option_strings[0]}"
            if a.choices is not None:
                yield f"{name} {flag} bad-choice", [*path, *base, flag, "no-such-choice"], "invalid choice: 'no-such-choice'"
            elif a.type is int:
                for bad in ("abc", "1e999", "1.5"):
                    yield f"{name} {flag} {bad}", [*path, *base, flag, bad], f"invalid int value: '{bad}'"
            elif a.type is float:
                for bad in ("abc", ""):
                    yield f"{name} {flag} {bad!r}", [*path, *base, flag, bad], f"invalid float value: '{bad}'"
            elif callable(a.type) and a.type is not Path:  # a checking type (adb_serial)
                for bad in ("", "host:0"):
                    yield f"{name} {flag} {bad!r}", [*path, *base, flag, bad], f"argument {a.option_strings[0]}"


def _numeric_cases():
    for key, values in NUMERIC.items():
        if isinstance(values, str):
            continue
        path, flag = tuple(key[:-1]), key[-1]
        for v in values:
            yield f"{' '.join(key)} {v}", [*path, *BASE.get(path, []), flag, v], flag


GENERIC = list(_generic_cases())
NUMBERS = list(_numeric_cases())

# (argv, exit code, fragment); {inputs} holds: dir/ (a non-empty folder), fifo, empty
# (an empty file), good.sqlite (a real latency table); nothing there exists otherwise
FILES = [
    # latency tables: a folder or FIFO is a usage error; a file that is not a table is damage (1)
    (["bench", "--dry-run", "--table", "{inputs}/dir"], 2, "is not a file, so not a latency table"),
    (["bench", "--dry-run", "--table", "{inputs}/fifo"], 2, "is not a file, so not a latency table"),
    (["lut", "show", "--table", "{inputs}/dir"], 2, "is not a file, so not a latency table"),
    (["lut", "show", "--table", "{inputs}/fifo"], 2, "is not a file, so not a latency table"),
    (["lut", "show", "--table", "/proc/x"], 2, "no latency table at /proc/x"),
    (["lut", "show", "--table", "{inputs}/empty"], 1, "is empty, not a latency table"),
    (["lut", "export", "--json", "--table", "{inputs}/dir"], 2, "is not a file"),
    (["lut", "show", "--json", "--csv"], 2, "not allowed with argument --json"),
    # lut export -o: the destination is checked, never written through
    (["lut", "export", "--csv", "--table", "{inputs}/good.sqlite", "-o", "{inputs}/dir"], 2, "it exists and is a folder"),
    (["lut", "export", "--csv", "--table", "{inputs}/good.sqlite", "-o", "{inputs}/fifo"], 2, "it exists and is a FIFO"),
    (["lut", "export", "--csv", "--table", "{inputs}/good.sqlite", "-o", "{inputs}/missing/x.csv"], 2, "cannot write"),
    # export: what can be checked before torch loads is
    (["export", "df1", "-o", "out/df1", "--checkpoint", "{inputs}/dir"], 2, "does not exist or is not a file"),
    (["export", "df1", "-o", "out/df1", "--checkpoint", "{inputs}/fifo"], 2, "does not exist or is not a file"),
    (["export", "df1", "-o", "out/df1", "--checkpoint", "/proc/x"], 2, "does not exist or is not a file"),
    (["export", "df1", "-o", "out/df1", "--checkpoint", "{inputs}/missing.pt"], 2, "does not exist or is not a file"),
    (["export", "df1", "-o", "{inputs}/fifo"], 2, "exists and is not a folder"),
    (["export", "df1", "-o", "{inputs}/empty"], 2, "exists and is not a folder"),
    (["export", "df1", "-o", "{inputs}/dir"], 2, "is not empty (use --force"),
    (["export", "df1", "-o", "out/df1", "--format", ""], 2, "--format is empty"),
    (["export", "df1", "-o", "out/df1", "--format", " , "], 2, "--format is empty"),
    (["export", "df1", "-o", "out/df1", "--format", "no-such-format"], 2, "unknown export format"),
    (["export", "df1"], 2, "give a network and -o OUT"),
    (["export", "-o", "out/df1"], 2, "give a network and -o OUT"),
    # search: files it reads, a run to resume
    (["search", "--accuracy-table", "{inputs}/dir"], 2, "is a directory"),
    (["search", "--accuracy-table", "/proc/x"], 2, "does not exist"),
    (["search", "--table", "{inputs}/dir", "--accuracy-table", "{inputs}/missing.csv"], 2, "no latency table file"),
    (["search", "--resume", "{inputs}/dir"], 2, "is not a search run folder"),
    (["search", "--resume", "{inputs}/fifo"], 2, "is not a search run folder"),
    (["search", "--resume", "/proc/x"], 2, "is not a search run folder"),
    (["search", "--window", "3:1"], 2, "bad --window"),
    (["search", "--window", "nan:inf"], 2, "bad --window"),
    (["search", "--train-cmd", "x {arch}"], 2, "lacks {out}"),
    (["search", "--train-cmd", "x {arch} {out} {gpu}"], 2, "unknown placeholder {gpu}"),
    (["search", "--strategy", "no-such-strategy"], 2, "unknown strategy"),
    (["search", "--accuracy-table", "{inputs}/missing.csv", "--repeats", "2"], 2, "an --accuracy-table holds one"),
    (["search", "--dataset", "no-such-dataset"], 2, "unknown dataset"),
    (["search", "--space", "no-such-space"], 2, "unknown space"),
    (["bench", "--target", "no-such-target", "--dry-run"], 2, "unknown target"),
    (["bench", "--target", "../../../etc/passwd", "--dry-run"], 2, "unknown target"),
    (["arch", "sample", "--space", "no-such-space"], 2, "unknown space"),
    (["arch", "show", "df1", "-r", "1e999"], 2, "bad resolution"),
    (["arch", "show", "df1", "-r", f"{HUGE}x{HUGE}"], 2, "bad resolution"),
    (["COMMAND-that-is-not"], 2, "invalid choice"),
]

# these load torch (or the dataset) before they fail: seconds each
SLOW_FILES = [
    # a bad --calib creates nothing: before, OUT's parent (./out) was left behind
    (["export", "df1", "-o", "out/df1", "--calib", "no-such-dataset"], 2, "unknown dataset"),
    (["export", "df1", "-o", "out/df1", "--calib", "imagefolder:{inputs}/fifo"], 2, "is not a directory"),
    (["export", "df1", "-o", "out/df1", "--calib", "cifar10:{inputs}/missing"], 2, "does not exist"),
    (["search", "--runs-dir", "{inputs}/fifo"], 2, "it is not a folder"),
    (["search", "--runs-dir", "/proc/x"], 2, "cannot create run folder"),
]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    from plaid.lut.latency import Latency
    from plaid.lut.store import LatencyTable, TableMeta

    base = tmp_path_factory.mktemp("fuzz-inputs")
    (base / "dir").mkdir()
    (base / "dir" / "keep.txt").write_text("keep\n")
    os.mkfifo(base / "fifo")
    (base / "empty").write_bytes(b"")
    meta = TableMeta("host", "tflite", "test 1", {"threads": 1}, {"cpu": "test"}, space="pl1a")
    with LatencyTable.open(base / "good.sqlite", meta, create=True) as table:
        table.put("conv-a", Latency(1.0, 1.2, 0.1, 10), {"n": 1})
    return base


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def run_in_sandbox(argv: list[str], sandbox: Path, inputs: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    """The real CLI in a subprocess, its cwd an empty folder, caches and temp in `sandbox`."""
    for name in ("cwd", "home", "cache", "tmp"):
        (sandbox / name).mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PLAID_DEBUG", "PLAID_CONFIG_DIR", "FORCE_COLOR")}
    env.update(HOME=str(sandbox / "home"), XDG_CACHE_HOME=str(sandbox / "cache"),
               PLAID_CACHE=str(sandbox / "cache" / "plaid"), PLAID_LUT_DIR=str(sandbox / "cache" / "luts"),
               TMPDIR=str(sandbox / "tmp"), NO_COLOR="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    argv = [a.replace("{inputs}", str(inputs)) for a in argv]
    return subprocess.run([sys.executable, "-m", "plaid", *argv], cwd=sandbox / "cwd", env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)


def check_error(proc: subprocess.CompletedProcess, sandbox: Path, inputs: Path, code: int, fragment: str,
                before: list[str]) -> str:
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out and "frame #" not in out, out[-3000:]
    assert proc.returncode == code, (proc.returncode, proc.stderr[-2000:])
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr[-2000:]
    assert lines[0].startswith("plaid: error: "), lines[0]
    assert fragment.replace("{inputs}", str(inputs)) in lines[0], lines[0]
    assert proc.stdout == "", proc.stdout[-2000:]
    cwd = sandbox / "cwd"
    stray = [p for p in _listing(cwd) if Path(p).parts[0] != "runs"]
    assert not stray, f"new files in the working folder: {stray}"
    runs = cwd / "runs"
    assert not runs.exists() or not any(runs.iterdir()), f"run folder left behind: {_listing(runs)}"
    scratch = [p.name for p in (sandbox / "tmp").iterdir() if p.name.startswith("plaid-")]
    assert not scratch, f"scratch folders left in TMPDIR: {scratch}"
    assert _listing(inputs) == before, "the input folder changed"
    return lines[0]


def _case(argv, code, fragment, inputs, tmp_path):
    before = _listing(inputs)
    proc = run_in_sandbox(argv, tmp_path, inputs)
    return check_error(proc, tmp_path, inputs, code, fragment, before)


@pytest.mark.parametrize("argv,fragment", [c[1:] for c in GENERIC], ids=[c[0] for c in GENERIC])
def test_argparse_mistakes_are_one_line(argv, fragment, inputs, tmp_path):
    line = _case(argv, 2, fragment, inputs, tmp_path)
    assert "--help')" in line  # argparse's usage block is replaced by a pointer to --help


@pytest.mark.parametrize("argv,flag", [c[1:] for c in NUMBERS], ids=[c[0] for c in NUMBERS])
def test_out_of_range_numbers_are_refused(argv, flag, inputs, tmp_path):
    _case(argv, 2, flag, inputs, tmp_path)


@pytest.mark.parametrize("argv,code,fragment", FILES, ids=[" ".join(c[0])[:70] for c in FILES])
def test_bad_files_and_values(argv, code, fragment, inputs, tmp_path):
    _case(argv, code, fragment, inputs, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("argv,code,fragment", SLOW_FILES, ids=[" ".join(c[0])[:70] for c in SLOW_FILES])
def test_bad_files_and_values_after_torch_loads(argv, code, fragment, inputs, tmp_path):
    _case(argv, code, fragment, inputs, tmp_path)


def test_every_subcommand_is_fuzzed():
    """The walk finds the subcommands the README documents, and each one's generic cases."""
    assert {("arch", "list"), ("arch", "show"), ("arch", "sample"), ("bench",), ("devices",), ("lut", "show"),
            ("lut", "export"), ("search",), ("export",)} <= set(LEAVES)
    fuzzed = {p for p in LEAVES if any(tuple(c[1][:len(p)]) == p for c in GENERIC)}
    assert fuzzed == set(LEAVES)
    assert set(BASE) <= set(LEAVES), set(BASE) - set(LEAVES)


def test_every_numeric_option_has_a_decision():
    numeric = {(*path, _flag(a)) for path, parser in LEAVES.items() for a in _options(parser)
               if a.type in (int, float)}
    assert numeric == set(NUMERIC), {"undecided": numeric - set(NUMERIC), "gone": set(NUMERIC) - numeric}


# ---- junk architecture strings for the commands that take one ------------------------------

_ARCH_ALPHABET = "dfpl1asegRBx,-:@0123456789 ."
_junk = st.one_of(
    st.text(alphabet=_ARCH_ALPHABET, max_size=40),
    st.builds(lambda space, genes: f"{space}:{genes}",
              st.sampled_from(["df", "pl1a", "dfseg", "pl1aseg", "nope"]), st.text(alphabet=_ARCH_ALPHABET, max_size=40)),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20),
)


def _invalid(text: str) -> bool:
    """True if plaid refuses ``text`` as a network (in-process, no torch): the strings a
    subprocess is spent on. Anything but a UsageError here is a bug the test reports."""
    from plaid.errors import UsageError
    from plaid.zoo import resolve

    try:
        resolve(text)
    except UsageError:
        return True
    return False


@pytest.mark.parametrize("command", [["arch", "show", "{arch}"], ["export", "{arch}", "-o", "out/x"]],
                         ids=["arch show", "export"])
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(arch=_junk)
def test_junk_arch_strings_are_one_line(command, arch, inputs):
    assume(not arch.startswith("-") and _invalid(arch))  # '-x' is an option to argparse: covered above
    before = _listing(inputs)
    with tempfile.TemporaryDirectory() as sandbox:
        argv = [arch if a == "{arch}" else a for a in command]
        proc = run_in_sandbox(argv, Path(sandbox), inputs)
        check_error(proc, Path(sandbox), inputs, 2, "", before)
