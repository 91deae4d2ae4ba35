"""`import plaid`, the spaces and `plaid --help` work without loading heavy stacks."""

import subprocess
import sys

CHECK = """
import sys
import plaid, plaid.spaces, plaid.zoo, plaid.cli.main
from plaid.spaces import get_space, parse_arch
space, arch = parse_arch("df:R64x3-R128x3-R256x3,512")
get_space("dfseg").sample(__import__("random").Random(0))
plaid.cli.main.build_parser()
heavy = sorted(m for m in ("torch", "tensorflow", "onnx", "onnx2tf", "ai_edge_litert", "rich") if m in sys.modules)
print(",".join(heavy))
"""


def test_light_imports():
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"heavy modules imported: {out.stdout.strip()}"


def test_help_does_not_import_torch():
    code = ("import sys, runpy\nsys.argv=['plaid','--help']\n"
            "try:\n  runpy.run_module('plaid', run_name='__main__')\nexcept SystemExit:\n  pass\n"
            "print('TORCH' if 'torch' in sys.modules else 'LIGHT', file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stderr.strip().endswith("LIGHT"), out.stderr
