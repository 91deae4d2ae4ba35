"""Phones over ADB: connections (adb-shell or the adb executable), device facts
(fingerprint, temperatures), benchmark runners (TFLite's benchmark_model, the plaid APK)
and the measurement protocol (cool-down, sentinel). Imported when a target's transport is
``adb`` (plaid.targets) and by the CLI for the names of its transports and runners;
adb-shell itself is imported inside the functions that use it."""

from plaid.lut.transport import DeviceLost

__all__ = ["DeviceLost"]
