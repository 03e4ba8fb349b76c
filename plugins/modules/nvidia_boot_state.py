#!/usr/bin/python
# Copyright: agent-workstation contributors
# SPDX-License-Identifier: Apache-2.0 (see LICENSE at the repository root)

DOCUMENTATION = r"""
---
module: nvidia_boot_state
short_description: Read Secure Boot and the DKMS build state of the NVIDIA module before a reboot
description:
  - Runs C(mokutil --sb-state) (when mokutil is installed; no EFI reads as unsupported) and
    C(dkms status) and lists the kernels installed under O(modules_dir).
  - Reports for which of the running kernel and the newest installed kernel the module
    O(module)/O(version) is not built and installed by DKMS. A reboot into a kernel without
    the module comes back without a GPU.
  - Reads only; changes nothing. Parsing lives in module_utils/aw_apt.py.
version_added: "0.1.0"
author: agent-workstation contributors
options:
  module:
    description:
      - Regular expression of the DKMS module name.
      - Debian C(nvidia-current), C(nvidia-current-open); NVIDIA and Ubuntu C(nvidia).
    type: str
    default: "nvidia(-current)?(-open)?"
  version:
    description: The module version DKMS must have built (the driver's upstream version).
    type: str
    required: true
  mokutil:
    description: The mokutil command (a recorded stand-in in tests).
    type: str
    default: mokutil
  dkms:
    description: The dkms command (a recorded stand-in in tests).
    type: str
    default: dkms
  modules_dir:
    description: Where the installed kernels' module trees are.
    type: path
    default: /lib/modules
  running_kernel:
    description: The running kernel release (C(ansible_facts.kernel)).
    type: str
    required: true
  mok_key:
    description:
      - The DKMS signing certificate.
      - Its enrolment is checked with C(mokutil --test-key) when Secure Boot is on.
    type: path
    default: /var/lib/dkms/mok.pub
attributes:
  check_mode:
    support: full
    description: Read-only.
  diff_mode:
    support: none
    description: Changes nothing.
"""

EXAMPLES = r"""
- name: Read Secure Boot and DKMS
  nvidia_boot_state:
    version: 550.163.01
    running_kernel: "{{ ansible_facts['kernel'] }}"
  register: __boot
"""

RETURN = r"""
secure_boot:
  description:
    - C(enabled), C(disabled), C(unsupported) (no EFI or no Secure Boot) or C(unknown) (no mokutil).
  returned: always
  type: str
dkms:
  description: C(dkms status) entries (module, version, kernel, arch, state); [] without dkms.
  returned: always
  type: list
  elements: dict
dkms_present:
  description: Whether the dkms command exists.
  returned: always
  type: bool
kernels:
  description: The installed kernels (entries of O(modules_dir) with modules.dep, build or kernel).
  returned: always
  type: list
  elements: str
newest_kernel:
  description: The newest installed kernel.
  returned: always
  type: str
mok_key_present:
  description: Whether O(mok_key) exists.
  returned: always
  type: bool
mok_enrolled:
  description: Whether O(mok_key) is enrolled (C(mokutil --test-key)); null when not checked.
  returned: always
  type: bool
missing_kernels:
  description: Of the running and the newest kernel, those without the module installed by DKMS.
  returned: always
  type: list
  elements: str
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.agent_workstation.aw.plugins.module_utils.aw_apt import (
    AptInputError,
    dkms_missing_kernels,
    newest_kernel,
    parse_dkms_status,
    parse_sb_state,
    parse_test_key,
)


def _kernels(modules_dir):
    try:
        names = sorted(os.listdir(modules_dir))
    except OSError:
        return []
    marks = ("modules.dep", "build", "kernel")
    return [n for n in names if any(os.path.exists(os.path.join(modules_dir, n, m)) for m in marks)]


def main():
    module = AnsibleModule(
        argument_spec={
            "module": {"type": "str", "default": "nvidia(-current)?(-open)?"},
            "version": {"type": "str", "required": True},
            "mokutil": {"type": "str", "default": "mokutil"},
            "dkms": {"type": "str", "default": "dkms"},
            "modules_dir": {"type": "path", "default": "/lib/modules"},
            "running_kernel": {"type": "str", "required": True},
            "mok_key": {"type": "path", "default": "/var/lib/dkms/mok.pub"},
        },
        supports_check_mode=True,
    )
    p = module.params
    env = {"LC_ALL": "C", "LANG": "C"}
    secure_boot = "unknown"
    mok_present = False
    mok_enrolled = None
    mokutil = module.get_bin_path(p["mokutil"]) if not os.path.isabs(p["mokutil"]) else p["mokutil"]
    try:
        if mokutil and os.path.exists(mokutil):
            _, out, err = module.run_command([mokutil, "--sb-state"], environ_update=env)
            secure_boot = parse_sb_state(out + err)
        mok_present = os.path.exists(p["mok_key"])
        if secure_boot == "enabled" and mok_present:
            _, out, err = module.run_command(
                [mokutil, "--test-key", p["mok_key"]], environ_update=env
            )
            mok_enrolled = parse_test_key(out + err)
        dkms = module.get_bin_path(p["dkms"]) if not os.path.isabs(p["dkms"]) else p["dkms"]
        entries = []
        if dkms and os.path.exists(dkms):
            rc, out, err = module.run_command([dkms, "status"], environ_update=env)
            if rc != 0:
                module.fail_json(msg=f"dkms status failed (rc {rc}): {err.strip()}")
            entries = parse_dkms_status(out)
    except AptInputError as exc:
        module.fail_json(msg=str(exc))
    kernels = _kernels(p["modules_dir"])
    newest = newest_kernel([*kernels, p["running_kernel"]])
    wanted = sorted({p["running_kernel"], newest} - {None})
    missing = dkms_missing_kernels(entries, p["module"], p["version"], wanted)
    module.exit_json(
        changed=False,
        secure_boot=secure_boot,
        dkms=[e.__dict__ for e in entries],
        dkms_present=bool(dkms and os.path.exists(dkms)),
        kernels=kernels,
        newest_kernel=newest,
        missing_kernels=missing,
        mok_key_present=mok_present,
        mok_enrolled=mok_enrolled,
    )


if __name__ == "__main__":
    main()
