#!/usr/bin/python
# Copyright: agent-workstation contributors
# SPDX-License-Identifier: Apache-2.0 (see LICENSE at the repository root)

DOCUMENTATION = r"""
---
module: cuda_compat
short_description: Say whether an NVIDIA driver can run an image that needs a CUDA version
description:
  - Uses NVIDIA's table of minimum Linux x86_64 driver versions per CUDA toolkit (CUDA
    Toolkit release notes; e.g. 12.4 needs 550.54.14, 12.8 needs 570.26, 13.0 needs
    580.65.06).
  - The required CUDA comes from O(required_cuda), or from the image's environment or labels
    (C(NVIDIA_REQUIRE_CUDA) such as C(cuda>=12.8 brand=...), else C(CUDA_VERSION)).
  - CUDA minor-version compatibility lets 12.x applications run on drivers >= 525.60.13 with
    limits (no features of newer drivers; PTX JIT of newer code fails). Images with kernels
    built for new GPUs often need the full-compat driver, so that is the default answer;
    O(allow_minor_version_compat) accepts the looser rule.
  - Pure computation; changes nothing.
version_added: "0.1.0"
author: agent-workstation contributors
options:
  driver_version:
    description: The installed driver, e.g. RV(nvidia_gpu#module:driver_version).
    type: str
    required: true
  required_cuda:
    description: CUDA version the image needs (C(12.8) or C(12.8.1)).
    type: str
  image_env:
    description: The image's environment or labels, as a dict or a list of C(KEY=VALUE).
    type: raw
  allow_minor_version_compat:
    description: Accept drivers that only meet CUDA minor-version compatibility.
    type: bool
    default: false
  fail_on_incompatible:
    description: When false, an incompatible driver returns RV(compatible)=false without failing.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: Pure computation.
  diff_mode:
    support: none
    description: Changes nothing.
"""

EXAMPLES = r"""
- name: Can the 550 driver run a vLLM image built on CUDA 12.8?
  cuda_compat:
    driver_version: 550.163.01
    required_cuda: "12.8"
    fail_on_incompatible: false
  register: __cuda

- name: From the image's env
  cuda_compat:
    driver_version: "{{ __gpu.driver_version }}"
    image_env:
      - CUDA_VERSION=12.8.1
      - NVIDIA_REQUIRE_CUDA=cuda>=12.8 brand=tesla,driver>=470,driver<471
"""

RETURN = r"""
compatible:
  description: Whether the driver can run the image.
  returned: always
  type: bool
required_cuda:
  description: The CUDA major.minor the image needs.
  returned: always
  type: str
  sample: "12.8"
driver_cuda:
  description: Highest CUDA version in the table the driver fully supports.
  returned: always
  type: str
  sample: "12.4"
min_driver_version:
  description: Minimum driver for full support of RV(required_cuda).
  returned: always
  type: str
  sample: "570.26"
min_branch:
  description: The driver branch of RV(min_driver_version).
  returned: always
  type: str
  sample: "570"
minor_version_compatible:
  description: Whether the driver meets CUDA minor-version compatibility for that major.
  returned: always
  type: bool
msg:
  description: Verdict with the fix when incompatible.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.agent_workstation.aw.plugins.module_utils.aw_cuda import (
    CudaInputError,
    evaluate,
    required_cuda_from_env,
)
from ansible_collections.agent_workstation.aw.plugins.module_utils.aw_result import (
    exit_with_verdict,
)


def main():
    module = AnsibleModule(
        argument_spec={
            "driver_version": {"type": "str", "required": True},
            "required_cuda": {"type": "str"},
            "image_env": {"type": "raw"},
            "allow_minor_version_compat": {"type": "bool", "default": False},
            "fail_on_incompatible": {"type": "bool", "default": True},
        },
        required_one_of=[["required_cuda", "image_env"]],
        supports_check_mode=True,
    )
    p = module.params
    required = p["required_cuda"]
    if not required:
        env = p["image_env"]
        if not isinstance(env, (dict, list)):
            module.fail_json(msg="image_env must be a dict or a list of KEY=VALUE strings.")
        required = required_cuda_from_env(env)
        if not required:
            module.fail_json(
                msg="image_env has neither NVIDIA_REQUIRE_CUDA (cuda>=X.Y) nor CUDA_VERSION; "
                "pass required_cuda."
            )
    try:
        verdict = evaluate(
            p["driver_version"],
            required,
            allow_minor_version_compat=p["allow_minor_version_compat"],
        )
    except CudaInputError as exc:
        module.fail_json(msg=str(exc))
    exit_with_verdict(module, verdict.as_dict(), verdict.compatible, p["fail_on_incompatible"])


if __name__ == "__main__":
    main()
