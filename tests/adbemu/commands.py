"""The commands the emulated shell knows (toybox/mksh look-alikes), registered by name.
Error texts follow Android's: ``/system/bin/sh: NAME: not found`` (127), ``cat: X: No such
file or directory`` (1), ``can't execute: Permission denied`` (126)."""

from __future__ import annotations

import hashlib
import posixpath
import stat as st
import time

from .shell import SH, Context, ShellExit, Shell

COMMANDS: dict = {}
SH_BUILTINS = {"echo", "true", "false", "test", "[", "command", "cd", "exit", "pwd"}


def command(*names):
    def deco(fn):
        for n in names:
            COMMANDS[n] = fn
        return fn
    return deco


def run_command(ctx: Context, argv: list[str]) -> int:
    name = argv[0]
    if "/" in name:
        path = ctx.path(name)
        node = ctx.fs.node(path)
        if node is None:
            ctx.err(f"{SH}: {name}: not found\n")
            return 127
        if node.is_dir or not node.executable:
            ctx.err(f"{SH}: {name}: can't execute: {'Is a directory' if node.is_dir else 'Permission denied'}\n")
            return 126
        base = posixpath.basename(path)
        if path.startswith("/system/bin/") and base in COMMANDS:
            return COMMANDS[base](ctx, [base] + argv[1:])
        if base == "benchmark_model":
            return bench.benchmark_model(ctx, [path] + argv[1:])
        ctx.err(f"{SH}: {name}: can't execute: Exec format error\n")
        return 126
    fn = COMMANDS.get(name)
    if fn is None:
        ctx.err(f"{SH}: {name}: not found\n")
        return 127
    return fn(ctx, argv)


def split_flags(args: list[str], known: str) -> tuple[set[str], list[str]]:
    """Leading -abc style flags (only characters in ``known``) and the rest."""
    flags: set[str] = set()
    i = 0
    while i < len(args) and args[i].startswith("-") and len(args[i]) > 1 and args[i] != "--":
        if not set(args[i][1:]) <= set(known):
            break
        flags |= set(args[i][1:])
        i += 1
    if i < len(args) and args[i] == "--":
        i += 1
    return flags, args[i:]


def _fail(ctx: Context, tool: str, name: str, exc: OSError) -> int:
    ctx.err(f"{tool}: {name}: {exc.strerror}\n")
    return 1


@command("true")
def _true(ctx, argv):
    return 0


@command("false")
def _false(ctx, argv):
    return 1


@command("exit")
def _exit(ctx, argv):
    raise ShellExit(int(argv[1]) & 0xFF if len(argv) > 1 and argv[1].lstrip("-").isdigit() else ctx.shell.rc)


@command("cd")
def _cd(ctx, argv):
    target = ctx.path(argv[1] if len(argv) > 1 else "/")
    node = ctx.fs.node(target)
    if node is None or not node.is_dir:
        ctx.err(f"{SH}: cd: {target}: No such file or directory\n")
        return 2
    ctx.shell.cwd = target
    return 0


@command("pwd")
def _pwd(ctx, argv):
    ctx.out(ctx.shell.cwd + "\n")
    return 0


@command("echo")
def _echo(ctx, argv):
    flags, args = split_flags(argv[1:], "neE")
    text = " ".join(args)
    if "e" in flags:
        text = text.encode("utf-8", "surrogateescape").decode("unicode_escape")
    ctx.out(text + ("" if "n" in flags else "\n"))
    return 0


@command("sh")
def _sh(ctx, argv):
    if len(argv) >= 3 and argv[1] == "-c":
        sub = Shell(ctx.device, ctx.stdout.write, ctx.shell.cancelled, ctx.shell.wait)
        sub.stream_sink = ctx.stdout
        return sub.run(argv[2])
    ctx.err(f"adbemu: {SH}: only 'sh -c COMMAND' is emulated\n")
    return 2


@command("sleep")
def _sleep(ctx, argv):
    try:
        seconds = float(argv[1])
    except (IndexError, ValueError):
        ctx.err("sleep: Need 1 argument\n")
        return 1
    ctx.sleep(seconds)
    return 0


@command("cat")
def _cat(ctx, argv):
    rc = 0
    for name in argv[1:]:
        try:
            ctx.stdout.write(ctx.fs.read_bytes(ctx.path(name)))
        except OSError as exc:
            rc = _fail(ctx, "cat", name, exc)
    return rc


def _mode_string(mode: int) -> str:
    kind = "d" if st.S_ISDIR(mode) else ("c" if st.S_ISCHR(mode) else "-")
    bits = "".join(ch if mode & (1 << (8 - i)) else "-" for i, ch in enumerate("rwxrwxrwx"))
    return kind + bits


def _long(ctx, path: str, shown: str) -> str:
    node = ctx.fs.lookup(path)
    mode, size, mtime = node.stat()
    owner = "shell" if node.host is not None else "root"
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(mtime))
    return f"{_mode_string(mode)} 1 {owner} {owner} {size:>8} {when} {shown}\n"


@command("ls")
def _ls(ctx, argv):
    flags, paths = split_flags(argv[1:], "laA1dRhtrsS")
    rc, paths = 0, paths or ["."]
    for n, name in enumerate(paths):
        path = ctx.path(name)
        try:
            node = ctx.fs.lookup(path)
            if node.is_dir and "d" not in flags:
                names = ctx.fs.listdir(path)
                names = ([".", ".."] if "a" in flags else []) + [
                    x for x in names if "a" in flags or "A" in flags or not x.startswith(".")]
                if len(paths) > 1:
                    ctx.out(("\n" if n else "") + f"{name}:\n")
                for x in names:
                    ctx.out(_long(ctx, ctx.fs.norm(x, path), x) if "l" in flags else x + "\n")
            else:
                ctx.out(_long(ctx, path, name) if "l" in flags else name + "\n")
        except OSError as exc:
            rc = _fail(ctx, "ls", name, exc)
    return rc


@command("mkdir")
def _mkdir(ctx, argv):
    flags, paths = split_flags(argv[1:], "p")
    rc = 0
    for name in paths:
        try:
            ctx.fs.mkdir(ctx.path(name), parents="p" in flags)
        except OSError as exc:
            ctx.err(f"mkdir: '{name}': {exc.strerror}\n")
            rc = 1
    return rc


@command("rm")
def _rm(ctx, argv):
    flags, paths = split_flags(argv[1:], "frRv")
    rc = 0
    for name in paths:
        path = ctx.path(name)
        if "f" in flags and ctx.fs.node(path) is None:
            continue
        try:
            ctx.fs.remove(path, recursive=bool(flags & {"r", "R"}))
        except OSError as exc:
            rc = _fail(ctx, "rm", name, exc)
    return rc


def _parse_mode(spec: str, old: int) -> int | None:
    if spec and all(c in "01234567" for c in spec):
        return int(spec, 8)
    mode = old & 0o7777
    for clause in spec.split(","):
        who = ""
        while clause and clause[0] in "ugoa":
            who, clause = who + clause[0], clause[1:]
        if len(clause) < 1 or clause[0] not in "+-=" or not set(clause[1:]) <= set("rwx"):
            return None
        op, perms = clause[0], clause[1:]
        mask = 0
        for w in (who or "a").replace("a", "ugo"):
            shift = {"u": 6, "g": 3, "o": 0}[w]
            mask_w = sum({"r": 4, "w": 2, "x": 1}[p] for p in perms) << shift
            mask |= mask_w
            if op == "=":
                mode &= ~(7 << shift)
        mode = mode & ~mask if op == "-" else mode | mask
    return mode


@command("chmod")
def _chmod(ctx, argv):
    _, args = split_flags(argv[1:], "R")
    if len(args) < 2:
        ctx.err("chmod: Needs 2 arguments\n")
        return 1
    rc = 0
    for name in args[1:]:
        path = ctx.path(name)
        try:
            mode = _parse_mode(args[0], ctx.fs.lookup(path).stat()[0])
            if mode is None:
                ctx.err(f"chmod: bad mode '{args[0]}'\n")
                return 1
            ctx.fs.chmod(path, mode)
        except OSError as exc:
            rc = _fail(ctx, "chmod", name, exc)
    return rc


def _test(ctx, args: list[str]) -> bool:
    if args and args[0] == "!":
        return not _test(ctx, args[1:])
    if not args:
        return False
    if len(args) == 1:
        return args[0] != ""
    if len(args) == 2:
        op, arg = args
        if op in ("-n", "-z"):
            return (arg != "") == (op == "-n")
        node = ctx.fs.node(ctx.path(arg)) if arg else None
        if op not in ("-e", "-f", "-d", "-x", "-s", "-r", "-w"):
            raise ValueError(f"{op}: unknown operand")
        if node is None:
            return False
        mode, size, _ = node.stat()
        return {"-e": True, "-f": node.kind == "file", "-d": node.is_dir, "-x": bool(mode & 0o111),
                "-s": size > 0, "-r": bool(mode & 0o444), "-w": node.host is not None and bool(mode & 0o200)}[op]
    if len(args) == 3:
        a, op, b = args
        if op in ("=", "=="):
            return a == b
        if op == "!=":
            return a != b
        ints = {"-eq": int.__eq__, "-ne": int.__ne__, "-lt": int.__lt__, "-gt": int.__gt__, "-le": int.__le__,
                "-ge": int.__ge__}
        if op in ints:
            return ints[op](int(a), int(b))
    raise ValueError("syntax error")


@command("test", "[")
def _test_cmd(ctx, argv):
    args = argv[1:]
    if argv[0] == "[":
        if not args or args[-1] != "]":
            ctx.err(f"{SH}: [: missing ]\n")
            return 2
        args = args[:-1]
    try:
        return 0 if _test(ctx, args) else 1
    except ValueError as exc:
        ctx.err(f"{SH}: {argv[0]}: {exc}\n")
        return 2


@command("stat")
def _stat(ctx, argv):
    fmt, names, args = None, [], argv[1:]
    while args:
        a = args.pop(0)
        if a == "-c" and args:
            fmt = args.pop(0)
        elif a.startswith("--format="):
            fmt = a.split("=", 1)[1]
        else:
            names.append(a)
    rc = 0
    for name in names:
        try:
            node = ctx.fs.lookup(ctx.path(name))
        except OSError as exc:
            ctx.err(f"stat: '{name}': {exc.strerror}\n")
            rc = 1
            continue
        mode, size, mtime = node.stat()
        kind = "directory" if node.is_dir else ("character special file" if node.kind == "dev" else
                                                ("regular empty file" if size == 0 else "regular file"))
        owner = "shell" if node.host is not None else "root"
        fields = {"s": str(size), "n": name, "a": f"{mode & 0o7777:o}", "Y": str(mtime), "F": kind,
                  "U": owner, "G": owner, "A": _mode_string(mode), "%": "%"}
        if fmt is None:
            ctx.out(f"  File: {name}\n  Size: {size}\t{kind}\nAccess: ({mode & 0o7777:04o}/{_mode_string(mode)})\n")
            continue
        out, i = "", 0
        while i < len(fmt):
            if fmt[i] == "%" and i + 1 < len(fmt):
                out += fields.get(fmt[i + 1], "?")
                i += 2
            else:
                out += fmt[i]
                i += 1
        ctx.out(out + "\n")
    return rc


@command("md5sum")
def _md5sum(ctx, argv):
    rc = 0
    for name in argv[1:]:
        try:
            ctx.out(f"{hashlib.md5(ctx.fs.read_bytes(ctx.path(name))).hexdigest()}  {name}\n")
        except OSError as exc:
            rc = _fail(ctx, "md5sum", name, exc)
    return rc


from . import android, apk, bench  # noqa: E402,F401  (they register their commands)
