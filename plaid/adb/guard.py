"""The guard (cool-down, sentinel) lives in plaid.devices.guard: phones and boards share it."""

from plaid.devices.guard import RESULT_KEYS, Guard  # noqa: F401 - its old home
