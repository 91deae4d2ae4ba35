"""Search spaces, registered by name. ``parse_arch`` turns any arch string into a value."""

from __future__ import annotations

import functools
from typing import Any, Callable

from plaid.errors import ArchError
from plaid.registry import Registry
from plaid.spaces.base import Space, check_arch_length

SPACES: Registry[Callable[..., Space]] = Registry("space")


def register_space(name: str):
    """Class decorator: ``@register_space("df")`` makes ``get_space("df")`` build it."""
    return SPACES.named(name)


def _load_builtin() -> None:
    # Importing the modules registers them; backbones first so listings read naturally.
    import plaid.spaces.df  # noqa: F401
    import plaid.spaces.pl1a  # noqa: F401
    import plaid.spaces.decoder  # noqa: F401


def get_space(name: str, **options: Any) -> Space:
    """The space called ``name`` with its preset from ``configs/spaces/<name>.toml``
    (cached per configs folder, so a changed $PLAID_CONFIG_DIR is honoured)."""
    from plaid.config import config_dir

    return _get_space(str(config_dir()), name, **options)


@functools.lru_cache(maxsize=None)
def _get_space(configs: str, name: str, **options: Any) -> Space:
    _load_builtin()
    return SPACES.get(name)(**options)


def space_names() -> list[str]:
    _load_builtin()
    return SPACES.names()


def parse_arch(text: str) -> tuple[Space, Any]:
    """``"df:R64x3-R128x3-R256x3,512"`` -> (df space, DFArch). Raises ArchError."""
    check_arch_length(text)
    text = text.strip()
    if ":" not in text:
        raise ArchError(
            f"not an architecture string: {text!r} (expected SPACE:GENES, e.g. "
            "'df:R64x3-R128x3-R256x3,512'; `plaid arch list` shows the spaces)"
        )
    prefix = text.split(":", 1)[0]
    _load_builtin()
    if prefix not in SPACES:
        raise ArchError(f"architecture {text!r}: {SPACES.unknown_message(prefix)}")
    space = get_space(prefix)
    return space, space.decode(text)


__all__ = ["Space", "SPACES", "register_space", "get_space", "space_names", "parse_arch"]
