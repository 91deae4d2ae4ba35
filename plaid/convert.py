"""torch -> ONNX (one file) -> TFLite (onnx2tf, NHWC), offline, with a content-addressed
cache: a model whose ONNX bytes were converted once is never converted again.

onnx2tf 1.29 quirks handled here (DESIGN.md §6): it wants a calibration sample file in its
working directory even for fp32 (any float32 array of shape (20,128,128,3)), and it
rewrites the input .onnx in place, so it works on a copy in a private folder.

Most of onnx2tf's time is not conversion: each SavedModel it (and the TFLite converter
under it) writes carries Keras metadata, the JSON of every layer's config, constants
included as nested Python lists, deep-copied and encoded element by element (about 90% of
a DF-lite conversion at 32x32: 110 of 120 s here). Nothing on the TFLite path reads it
back, so ``_lean_keras_metadata`` writes an empty record instead while onnx2tf runs; the
.tflite files come out byte for byte the same (tests/test_convert.py).

A latency table needs only the fp32 file, while onnx2tf also writes a SavedModel and an fp16
TFLite file (two of its three SavedModel saves, and one of its two TFLite conversions).
``_fp32_only`` skips both for ``onnx_to_tflite``: about 40% of a small unit's conversion,
and the fp32 file is again byte for byte the same. ``plaid export`` still gets every file."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
from pathlib import Path
from typing import Any

from plaid.errors import PlaidError
from plaid.fsio import atomic_path, file_hash
from plaid.onnx_export import OPSET, export_onnx, input_shapes  # noqa: F401 - their old home
from plaid.procs import die_with_parent, scratch_dir

CALIBRATION_FILE = "calibration_image_sample_data_20x128x128x3_float32.npy"


def cache_dir() -> Path:
    base = os.environ.get("PLAID_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "plaid")
    return Path(base)


def tool_versions() -> dict[str, str]:
    from importlib.metadata import version

    return {pkg: version(pkg) for pkg in ("torch", "onnx2tf", "tensorflow")}


@contextlib.contextmanager
def quiet_fd2(log: Path | None = None):
    """Send C++-level stderr (TensorFlow, absl) to a log file while converting."""
    import sys

    sys.stderr.flush()
    saved = os.dup(2)
    target = open(log, "ab") if log else open(os.devnull, "wb")
    try:
        os.dup2(target.fileno(), 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        target.close()


@contextlib.contextmanager
def _lean_keras_metadata():
    """While converting, Keras objects in a SavedModel get "{}" as their metadata (see the
    module docstring). A tf_keras without that hook converts as before, only slower."""
    try:
        from tf_keras.src.saving.legacy.saved_model import base_serialization
    except ImportError:
        yield
        return
    saver = base_serialization.SavedModelSaver
    original = saver.__dict__["tracking_metadata"]
    saver.tracking_metadata = property(lambda self: "{}")
    try:
        yield
    finally:
        saver.tracking_metadata = original


class _Fp32Written(BaseException):
    """Raised inside onnx2tf once its fp32 TFLite file is written (``_fp32_only``); a
    BaseException so that onnx2tf's own ``except Exception`` handlers let it through."""


@contextlib.contextmanager
def _fp32_only():
    """While onnx2tf runs: no standalone SavedModel (``tf.saved_model.save`` does nothing;
    its TFLite converter saves its own copy through another reference) and a stop at the
    second TFLite conversion, the fp16 one, by which time the fp32 file is on disk."""
    import tensorflow as tf
    from tensorflow.lite.python import lite

    classes = [c for c in (getattr(lite, "TFLiteKerasModelConverterV2", None),
                           getattr(lite, "TFLiteFrozenGraphConverterV2", None)) if c is not None]
    originals = {c: c.__dict__["convert"] for c in classes if "convert" in c.__dict__}
    done = []

    def wrap(convert):
        def once(self, *args, **kwargs):
            if done:
                raise _Fp32Written
            result = convert(self, *args, **kwargs)
            done.append(True)
            return result
        return once

    save = tf.saved_model.save
    tf.saved_model.save = lambda *args, **kwargs: None
    for cls, convert in originals.items():
        cls.convert = wrap(convert)
    try:
        yield
    except _Fp32Written:
        pass
    finally:
        tf.saved_model.save = save
        for cls, convert in originals.items():
            cls.convert = convert


def _run_onnx2tf(onnx_path: Path, work_dir: Path, log: Path | None, calib=None, lean: bool = True,
                 fp32_only: bool = False) -> Path:
    """onnx2tf on a copy of ``onnx_path`` inside ``work_dir``; returns its output folder.
    ``calib``: NHWC float32 samples, already normalised, for int8 calibration. ``lean``:
    skip the Keras metadata (module docstring); False only to check that it changes nothing.
    ``fp32_only``: stop once the fp32 file is written (``_fp32_only``; not with ``calib``)."""
    if fp32_only and calib is not None:
        raise ValueError("fp32_only leaves no int8 file: not with calib")
    import numpy as np

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    model = work_dir / "model.onnx"
    shutil.copyfile(onnx_path, model)  # onnx2tf rewrites its input in place
    np.save(work_dir / CALIBRATION_FILE, np.zeros((20, 128, 128, 3), dtype=np.float32))
    extra = {}
    if calib is not None:
        np.save(work_dir / "calib.npy", np.ascontiguousarray(calib, dtype=np.float32))
        channels = calib.shape[-1]
        extra = dict(output_integer_quantized_tflite=True, quant_type="per-channel",
                     input_quant_dtype="int8", output_quant_dtype="int8",
                     custom_input_op_name_np_data_path=[[
                         "input", str(work_dir / "calib.npy"),
                         np.zeros((1, 1, 1, channels), np.float32), np.ones((1, 1, 1, channels), np.float32)]])
    cwd = os.getcwd()
    try:
        os.chdir(work_dir)
        with quiet_fd2(log), contextlib.redirect_stdout(io.StringIO()), \
                (_lean_keras_metadata() if lean else contextlib.nullcontext()), \
                (_fp32_only() if fp32_only else contextlib.nullcontext()):
            import onnx2tf

            onnx2tf.convert(input_onnx_file_path=str(model), output_folder_path=str(work_dir / "out"),
                            non_verbose=True, **extra)
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - onnx2tf sys.exit()s on some errors
        raise PlaidError(f"onnx2tf failed on {onnx_path.name}: {type(exc).__name__}: "
                         f"{str(exc).splitlines()[0][:300] if str(exc) else ''}") from exc
    finally:
        os.chdir(cwd)
    return work_dir / "out"


def onnx_to_tflite(onnx_path: Path, out_path: Path, log: Path | None = None) -> Path:
    """Convert with onnx2tf in a private temp folder; keeps only the fp32 .tflite."""
    with scratch_dir("plaid-onnx2tf-") as work:
        produced = _run_onnx2tf(onnx_path, Path(work), log, fp32_only=True) / "model_float32.tflite"
        if not produced.is_file():
            raise PlaidError(f"onnx2tf produced no fp32 model for {onnx_path.name}")
        out_path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(out_path) as tmp:
            shutil.copyfile(produced, tmp)
    return out_path


TFLITE_VARIANTS = {"float32": "model_float32.tflite", "float16": "model_float16.tflite",
                   "int8": "model_full_integer_quant.tflite"}


def onnx2tf_variants(onnx_path: Path, out_dir: Path, calib=None, log: Path | None = None) -> dict[str, Path]:
    """fp32 and fp16 TFLite files, plus full-integer int8 (int8 input and output) when
    ``calib`` (NHWC, normalised) is given, copied into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with scratch_dir("plaid-onnx2tf-") as work:
        produced = _run_onnx2tf(onnx_path, Path(work), log or out_dir / "onnx2tf.log", calib)
        found = {}
        for variant, name in TFLITE_VARIANTS.items():
            if variant == "int8" and calib is None:
                continue
            if not (produced / name).is_file():
                raise PlaidError(f"onnx2tf produced no {variant} model for {onnx_path.name}")
            found[variant] = Path(shutil.copyfile(produced / name, out_dir / name))
    return found


def _export_hashed(module, input_shape: tuple[int, ...], cache: Path, keep_onnx: bool = False) -> tuple[Path, Path]:
    """Export to ONNX and file it under its content hash (kept only while its TFLite file
    is not made yet, unless ``keep_onnx``). Returns (onnx path, tflite path)."""
    onnx_dir = cache / "onnx"
    onnx_dir.mkdir(parents=True, exist_ok=True)
    with scratch_dir("plaid-export-") as tmp:
        onnx_tmp = export_onnx(module, input_shape, Path(tmp) / "m.onnx")
        h = file_hash(onnx_tmp, "sha256")
        for k, v in sorted(tool_versions().items()):
            h.update(f"{k}={v};".encode())
        digest = h.hexdigest()[:32]
        out = cache / "tflite" / f"{digest}.tflite"
        onnx_path = onnx_dir / f"{digest}.onnx"
        if (keep_onnx or not out.is_file()) and not onnx_path.is_file():
            with atomic_path(onnx_path) as dest:
                shutil.copyfile(onnx_tmp, dest)
    return onnx_path, out


def tflite_cached(module, input_shape: tuple[int, ...], cache: Path | None = None) -> tuple[Path, bool]:
    """The fp32 TFLite file for ``module`` at ``input_shape``: exported to ONNX, hashed
    (ONNX bytes + tool versions), converted only if that hash is not cached yet.
    Returns (path, converted_now)."""
    cache = cache or cache_dir()
    onnx_path, out = _export_hashed(module, input_shape, cache)
    if out.is_file():
        return out, False
    onnx_to_tflite(onnx_path, out, log=cache / "onnx2tf.log")
    return out, True


def convert_workers() -> int:
    """Parallel onnx2tf processes: $PLAID_CONVERT_WORKERS, else one per core (max 4)."""
    env = os.environ.get("PLAID_CONVERT_WORKERS")
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise PlaidError(f"PLAID_CONVERT_WORKERS must be a number, got {env!r}") from None
    return max(1, min(4, len(os.sched_getaffinity(0))))


class Cancelled(Exception):
    """tflite_many/onnx_many stopped early because their ``cancel`` event was set."""


def _check_cancel(cancel) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled("conversion cancelled")


def tflite_many(jobs, cache: Path | None = None, progress=None, export_progress=None, on_ready=None,
                cancel=None) -> list[Path]:
    """``jobs``: [(label, build callable, input_shape)] -> fp32 TFLite paths, in order.
    Exports run here one by one (``export_progress(done, total, label)``: hundreds of units
    take minutes); the slow onnx2tf conversions of what is not cached yet run in
    ``convert_workers()`` processes, each handed over as soon as its export is written, so
    exporting and converting overlap (``progress(done, total, label)``, a cached file counts
    as done when its export finds it). With one worker: every export, then every conversion.
    ``on_ready(index, path)``: called as each job's file exists (so a caller may use it
    while the rest convert). ``cancel``: a threading.Event; once set, the next step raises
    :class:`Cancelled` (what is converted stays cached)."""
    cache = cache or cache_dir()
    log = cache / "onnx2tf.log"
    workers = min(convert_workers(), len(jobs))
    ready = on_ready or (lambda index, path: None)
    if workers <= 1:
        targets: list[tuple[str, Path, Path]] = []
        failed: Exception | None = None  # an export error: what was exported is converted first
        for n, (label, build, shape) in enumerate(jobs, 1):
            _check_cancel(cancel)
            try:
                onnx_path, out = _export_hashed(build(), shape, cache)
            except Exception as exc:  # noqa: BLE001 - raised below, after the others
                failed = exc
                break
            targets.append((label, onnx_path, out))
            if export_progress:
                export_progress(n, len(jobs), label)
        todo = [i for i, t in enumerate(targets) if not t[2].is_file()]
        total, done = len(targets), len(targets) - len(todo)
        for i, (_, _, out) in enumerate(targets):
            if i not in todo:
                ready(i, out)
        if progress:
            progress(done, total, "")
        for i in todo:
            label, onnx_path, out = targets[i]
            _check_cancel(cancel)
            if not out.is_file():  # the same model as an earlier job is converted once
                onnx_to_tflite(onnx_path, out, log=log)
            ready(i, out)
            done += 1
            if progress:
                progress(done, total, label)
        if failed is not None:
            raise failed
        return [out for _, _, out in targets]
    return _pipelined(jobs, cache, log, workers, progress, export_progress, ready, cancel)


def _pipelined(jobs, cache: Path, log: Path, workers: int, progress, export_progress, ready, cancel) -> list[Path]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    total, done = len(jobs), 0
    outs: list[Path] = []
    futures: dict[Any, tuple[str, Path]] = {}
    waiting: dict[Path, list[int]] = {}  # jobs whose file one queued conversion makes
    pool = None

    def finished(label: str) -> None:
        nonlocal done
        done += 1
        if progress:
            progress(done, total, label)

    def reap(completed) -> None:
        for fut in completed:
            label, out = futures.pop(fut)
            fut.result()
            for index in waiting.pop(out):
                ready(index, out)
                finished(label)

    if progress:
        progress(0, total, "")
    try:
        for n, (label, build, shape) in enumerate(jobs, 1):
            _check_cancel(cancel)
            onnx_path, out = _export_hashed(build(), shape, cache)
            outs.append(out)
            if export_progress:
                export_progress(n, total, label)
            if out in waiting:  # the same model as one queued
                waiting[out].append(n - 1)
            elif out.is_file():  # converted before
                ready(n - 1, out)
                finished(label)
            else:
                if pool is None:  # no processes at all when everything is cached
                    # the workers die with plaid, even on kill -9 (this thread outlives the pool)
                    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                               initializer=die_with_parent, initargs=(os.getpid(),))
                waiting[out] = [n - 1]
                futures[pool.submit(onnx_to_tflite, onnx_path, out, log)] = (label, out)
            reap([f for f in futures if f.done()])
        for fut in as_completed(list(futures)):
            _check_cancel(cancel)
            reap([fut])
    except Exception:  # one export or conversion failed: the queued conversions still finish (and are handed out)
        for fut in as_completed(list(futures)):
            if cancel is not None and cancel.is_set():
                break
            try:
                reap([fut])
            except Exception:  # noqa: BLE001 - the first error is the one raised
                pass
        raise
    except BaseException:
        for f in futures:
            f.cancel()
        raise
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    return outs


def onnx_many(jobs, cache: Path | None = None, progress=None, on_ready=None, cancel=None) -> list[Path]:
    """``jobs``: [(label, build callable, input_shape)] -> ONNX paths (the runtimes that read
    ONNX: onnxruntime, TensorRT), in order, filed under the same hash as tflite_many's.
    ``on_ready`` and ``cancel`` as for tflite_many."""
    cache = cache or cache_dir()
    paths = []
    for n, (label, build, shape) in enumerate(jobs, 1):
        _check_cancel(cancel)
        paths.append(_export_hashed(build(), shape, cache, keep_onnx=True)[0])
        if on_ready:
            on_ready(n - 1, paths[-1])
        if progress:
            progress(n, len(jobs), label)
    return paths


def _ops(path: Path) -> list[dict]:
    """The model's ops as written in the file (no delegate applied)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interp = Interpreter(model_path=str(path),
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    return interp._get_ops_details()  # noqa: SLF001 - the only way to list ops


def tflite_op_names(path: Path) -> list[str]:
    """Builtin op names in a .tflite file (to check e.g. that no Transpose wraps convs)."""
    return [d["op_name"] for d in _ops(path)]


CONV_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV")


def transposes_near_convs(path: Path) -> list[str]:
    """Transpose ops that feed a convolution or take a convolution's output, as
    ``"TRANSPOSE#i -> CONV_2D#j"`` strings (empty: none, as a good conversion has)."""
    ops = _ops(path)
    producer = {t: op for op in ops for t in op["outputs"]}
    found = []
    for op in ops:
        if op["op_name"] not in CONV_OPS:
            continue
        for t in op["inputs"]:
            src = producer.get(t)
            if src is not None and src["op_name"] == "TRANSPOSE":
                found.append(f"TRANSPOSE#{src['index']} -> {op['op_name']}#{op['index']}")
        for other in ops:
            if other["op_name"] == "TRANSPOSE" and set(other["inputs"]) & set(op["outputs"]):
                found.append(f"{op['op_name']}#{op['index']} -> TRANSPOSE#{other['index']}")
    return found
