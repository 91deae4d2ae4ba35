"""Stand-in for the plaid Android benchmark app (org.plaid.bench), which cannot run here,
plus the `pm`, `am`, `pidof` and `logcat` commands that drive it.

`pm install [-r] [-g] PATH.apk` (an existing file) records the package; `am start ... -n
org.plaid.bench/.BenchActivity --es plan PLAN --es out OUT` runs the plan on a background
thread with device_bench's runner (real TFLite): one `{"event": "result", ...}` line per
finished model appended to OUT.events.jsonl, then OUT written atomically (temp + rename),
schema plaid.results/1; a run-stopping error is written as OUT {"error": "..."}.
Like the real app, it reads and writes only inside its external files folder
(/sdcard/Android/data/org.plaid.bench/files); anything else fails (logged under the
logcat tag "plaid-bench").
"""

from __future__ import annotations

import json
import os
import posixpath
import threading

from .commands import command, split_flags
from .fs import under
from .sysfs import BIG_CPUS, LITTLE_CPUS, MAX_KHZ

PKG = "org.plaid.bench"
ACTIVITY = "org.plaid.bench.BenchActivity"
APP_DIR = "/sdcard/Android/data/org.plaid.bench/files"
TAG = "plaid-bench"
PID = 4242
SYSTEM_PACKAGES = ("android", "com.android.shell", "com.android.settings", "com.google.android.gms")


def app_fingerprint(dev) -> dict:
    p = dev.props
    return {"manufacturer": p["ro.product.manufacturer"], "model": p["ro.product.model"],
            "device": p["ro.product.device"], "board": p["ro.board.platform"], "hardware": p["ro.hardware"],
            "sdk": int(p["ro.build.version.sdk"]), "release": p["ro.build.version.release"],
            "fingerprint": p["ro.build.fingerprint"], "abi": p["ro.product.cpu.abi"],
            "cpu_max_khz": [MAX_KHZ[c] for c in list(LITTLE_CPUS) + list(BIG_CPUS)], "governor": "schedutil"}


class BenchApp:
    def __init__(self, dev, extras: dict):
        self.dev, self.extras = dev, extras
        self._stop = threading.Event()
        self.thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def start(self) -> None:
        self.thread = self.dev.spawn(self._run, name="adbemu-app")

    def stop(self) -> None:
        self._stop.set()
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(30.0)

    def _host(self, device_path: str):
        if not under(device_path, APP_DIR):
            raise PermissionError(f"{device_path}: Permission denied (outside the app's folder)")
        return self.dev.fs.host_path(device_path)

    def _run(self) -> None:
        from device_bench.runner import measure_model, runtime_info
        from device_bench.schema import RESULTS_SCHEMA, validate_plan

        dev, fs = self.dev, self.dev.fs
        out = self.extras.get("out")
        dev.log("I", TAG, f"start plan={self.extras.get('plan')} out={out}")
        if not out:
            dev.log("E", TAG, "missing extra 'out'")
            return
        out_dev = fs.norm(out)
        try:
            out_host = self._host(out_dev)
        except PermissionError as exc:
            dev.log("E", TAG, f"cannot write results: {exc}")
            return
        try:
            plan_dev = fs.norm(self.extras.get("plan") or "")
            plan = validate_plan(json.loads(self._host(plan_dev).read_bytes()), ("tflite",))  # the app: TFLite only
        except Exception as exc:  # noqa: BLE001 - reported to the host as one line
            msg = " ".join(f"{type(exc).__name__}: {exc}".split())[:500]
            dev.log("E", TAG, msg)
            _write_atomic(out_host, {"error": msg})
            return
        settings = plan["settings"]
        doc = {"schema": RESULTS_SCHEMA, "runtime": runtime_info(), "device": app_fingerprint(dev),
               "settings": settings, "results": []}
        events = out_host.with_name(out_host.name + ".events.jsonl")
        base = posixpath.dirname(plan_dev)
        for model in plan["models"]:
            if self._stop.is_set() or dev.stopping:
                dev.log("I", TAG, "stopped")
                return
            try:
                host = self._host(fs.norm(model["path"], base))
                if not host.is_file():
                    raise FileNotFoundError(f"model file not found: {fs.norm(model['path'], base)}")
                with dev.benchmarking():
                    timing = measure_model(str(host), settings)
                s = dev.slowdown
                result = {"key": model["key"], "status": "ok",
                          **{k: (v * s if k.endswith("_ms") else v) for k, v in timing.items()}}
            except Exception as exc:  # noqa: BLE001 - one failing model must not stop the plan
                msg = " ".join(f"{type(exc).__name__}: {exc}".split())[:500]
                result = {"key": model["key"], "status": "error", "error": msg}
            doc["results"].append(result)
            with open(events, "a") as fh:
                fh.write(json.dumps({"event": "result", **result}) + "\n")
            dev.log("I", TAG, f"result {result['key']} {result['status']}")
        _write_atomic(out_host, doc)
        dev.log("I", TAG, f"done {len(doc['results'])} models")


def _write_atomic(path, doc: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2))
    os.replace(tmp, path)


@command("pm")
def _pm(ctx, argv):
    dev, args = ctx.device, argv[1:]
    sub = args[0] if args else ""
    if sub == "install":
        _, rest = split_flags(args[1:], "rgtdfsl")
        if len(rest) != 1:
            ctx.err("Error: no package specified\n" if not rest else "Error: only one APK is emulated\n")
            return 1
        path = ctx.path(rest[0])
        node = ctx.fs.node(path)
        if node is None or node.kind != "file":
            ctx.err(f"Error: Unable to open file: {rest[0]}\nConsider using a file under /data/local/tmp/\n")
            return 1
        if not path.endswith(".apk"):
            ctx.out("Failure [INSTALL_FAILED_INVALID_APK: Invalid apk]\n")
            return 1
        if dev.app is not None:
            dev.app.stop()
        dev.packages.add(PKG)
        ctx.out("Success\n")
        return 0
    if sub == "list" and args[1:2] == ["packages"]:
        _, rest = split_flags(args[2:], "fdeis3u")
        names = sorted(set(SYSTEM_PACKAGES) | dev.packages)
        ctx.out("".join(f"package:{n}\n" for n in names if not rest or rest[0] in n))
        return 0
    if sub == "path" and len(args) == 2:
        if args[1] not in dev.packages:
            return 1
        ctx.out(f"package:/data/app/{PKG}-x7TzIa1Rh2lWJbKbs1rW7w==/base.apk\n")
        return 0
    if sub == "uninstall" and len(args) >= 2:
        if args[-1] not in dev.packages:
            ctx.out("Failure [DELETE_FAILED_INTERNAL_ERROR]\n")
            return 1
        if dev.app is not None:
            dev.app.stop()
        dev.packages.discard(args[-1])
        ctx.out("Success\n")
        return 0
    ctx.err("adbemu: pm: only install, list packages, path and uninstall are emulated\n")
    return 1


def _component(spec: str) -> tuple[str, str]:
    pkg, _, cls = spec.partition("/")
    return pkg, (pkg + cls if cls.startswith(".") else cls)


@command("am")
def _am(ctx, argv):
    dev, args = ctx.device, argv[1:]
    sub = args[0] if args else ""
    if sub == "force-stop" and len(args) >= 2:
        if args[-1] == PKG and dev.app is not None:
            dev.app.stop()
        return 0
    if sub not in ("start", "start-activity"):
        ctx.err("adbemu: am: only start and force-stop are emulated\n")
        return 1
    opts, extras, comp, i = set(), {}, None, 1
    while i < len(args):
        a = args[i]
        if a in ("-S", "-W", "-D", "-R"):
            opts.add(a)
        elif a == "-n" and i + 1 < len(args):
            comp, i = args[i + 1], i + 1
        elif a in ("--es", "--ei", "--ez") and i + 2 < len(args):
            extras[args[i + 1]], i = args[i + 2], i + 2
        elif a in ("-a", "--user", "-c", "-f") and i + 1 < len(args):
            i += 1
        else:
            ctx.err(f"Error: Unknown option: {a}\n")
            return 1
        i += 1
    if comp is None:
        ctx.err("Error: Intent does not match any activities\n")
        return 1
    pkg, cls = _component(comp)
    ctx.out(f"Starting: Intent {{ cmp={comp}{' (has extras)' if extras else ''} }}\n")
    if pkg not in dev.packages or cls != ACTIVITY:
        ctx.out(f"Error type 3\nError: Activity class {{{pkg}/{cls}}} does not exist.\n")
        return 1
    if "-S" in opts and dev.app is not None:
        dev.app.stop()
    if dev.app is not None and dev.app.running:
        ctx.out("Warning: Activity not started, its current task has been brought to the front\n")
    else:
        dev.app = BenchApp(dev, extras)
        dev.app.start()
    if "-W" in opts:
        ctx.out(f"Status: ok\nLaunchState: COLD\nActivity: {comp}\nTotalTime: 212\nWaitTime: 230\nComplete\n")
    return 0


@command("pidof")
def _pidof(ctx, argv):
    app = ctx.device.app
    if PKG in argv[1:] and app is not None and app.running:
        ctx.out(f"{PID}\n")
        return 0
    return 1


@command("logcat")
def _logcat(ctx, argv):
    dev, args = ctx.device, argv[1:]
    if "-c" in args:
        with dev._lock:
            dev.logcat.clear()
        return 0
    tags = None
    if "-s" in args:
        tags = {a.split(":", 1)[0] for a in args[args.index("-s") + 1:] if not a.startswith("-")}
    if "-d" not in args:
        while True:          # like the real one, a logcat without -d never ends
            ctx.sleep(3600)
    with dev._lock:
        lines = list(dev.logcat)
    ctx.out("--------- beginning of main\n")
    for line in lines:
        tag = line.split(": ", 1)[0].rsplit(" ", 1)[-1]
        if tags is None or tag in tags:
            ctx.out(line + "\n")
    return 0
