#!/usr/bin/env bash
# Creates or refreshes ./.venv with the Python packages a dependency group of pyproject.toml
# names: `site` (run the playbooks) or `test` (also Molecule, lint, pytest).
# Re-runs are cheap: the venv is rebuilt only when pyproject.toml or the group changes.
# Usage: scripts/bootstrap.sh [site|test]
set -euo pipefail
group=${1:-site}
top=$(cd "$(dirname "$0")/.." && pwd)
venv="$top/.venv"
stamp="$venv/.agent-workstation-$group"
# The stamp covers the project's pyproject.toml and those of its Python packages (packages/*).
shopt -s nullglob
pyprojects=("$top/pyproject.toml" "$top"/packages/*/pyproject.toml)
want=$(cat "${pyprojects[@]}" | sha256sum | cut -c1-16)

say() { printf 'bootstrap: %s\n' "$*"; }

python=${PYTHON:-}
if [ -z "$python" ]; then
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(not ((3, 11) <= sys.version_info[:2] < (3, 14)))' 2>/dev/null; then
      python=$(command -v "$candidate"); break
    fi
  done
fi
if [ -z "$python" ]; then
  say "no Python 3.11-3.13 found. Fix: sudo apt-get install python3 python3-venv" >&2
  exit 1
fi
if ! "$python" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    say "installing python3-venv"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
  else
    say "Python has no venv module. Fix: sudo apt-get install python3-venv" >&2
    exit 1
  fi
fi

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/ansible-playbook" ]; then
  say "$venv is up to date ($group)"
  exit 0
fi
say "preparing $venv for '$group' (first run: a few minutes)"
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade 'pip>=25.1'
(cd "$top" && "$venv/bin/python" -m pip install -q --disable-pip-version-check --group "$group")
# The project's own Python packages (packages/NAME/pyproject.toml: the code index, the agent
# queue, ...) go into the same venv, editable, so scripts/aw-* run them from this checkout;
# with `test`, each package's own `test` dependency group too.
for pyproject in "${pyprojects[@]:1}"; do
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -e "$(dirname "$pyproject")"
  if [ "$group" = test ] && grep -qE '^test *= *\[' "$pyproject"; then
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --group "$pyproject:test"
  fi
done
rm -f "$venv"/.agent-workstation-*
echo "$want" > "$stamp"
[ "$group" = site ] || echo "$want" > "$venv/.agent-workstation-site"
say "ready: $("$venv/bin/ansible" --version | sed -n 1p)"
