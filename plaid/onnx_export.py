"""torch -> one ONNX file (the dynamo exporter, opset 20), with the two memos that make
exporting hundreds of latency units cheap: the aten-to-ONNX registry built once per
process (``_reuse_onnx_registry``) and torch.export's op look-ups done once while the
dispatcher's list is unchanged (``_materialize_cia_ops_once``); the ONNX bytes are the
same either way (tests/test_convert.py). :mod:`plaid.convert` takes it on to TFLite."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

from plaid.errors import PlaidError
from plaid.fsio import atomic_path

OPSET = 20


def input_shapes(shape) -> list[tuple[int, ...]]:
    """One input's shape ``(1, C, H, W)``, or a sequence of them (a module of several
    inputs), as a list of shapes."""
    if shape and isinstance(shape[0], int):
        return [tuple(shape)]
    return [tuple(s) for s in shape]


_REGISTRY_CACHED = False


def _reuse_onnx_registry() -> None:
    """torch.onnx.export (dynamo) rebuilds its aten-to-ONNX registry from torchlib on every
    call, parsing the source of ~500 onnxscript functions: about half the time of exporting
    a latency unit, and a decoder table exports hundreds. Built once per process here and
    each export gets its own copy of the lists (so a caller's custom ops never leak into
    the next export); the ONNX written is byte for byte the same. A torch without this
    internal (``ONNXRegistry.from_torchlib``) is left as it is."""
    global _REGISTRY_CACHED
    if _REGISTRY_CACHED:
        return
    _REGISTRY_CACHED = True
    try:
        from torch.onnx._internal.exporter import _registration
    except ImportError:  # pragma: no cover - another torch
        return
    cls = _registration.ONNXRegistry
    original = cls.__dict__.get("from_torchlib")
    if not isinstance(original, classmethod):  # pragma: no cover - another torch
        return
    built: dict[Any, Any] = {}

    def from_torchlib(klass, *args, **kwargs):
        key = (klass, args, tuple(sorted(kwargs.items())))
        if key not in built:
            built[key] = original.__func__(klass, *args, **kwargs)
        copy = klass.__new__(klass)
        copy.__dict__.update(built[key].__dict__)
        copy.functions = {k: list(v) for k, v in built[key].functions.items()}
        return copy

    cls.from_torchlib = classmethod(from_torchlib)


_CIA_MEMO = False


def _materialize_cia_ops_once() -> None:
    """torch.export's decomposition step calls ``_materialize_cpp_cia_ops`` about 80 times
    per export (once per op namespace, three times over): each call asks the dispatcher for
    its CompositeImplicitAutograd registrations and looks every one up in ``torch.ops`` so
    that it exists there. Looking them up again changes nothing while that list is the
    same, so the lookups run only when the list changed (a new custom op); about 15% of a
    unit's export. The ONNX bytes are the same. A torch without that internal is left as
    it is."""
    global _CIA_MEMO
    if _CIA_MEMO:
        return
    _CIA_MEMO = True
    try:
        import torch
        from torch._export import utils
    except ImportError:  # pragma: no cover - another torch
        return
    original = getattr(utils, "_materialize_cpp_cia_ops", None)
    query = getattr(torch._C, "_dispatch_get_registrations_for_dispatch_key", None)
    if original is None or query is None:  # pragma: no cover - another torch
        return
    last: list[tuple[str, ...]] = []

    def materialize() -> None:
        names = tuple(query("CompositeImplicitAutograd"))
        if last and last[0] == names:
            return
        original()
        last[:] = [names]

    utils._materialize_cpp_cia_ops = materialize


def export_onnx(module, input_shape, path: Path) -> Path:
    """Export an eval-mode module to a single ONNX file (dynamo exporter, opset 20).
    ``input_shape``: one shape, or a sequence of shapes for a module of several inputs
    (named input, input2, ...)."""
    import logging

    import torch

    _reuse_onnx_registry()
    _materialize_cia_ops_once()
    shapes = input_shapes(input_shape)
    names = ["input"] + [f"input{i}" for i in range(2, len(shapes) + 1)]
    module = module.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    quiet = io.StringIO()
    prev = logging.getLogger("torch.onnx").level
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    try:
        with atomic_path(path) as tmp:
            try:
                with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet), torch.no_grad():
                    torch.onnx.export(module, tuple(torch.zeros(*s) for s in shapes), str(tmp), dynamo=True,
                                      opset_version=OPSET, external_data=False, input_names=names,
                                      output_names=["output"], verbose=False)
            except Exception as exc:  # noqa: BLE001 - exporter errors are many and deep
                raise PlaidError(f"ONNX export failed: {type(exc).__name__}: "
                                 f"{str(exc).splitlines()[0][:300]}") from exc
    finally:
        logging.getLogger("torch.onnx").setLevel(prev)
    return path
