"""A small POSIX-sh subset standing in for Android's /system/bin/sh (mksh).

Supported: words with '...', "..." and backslash quoting; ``$?`` and ``$NAME`` expansion
(unquoted glob patterns expand against the device file system); command lists joined by
``;``, ``&&``, ``||`` and newlines; redirections ``>``, ``>>``, ``2>``, ``2>>``, ``2>&1``,
``>&2``, ``&>``. Anything else (pipes, ``&``, subshells, command substitution, ``<``)
is refused with exit status 2 and an ``adbemu:`` message, so a host that sends more than
the contracted subset finds out at once. Commands live in ``commands.py``.
"""

from __future__ import annotations

import fnmatch
import posixpath
import threading
from dataclasses import dataclass, field

from .protocol import StreamClosed

SH = "/system/bin/sh"
_OPS = ("2>&1", "1>&2", "2>>", "1>>", ">&2", "&&", "||", ">>", "2>", "1>", "&>", ";", "&", "|", ">", "<")
_REDIRS = {"2>&1", "1>&2", "2>>", "1>>", ">&2", ">>", "2>", "1>", "&>", ">", "<"}
_GLOB = set("*?[")


class ShellSyntaxError(Exception):
    pass


class ShellExit(Exception):
    def __init__(self, code: int):
        self.code = code


@dataclass
class Part:
    text: str
    quoted: bool
    var: bool = False


@dataclass
class Word:
    parts: list[Part] = field(default_factory=list)


@dataclass
class Command:
    words: list[Word] = field(default_factory=list)
    redirs: list[tuple[str, Word | None]] = field(default_factory=list)


def lex(line: str) -> list:
    """Words (``Word``) and operators (``str``)."""
    toks: list = []
    word: Word | None = None
    i, n = 0, len(line)

    def part(text, quoted, var=False):
        nonlocal word
        if word is None:
            word = Word()
        word.parts.append(Part(text, quoted, var))

    def flush():
        nonlocal word
        if word is not None:
            toks.append(word)
            word = None

    def variable(j: int, quoted: bool) -> int:
        """Parse after a '$' at j-1; returns the new index."""
        if j < n and line[j] == "?":
            part("?", quoted, var=True)
            return j + 1
        if j < n and line[j] == "{":
            k = line.find("}", j)
            if k < 0:
                raise ShellSyntaxError("bad substitution")
            part(line[j + 1:k], quoted, var=True)
            return k + 1
        if j < n and line[j] == "(":
            raise ShellSyntaxError("command substitution $(...) is not emulated")
        k = j
        while k < n and (line[k].isalnum() or line[k] == "_"):
            k += 1
        if k == j:
            part("$", quoted)
            return j
        part(line[j:k], quoted, var=True)
        return k

    while i < n:
        c = line[i]
        if c in " \t":
            flush()
            i += 1
        elif c == "\n":
            flush()
            toks.append(";")
            i += 1
        elif c == "#" and word is None:
            break
        elif c == "'":
            k = line.find("'", i + 1)
            if k < 0:
                raise ShellSyntaxError("unterminated quoted string")
            part(line[i + 1:k], True)
            i = k + 1
        elif c == '"':
            i += 1
            buf = ""
            part("", True)
            while True:
                if i >= n:
                    raise ShellSyntaxError("unterminated quoted string")
                c = line[i]
                if c == '"':
                    i += 1
                    break
                if c == "\\" and i + 1 < n and line[i + 1] in '"\\$`\n':
                    buf += line[i + 1] if line[i + 1] != "\n" else ""
                    i += 2
                elif c == "$":
                    part(buf, True)
                    buf = ""
                    i = variable(i + 1, True)
                elif c == "`":
                    raise ShellSyntaxError("command substitution `...` is not emulated")
                else:
                    buf += c
                    i += 1
            part(buf, True)
        elif c == "\\":
            if i + 1 < n and line[i + 1] != "\n":
                part(line[i + 1], True)
            i += 2
        elif c == "$":
            i = variable(i + 1, False)
        elif c == "`":
            raise ShellSyntaxError("command substitution `...` is not emulated")
        elif c in "()":
            raise ShellSyntaxError(f"'{c}' (subshells) is not emulated")
        elif c in ";&|<>" or (c in "12" and word is None and line[i + 1:i + 2] in ("<", ">")):
            flush()
            op = next(o for o in _OPS if line.startswith(o, i))
            toks.append(op)
            i += len(op)
        else:
            part(c, False)
            i += 1
    flush()
    return toks


def parse(line: str) -> list[tuple[str, Command]]:
    """[(connector, command)] where connector is ';', '&&' or '||' (the first is ';')."""
    out: list[tuple[str, Command]] = []
    conn, cmd = ";", Command()
    toks = lex(line)
    i = 0
    while i < len(toks):
        t = toks[i]
        if isinstance(t, Word):
            cmd.words.append(t)
        elif t in _REDIRS:
            if t == "<":
                raise ShellSyntaxError("input redirection '<' is not emulated")
            if t in ("2>&1", "1>&2", ">&2"):
                cmd.redirs.append((t, None))
            else:
                if i + 1 >= len(toks) or not isinstance(toks[i + 1], Word):
                    raise ShellSyntaxError(f"syntax error: '{t}' unexpected")
                cmd.redirs.append((t, toks[i + 1]))
                i += 1
        elif t in (";", "&&", "||"):
            if cmd.words or cmd.redirs:
                out.append((conn, cmd))
            elif t != ";":
                raise ShellSyntaxError(f"syntax error: '{t}' unexpected")
            conn, cmd = t, Command()
        else:
            raise ShellSyntaxError(f"'{t}' ({'pipes' if t == '|' else 'background jobs'}) is not emulated")
        i += 1
    if cmd.words or cmd.redirs:
        out.append((conn, cmd))
    elif conn in ("&&", "||"):
        raise ShellSyntaxError(f"syntax error: unexpected end after '{conn}'")
    return out


class Sink:
    """An output of a command: the shell stream, /dev/null or a file."""

    def __init__(self, write=None, fh=None):
        self._write, self.fh = write, fh

    def write(self, data: str | bytes) -> None:
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        if not data:
            return
        if self.fh is not None:
            self.fh.write(data)
        elif self._write is not None:
            self._write(data)


class Context:
    """What a command sees: its arguments' shell, outputs and the cancel signal."""

    def __init__(self, shell: "Shell", stdout: Sink, stderr: Sink):
        self.shell, self.stdout, self.stderr = shell, stdout, stderr
        self.device, self.fs = shell.device, shell.device.fs

    def out(self, text: str) -> None:
        self.stdout.write(text)

    def err(self, text: str) -> None:
        self.stderr.write(text)

    def path(self, p: str) -> str:
        return self.fs.norm(p, self.shell.cwd)

    def sleep(self, seconds: float) -> None:
        if self.shell.wait(seconds):
            raise StreamClosed("cancelled")

    @property
    def cancelled(self) -> bool:
        return self.shell.cancelled()


class Shell:
    """One `shell:` command line, run like `sh -c LINE`."""

    def __init__(self, device, write, cancelled=lambda: False, wait=None):
        self.device = device
        self.cwd = "/"
        self.rc = 0
        self.env = {"PATH": "/product/bin:/apex/com.android.runtime/bin:/system/bin:/system/xbin:/odm/bin:"
                            "/vendor/bin:/vendor/xbin", "HOME": "/", "USER": "shell", "HOSTNAME": "localhost",
                    "ANDROID_DATA": "/data", "ANDROID_ROOT": "/system", "EXTERNAL_STORAGE": "/sdcard",
                    "TMPDIR": "/data/local/tmp"}
        self.stream_sink = Sink(write)
        self.cancelled = cancelled
        self._event = threading.Event()
        self.wait = wait or (lambda s: self._event.wait(s))

    def run(self, line: str) -> int:
        try:
            program = parse(line)
        except ShellSyntaxError as exc:
            self.stream_sink.write(f"adbemu: {SH}: {exc}\n")
            return 2
        try:
            for conn, cmd in program:
                if (conn == "&&" and self.rc != 0) or (conn == "||" and self.rc == 0):
                    continue
                self.rc = self.simple(cmd)
        except ShellExit as exc:
            self.rc = exc.code
        return self.rc

    # --- expansion ---
    def expand(self, word: Word) -> list[str]:
        text, pattern, globbing = "", "", False
        for p in word.parts:
            value = (str(self.rc) if p.text == "?" else self.env.get(p.text, "")) if p.var else p.text
            text += value
            if p.quoted or p.var:
                pattern += "".join(f"[{c}]" if c in _GLOB else c for c in value)
            else:
                pattern += value
                globbing = globbing or any(c in _GLOB for c in value)
        if globbing:
            matches = self._glob(pattern)
            if matches:
                return matches
        return [text]

    def _glob(self, pattern: str) -> list[str]:
        absolute = pattern.startswith("/")
        base = "/" if absolute else self.cwd
        found = [("", base)]
        for comp in [c for c in pattern.split("/") if c]:
            nxt = []
            for shown, real in found:
                if not any(c in _GLOB for c in comp):
                    nxt.append((posixpath.join(shown, comp) if shown else comp, posixpath.join(real, comp)))
                    continue
                try:
                    names = self.device.fs.listdir(real)
                except OSError:
                    continue
                for name in names:
                    if (not name.startswith(".") or comp.startswith(".")) and fnmatch.fnmatchcase(name, comp):
                        nxt.append((posixpath.join(shown, name) if shown else name, posixpath.join(real, name)))
            found = nxt
        found = [(s, r) for s, r in found if self.device.fs.node(self.device.fs.norm(r)) is not None]
        return sorted(("/" + s if absolute else s) for s, _ in found)

    # --- running one simple command ---
    def simple(self, cmd: Command) -> int:
        from .commands import run_command

        stdout, stderr = self.stream_sink, self.stream_sink
        opened = []
        try:
            for op, target in cmd.redirs:
                if op == "2>&1":
                    stderr = stdout
                    continue
                if op in (">&2", "1>&2"):
                    stdout = stderr
                    continue
                names = self.expand(target)
                if len(names) != 1:
                    self.stream_sink.write(f"{SH}: {target}: ambiguous redirect\n")
                    return 1
                path = self.device.fs.norm(names[0], self.cwd)
                try:
                    fh = self.device.fs.open_write(path, append=op.endswith(">>"))
                except OSError as exc:
                    stderr.write(f"{SH}: can't create {names[0]}: {exc.strerror}\n")
                    return 1
                opened.append(fh)
                sink = Sink(fh=fh)
                if op in (">", "1>", ">>", "1>>"):
                    stdout = sink
                elif op in ("2>", "2>>"):
                    stderr = sink
                else:   # &>
                    stdout = stderr = sink
            argv = [a for w in cmd.words for a in self.expand(w)]
            if not argv:
                return 0
            return run_command(Context(self, stdout, stderr), argv)
        finally:
            for fh in opened:
                fh.close()

