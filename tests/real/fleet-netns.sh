#!/usr/bin/env bash
# Runs a command (default: the fleet's real test) in a new network namespace whose loopback
# device also holds 192.0.2.10 (the router host), 192.0.2.11 and 192.0.2.12 (two workers):
# TEST-NET-1 addresses, non-loopback to every program, seen by no other process on the machine.
#   tests/real/fleet-netns.sh                      # .venv/bin/pytest -q tests/real/test_fleet.py
#   tests/real/fleet-netns.sh .venv/bin/pytest -q tests/real/test_fleet.py -k messages
# Needs root (or unprivileged user namespaces: it falls back to `unshare -rn`).
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -gt 0 ] || set -- .venv/bin/pytest -q -p no:cacheprovider tests/real/test_fleet.py
# The inner shell expands $a and "$@", not this one.
# shellcheck disable=SC2016
inner='ip link set lo up && for a in 10 11 12; do ip addr add 192.0.2.$a/32 dev lo; done && exec "$@"'
if [ "$(id -u)" = 0 ]; then
  exec unshare -n sh -c "$inner" sh "$@"
fi
exec unshare -rn sh -c "$inner" sh "$@"
