"""The SSH options of the commands that talk to a Linux board (`plaid bench`): the argument
group and the session options built from it (the ADB ones are :mod:`plaid.cli.adbopts`)."""

from __future__ import annotations

from pathlib import Path

from plaid.cli.adbopts import check_files, for_transport, given_flags

_SSH_NAMES = ("ssh", "ssh_key", "ssh_config", "accept_new_host_key", "remote_python", "remote_dir")


def add_ssh_arguments(p) -> None:
    g = p.add_argument_group("Linux boards over SSH (targets with transport ssh, e.g. rpi5)")
    g.add_argument("--ssh", metavar="[USER@]HOST[:PORT]", help="the board (a Host of ~/.ssh/config works too)")
    g.add_argument("--ssh-key", type=Path, metavar="PATH", help="private key to log in with (default: ssh's own)")
    g.add_argument("--ssh-config", type=Path, metavar="PATH", help="OpenSSH client config (default: ~/.ssh/config)")
    g.add_argument("--accept-new-host-key", action="store_true", default=None,
                   help="trust and record the board's host key if none is known yet (a changed key is refused)")
    g.add_argument("--remote-python", metavar="PATH",
                   help="the board's interpreter for device_bench (default: the target's, python3 for rpi5)")
    g.add_argument("--remote-dir", metavar="PATH",
                   help="folder on the board for the per-run folder (default: its $TMPDIR or /tmp; relative "
                        "paths start at the login folder)")


def ssh_session_options(args, target) -> dict:
    """Session options of the ssh transport; SSH flags on another target are a mistake."""
    from plaid.errors import UsageError

    given = given_flags(args, _SSH_NAMES)
    if not for_transport(target, "ssh", "SSH (e.g. --target rpi5)", given):
        return {}
    if args.ssh is None and given:
        raise UsageError(f"{', '.join(given)} need --ssh [USER@]HOST[:PORT]")
    if args.ssh is not None:
        from plaid.devices.ssh import SshAddress

        SshAddress.parse(args.ssh)  # a malformed address is a usage error before any connection
    for flag in ("remote_python", "remote_dir"):
        value = getattr(args, flag)
        if value is not None and not value.strip():
            raise UsageError(f"--{flag.replace('_', '-')} must not be empty")
    check_files(("--ssh-key", args.ssh_key), ("--ssh-config", args.ssh_config))
    return {"ssh": args.ssh, "ssh_key": args.ssh_key, "ssh_config": args.ssh_config,
            "accept_new_host_key": bool(args.accept_new_host_key), "remote_python": args.remote_python,
            "remote_dir": args.remote_dir}
