"""The device seam (issue 11): how plaid reaches a target's device, independent of the
transport. ``shell`` builds quoted command lines, ``connection`` is the interface every
link to a device offers (shell, push, pull, each with a timeout), ``ssh`` is the link to a
Linux board through the OpenSSH client, ``guard`` keeps the measurement protocol (cool-down,
sentinel) around any runner, and ``board`` is the session of the ``ssh`` transport
(device_bench copied to the board and run there). plaid.lut and plaid.adb build on this
package; it imports neither (plaid.targets registers the board session in plaid.lut's
registry)."""
