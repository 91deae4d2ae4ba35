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


# ---- no import cycles between plaid's subpackages ----------------------------------------------

import ast  # noqa: E402
import itertools  # noqa: E402
from pathlib import Path  # noqa: E402

PLAID = Path(__file__).resolve().parents[1] / "plaid"

# Cycles between top-level parts of plaid that are known and not yet removed, each as a
# frozenset of the parts in it, with the reason. Keep it empty: a part that needs another
# one's services at run time gets them handed in (values, callables, a registry it owns).
ALLOWED_CYCLES: dict[frozenset[str], str] = {}


def _part(module: str) -> str | None:
    """The top-level part of plaid that ``module`` (dotted) belongs to: ``plaid.lut.store`` ->
    ``lut``, ``plaid.zoo`` -> ``zoo``; None outside plaid or for ``plaid`` itself."""
    names = module.split(".")
    if names[0] != "plaid" or len(names) < 2:
        return None
    top = names[1]
    return top if (PLAID / top).is_dir() or (PLAID / f"{top}.py").is_file() else None


def import_edges() -> dict[str, dict[str, list[str]]]:
    """part -> {imported part -> ["file:line", ...]} over every module under plaid/, imports
    inside functions included (a lazy import is still a dependency)."""
    edges: dict[str, dict[str, list[str]]] = {}
    for path in sorted(PLAID.rglob("*.py")):
        rel = path.relative_to(PLAID.parent)
        module = list(rel.with_suffix("").parts)
        package = module[:-1]  # what a relative import starts from
        source = _part(".".join(module)) or "plaid"  # "plaid": plaid/__init__.py
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package[:len(package) - node.level + 1]
                    base = ".".join(anchor + ([node.module] if node.module else []))
                targets = [base] + [f"{base}.{a.name}" for a in node.names]  # from plaid import lut
            else:
                continue
            for dest in {_part(t) for t in targets} - {None, source}:
                edges.setdefault(source, {}).setdefault(dest, []).append(f"{rel}:{node.lineno}")
    return edges


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected parts of ``graph`` with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[frozenset[str]] = []
    counter = itertools.count()

    def visit(v: str) -> None:
        index[v] = low[v] = next(counter)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(frozenset(comp))

    for v in sorted(set(graph) | {w for ws in graph.values() for w in ws}):
        if v not in index:
            visit(v)
    return found


def test_cycle_finder_sees_cycles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [frozenset("abc")]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_import_graph_is_read_whole():
    edges = import_edges()
    assert "models" in edges["spaces"]  # the graph sees real imports (DecoderSpace.build)
    assert "adb" in edges["targets"]  # ... imports inside functions too (plaid.targets.load_transport)


def test_no_import_cycles_between_subpackages():
    edges = import_edges()
    graph = {src: set(dests) for src, dests in edges.items()}
    problems = []
    for comp in cycles(graph):
        if comp in ALLOWED_CYCLES:
            continue
        where = [f"{a} -> {b} ({', '.join(edges[a][b][:3])})" for a in sorted(comp) for b in sorted(comp)
                 if b in edges.get(a, {})]
        problems.append(f"cycle {sorted(comp)}: " + "; ".join(where))
    assert not problems, "\n".join(problems)
    stale = [sorted(c) for c in ALLOWED_CYCLES if c not in cycles(graph)]
    assert not stale, f"ALLOWED_CYCLES lists cycles that are gone: {stale}"
