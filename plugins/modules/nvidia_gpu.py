#!/usr/bin/python
# Copyright: agent-workstation contributors
# SPDX-License-Identifier: Apache-2.0 (see LICENSE at the repository root)

DOCUMENTATION = r"""
---
module: nvidia_gpu
short_description: Read NVIDIA GPUs and driver from C(nvidia-smi -q -x) and check them
description:
  - Runs C(nvidia-smi -q -x) and parses the XML of every driver generation (the old
    C(power_readings), 535's C(gpu_power_readings), 570+/590+ C(average_power_draw) and
    C(instant_power_draw), with fallbacks; C(N/A), C(Not Supported) and deprecated fields
    read as null).
  - Optionally checks memory, GPU count, driver version or branch, and temperature.
  - Read-only; never changes the host.
version_added: "0.1.0"
author: agent-workstation contributors
options:
  nvidia_smi:
    description: Name or path of the C(nvidia-smi) binary.
    type: str
    default: nvidia-smi
  min_memory_mib:
    description: Fail unless every GPU has at least this much memory (MiB).
    type: int
  min_count:
    description: Fail unless at least this many GPUs are found.
    type: int
  expected_driver_version:
    description:
      - Exact driver version (C(550.163.01)) or branch (C(550)) the host must run.
    type: str
  max_temperature_c:
    description: Fail if any GPU is hotter than this (Celsius).
    type: float
  sysfs_pci_path:
    description:
      - Where the kernel lists PCI devices. When nvidia-smi cannot answer, the module looks
        here for NVIDIA GPUs, so a report can tell a machine with no NVIDIA GPU from one whose
        driver is not installed yet (RV(pci_gpus)).
    type: path
    default: /sys/bus/pci/devices
  fail_on_problem:
    description:
      - When false, a problem (no C(nvidia-smi), driver not loaded, mismatch, bad XML, a failed
        check) is returned in RV(problem) and RV(problems) and the task succeeds, so a report
        play can collect every problem first.
    type: bool
    default: true
  gpu_index:
    description:
      - The one GPU the stack uses, by the index C(nvidia-smi -L) prints (also what Docker's
        C(device_ids) counts by). Only that GPU is held to O(min_memory_mib) and
        O(max_temperature_c) and returned in RV(selected_gpus); O(min_count) still counts every
        GPU. An index that does not exist is a C(check_failed) problem that lists the GPUs.
      - Omitted or null, every GPU is checked and selected.
    type: int
attributes:
  check_mode:
    support: full
    description: Only reads; runs the same in check mode.
  diff_mode:
    support: none
    description: Changes nothing, so there is no diff.
notes:
  - C(power_limit_w) is the enforced limit (C(enforced_power_limit) on old drivers,
    C(current_power_limit) on 535+).
seealso:
  - module: psu_budget
  - module: vram_plan
"""

EXAMPLES = r"""
- name: Read the GPUs and require a 24 GB card on the 550 branch
  nvidia_gpu:
    min_memory_mib: 22000
    min_count: 1
    expected_driver_version: "550"
    max_temperature_c: 85
  register: __gpu

- name: Collect problems without failing (for a report)
  nvidia_gpu:
    fail_on_problem: false
  register: __gpu_probe
"""

RETURN = r"""
gpus:
  description: One entry per GPU, in nvidia-smi order.
  returned: always
  type: list
  elements: dict
  sample:
    - index: 0
      name: NVIDIA GeForce RTX 4090
      uuid: GPU-12345678-aaaa-bbbb-cccc-0123456789ef
      pci_bus_id: 00000000:C1:00.0
      memory_total_mib: 24564
      driver_version: 570.133.07
      cuda_version: "12.8"
      power_limit_w: 450.0
      power_default_limit_w: 450.0
      power_max_limit_w: 600.0
      power_draw_w: 31.27
      power_draw_source: gpu_power_readings/instant_power_draw
      temperature_c: 15.0
      persistence_mode: true
driver_version:
  description: Driver version, or null when it cannot be read.
  returned: always
  type: str
  sample: 570.133.07
cuda_version:
  description: Highest CUDA version the driver supports, as nvidia-smi reports it.
  returned: always
  type: str
  sample: "12.8"
count:
  description: Number of GPUs found.
  returned: always
  type: int
  sample: 1
selected_gpus:
  description:
    - The GPUs the plan uses, in the shape of RV(gpus); every GPU, or the one O(gpu_index)
      chose (empty when that index does not exist).
  returned: always
  type: list
  elements: dict
problem:
  description:
    - Null when all is well, else one of C(nvidia_smi_missing), C(driver_not_loaded),
      C(driver_library_mismatch), C(nvidia_smi_failed), C(bad_xml), C(no_gpu),
      C(check_failed).
  returned: always
  type: str
  sample: driver_not_loaded
pci_gpus:
  description:
    - NVIDIA display controllers the kernel lists on the PCI bus, whether or not a driver
      runs them. Empty on a machine with no NVIDIA GPU.
  returned: always
  type: list
  elements: dict
  sample: [{"slot": "0000:01:00.0", "class": "0x030000"}]
problems:
  description: Every readable problem message (empty when all is well).
  returned: always
  type: list
  elements: str
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.agent_workstation.aw.plugins.module_utils.aw_nvidia_smi import (
    BAD_XML,
    CHECK_FAILED,
    NO_GPU,
    NVIDIA_SMI_MISSING,
    NvidiaSmiParseError,
    check_report,
    classify_failure,
    gpu_list,
    missing_binary_message,
    nvidia_pci_gpus,
    parse_nvidia_smi_xml,
    select_gpus,
)


def read_pci_devices(root):
    """(slot, vendor, class) of every PCI device under root; empty when it is unreadable."""
    devices = []
    try:
        slots = sorted(os.listdir(root))
    except OSError:
        return devices
    for slot in slots:
        try:
            with (
                open(os.path.join(root, slot, "vendor"), encoding="ascii") as vendor,
                open(os.path.join(root, slot, "class"), encoding="ascii") as pci_class,
            ):
                devices.append((slot, vendor.read(), pci_class.read()))
        except OSError:
            continue
    return devices


def main():
    module = AnsibleModule(
        argument_spec={
            "nvidia_smi": {"type": "str", "default": "nvidia-smi"},
            "min_memory_mib": {"type": "int"},
            "min_count": {"type": "int"},
            "expected_driver_version": {"type": "str"},
            "max_temperature_c": {"type": "float"},
            "sysfs_pci_path": {"type": "path", "default": "/sys/bus/pci/devices"},
            "fail_on_problem": {"type": "bool", "default": True},
            "gpu_index": {"type": "int"},
        },
        supports_check_mode=True,
    )
    p = module.params
    result = {
        "changed": False,
        "gpus": [],
        "driver_version": None,
        "cuda_version": None,
        "count": 0,
        "selected_gpus": [],
        "problem": None,
        "problems": [],
        "pci_gpus": nvidia_pci_gpus(read_pci_devices(module.params["sysfs_pci_path"])),
    }

    def finish(problem, messages):
        result["problem"] = problem
        result["problems"] = messages
        if problem and p["fail_on_problem"]:
            module.fail_json(msg=" ".join(messages), **result)
        result["msg"] = " ".join(messages) if messages else "GPU checks passed."
        module.exit_json(**result)

    binary = module.get_bin_path(p["nvidia_smi"])
    if binary is None:
        finish(NVIDIA_SMI_MISSING, [missing_binary_message(p["nvidia_smi"])])
    rc, out, err = module.run_command([binary, "-q", "-x"], check_rc=False)
    failure = classify_failure(rc, out, err)
    if failure:
        finish(failure[0], [failure[1]])
    try:
        report = parse_nvidia_smi_xml(out)
    except NvidiaSmiParseError as exc:
        finish(BAD_XML, [f"{exc}. Run `{binary} -q -x` by hand; a driver update may be half done."])
    data = report.as_dict()
    result.update(
        gpus=data["gpus"],
        driver_version=data["driver_version"],
        cuda_version=data["cuda_version"],
        count=data["count"],
    )
    if p["gpu_index"] is not None and p["gpu_index"] < 0:
        finish(
            CHECK_FAILED,
            [
                f"gpu_index (preflight_gpu_index) is {p['gpu_index']}; an index counts from 0 as "
                f"`nvidia-smi -L` lists the GPUs ({gpu_list(report) or 'none here'}). Fix: set "
                "preflight_gpu_index to one of those indexes, or null (plan on every GPU)."
            ],
        )
    selected, _problem = select_gpus(report, p["gpu_index"])
    result["selected_gpus"] = [data["gpus"][report.gpus.index(gpu)] for gpu in selected]
    if report.count == 0 and not p["min_count"]:
        finish(NO_GPU, ["nvidia-smi ran but lists no GPU."])
    failures = check_report(
        report,
        min_memory_mib=p["min_memory_mib"],
        min_count=p["min_count"],
        expected_driver_version=p["expected_driver_version"],
        max_temperature_c=p["max_temperature_c"],
        gpu_index=p["gpu_index"],
    )
    finish(CHECK_FAILED if failures else None, failures)


if __name__ == "__main__":
    main()
