#!/usr/bin/env bash
# The main command: prepares ./.venv (Ansible and the collections, from PyPI; no Galaxy needed)
# and runs the whole site against this machine:
#   ansible-playbook site.yml -i inventories/workstation [your arguments]
# Examples:
#   ./scripts/site.sh                     # set up or upgrade this workstation
#   ./scripts/site.sh --check --diff      # show what would change, change nothing
#   ./scripts/site.sh -K                  # when sudo asks for your password
#   ./scripts/site.sh --tags stack        # one stage
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/bootstrap.sh" site
cd "$top"
export PATH="$top/.venv/bin:$PATH"
become=()
if [ "$(id -u)" -ne 0 ] && ! sudo -n true 2>/dev/null && [[ " $* " != *" -K "* && " $* " != *" --ask-become-pass "* ]]; then
  echo "site: sudo needs a password here; asking for it once (--ask-become-pass)." >&2
  become=(--ask-become-pass)
fi
exec ansible-playbook site.yml -i inventories/workstation "${become[@]}" "$@"
