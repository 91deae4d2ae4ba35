"""The host's ADB key pair, where and how the adb tool keeps it: ``$ANDROID_USER_HOME``
(else ``$ANDROID_SDK_HOME/.android``, else ``~/.android``) / ``adbkey`` (+ ``adbkey.pub``),
created on first use like adb does. Keys named in ``$ADB_VENDOR_KEYS`` (files or folders
of ``*.adbkey``, separated by ':') are offered too."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from plaid.errors import PlaidError


def android_dir() -> Path:
    if os.environ.get("ANDROID_USER_HOME"):
        return Path(os.environ["ANDROID_USER_HOME"])
    if os.environ.get("ANDROID_SDK_HOME"):
        return Path(os.environ["ANDROID_SDK_HOME"]) / ".android"
    return Path(os.environ.get("HOME") or os.path.expanduser("~")) / ".android"


def key_paths() -> list[Path]:
    """The user key (created when absent), then any vendor keys."""
    user = android_dir() / "adbkey"
    if not user.is_file():
        create_key(user)
    paths = [user]
    for item in filter(None, os.environ.get("ADB_VENDOR_KEYS", "").split(os.pathsep)):
        p = Path(item)
        if p.is_dir():
            paths += sorted(q for q in p.glob("*.adbkey") if q.is_file())
        elif p.is_file():
            paths.append(p)
    return paths


def create_key(path: Path) -> None:
    from adb_shell.auth.keygen import keygen

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        keygen(str(path))
        os.chmod(path, 0o600)
    except OSError as exc:
        raise PlaidError(f"cannot create the ADB key {path}: {exc.strerror or exc}") from None
    print(f"plaid: created ADB key {path} (the phone asks once to allow it)", file=sys.stderr)


def signers() -> list:
    """adb-shell signers for every key; a key that cannot be read is a one-line error."""
    from adb_shell.auth.sign_pythonrsa import PythonRSASigner

    out = []
    for priv in key_paths():
        pub = Path(f"{priv}.pub")
        try:
            pub_text = pub.read_text() if pub.is_file() else ""
            out.append(PythonRSASigner(pub_text, priv.read_text()))
        except (OSError, ValueError) as exc:
            raise PlaidError(f"cannot read the ADB key {priv}: {exc}") from None
    return out
