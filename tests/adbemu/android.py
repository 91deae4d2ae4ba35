"""Commands about the device rather than files: getprop, id, uname, getenforce, which,
command -v, taskset, dumpsys battery, settings."""

from __future__ import annotations

from .commands import COMMANDS, SH_BUILTINS, command, run_command, split_flags


@command("getprop")
def _getprop(ctx, argv):
    props = ctx.device.props
    if len(argv) == 1:
        ctx.out("".join(f"[{k}]: [{v}]\n" for k, v in sorted(props.items())))
    else:
        ctx.out(props.get(argv[1], argv[2] if len(argv) > 2 else "") + "\n")
    return 0


@command("getenforce")
def _getenforce(ctx, argv):
    ctx.out("Enforcing\n")
    return 0


@command("id")
def _id(ctx, argv):
    ctx.out("uid=2000(shell) gid=2000(shell) groups=2000(shell),1004(input),1007(log),1011(adb),1015(sdcard_rw),"
            "1028(sdcard_r),3001(net_bt_admin),3002(net_bt),3003(inet),3006(net_bw_stats),3009(readproc),"
            "3011(uhid) context=u:r:shell:s0\n")
    return 0


@command("uname")
def _uname(ctx, argv):
    flags, _ = split_flags(argv[1:], "amrsnv")
    fields = {"s": "Linux", "n": "localhost", "r": "4.9.223-g3f4ce2d", "v": "#1 SMP PREEMPT", "m": "aarch64"}
    keys = "snrvm" if "a" in flags else ("".join(k for k in "snrvm" if k in flags) or "s")
    ctx.out(" ".join(fields[k] for k in keys) + "\n")
    return 0


def _locate(ctx, name: str) -> str | None:
    if "/" in name:
        node = ctx.fs.node(ctx.path(name))
        return name if node is not None and node.executable else None
    if name in COMMANDS and name not in SH_BUILTINS - {"echo", "true", "false", "test", "["}:
        return f"/system/bin/{name}"
    return None


@command("which")
def _which(ctx, argv):
    rc = 0
    for name in argv[1:]:
        where = _locate(ctx, name)
        if where is None:
            rc = 1
        else:
            ctx.out(where + "\n")
    return rc


@command("command")
def _command(ctx, argv):
    if len(argv) >= 3 and argv[1] in ("-v", "-V"):
        rc = 0
        for name in argv[2:]:
            where = name if name in SH_BUILTINS else _locate(ctx, name)
            if where is None:
                rc = 1
            else:
                ctx.out(where + "\n")
        return rc
    if len(argv) >= 2:
        return run_command(ctx, argv[1:])
    return 0


@command("taskset")
def _taskset(ctx, argv):
    args = argv[1:]
    if len(args) < 2 or args[0].startswith("-"):
        ctx.err("taskset: Need 2 arguments\n" if len(args) < 2 else "taskset: only 'taskset MASK COMMAND...' "
                "is emulated\n")
        return 1
    try:
        mask = int(args[0], 16)
    except ValueError:
        ctx.err(f"taskset: bad mask '{args[0]}'\n")
        return 1
    if mask & 0xFF == 0:
        ctx.err("taskset: failed to set pid 0's affinity: Invalid argument\n")
        return 1
    ctx.device.last_affinity = [c for c in range(8) if mask >> c & 1]
    return run_command(ctx, args[1:])


@command("dumpsys")
def _dumpsys(ctx, argv):
    if argv[1:2] != ["battery"]:
        ctx.out(f"Can't find service: {argv[1] if len(argv) > 1 else ''}\n")
        return 0
    temp = int(round(ctx.device.battery_c * 10))
    ctx.out("Current Battery Service state:\n  AC powered: false\n  USB powered: true\n  Wireless powered: false\n"
            "  Max charging current: 500000\n  Max charging voltage: 5000000\n  Charge counter: 2462000\n"
            "  status: 2\n  health: 2\n  present: true\n  level: 87\n  scale: 100\n  voltage: 4218\n"
            f"  temperature: {temp}\n  technology: Li-ion\n")
    return 0


@command("settings")
def _settings(ctx, argv):
    args = argv[1:]
    store = ctx.device.settings
    if len(args) == 3 and args[0] == "get":
        ctx.out(str(store.get((args[1], args[2]), "null")) + "\n")
        return 0
    if len(args) == 4 and args[0] == "put":
        store[(args[1], args[2])] = args[3]
        return 0
    if len(args) == 2 and args[0] == "list":
        ctx.out("".join(f"{k}={v}\n" for (ns, k), v in sorted(store.items()) if ns == args[1]))
        return 0
    ctx.err("usage:  settings [--user <USER_ID> | current] get|put|list NAMESPACE [KEY [VALUE]]\n")
    return 1
