"""The ONNX export path: a unit of several inputs exports with one named input each, and
the registry plaid builds once per process gives the same bytes as torch's own rebuild."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

from plaid.convert import export_onnx, input_shapes
from plaid.models.shufflenet import ShuffleUnit
from plaid.spaces.units import Unit

CONCAT = Unit("pl1aseg", "concat", 6, 10, 16, 40, cin2=24)


def test_input_shapes_takes_one_shape_or_several():
    assert input_shapes((1, 3, 8, 8)) == [(1, 3, 8, 8)]
    assert input_shapes([(1, 3, 8, 8), (1, 5, 8, 8)]) == [(1, 3, 8, 8), (1, 5, 8, 8)]


def test_a_two_input_unit_exports_with_both_inputs(tmp_path):
    path = export_onnx(CONCAT.build(), CONCAT.input_shapes, tmp_path / "c.onnx")
    graph = onnx.load(str(path)).graph
    dims = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in graph.input}
    assert dims == {"input": [1, 16, 6, 10], "input2": [1, 24, 6, 10]}
    assert [d.dim_value for d in graph.output[0].type.tensor_type.shape.dim] == [1, 6, 10, 40]  # NHWC out


def test_the_reused_registry_is_a_fresh_copy_each_time(tmp_path):
    from torch.onnx._internal.exporter import _registration

    export_onnx(CONCAT.build(), CONCAT.input_shapes, tmp_path / "c.onnx")  # installs the reuse
    a = _registration.ONNXRegistry.from_torchlib()
    b = _registration.ONNXRegistry.from_torchlib()
    assert a is not b and a.functions.keys() == b.functions.keys() and len(a.functions) > 100
    key = next(iter(a.functions))
    a.functions[key].clear()  # what a caller's custom op registration would do
    assert _registration.ONNXRegistry.from_torchlib().functions[key]


def _digests_in_a_new_process(reuse: bool, out: Path) -> list[str]:
    code = f"""
import hashlib, sys
from pathlib import Path
import plaid.onnx_export as c
from plaid.spaces.units import Unit
c._REGISTRY_CACHED = c._CIA_MEMO = {not reuse}  # True: plaid never installs the reuse/memo (torch as it is)
units = [Unit("pl1a", "shuffle", 8, 8, 24, 48, stride=2), {CONCAT!r}, Unit("pl1aseg", "score", 4, 6, 16, 19, up=8)]
for i, u in enumerate(units * 2):
    p = c.export_onnx(u.build(), u.input_shapes, Path({str(out)!r}) / f"{{i}}.onnx")
    print(hashlib.sha256(p.read_bytes()).hexdigest())
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout.split()


def test_the_reused_registry_writes_the_same_onnx_bytes(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    rebuilt = _digests_in_a_new_process(False, tmp_path / "a")
    reused = _digests_in_a_new_process(True, tmp_path / "b")
    assert len(rebuilt) == 6 and reused == rebuilt
    assert rebuilt[:3] == rebuilt[3:]  # and exports are deterministic
    assert hashlib.sha256(b"").hexdigest() not in rebuilt


def test_exports_report_progress_before_the_conversions(tmp_path, monkeypatch):
    """Hundreds of units take minutes to export: each export is a progress step, then each
    conversion (onnx2tf stubbed out here: only the reporting is under test)."""
    import plaid.convert as convert

    def fake_convert(onnx_path, out, log=None):
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(b"tflite")
        return out

    monkeypatch.setattr(convert, "onnx_to_tflite", fake_convert)
    monkeypatch.setenv("PLAID_CONVERT_WORKERS", "1")
    units = [Unit("pl1aseg", "lateral", 6, 10, 16, c) for c in (8, 16, 24)]
    seen = []
    paths = convert.tflite_many([(u.key, u.build, u.input_shapes) for u in units], cache=tmp_path,
                                progress=lambda d, t, label: seen.append(("convert", d, t)),
                                export_progress=lambda d, t, label: seen.append(("export", d, t)))
    assert len(paths) == 3 and all(p.read_bytes() == b"tflite" for p in paths)
    assert seen == [("export", 1, 3), ("export", 2, 3), ("export", 3, 3),
                    ("convert", 0, 3), ("convert", 1, 3), ("convert", 2, 3), ("convert", 3, 3)]


def test_with_workers_each_model_is_converted_once_and_every_job_counted(tmp_path, monkeypatch):
    """Two conversion processes, fed as the exports are written: a model already converted,
    or the same as one queued, is not converted again, and every job is counted once. The
    real onnx2tf runs (a one-conv unit converts in about a second)."""
    import plaid.convert as convert

    monkeypatch.setenv("PLAID_CONVERT_WORKERS", "2")
    units = [Unit("pl1aseg", "lateral", 6, 10, 16, c) for c in (8, 16)]
    jobs = [(u.key, u.build, u.input_shapes) for u in units] * 2  # each model twice
    events, ready = [], []

    def on_ready(index, path):
        assert path.is_file()  # handed out only once its file exists
        ready.append((index, path))

    paths = convert.tflite_many(jobs, cache=tmp_path, progress=lambda d, t, label: events.append(("convert", d, t)),
                                export_progress=lambda d, t, label: events.append(("export", d, t)),
                                on_ready=on_ready)
    assert len(paths) == 4 and paths[0] == paths[2] and paths[1] == paths[3] and paths[0] != paths[1]
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths)
    assert sorted(ready) == sorted(enumerate(paths))  # every job once, a duplicate when its model is made
    assert [d for kind, d, _ in events if kind == "convert"] == [0, 1, 2, 3, 4]
    assert [d for kind, d, _ in events if kind == "export"] == [1, 2, 3, 4]
    stamps = [p.stat().st_mtime_ns for p in paths[:2]]
    again = []
    convert.tflite_many(jobs, cache=tmp_path, progress=lambda d, t, label: again.append(d))
    assert again == [0, 1, 2, 3, 4]  # all cached: counted as their exports find them
    assert [p.stat().st_mtime_ns for p in paths[:2]] == stamps  # and not converted again


def test_the_lean_keras_metadata_hook_is_live_and_restored():
    from tf_keras.src.saving.legacy.saved_model import base_serialization

    from plaid.convert import _lean_keras_metadata

    saver = base_serialization.SavedModelSaver
    before = saver.__dict__["tracking_metadata"]
    with _lean_keras_metadata():
        assert saver.tracking_metadata.fget(None) == "{}"  # the pinned tf_keras still has the hook
    assert saver.__dict__["tracking_metadata"] is before


def _tflite_digests_in_a_new_process(onnx_path: Path, calib: Path | None, lean: bool, work: Path,
                                     fp32_only: bool = False) -> dict[str, str]:
    """onnx2tf's output files (all of them, SavedModel included) and their digests."""
    calib_arg = "None" if calib is None else f"np.load({str(calib)!r})"
    code = f"""
import hashlib, json
from pathlib import Path
import numpy as np
from plaid.convert import _run_onnx2tf
out = _run_onnx2tf(Path({str(onnx_path)!r}), Path({str(work)!r}), None, {calib_arg}, lean={lean}, fp32_only={fp32_only})
print(json.dumps({{f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in out.iterdir() if f.is_file()}}))
"""
    work.mkdir()
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout.splitlines()[-1])


def test_without_keras_metadata_onnx2tf_writes_the_same_tflite_bytes(tmp_path):
    """fp32, fp16 and every calibrated int8 variant of a net with a strided conv and two shuffle
    units (stride 2; stride 1, with the channel split) are byte-identical with and without the
    metadata onnx2tf spends its time on (each in a new process: a second conversion in one
    process numbers its tensors on)."""
    import numpy as np
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 24, 3, 2, 1), torch.nn.BatchNorm2d(24), torch.nn.ReLU(),
                              ShuffleUnit(24, 48, 2), Unit("pl1a", "shuffle", 4, 4, 48, 48, stride=1).build()).eval()
    onnx_path = export_onnx(net, (1, 3, 16, 16), tmp_path / "net.onnx")
    np.save(tmp_path / "calib.npy", np.random.default_rng(0).normal(size=(8, 16, 16, 3)).astype(np.float32))
    lean, full = (_tflite_digests_in_a_new_process(onnx_path, tmp_path / "calib.npy", flag, tmp_path / str(flag))
                  for flag in (True, False))
    assert {"model_float32.tflite", "model_float16.tflite", "model_full_integer_quant.tflite"} <= set(lean)
    tflite = {name for name in lean if name.endswith(".tflite")}  # the SavedModel's fingerprint differs per run
    assert tflite == {name for name in full if name.endswith(".tflite")}
    assert {n: lean[n] for n in tflite} == {n: full[n] for n in tflite}


def test_a_table_conversion_stops_at_the_fp32_file_and_writes_the_same_bytes(tmp_path):
    """onnx_to_tflite (what tables convert with) skips onnx2tf's SavedModel and fp16 file;
    its fp32 file is byte-identical to a full conversion's (each in a new process)."""
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 24, 3, 2, 1), torch.nn.BatchNorm2d(24), torch.nn.ReLU(),
                              ShuffleUnit(24, 48, 2), Unit("pl1a", "shuffle", 4, 4, 48, 48, stride=1).build()).eval()
    onnx_path = export_onnx(net, (1, 3, 16, 16), tmp_path / "net.onnx")
    short, full = (_tflite_digests_in_a_new_process(onnx_path, None, True, tmp_path / str(flag), fp32_only=flag)
                   for flag in (True, False))
    assert set(short) == {"model_float32.tflite"}  # the hook is live: no SavedModel, no fp16 file
    assert {"model_float16.tflite", "saved_model.pb"} <= set(full)
    assert short["model_float32.tflite"] == full["model_float32.tflite"]


def test_the_fp32_stop_is_undone_and_refuses_calibration(tmp_path):
    import tensorflow as tf
    from tensorflow.lite.python import lite

    from plaid.convert import _fp32_only, _run_onnx2tf

    save, convert = tf.saved_model.save, lite.TFLiteKerasModelConverterV2.__dict__["convert"]
    with _fp32_only():
        assert tf.saved_model.save is not save
    assert tf.saved_model.save is save and lite.TFLiteKerasModelConverterV2.__dict__["convert"] is convert
    with pytest.raises(ValueError, match="calib"):
        _run_onnx2tf(tmp_path / "x.onnx", tmp_path, None, calib=object(), fp32_only=True)


def test_cia_lookups_rerun_when_a_new_op_is_registered(tmp_path):
    """The memo of torch.export's op lookups (``_materialize_cia_ops_once``) is installed by
    an export and still materializes an op registered after it."""
    import torch
    from torch._export import utils

    export_onnx(CONCAT.build(), CONCAT.input_shapes, tmp_path / "c.onnx")
    assert utils._materialize_cpp_cia_ops.__qualname__.startswith("_materialize_cia_ops_once")
    lib = torch.library.Library("plaidmemo", "DEF")
    lib.define("twice(Tensor x) -> Tensor")
    lib.impl("twice", lambda x: x * 2, "CompositeImplicitAutograd")
    assert "twice" not in torch.ops.plaidmemo._dir
    utils._materialize_cpp_cia_ops()
    assert "twice" in torch.ops.plaidmemo._dir


def test_a_set_cancel_event_stops_before_the_next_step(tmp_path, monkeypatch):
    import threading

    import plaid.convert as convert

    cancel = threading.Event()
    cancel.set()
    for workers in ("1", "2"):
        monkeypatch.setenv("PLAID_CONVERT_WORKERS", workers)
        with pytest.raises(convert.Cancelled):
            convert.tflite_many([(CONCAT.key, CONCAT.build, CONCAT.input_shapes)] * 2, cache=tmp_path, cancel=cancel)
        with pytest.raises(convert.Cancelled):
            convert.onnx_many([(CONCAT.key, CONCAT.build, CONCAT.input_shapes)], cache=tmp_path, cancel=cancel)
    assert not list(tmp_path.rglob("*.tflite"))


def _delegated(path: Path) -> list[str]:
    """The interpreter's nodes once XNNPACK is applied: a delegated partition is one DELEGATE
    node (``_get_ops_details`` also lists the nodes it replaced)."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path), num_threads=1)
    interp.allocate_tensors()
    return [op["op_name"] for op in interp._get_ops_details()]  # noqa: SLF001 - the only way to list them


def _depthwise_convs(module) -> int:
    import torch

    return sum(isinstance(m, torch.nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels
               for m in module.modules())


@pytest.mark.tflite
@pytest.mark.parametrize("net, shape", [("pl1a:24x2-48x3-96x2", (1, 3, 64, 64)),
                                        ("pl1a-seg-d8", (1, 3, 64, 128))])
def test_a_whole_pl1a_net_converts_to_one_xnnpack_partition_without_transposes(tmp_path, net, shape):
    """PL1A's shuffle (fused with the channel split, channels-last) keeps a whole PL1A and
    PL1A-Seg net in NHWC: no Transpose at all (so none next to a conv, which plaid export
    refuses), every depthwise conv stays a DEPTHWISE_CONV_2D (not a grouped CONV_2D), no
    GATHER, and XNNPACK takes the whole graph as one partition. The forms before fail this:
    the gather split the graph at every unit (17 partitions in PL1A-Seg's backbone); a
    channels-last shuffle at each unit's output left Transposes around the next unit's split."""
    import numpy as np
    import torch

    from plaid.convert import onnx_to_tflite, tflite_op_names, transposes_near_convs
    from plaid.zoo import resolve

    torch.manual_seed(0)
    module = resolve(net).build().eval()
    with torch.no_grad():
        for m in module.modules():  # BN statistics away from identity, so that parity means something
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 1.5)
    path = onnx_to_tflite(export_onnx(module, shape, tmp_path / "m.onnx"), tmp_path / "m.tflite")
    ops = tflite_op_names(path)
    assert transposes_near_convs(path) == [] and "TRANSPOSE" not in ops and "GATHER" not in ops, ops
    assert ops.count("DEPTHWISE_CONV_2D") == _depthwise_convs(module)
    after = _delegated(path)
    assert after.count("DELEGATE") == 1, after
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path), num_threads=1)
    interp.allocate_tensors()
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    interp.set_tensor(interp.get_input_details()[0]["index"], x.transpose(0, 2, 3, 1))
    interp.invoke()
    got = interp.get_tensor(interp.get_output_details()[0]["index"])
    with torch.no_grad():
        ref = module(torch.from_numpy(x)).numpy()
    if ref.ndim == 4:
        ref = ref.transpose(0, 2, 3, 1)
    assert np.abs(got - ref).max() <= 1e-4 * max(1.0, np.abs(ref).max())


@pytest.mark.tflite
def test_a_stride_1_shuffle_unit_is_one_xnnpack_partition(tmp_path):
    """A table's stride-1 PL1A unit alone converts to RESHAPE/SPLIT around its convs, the ops
    it has inside a whole net, all delegated (one partition), as in the test above."""
    from plaid.convert import onnx_to_tflite, tflite_op_names, transposes_near_convs

    unit = Unit("pl1a", "shuffle", 12, 20, 48, 48, stride=1)
    path = onnx_to_tflite(export_onnx(unit.build().eval(), unit.input_shapes, tmp_path / "u.onnx"),
                          tmp_path / "u.tflite")
    ops = tflite_op_names(path)
    assert "SPLIT" in ops and "GATHER" not in ops and "TRANSPOSE" not in ops and transposes_near_convs(path) == []
    assert _delegated(path).count("DELEGATE") == 1
