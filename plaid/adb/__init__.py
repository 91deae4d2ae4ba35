"""Phones over ADB: connections (adb-shell or the adb executable), device facts
(fingerprint, temperatures), runners (TFLite's benchmark_model, the plaid APK), the guard
(cool-down, sentinel) and the session of the ``adb`` transport. Imported when a target's
transport is ``adb`` (plaid.targets) and by the CLI for the names of its connections and
runners; adb-shell itself is imported inside the functions that use it."""

from plaid.lut.session import DeviceLost

__all__ = ["DeviceLost"]
