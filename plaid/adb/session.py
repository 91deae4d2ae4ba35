"""The session of the ``adb`` transport (plaid.lut.session): one phone for the length of a command.

Opening it connects (``--adb-connection python|cli``), reads the device's fingerprint and
prepares the runner (``--runner benchmark_model|apk``); ``measure`` runs models under the
guard (plaid.adb.guard); ``close`` removes what was pushed, even after an error.
"""

from __future__ import annotations

from pathlib import Path

from plaid.adb.connection import connect
from plaid.adb.device import DeviceInfo
from plaid.adb.guard import Guard
from plaid.adb.runners import RUNNERS
from plaid.errors import UsageError
from plaid.lut.session import SESSIONS, Session, needs_device_message


@SESSIONS.register("adb")
class AdbSession(Session):
    transport = "adb"

    def __init__(self, target, serial: str | None = None, connection: str = "python",
                 runner: str = "benchmark_model", benchmark_binary: Path | None = None, apk: Path | None = None,
                 workdir: str | None = None) -> None:
        if not serial:
            raise UsageError(needs_device_message(target))
        target.require_runtime(self.runtimes)
        self.target = target
        runner_cls = RUNNERS.get(runner)
        self.conn = connect(connection, serial)
        try:
            self.device = DeviceInfo.read(self.conn)
            self.runner = runner_cls(self.conn, target.measure.plan(),
                                     unit_timeout_s=float(target.measure.unit_timeout_s),
                                     benchmark_binary=benchmark_binary, apk=apk, workdir=workdir)
        except BaseException:
            self.conn.close()
            raise

    def identity(self) -> tuple[str, dict]:
        fingerprint = self.device.fingerprint()
        fingerprint["runner"] = self.runner.name
        return self.runner.version(), fingerprint

    def describe(self) -> dict:
        return {"device": self.device.describe(), "serial": self.conn.serial, "runner": self.runner.name,
                "runtime_version": self.runner.version()}

    def measure(self, models, on_event, progress) -> None:
        Guard(self.runner, self.device.temperatures, self.target.measure, on_event, progress).run(models)

    def close(self) -> None:
        try:
            runner = getattr(self, "runner", None)
            if runner is not None:
                runner.cleanup()
        finally:
            self.conn.close()
