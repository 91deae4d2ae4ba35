"""Deployment bundles: ``plaid export`` (see pipeline.py). Formats register themselves in
``formats.EXPORTERS``; heavy tools (onnx2tf, TensorFlow, TensorRT) load only when used."""

from plaid.export.pipeline import ExportRequest, ExportResult, run_export

__all__ = ["ExportRequest", "ExportResult", "run_export"]
