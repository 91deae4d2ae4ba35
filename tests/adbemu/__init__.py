"""An emulated Android device (Pixel 3, Snapdragon 845) speaking the ADB wire protocol on
loopback TCP, for tests that drive the real adb-shell client.

    from adbemu import EmulatedDevice, Faults

    with EmulatedDevice(root=tmp_path, faults=Faults()) as dev:   # 127.0.0.1, free port
        AdbDeviceTcp(dev.host, dev.port).connect(rsa_keys=[signer])
        ...

Device files live under ``dev.sandbox`` (``/data/local/tmp/x`` ->
``dev.sandbox / "data/local/tmp/x"``); ``dev.commands`` lists every shell command line
received; ``dev.temperature_c`` / ``dev.slowdown`` model heat and throttling;
``dev.unplug()`` / ``dev.replug()`` pull and put back the cable; ``dev.errors`` holds
tracebacks of unexpected failures inside the emulator (tests should find it empty).
Modules: protocol (wire format, handshake, streams), sync (file transfer), shell and
commands (the sh subset), fs and sysfs (sandboxed file system, Pixel 3 values), bench
(benchmark_model stand-in), apk (the plaid app stand-in, pm/am/logcat).
"""

from .device import EmulatedDevice, Faults

__all__ = ["EmulatedDevice", "Faults"]
