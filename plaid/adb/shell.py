"""Shell command lines for the phone: the quoting helpers live in plaid.devices.shell
(every argument through ``shlex.quote``) and are imported from here by the ADB code;
``cpu_mask`` is taskset's."""

from __future__ import annotations

from plaid.devices.shell import RC_MARKER, sh, short, split_rc, with_rc  # noqa: F401 - one copy, shared


def cpu_mask(cpus: list[int] | None) -> str | None:
    """taskset's hex mask for CPU numbers: [4, 5, 6, 7] -> 'f0'; None for no pinning."""
    if not cpus:
        return None
    mask = 0
    for c in cpus:
        if not isinstance(c, int) or c < 0:
            raise ValueError(f"bad CPU number {c!r}")
        mask |= 1 << c
    return format(mask, "x")

