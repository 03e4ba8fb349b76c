#!/usr/bin/env bash
# The project's GPU checks against a REAL nvidia-smi, on a machine with an NVIDIA GPU (not CI:
# CI has none). It records what the driver says, then runs the real preflight play (the modules
# nvidia_gpu, psu_budget, vram_plan, cuda_compat) over it, and writes under OUT (default
# /tmp/aw-gpu-check):
#   host.txt              uname, /proc/driver/nvidia/version, nvidia-smi --version, -L, plain
#   nvidia-smi-q-x.xml    `nvidia-smi -q -x` as captured (the modules parse this)
#   nvidia-smi-q.txt      `nvidia-smi -q`, for a human reading the XML's values
#   preflight.txt         `ansible-playbook playbooks/preflight.yml -v` with the shipped inventory
#                         (the report, and each module's whole result)
# Ansible comes from .whl/ when the machine has none (ansible-core and resolvelib wheels, pure
# Python; jinja2, PyYAML and packaging must be there), else from PATH. Fetch them beforehand with
# `pip download --no-deps -d .whl ansible-core==2.19.14 resolvelib==1.2.1` (pyproject's pins).
#   tests/device/gpu-check.sh            # OUT=/some/dir to choose where the files go
# The figures seen on a real GPU are in tests/fixtures/README.md (nvidia-smi) and README.md.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
out=${OUT:-/tmp/aw-gpu-check}
mkdir -p "$out"
smi=${AW_NVIDIA_SMI:-nvidia-smi}
py=$(command -v python3)

{
  date -u
  uname -a
  cat /proc/driver/nvidia/version 2>&1
  "$smi" --version 2>&1
  "$smi" -L 2>&1
  "$smi" 2>&1
} >"$out/host.txt"
"$smi" -q -x >"$out/nvidia-smi-q-x.xml" 2>&1
echo "nvidia-smi -q -x: rc=$? $(wc -c <"$out/nvidia-smi-q-x.xml") bytes"
"$smi" -q >"$out/nvidia-smi-q.txt" 2>&1

playbook=(ansible-playbook)
if ! command -v ansible-playbook >/dev/null; then
  site=/tmp/aw-gpu-check-site
  "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$site" "$top"/.whl/*.whl || exit 1
  export PYTHONPATH=$site
  playbook=("$py" -m ansible.cli.playbook)  # the scripts' #! names pip's python, not this one
fi
"${playbook[@]}" --version >"$out/ansible-version.txt" 2>&1
head -n 1 "$out/ansible-version.txt"

# The real preflight play over the shipped inventory (group_vars/all/*), nothing overridden but
# the interpreter and the nvidia-smi path; -v prints every module's whole result (nvidia_gpu,
# psu_budget, cuda_compat, and vram_plan's, whose `plans` holds every catalogue profile's).
# Without the community bundle, ansible.cfg's ansible.posix.profile_tasks callback is skipped
# with a warning.
"${playbook[@]}" playbooks/preflight.yml -i inventories/workstation -v \
  -e "ansible_python_interpreter=$py" -e "preflight_nvidia_smi=$smi" >"$out/preflight.txt" 2>&1
echo "preflight: rc=$?"
grep -E '^        "(GPUs|PSU|MODEL|VRAM|vLLM args|CUDA|WARNING|RESULT)' "$out/preflight.txt"
