"""Errors that reach the user as one clear line (the CLI maps them to exit codes)."""


class PlaidError(Exception):
    """A known failure the user can act on; printed as one line, never a traceback."""

    exit_code = 1


class UsageError(PlaidError):
    """Bad input from the user: unknown name, malformed arch string, bad option value."""

    exit_code = 2


class ArchError(UsageError):
    """An architecture string or value that cannot be parsed or is not in its space."""


class DeviceLost(PlaidError):
    """The device went away in the middle of a command (unplugged, rebooted, reset, the
    SSH connection dropped); what was measured before is kept, a rerun resumes."""
