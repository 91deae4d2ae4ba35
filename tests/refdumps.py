"""Readers for the reference layer dumps in tests/data/reference/ (the spec the
builders must reproduce; see tests/data/reference/README.md for where they come from). Caffe-style dumps list each layer with its output shape; the
PL1A-Seg ncnn dump lists ncnn params, so shapes and MACs are propagated here."""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

REF_DIR = Path(os.environ.get("PLAID_REFERENCE_DIR", Path(__file__).resolve().parent / "data" / "reference"))

_CAFFE_CONV = re.compile(
    r"^(?P<name>\S+)\s+(?P<type>Convolution|Deconvolution)\s+in=\S+\s+out=\((?P<shape>[\d, ]+)\)\s+"
    r"k(?P<k>\d+) s(?P<s>\d+) p\d+ d\d+ g(?P<g>\d+) (?P<cin>\d+)->(?P<cout>\d+) .*MACs=(?P<macs>[\d.]+)M"
)
_CAFFE_FC = re.compile(r"^(?P<name>\S+)\s+InnerProduct\s+.*out=\((?P<shape>[\d, ]+)\)\s+(?P<cin>\d+)->(?P<cout>\d+)")
_CAFFE_POOL = re.compile(r"^(?P<name>\S+)\s+Pooling\s+.*out=\((?P<shape>[\d, ]+)\)")
_TOTAL = re.compile(r"^TOTAL MACs=(?P<g>[\d.]+)G")


def _op(kind: str, g: int, cin: int, cout: int) -> str:
    if kind == "deconv":
        return "deconv"
    if g == 1:
        return "conv"
    return "dwconv" if g == cin == cout else "gconv"


def caffe_dump(name: str) -> tuple[Counter, float]:
    """Multiset of layer signatures (op, cin, cout, k, s, groups, out_shape) and total GMACs."""
    sigs: Counter = Counter()
    total = None
    for line in (REF_DIR / name).read_text().splitlines():
        if m := _CAFFE_CONV.match(line):
            kind = "deconv" if m["type"] == "Deconvolution" else "conv"
            g, cin, cout, k, s = (int(m[x]) for x in ("g", "cin", "cout", "k", "s"))
            shape = tuple(int(v) for v in m["shape"].split(","))
            sigs[(_op(kind, g, cin, cout), cin, cout, (k, k), (s, s), g, shape)] += 1
        elif m := _CAFFE_FC.match(line):
            sigs[("fc", int(m["cin"]), int(m["cout"]), (1, 1), (1, 1), 1, (int(m["cout"]),))] += 1
        elif m := _CAFFE_POOL.match(line):
            shape = tuple(int(v) for v in m["shape"].split(","))
            sigs[("avgpool", shape[0], shape[0], shape[1:])] += 1
        elif m := _TOTAL.match(line):
            total = float(m["g"])
    assert total is not None, f"{name}: no TOTAL line"
    return sigs, total


def _params(tokens: list[str]) -> dict[int, str]:
    out = {}
    for tok in tokens:
        if "=" in tok:
            k, v = tok.split("=", 1)
            if k.lstrip("-").isdigit():
                out[int(k)] = v
    return out


def ncnn_dump(name: str, main_output_layer: int) -> tuple[Counter, int, dict[int, tuple[int, int, int]]]:
    """Propagate (C, H, W) through the ncnn layer list. Returns the signature multiset of
    the layers that feed ``main_output_layer`` (the model's real output, leaving out the
    dump's auxiliary heads), their MACs, and every blob's shape."""
    shapes: dict[int, tuple[int, int, int]] = {}
    layers = []
    for line in (REF_DIR / name).read_text().splitlines()[1:]:
        m = re.match(r"^(\d+) (\S+) \[([\d, ]*)\] -> \[([\d, ]*)\]\s*(.*)$", line)
        assert m, line
        idx, typ = int(m[1]), m[2]
        ins = [int(v) for v in m[3].split(",") if v.strip()]
        outs = [int(v) for v in m[4].split(",") if v.strip()]
        p = _params(re.findall(r"-?\d+=(?:\([^)]*\)|\S+)", m[5]))
        sig, macs = None, 0
        if typ == "Input":
            shapes[outs[0]] = (int(p[2]), int(p[1]), int(p[0]))
        elif typ in ("Convolution", "ConvolutionDepthWise", "DeconvolutionDepthWise"):
            c, h, w = shapes[ins[0]]
            cout, k, s = int(p[0]), int(p[1]), int(p.get(3, 1))
            pad, wsize = int(p.get(4, 0)), int(p[6])
            g = int(p.get(7, 1))
            if typ.startswith("Deconvolution"):
                oh, ow = (h - 1) * s + k - 2 * pad, (w - 1) * s + k - 2 * pad
                macs = wsize * h * w
                op = "deconv"
            else:
                oh, ow = (h + 2 * pad - k) // s + 1, (w + 2 * pad - k) // s + 1
                macs = wsize * oh * ow
                op = _op("conv", g, c, cout)
            shapes[outs[0]] = (cout, oh, ow)
            sig = (op, c, cout, (k, k), (s, s), g, (cout, oh, ow))
        elif typ == "Pooling":
            c, h, w = shapes[ins[0]]
            kw, kh = int(p[1]), int(p.get(11, p[1]))
            sw, sh = int(p[2]), int(p.get(12, p[2]))
            shapes[outs[0]] = (c, (h - kh) // sh + 1, (w - kw) // sw + 1)
            sig = ("avgpool", c, c, shapes[outs[0]][1:])
        elif typ == "Interp":
            c = shapes[ins[0]][0]
            shapes[outs[0]] = (c, int(p[3]), int(p[4]))
        elif typ == "Concat":
            parts = [shapes[i] for i in ins]
            shapes[outs[0]] = (sum(x[0] for x in parts), parts[0][1], parts[0][2])
        elif typ == "Slice":
            c, h, w = shapes[ins[0]]
            first = int(re.search(r"\[(\d+),", m[5])[1])
            shapes[outs[0]], shapes[outs[1]] = (first, h, w), (c - first, h, w)
        elif typ in ("Split",):
            for o in outs:
                shapes[o] = shapes[ins[0]]
        elif typ in ("ReLU", "ShuffleChannel", "Softmax"):
            shapes[outs[0]] = shapes[ins[0]]
        elif typ == "ArgMax":
            c, h, w = shapes[ins[0]]
            shapes[outs[0]] = (1, h, w)
        else:
            raise AssertionError(f"unhandled ncnn layer type {typ}")
        layers.append((idx, ins, outs, sig, macs))
    # keep only the layers the main output depends on
    producer = {o: lay for lay in layers for o in lay[2]}
    need, stack = set(), [next(lay for lay in layers if lay[0] == main_output_layer)]
    while stack:
        lay = stack.pop()
        if lay[0] in need:
            continue
        need.add(lay[0])
        stack.extend(producer[i] for i in lay[1] if i in producer)
    sigs: Counter = Counter()
    total = 0
    for idx, _, _, sig, macs in layers:
        if idx in need and sig is not None:
            sigs[sig] += 1
            total += macs
    return sigs, total, shapes
