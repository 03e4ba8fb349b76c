#!/usr/bin/env bash
# The project's GPU checks against a REAL nvidia-smi, on a machine with an NVIDIA GPU (not CI:
# CI has none). It records what the driver says, then runs the real modules and the real
# preflight play over it, and writes everything under OUT (default /tmp/aw-gpu-check):
#   host.txt              uname, /proc/driver/nvidia/version, nvidia-smi --version, -L, plain
#   nvidia-smi-q-x.xml    `nvidia-smi -q -x` as captured (the modules parse this)
#   nvidia-smi-q.txt      `nvidia-smi -q`, for a human reading the XML's values
#   modules.txt           nvidia_gpu, psu_budget, vram_plan, cuda_compat called one by one
#   preflight.txt         `ansible-playbook playbooks/preflight.yml` with the shipped inventory
# Ansible comes from .whl/ when the machine has none (ansible-core and resolvelib wheels, pure
# Python; jinja2, PyYAML and packaging must be there), else from PATH.
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
# The shipped ansible.cfg names ansible.posix's profile_tasks callback (the community bundle);
# ansible-core alone has the builtin ones.
export ANSIBLE_CALLBACKS_ENABLED=ansible.builtin.junit ANSIBLE_NOCOLOR=1
export ANSIBLE_CACHE_PLUGIN=memory
"${playbook[@]}" --version >"$out/ansible-version.txt" 2>&1
head -n 1 "$out/ansible-version.txt"

# Each module on its own, with the values a user's inventory gives (preflight's defaults).
cat >"$out/modules.yml" <<'EOF'
- name: The GPU modules one by one over a real nvidia-smi
  hosts: workstation
  gather_facts: false
  vars_files:
    - @TOP@/playbooks/vars/models.yml
  tasks:
    - name: Read the GPUs
      agent_workstation.aw.nvidia_gpu:
        nvidia_smi: "{{ smi }}"
        min_memory_mib: 22000
        max_temperature_c: 85
        fail_on_problem: false
      register: gpu
    - name: Show nvidia_gpu
      ansible.builtin.debug:
        var: gpu
    - name: Budget a 1000 W gold PSU for these GPUs' power limits
      agent_workstation.aw.psu_budget:
        psu_watts: 1000
        psu_efficiency_rating: gold
        gpu_power_limits_w: "{{ gpu.gpus | map(attribute='power_limit_w') | list }}"
        cpu_tdp_w: 170
        other_w: 100
        fail_on_overload: false
      register: psu
    - name: Show psu_budget
      ansible.builtin.debug:
        var: psu
    - name: Plan every catalogue profile on the first GPU alone (the inventory's settings)
      agent_workstation.aw.vram_plan:
        profiles: "{{ aw_model_profiles }}"
        clients: "{{ aw_model_clients }}"
        enabled_clients: "{{ workstation_clients }}"
        profile: "{{ item }}"
        kv_cache_dtype: "{{ preflight_kv_cache_dtype }}"
        max_num_seqs: "{{ preflight_max_num_seqs }}"
        gpu_memory_mib: "{{ gpu.gpus[0].memory_total_mib }}"
        gpu_count: 1
        gpu_memory_utilization: "{{ preflight_gpu_memory_utilization }}"
        overhead_mib: "{{ preflight_vram_overhead_mib }}"
        fail_on_overflow: false
      loop: "{{ aw_model_profiles | list }}"
      register: plans
    - name: Show each plan's verdict
      ansible.builtin.debug:
        msg: "{{ plans.results | map(attribute='msg') | list }}"
    - name: The driver against the vLLM image's CUDA
      agent_workstation.aw.cuda_compat:
        driver_version: "{{ gpu.driver_version }}"
        required_cuda: "12.8"
        fail_on_incompatible: false
      register: cuda
    - name: Show cuda_compat
      ansible.builtin.debug:
        var: cuda
EOF
sed -i "s|@TOP@|$top|" "$out/modules.yml"
"${playbook[@]}" "$out/modules.yml" -i inventories/workstation \
  -e "ansible_python_interpreter=$py" -e "smi=$smi" >"$out/modules.txt" 2>&1
echo "modules: rc=$?"

# The real preflight play over the shipped inventory (group_vars/all/*), nothing overridden but
# the interpreter and the nvidia-smi path.
"${playbook[@]}" playbooks/preflight.yml -i inventories/workstation \
  -e "ansible_python_interpreter=$py" -e "preflight_nvidia_smi=$smi" >"$out/preflight.txt" 2>&1
echo "preflight: rc=$?"
grep -E '"(GPUs|PSU|MODEL|VRAM|vLLM args|CUDA|WARNING|RESULT)[^"]*"' "$out/preflight.txt" | head -n 30
