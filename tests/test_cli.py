"""The real `plaid` CLI in a subprocess: output, JSON, and one-line errors with exit 2."""

import json

import pytest

from conftest import run_plaid
from plaid.zoo import ZOO


def one_line_error(proc, fragment: str):
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert lines[0].startswith("plaid: error:")
    assert fragment in lines[0], lines[0]


def test_version_and_help():
    from plaid import __version__

    out = run_plaid("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"plaid {__version__}"
    for args in (["--help"], ["arch", "--help"], ["arch", "show", "--help"], ["arch", "list", "--help"],
                 ["arch", "sample", "--help"]):
        proc = run_plaid(*args)
        assert proc.returncode == 0, proc.stderr
        assert "examples:" in proc.stdout, args


def test_show_df1_prints_table_and_totals():
    proc = run_plaid("arch", "show", "df1")
    assert proc.returncode == 0, proc.stderr
    assert "res2.0.conv1" in proc.stdout
    assert "df:R64x3-R128x3-R256x3,512" in proc.stdout
    assert "0.7467 G" in proc.stdout
    assert "8.524 M" in proc.stdout


def test_show_json_has_layers_and_membership():
    proc = run_plaid("arch", "show", "pl1a-seg", "--d8", "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["resolution"] == [384, 640]
    assert info["output_shape"] == [19, 48, 80]
    assert info["member"] is True
    assert abs(info["macs"] / 1e9 - 0.2647) < 0.001
    assert any(layer["op"] == "dwconv" for layer in info["layers"])


def test_show_arch_string_at_other_resolution():
    proc = run_plaid("arch", "show", "dfseg:19-32-128-32-32-19-19@df:R64x3-R128x3-R256x3,512",
                     "--resolution", "384x640", "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["output_shape"] == [19, 384, 640]
    # the same net as the zoo's df1-seg
    zoo = json.loads(run_plaid("arch", "show", "df1-seg", "-r", "384x640", "--json").stdout)
    assert zoo["macs"] == info["macs"]


def test_out_of_space_arch_is_shown_with_the_reason():
    proc = run_plaid("arch", "show", "df:R64x7-R128-R256", "--json")
    assert proc.returncode == 0
    info = json.loads(proc.stdout)
    assert info["member"] is False and "allowed 1..6" in info["member_note"]


def test_list_json_names_every_zoo_net_and_space():
    proc = run_plaid("arch", "list", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert {m["name"] for m in data["models"]} == set(ZOO.names())
    assert {s["name"] for s in data["spaces"]} == {"df", "pl1a", "dfseg", "pl1aseg"}
    human = run_plaid("arch", "list")
    assert "resnet50" in human.stdout and "pl1aseg" in human.stdout


def test_sample_is_seeded_and_in_space():
    a = json.loads(run_plaid("arch", "sample", "--space", "df", "-n", "3", "--seed", "4", "--json").stdout)
    b = json.loads(run_plaid("arch", "sample", "--space", "df", "-n", "3", "--seed", "4", "--json").stdout)
    assert a == b and len(a) == 3
    assert all(r["arch"].startswith("df:") for r in a)
    seg = json.loads(run_plaid("arch", "sample", "--space", "dfseg", "--backbone", "df1", "-n", "2", "--json").stdout)
    assert all(r["arch"].endswith("@df:R64x3-R128x3-R256x3,512") for r in seg)


@pytest.mark.parametrize("args,fragment", [
    (["arch", "show", "nonsense"], "unknown model 'nonsense'"),
    (["arch", "show", "df2-seg"], "did you mean"),
    (["arch", "show", "df:R64x3-R128x-R256"], "bad block token '128x'"),
    (["arch", "show", "df:R128,64-R128-R256"], "must not decrease"),
    (["arch", "show", "pl1a:48x4"], None),  # valid string, 1 stage: shown as non-member
    (["arch", "show", "foo:1"], "unknown space 'foo'"),
    (["arch", "show", "df1", "--resolution", "abc"], "bad resolution 'abc'"),
    (["arch", "show", "df1-seg", "--resolution", "300x600"], "divisible by 32"),
    (["arch", "show", "df1", "--d8"], "--d8 applies to segmentation"),
    (["arch", "show", "df1", "--classes", "0"], "--classes must be within 1..100000"),
    (["arch", "show"], "required"),
    (["arch", "bogus"], "invalid choice"),
    (["frobnicate"], "invalid choice"),
    (["arch", "sample", "--space", "nope"], "unknown space 'nope'"),
    (["arch", "sample", "--space", "df", "-n", "0"], "-n must be within"),
    (["arch", "sample", "--space", "df", "-n", "x"], "invalid int value"),
])
def test_bad_input_is_one_line_exit_2(args, fragment):
    proc = run_plaid(*args)
    if fragment is None:
        assert proc.returncode == 0, proc.stderr
        return
    one_line_error(proc, fragment)


def test_debug_env_shows_traceback():
    proc = run_plaid("arch", "show", "nonsense", env={"PLAID_DEBUG": "1"})
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr


def test_no_command_prints_help():
    proc = run_plaid()
    assert proc.returncode == 0
    assert "examples:" in proc.stdout


def test_tx2_bench_without_ssh_says_which_flag_it_needs():
    one_line_error(run_plaid("bench", "--target", "tx2"), "is measured on a board over SSH: pass --ssh [USER@]HOST[:PORT]")


def _options(*command: str) -> dict:
    """option string -> argparse action of ``plaid COMMAND...``."""
    import argparse

    from plaid.cli.main import build_parser

    parser = build_parser()
    for name in command:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    return {s: a for a in parser._actions for s in a.option_strings}


def test_cli_choices_are_the_registries():
    from plaid.adb.connection import connection_names
    from plaid.adb.runners import RUNNERS
    from plaid.spaces import space_names

    assert {"python", "cli"} <= set(connection_names()) and {"benchmark_model", "apk"} <= set(RUNNERS)
    for command in (["bench"], ["export"], ["devices"]):
        for flag in ("--adb-connection", "--adb-transport"):  # the new name and the old one
            assert list(_options(*command)[flag].choices) == connection_names(), (command, flag)
    for command in (["bench"], ["export"]):
        assert list(_options(*command)["--runner"].choices) == RUNNERS.names(), command
    helps = _options("arch", "sample")["--space"].help
    assert all(name in helps for name in space_names())


@pytest.mark.parametrize("command", [["bench", "--target", "sd845"], ["export", "df1"], ["devices"]])
def test_old_adb_transport_spelling_still_works_and_is_hidden(command, capsys):
    """--adb-transport was the name of --adb-connection: it sets the same option, with a
    note on stderr, and --help shows only the new name."""
    from plaid.cli.main import build_parser

    parser = build_parser()
    new = parser.parse_args([*command, "--adb-connection", "cli"])
    assert "note" not in capsys.readouterr().err
    old = parser.parse_args([*command, "--adb-transport", "cli"])
    assert old.adb_connection == new.adb_connection == "cli"
    assert "--adb-transport is now called --adb-connection" in capsys.readouterr().err
    helptext = run_plaid(command[0], "--help").stdout
    assert "--adb-connection" in helptext and "--adb-transport" not in helptext


def test_a_phone_refuses_a_runtime_its_runners_lack_before_connecting():
    one_line_error(run_plaid("bench", "--target", "sd845", "--adb-serial", "nosuchphone", "--runtime", "onnxruntime"),
                   "target 'sd845': the adb transport cannot time onnxruntime models (it has: tflite)")
