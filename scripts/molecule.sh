#!/usr/bin/env bash
# Runs Molecule for one role or whole-site scenario with the shared base configuration.
# Usage: scripts/molecule.sh ROLE|site [molecule arguments]   (default arguments: test)
#   scripts/molecule.sh base                 # roles/base, scenario default: full test
#   scripts/molecule.sh base converge        # keep the instance to poke at it
#   MOLECULE_DISTRO=debian12 scripts/molecule.sh base
#   scripts/molecule.sh site test -s preflight   # molecule/preflight at the repository root
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
target=${1:?usage: scripts/molecule.sh ROLE|site [molecule args]}
shift
[ $# -gt 0 ] || set -- test
if [ "$target" = site ]; then
  dir=$top
else
  dir=$top/roles/$target
  [ -d "$dir/molecule" ] || { echo "molecule.sh: roles/$target has no molecule/ directory" >&2; exit 2; }
fi
export AW_ROOT=$top MOLECULE_ROLE=$target
export PATH="$top/.venv/bin:$PATH"
cd "$dir"
exec molecule "$@"
