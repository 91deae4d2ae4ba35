"""Where presets live and how TOML presets are read (never at import time)."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from plaid.errors import UsageError


def config_dir() -> Path:
    """The `configs/` folder: $PLAID_CONFIG_DIR, else the one beside the package."""
    env = os.environ.get("PLAID_CONFIG_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "configs"


def load_toml(kind: str, name: str) -> dict[str, Any]:
    """Read ``configs/<kind>/<name>.toml``; a missing or broken file is one clear error."""
    path = config_dir() / kind / f"{name}.toml"
    if not path.is_file():
        raise UsageError(f"no {kind[:-1] if kind.endswith('s') else kind} preset {name!r}: {path} does not exist")
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML: {exc}") from None


def require(table: dict[str, Any], key: str, typ: type, where: str) -> Any:
    """Fetch a typed key from a TOML table with a one-line error naming the file part."""
    if key not in table:
        raise UsageError(f"{where}: missing key {key!r}")
    value = table[key]
    if typ is int and isinstance(value, bool) or not isinstance(value, typ):
        raise UsageError(f"{where}: {key!r} must be {typ.__name__}, got {value!r}")
    return value
