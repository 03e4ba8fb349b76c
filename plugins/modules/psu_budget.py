#!/usr/bin/python
# Copyright: agent-workstation contributors
# SPDX-License-Identifier: Apache-2.0 (see LICENSE at the repository root)

DOCUMENTATION = r"""
---
module: psu_budget
short_description: Check that a power supply covers the GPUs' transients, CPU and the rest
description:
  - "A simple DC model: O(gpu_power_limits_w) times O(transient_factor) plus O(cpu_tdp_w)
    plus O(other_w) must fit in O(psu_watts) times O(transient_tolerance), and the sustained
    load (limits, no transient factor) must stay under O(sustained_load_fraction) of
    O(psu_watts)."
  - The default O(transient_factor) of 1.4 covers an RTX 4090 (450 W board limit, 600 W+
    millisecond transients).
  - ATX 3.x units are specified to ride through short excursions above their rating, but the
    envelope is not modelled unless you declare it with O(transient_tolerance).
  - The 80 PLUS rating changes only the wall draw (RV(wall_sustained_w), RV(wall_peak_w), for
    circuit and UPS sizing), never the DC capacity or the verdict.
  - Pure arithmetic; changes nothing.
version_added: "0.1.0"
author: agent-workstation contributors
options:
  psu_watts:
    description: The PSU's rated DC output (W).
    type: float
    required: true
  psu_efficiency_rating:
    description: 80 PLUS level, used for the wall-draw estimate only.
    type: str
    default: gold
    choices: [none, white, bronze, silver, gold, platinum, titanium]
  gpu_power_limits_w:
    description: Each GPU's enforced power limit (W). Give this or O(gpus).
    type: list
    elements: float
  gpus:
    description: The RV(nvidia_gpu#module:gpus) list; each entry's C(power_limit_w) is used.
    type: list
    elements: dict
  cpu_tdp_w:
    description: CPU package power (use the sustained boost power, e.g. Intel PL2, if higher).
    type: float
    default: 0
  other_w:
    description: Everything else (board, memory, disks, fans, pumps).
    type: float
    default: 0
  transient_factor:
    description: Ratio of a GPU's millisecond transient peak to its power limit.
    type: float
    default: 1.4
  sustained_load_fraction:
    description: Fraction of the rating the sustained load may use.
    type: float
    default: 0.8
  transient_tolerance:
    description: Multiple of the rating the PSU is trusted with for transients (1.0 = none).
    type: float
    default: 1.0
  fail_on_overload:
    description: When false, an overload is reported in RV(ok) and RV(msg) without failing.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: Pure computation; same in check mode.
  diff_mode:
    support: none
    description: Changes nothing.
seealso:
  - module: nvidia_gpu
"""

EXAMPLES = r"""
- name: Check a 1000 W Gold PSU against the detected GPUs
  psu_budget:
    psu_watts: 1000
    psu_efficiency_rating: gold
    gpus: "{{ __gpu.gpus }}"
    cpu_tdp_w: 170
    other_w: 100

- name: Two 4090s on 1600 W, report only
  psu_budget:
    psu_watts: 1600
    gpu_power_limits_w: [450, 450]
    cpu_tdp_w: 250
    fail_on_overload: false
  register: __psu
"""

RETURN = r"""
ok:
  description: Whether both the peak and the sustained load fit.
  returned: always
  type: bool
sustained_w:
  description: GPU limits + CPU + other (W, DC).
  returned: always
  type: float
  sample: 720.0
peak_w:
  description: GPU limits x transient factor + CPU + other (W, DC).
  returned: always
  type: float
  sample: 900.0
headroom_w:
  description: Peak capacity minus RV(peak_w); negative when over.
  returned: always
  type: float
  sample: 100.0
sustained_headroom_w:
  description: Sustained capacity minus RV(sustained_w).
  returned: always
  type: float
wall_sustained_w:
  description: RV(sustained_w) divided by the 80 PLUS efficiency at 50 % load.
  returned: always
  type: float
wall_peak_w:
  description: RV(peak_w) divided by that efficiency.
  returned: always
  type: float
recommended_gpu_power_limit_w:
  description: The largest equal per-GPU limit that fits (capped at the current highest).
  returned: always
  type: int
  sample: 450
gpu_power_limits_w:
  description: The limits used.
  returned: always
  type: list
  elements: float
msg:
  description: A readable verdict with the fix when it does not fit.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.agent_workstation.aw.plugins.module_utils.aw_power import (
    PowerInputError,
    gpu_limits_from_gpus,
    plan_power,
)
from ansible_collections.agent_workstation.aw.plugins.module_utils.aw_result import (
    exit_with_verdict,
)


def main():
    module = AnsibleModule(
        argument_spec={
            "psu_watts": {"type": "float", "required": True},
            "psu_efficiency_rating": {
                "type": "str",
                "default": "gold",
                "choices": ["none", "white", "bronze", "silver", "gold", "platinum", "titanium"],
            },
            "gpu_power_limits_w": {"type": "list", "elements": "float"},
            "gpus": {"type": "list", "elements": "dict"},
            "cpu_tdp_w": {"type": "float", "default": 0},
            "other_w": {"type": "float", "default": 0},
            "transient_factor": {"type": "float", "default": 1.4},
            "sustained_load_fraction": {"type": "float", "default": 0.8},
            "transient_tolerance": {"type": "float", "default": 1.0},
            "fail_on_overload": {"type": "bool", "default": True},
        },
        required_one_of=[["gpu_power_limits_w", "gpus"]],
        mutually_exclusive=[["gpu_power_limits_w", "gpus"]],
        supports_check_mode=True,
    )
    p = module.params
    try:
        limits = p["gpu_power_limits_w"]
        if limits is None:
            limits = gpu_limits_from_gpus(p["gpus"])
        budget = plan_power(
            p["psu_watts"],
            limits,
            psu_efficiency_rating=p["psu_efficiency_rating"],
            cpu_tdp_w=p["cpu_tdp_w"],
            other_w=p["other_w"],
            transient_factor=p["transient_factor"],
            sustained_load_fraction=p["sustained_load_fraction"],
            transient_tolerance=p["transient_tolerance"],
        )
    except PowerInputError as exc:
        module.fail_json(msg=str(exc))
    exit_with_verdict(module, budget.as_dict(), budget.ok, p["fail_on_overload"])


if __name__ == "__main__":
    main()
