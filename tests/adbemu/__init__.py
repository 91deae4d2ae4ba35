"""An emulated Android device (Pixel 3, Snapdragon 845, Android 10) speaking the ADB wire
protocol on loopback TCP, for tests that drive the real adb-shell client.

    from adbemu import EmulatedDevice, Faults

    with EmulatedDevice(root=tmp_path, serial="EMU845", faults=Faults()) as dev:
        adb = AdbDeviceTcp(dev.host, dev.port)         # dev.address == "127.0.0.1:PORT"
        adb.connect(rsa_keys=[PythonRSASigner.FromRSAKeyPath(key)])
        adb.shell("getprop ro.board.platform")         # "sdm845\\n"

Constructor: ``root`` (host folder backing the device: ``dev.sandbox``, where
``/data/local/tmp/x`` is ``dev.sandbox / "data/local/tmp/x"``), ``serial``, ``props`` (extra
or replaced system properties), ``faults``, ``authorized_keys`` (None: any key is accepted
at the "prompt" and remembered in ``dev.accepted_keys``; a list of adbkey.pub strings:
only those).

State: ``dev.commands`` (every shell command line received), ``dev.temperature_c``
(settable; +``heat_per_bench_s`` per second of benchmarking, exponential decay toward
``ambient_c`` with time constant ``cooling_tau_s``), ``dev.battery_c``, ``dev.slowdown``
(factor on reported benchmark times), ``dev.benchmarks_run``, ``dev.last_affinity``
(CPUs of the last ``taskset``), ``dev.packages``, ``dev.logcat``, ``dev.errors``
(tracebacks of unexpected failures inside the emulator: tests should find it empty).

Control: ``start()``, ``stop()`` (joins every thread; raises if one is stuck), ``unplug()``,
``replug()`` (same port), ``preinstall_benchmark_model()``; a context manager.

Faults (read live): ``unauthorized``, ``disconnect_after_push_bytes``,
``keep_partial_push``, ``disconnect_on_shell``, ``hang_on_shell``,
``disconnect_after_benchmarks``; see ``Faults``.

Modules: protocol (message format, handshake, streams), sync (file transfer), shell and
commands/android (the sh subset), fs and sysfs (sandboxed file system, Pixel 3 values),
bench (benchmark_model stand-in), apk (the plaid app stand-in with pm/am/pidof/logcat).
"""

from .device import EmulatedDevice, Faults

__all__ = ["EmulatedDevice", "Faults"]
