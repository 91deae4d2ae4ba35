"""The export formats, registered by name (``plaid export --list``), and what they share.

An exporter writes its files into the bundle's staging folder and returns an
:class:`Artifact` (files, input/output description, notes); ``load`` returns a function
that runs the artifact in its real runtime for the parity check, or None where that runtime
does not exist on this machine (TensorRT off a Jetson). The ONNX file and the onnx2tf
conversion are made once per export and shared by every format that needs them."""

from __future__ import annotations

from abc import ABC, abstractmethod

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np

from plaid.export.data import ExportData
from plaid.export.parity import Thresholds
from plaid.registry import Registry

INPUT_NAME = "input"
OUTPUT_NAME = "output"


@dataclass
class Artifact:
    format: str
    files: list[str]  # paths relative to the bundle
    input: dict[str, Any]
    output: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class ExportContext:
    model: Any  # eval-mode torch module with the weights applied
    label: str
    task: str  # classification | segmentation
    hw: tuple[int, int]
    data: ExportData
    formats: list[str]
    stage: Path  # the bundle being written
    work: Path  # private scratch folder (conversions)
    reference: np.ndarray  # PyTorch's outputs on data.parity
    threads: int = 1
    log: Callable[[str], None] = lambda msg: None
    _onnx: Path | None = None
    _tflite: dict[str, Path] | None = None

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (1, 3, *self.hw)

    def onnx(self) -> Path:
        """The model as one ONNX file (opset 20, input ``input`` NCHW), made once."""
        if self._onnx is None:
            from plaid.convert import export_onnx

            self.log("exporting ONNX")
            self._onnx = export_onnx(self.model, self.input_shape, self.work / "model.onnx")
        return self._onnx

    def tflite(self) -> dict[str, Path]:
        """onnx2tf's outputs by variant (float32, float16[, full_integer_quant]), made once;
        int8 is produced when any requested format needs it."""
        if self._tflite is None:
            from plaid.convert import onnx2tf_variants

            calib = None
            if any(EXPORTERS.get(f).needs_calibration and EXPORTERS.get(f).uses_tflite for f in self.formats):
                calib = self.data.calib.transpose(0, 2, 3, 1)  # NHWC, already normalised
            onnx_path = self.onnx()
            self.log("converting with onnx2tf" + (" (with int8 calibration)" if calib is not None else "")
                     + "; this takes a minute or more")
            self._tflite = onnx2tf_variants(onnx_path, self.work / "tflite", calib=calib)
        return self._tflite


class Exporter(ABC):
    """One deployment format. Subclasses set the class attributes and implement ``export``."""

    name: ClassVar[str]
    summary: ClassVar[str]
    suffix: ClassVar[str] = ""
    needs_calibration: ClassVar[bool] = False
    uses_tflite: ClassVar[bool] = False
    thresholds: ClassVar[Thresholds]
    runtime: ClassVar[str]

    @abstractmethod
    def export(self, ctx: ExportContext) -> Artifact:
        """Write this format's files into ``ctx.stage``."""

    def load(self, artifact: Artifact, ctx: ExportContext) -> Callable[[np.ndarray], np.ndarray] | None:
        """NCHW float batch -> outputs in PyTorch's layout, in the real runtime; None if absent."""
        return None


EXPORTERS: Registry[type[Exporter]] = Registry("export format")


def load_formats() -> None:
    """Import the format modules (each registers itself)."""
    from plaid.export import onnx_format, tensorrt, tflite  # noqa: F401


def format_table() -> list[dict[str, Any]]:
    load_formats()
    return [{"format": name, "runtime": cls.runtime, "needs_calibration": cls.needs_calibration,
             "summary": cls.summary, "parity": cls.thresholds.to_json()} for name, cls in EXPORTERS.items()]


def scratch(prefix: str = "plaid-export-") -> tempfile.TemporaryDirectory:
    """A private temp folder, swept by a later plaid run if this process is killed."""
    from plaid.procs import scratch_dir

    return scratch_dir(prefix)
