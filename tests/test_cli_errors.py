"""Bad input through the real CLI: one line on stderr (``plaid: error: ...``), the documented
exit code, never a traceback; broken pipes, NO_COLOR and progress written to a log.

Every case is a subprocess that fails before any slow work, so each costs about a second.
"""

from __future__ import annotations

import os
import re
import sqlite3
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from conftest import run_plaid

ROOT = Path(__file__).resolve().parents[1]
DF1 = "df:R64x3-R128x3-R256x3,512"
HUGE = "99999999999999999999"


def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares its size and holds no pixels: enough for Pillow's bomb check."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def _bomb_folder(root: Path, side: int) -> Path:
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        (root / cls / "x.png").write_bytes(_png_header(side, side))
    return root


def _bad_table(path: Path, column: str, value) -> Path:
    """A real latency table with one row edited by hand to hold `value` in `column`."""
    from plaid.lut.latency import Latency
    from plaid.lut.store import LatencyTable, TableMeta

    meta = TableMeta("host", "tflite", "test 1", {"threads": 1}, {"cpu": "test"}, space="pl1a")
    with LatencyTable.open(path, meta, create=True) as table:
        table.put("conv-a", Latency(1.0, 1.2, 0.1, 10), {"n": 1})
        table.put("conv-b", Latency(1.0, 1.2, 0.1, 10))
    with sqlite3.connect(path) as conn:
        conn.execute(f"UPDATE units SET {column} = ? WHERE key = 'conv-b'", (value,))
    conn.close()
    return path


# (args, expected exit code, fragment of the one stderr line); {tmp} is a fresh folder,
# {tables} holds hand-damaged latency tables, {bomb}/{bomb2x} image folders with one image
# over Pillow's pixel limit (warn / error level)
CASES = [
    # huge widths, counts and head sizes are refused by the parser, not by torch
    (["arch", "show", f"df:R{HUGE}x3-R128x3-R256x3,512"], 2, "over this space's limit of 4096"),
    (["arch", "show", "df:R1099511627776-R128x3-R256x3,512"], 2, "width 1099511627776 is over"),
    (["arch", "show", f"df:R64x{HUGE}-R128-R256"], 2, "over 64 blocks in one stage"),
    (["arch", "show", "df:R64x40,128x40-R128-R256"], 2, "over 64 blocks in one stage"),
    (["arch", "show", "df:R64-R64-R64-R64-R64-R64-R64"], 2, "7 stages, over this space's limit of 6"),
    (["arch", "show", "df:B2048-R128-R256"], 2, "width 8192 is over"),
    (["arch", "show", "pl1a:99999998x4-96x8-192x4"], 2, "width 99999998 is over"),
    (["arch", "show", f"dfseg:{10**20}-32-128-32-32-19-19@{DF1}"], 2, "wc3: width 100000000000000000000 is over"),
    (["arch", "show", f"dfseg:19-32-128-32-32-19-19@df:R{2**40}-R128-R256"], 2, "is over this space's limit"),
    (["arch", "show", "df:" + "-".join(["R64"] * 2500)], 2, "characters is over the limit of 1000"),
    (["arch", "show", "df1", "--classes", HUGE], 2, "--classes must be within 1..100000"),
    (["arch", "show", "df1", "--classes", "0"], 2, "--classes must be within 1..100000"),
    (["arch", "sample", "--space", "df", "--backbone", "df1"], 2, "--backbone applies to decoder spaces"),
    (["arch", "sample", "--space", "df", "-n", "10000"], 2, "-n must be within 1..1000"),
    (["export", f"df:R{HUGE}x3-R128x3-R256x3,512", "-o", "{tmp}/out"], 2, "over this space's limit"),
    (["export", "df1", "--num-classes", "-5", "-o", "{tmp}/out"], 2, "--num-classes must be within 1..100000"),
    (["export", "df1", "--num-classes", "0", "-o", "{tmp}/out"], 2, "--num-classes must be within 1..100000"),
    (["export", "df1", "--num-classes", HUGE, "-o", "{tmp}/out"], 2, "--num-classes must be within 1..100000"),
    # images over Pillow's pixel limit: one line, whether Pillow warns or raises
    (["search", "--dataset", "imagefolder:{bomb}", "--runs-dir", "{tmp}/runs"], 2, "possible decompression bomb"),
    (["search", "--dataset", "imagefolder:{bomb2x}", "--runs-dir", "{tmp}/runs"], 2, "possible decompression bomb"),
    # small things
    (["search", "--accuracy-table", "{tmp}", "--runs-dir", "{tmp}/runs"], 2, "is a directory"),
    (["bench", "--target", "sd845", "--adb-serial", "127.0.0.1:99999"], 2, "port 99999 is not a TCP port"),
    (["devices", "--adb-serial", "127.0.0.1:0"], 2, "port 0 is not a TCP port"),
    (["bench", "--target", "sd845", "--adb-serial", "127.0.0.1:9", "--benchmark-binary", "{tmp}/nope"], 2,
     "--benchmark-binary {tmp}/nope: no such file"),
    (["bench", "--target", "sd845", "--adb-serial", "127.0.0.1:9", "--apk", "{tmp}"], 2, "is a directory"),
    # hand-edited latency tables: damaged files are exit 1, like the store's other damage
    (["lut", "show", "--table", "{tables}/median.sqlite"], 1, "units row 'conv-b': median_ms must be a finite number"),
    (["lut", "export", "--csv", "--table", "{tables}/median.sqlite"], 1, "units row 'conv-b': median_ms"),
    (["lut", "show", "--table", "{tables}/extra.sqlite"], 1, "units row 'conv-b': extra must be a JSON object"),
    (["lut", "export", "--json", "--table", "{tables}/runs.sqlite"], 1, "runs must be a whole number"),
    (["search", "--table", "{tables}/median.sqlite", "--runs-dir", "{tmp}/runs"], 1, "units row 'conv-b'"),
]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, str]:
    base = tmp_path_factory.mktemp("bad-inputs")
    _bad_table(base / "median.sqlite", "median_ms", "abc")
    _bad_table(base / "extra.sqlite", "extra", '{"n":')
    _bad_table(base / "runs.sqlite", "runs", -3)
    return {"tables": str(base), "bomb": str(_bomb_folder(base / "bomb", 10_000)),  # 1.1x the limit: a warning in Pillow
            "bomb2x": str(_bomb_folder(base / "bomb2x", 14_000))}  # 2.2x: Pillow raises


@pytest.mark.parametrize("args,code,fragment", CASES, ids=[" ".join(c[0])[:60] for c in CASES])
def test_bad_input_is_one_line(args, code, fragment, inputs, tmp_path):
    subs = {**inputs, "tmp": str(tmp_path)}
    args = [a.format(**subs) for a in args]
    proc = run_plaid(*args)
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out and "frame #" not in out, out[-2000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == code, (proc.returncode, proc.stderr[-2000:])
    assert len(lines) == 1, proc.stderr[-2000:]
    assert lines[0].startswith("plaid: error: ")
    assert fragment.format(**subs) in lines[0], lines[0]
    assert not (tmp_path / "out").exists()  # export failed before writing anything


@pytest.mark.parametrize("edit,fragment", [
    (("widths = [64, 128]", "widths = [64, 99999999]"), "widths must be integers within 1..4096"),
    (("depth = [1, 12]", "depth = [1, 100000]"), "depth must be [MIN, MAX] with 1 <= MIN <= MAX <= 64"),
    (("max_depth = 64", "max_depth = 10000000"), "max_depth must be an integer within 1..1000000"),
    (("max_stages = 6", "max_stage = 6"), "unknown key(s) max_stage"),
])
def test_space_presets_stay_within_their_limits(tmp_path, edit, fragment):
    import shutil

    configs = tmp_path / "configs"
    shutil.copytree(ROOT / "configs", configs)
    preset = configs / "spaces" / "df.toml"
    text = preset.read_text()
    assert edit[0] in text
    preset.write_text(text.replace(edit[0], edit[1], 1))
    proc = run_plaid("arch", "sample", "--space", "df", "-n", "1", env={"PLAID_CONFIG_DIR": str(configs)})
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "configs/spaces/df.toml" in lines[0] and fragment in lines[0], lines[0]


def test_debug_env_still_shows_the_traceback():
    proc = run_plaid("arch", "show", f"df:R{HUGE}-R128-R256", env={"PLAID_DEBUG": "1"})
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "ArchError" in proc.stderr


@pytest.mark.parametrize("extra", [[], ["--json"]])
def test_broken_pipe_exits_quietly_with_sigpipe_status(extra):
    """`plaid arch list | head -1`: no error text, and 141 (128 + SIGPIPE), the status the
    shell reports for `seq`, `cat` or `git log` cut short by `head`."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before plaid writes (head after its line, made certain)
    try:
        proc = subprocess.run([sys.executable, "-m", "plaid", "arch", "list", *extra], stdout=write_end,
                              stderr=subprocess.PIPE, timeout=120,
                              env={k: v for k, v in os.environ.items() if k != "PLAID_DEBUG"})
    finally:
        os.close(write_end)
    assert proc.returncode == 141, proc.stderr
    assert proc.stderr == b""


def _in_pty(args: list[str], env: dict) -> str:
    """Run the CLI with stdout and stderr on a pseudo-terminal; what it wrote there."""
    import pty

    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "plaid", *args], stdout=follower, stderr=follower,
                            stdin=subprocess.DEVNULL, env=env)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    assert proc.wait(timeout=120) == 0
    return b"".join(chunks).decode(errors="replace")


def test_no_color_gives_plain_text_on_a_terminal():
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "PLAID_DEBUG", "FORCE_COLOR")}
    env.update(TERM="xterm-256color", COLUMNS="160")
    styled = _in_pty(["arch", "show", "df1"], env)
    assert "\x1b[" in styled  # control: on a terminal, rich styles the output (bold, italic headers)
    plain = _in_pty(["arch", "show", "df1"], {**env, "NO_COLOR": "1"})
    assert "\x1b[" not in plain, repr(plain[:300])
    assert "MACs" in plain and "df1" in plain


@pytest.mark.parametrize("setting", [{"NO_COLOR": "1"}, {"TERM": "dumb"}])
def test_progress_on_a_terminal_is_plain_with_no_color_or_dumb_term(setting):
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "PLAID_DEBUG", "FORCE_COLOR")}
    env.update(TERM="xterm-256color", COLUMNS="160")
    out = _in_pty(["arch", "sample", "--space", "pl1a", "-n", "20"], {**env, **setting})
    assert "\x1b" not in out and "━" not in out, repr(out[:300])
    assert "sampling and counting 20/20 (100%) in " in out


PLAIN_LINE = re.compile(r"^sampling and counting (\d+)/20 \((\d+)%\)( eta \d+(m\d\ds)?s?| in \d+\S*)?  pl1a:\S+$")


def test_progress_is_plain_lines_when_stderr_is_not_a_terminal():
    proc = run_plaid("arch", "sample", "--space", "pl1a", "-n", "20")
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 20
    lines = proc.stderr.splitlines()
    assert "\x1b" not in proc.stderr and "━" not in proc.stderr and "…" not in proc.stderr
    assert lines and all(PLAIN_LINE.match(ln) for ln in lines), lines
    done = [int(PLAIN_LINE.match(ln).group(1)) for ln in lines]
    assert done[0] == 1 and done[-1] == 20 and done == sorted(done)
    assert 2 <= len(lines) <= 21
    assert " in " in lines[-1]


def test_plain_progress_is_throttled_and_shows_eta():
    from plaid.cli.render import PlainProgress

    class Clock:
        t = 0.0

        def __call__(self):
            return self.t

    import io

    clock, out = Clock(), io.StringIO()
    bar = PlainProgress(out, every_pct=5, every_s=10, clock=clock)
    for done in range(0, 1001):  # 1000 tiny steps of 0.1 s
        clock.t = done * 0.1
        bar("convert", done, 1000, f"unit-{done}")
    lines = out.getvalue().splitlines()
    assert 20 <= len(lines) <= 23, lines  # every 5% (each 5 s, under the 10 s cap), not 1000 lines
    assert lines[0] == "converting to TFLite 0/1000 (0%)  unit-0"
    assert lines[10] == "converting to TFLite 500/1000 (50%) eta 50s  unit-500"
    assert lines[-1] == "converting to TFLite 1000/1000 (100%) in 1m40s  unit-1000"
    # slow steps: a line at least every 10 s even when the percentage barely moves
    out2 = io.StringIO()
    slow = PlainProgress(out2, every_pct=5, every_s=10, clock=clock)
    for done in range(0, 60):
        clock.t = 1000 + done * 4.0
        slow("measure", done, 1000, "")
    assert len(out2.getvalue().splitlines()) == 20  # 60 steps of 4 s: a line every third step (12 s)
    assert "eta 1h" in out2.getvalue().splitlines()[-1]
