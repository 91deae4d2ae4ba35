"""ADB host pieces that need no device: quoting of device shell lines, exit-status lines,
getprop/sysfs parsing, and TFLite benchmark_model output (formats from TFLite's sources:
benchmark_model.cc + the Stat/StatWithPercentiles OutputToStream of stats_calculator.h)."""

import shlex

import pytest

from plaid.adb import benchmark_model as bm
from plaid.adb.connection import tcp_address
from plaid.adb.device import _celsius, parse_cpu_list, parse_getprop
from plaid.protocol import MeasureProtocol
from plaid.adb.shell import cpu_mask, sh, split_rc, with_rc
from plaid.errors import UsageError

pytestmark = pytest.mark.adb

NASTY = ["/data/local/tmp/a b.tflite", "it's", 'say "hi"', "$HOME", "a;rm -rf /", "`id`", "x\\y", "new\nline",
         "*.tflite", "--graph=/x y/z'q.tflite", ""]


@pytest.mark.parametrize("arg", NASTY)
def test_sh_quotes_every_argument_back_to_itself(arg):
    line = sh("cat", arg, "2nd arg")
    assert shlex.split(line) == ["cat", arg, "2nd arg"]


def test_sh_leaves_plain_words_readable():
    assert sh("taskset", "f0", "/data/local/tmp/benchmark_model", "--num_threads=4") == \
        "taskset f0 /data/local/tmp/benchmark_model --num_threads=4"
    with pytest.raises(ValueError):
        sh()


def test_exit_status_marker_round_trip():
    cmd = with_rc(sh("ls", "/data/local/tmp"))
    assert cmd.endswith("; echo __PLAID_RC=$?")
    assert split_rc("a\nb\n__PLAID_RC=0\n") == ("a\nb", 0)
    assert split_rc("__PLAID_RC=127\r\n") == ("", 127)
    assert split_rc("/system/bin/sh: foo: not found\n__PLAID_RC=127\n")[1] == 127
    assert split_rc("cut off in the middle") == ("cut off in the middle", None)
    assert split_rc("no newline at the end__PLAID_RC=0\n") == ("no newline at the end", 0)
    # a marker-like text inside the output is not the status line
    assert split_rc("__PLAID_RC=5 inside\n__PLAID_RC=0\n") == ("__PLAID_RC=5 inside", 0)


def test_cpu_mask_and_lists():
    assert cpu_mask([4, 5, 6, 7]) == "f0"
    assert cpu_mask([0]) == "1" and cpu_mask([0, 1, 2, 3, 4, 5, 6, 7]) == "ff"
    assert cpu_mask(None) is None and cpu_mask([]) is None
    assert parse_cpu_list("0-7\n") == list(range(8))
    assert parse_cpu_list("0-3,6") == [0, 1, 2, 3, 6]
    assert parse_cpu_list("garbage") == []


def test_tcp_serials():
    assert tcp_address("127.0.0.1:5555") == ("127.0.0.1", 5555)
    assert tcp_address("phone.local:5037") == ("phone.local", 5037)
    assert tcp_address("[::1]:5555") == ("::1", 5555)
    assert tcp_address("8ABX0Y1Z") is None and tcp_address("emulator-5554") is None


def test_getprop_and_temperatures_parse():
    props = parse_getprop("[ro.product.model]: [Pixel 3]\n[ro.board.platform]: [sdm845]\n[empty]: []\nnoise\n")
    assert props == {"ro.product.model": "Pixel 3", "ro.board.platform": "sdm845", "empty": ""}
    assert _celsius("38500") == 38.5 and _celsius("41") == 41.0 and _celsius("310", scale=10) == 31.0
    assert _celsius(None) is None and _celsius("n/a") is None


OLD = """STARTING!
Log parameter values verbosely: [0]
Num threads: [4]
Graph: [/data/local/tmp/plaid-1a2b/m0000.tflite]
#threads used for CPU inference: [4]
Loaded model /data/local/tmp/plaid-1a2b/m0000.tflite
The input model file size (MB): 0.0421
Initialized session in 3.21ms.
Running benchmark for at least 10 iterations and at least 0.5 seconds but terminate if exceeding 20 seconds.
count=412 first=1530 curr=1190 min=1170 max=1530 avg=1210.4 std=41

Running benchmark for at least 50 iterations and at least 2 seconds but terminate if exceeding 20 seconds.
count=1652 first=1201 curr=1188 min=1165 max=2904 avg=1209.77 std=63

Inference timings in us: Init: 3210, First inference: 1530, Warmup (avg): 1210.4, Inference (avg): 1209.77
Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE to the actual memory footprint of the model at runtime. Take the information at your discretion.
Memory footprint delta from the start of the tool (MB): init=2.1 overall=3.4
"""

NEW = """INFO: STARTING!
INFO: Log parameter values verbosely: [0]
INFO: Graph: [/data/local/tmp/x.tflite]
INFO: Created TensorFlow Lite XNNPACK delegate for CPU.
INFO: Initialized session in 119.515ms.
INFO: Running benchmark for at least 5 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
INFO: count=9 first=87112 curr=51629 min=51629 max=87112 avg=58147.4 std=11478 p5=51629 median=51962 p95=87112

INFO: Running benchmark for at least 1000 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
INFO: count=1000 first=52162 curr=49785 min=49088 max=686105 avg=63743.2 std=60716 p5=49620 median=51891 p95=68628

INFO: Inference timings in us: Init: 119515, First inference: 87112, Warmup (avg): 58147.4, Inference (avg): 63743.2
INFO: Memory footprint delta from the start of the tool (MB): init=55.4961 overall=55.4961
"""


def test_parse_old_format_uses_mean_and_max_and_says_so():
    row = bm.parse_output(OLD, "k")
    assert row["status"] == "ok" and row["key"] == "k" and row["runs"] == 1652
    assert row["median_ms"] == pytest.approx(1.20977) and row["mean_ms"] == pytest.approx(1.20977)
    assert row["p90_ms"] == pytest.approx(2.904) and row["min_ms"] == pytest.approx(1.165)
    assert row["std_ms"] == pytest.approx(0.063) and row["cv"] == pytest.approx(63 / 1209.77)
    assert row["statistic"] == {"median_ms": "mean", "p90_ms": "max", "std_ms": "population"}
    assert row["init_ms"] == pytest.approx(3.21) and row["warmup_runs"] == 412


def test_parse_new_format_uses_the_printed_median_and_p95():
    row = bm.parse_output(NEW, "k")
    assert row["runs"] == 1000
    assert row["median_ms"] == pytest.approx(51.891) and row["p90_ms"] == pytest.approx(68.628)
    assert row["mean_ms"] == pytest.approx(63.7432)
    assert row["statistic"]["median_ms"] == "median" and row["statistic"]["p90_ms"] == "p95"


def test_parse_scientific_notation_and_all_same():
    text = ("count=3 curr=2000000(all same)\n\ncount=2 first=1.5e+06 curr=1.7e+06 min=1500000 max=1700000 "
            "avg=1.6e+06 std=100000\n\nInference timings in us: Init: 1.2e+06, First inference: 2e+06, "
            "Warmup (avg): 2e+06, Inference (avg): 1.6e+06\n")
    row = bm.parse_output(text, "big")
    assert row["median_ms"] == pytest.approx(1600.0) and row["runs"] == 2 and row["warmup_runs"] == 3
    same = "count=1 curr=900\n\ncount=4 curr=1000(all same)\n\nInference timings in us: Init: 5, " \
           "First inference: 900, Warmup (avg): 900, Inference (avg): 1000\n"
    row = bm.parse_output(same, "s")
    assert row["median_ms"] == row["p90_ms"] == row["min_ms"] == pytest.approx(1.0) and row["std_ms"] == 0


def test_op_profiling_tables_are_not_read_as_a_phase():
    text = OLD.replace("Inference timings", "Timings (microseconds): count=50 first=1 curr=1 min=1 max=1 avg=1 std=0\n"
                       "Memory (bytes): count=0\nInference timings")
    assert bm.parse_output(text, "k")["runs"] == 1652


@pytest.mark.parametrize("text, needle", [
    ("STARTING!\nGraph: [/data/local/tmp/nope.tflite]\nCould not open '/data/local/tmp/nope.tflite'.\n"
     "Failed to mmap model /data/local/tmp/nope.tflite\nBenchmarking failed.\n", "Could not open"),
    ("INFO: STARTING!\nERROR: Failed to allocate tensors!\nERROR: Benchmarking failed.\n", "Failed to allocate"),
    ("/system/bin/sh: /data/local/tmp/benchmark_model: not found\n", "not found"),
    ("", "printed nothing"),
    ("Initialized session in 3.21ms.\ncount=10 first=1 curr=1 min=1 max=1 avg=1 std=0\n", "count=10"),  # cut off
])
def test_error_outputs_give_one_telling_line(text, needle):
    with pytest.raises(bm.OutputError) as err:
        bm.parse_output(text, "k")
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_command_quotes_paths_and_maps_the_protocol():
    settings = {"threads": 4, "warmup_runs": 10, "warmup_seconds": 0.5, "min_runs": 50, "min_seconds": 2.0,
                "max_seconds": 20.0, "delegate": "xnnpack", "cpus": [4, 5, 6, 7]}
    line = bm.command("/data/local/tmp/plaid-1/benchmark_model", "/data/local/tmp/it's a \"dir\"/$x;.tflite", settings)
    assert line.endswith(" 2>&1")
    argv = shlex.split(line[: -len(" 2>&1")])
    assert argv[:3] == ["taskset", "f0", "/data/local/tmp/plaid-1/benchmark_model"]
    assert "--graph=/data/local/tmp/it's a \"dir\"/$x;.tflite" in argv
    assert {"--num_threads=4", "--warmup_runs=10", "--warmup_min_secs=0.5", "--num_runs=50", "--min_secs=2",
            "--max_secs=20", "--use_xnnpack=true"} <= set(argv)
    no_pin = bm.command("/b/benchmark_model", "/g.tflite", {**settings, "cpus": None, "delegate": "none"})
    assert not no_pin.startswith("taskset") and "--use_xnnpack=false" in no_pin


def test_protocol_settings_are_checked():
    s = MeasureProtocol.from_table({"cooldown_above_c": 45.0, "cooldown_target_c": 40, "sentinel_every": 20,
                                   "threads": 4})
    assert s.cooldown_above_c == 45.0 and s.sentinel_every == 20 and s.sentinel_tolerance == 0.10
    assert MeasureProtocol.from_table({}).cooldown_above_c is None
    with pytest.raises(UsageError, match="cooldown_target_c"):
        MeasureProtocol.from_table({"cooldown_above_c": 40, "cooldown_target_c": 45})
    with pytest.raises(UsageError, match="sentinel_every"):
        MeasureProtocol.from_table({"sentinel_every": "often"})


def test_adb_modules_import_light():
    import subprocess
    import sys

    code = ("import sys, plaid.adb.session, plaid.adb.cli_connection, plaid.adb.devices, plaid.cli.devices\n"
            "print(','.join(m for m in ('adb_shell', 'usb1', 'torch', 'tensorflow', 'rich') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"heavy modules imported: {out.stdout.strip()}"
