#!/usr/bin/python
# Copyright: agent-workstation contributors
# SPDX-License-Identifier: Apache-2.0 (see LICENSE at the repository root)

DOCUMENTATION = r"""
---
module: apt_version_resolve
short_description: Resolve the driver version to pin from what the configured apt sources offer
description:
  - Runs C(LC_ALL=C apt-cache policy PACKAGE) and reads the versions the configured sources
    really offer (the dpkg status entry alone is not an offer).
  - O(version) exact or a glob (C(550.163.01-*)) must be offered for O(branch); otherwise the
    module fails with the versions of the branch that are on offer (and the other branches).
  - O(version) null keeps the installed version of the branch when it is still on offer,
    else takes the newest offered version of the branch (dpkg ordering).
  - Reads only; changes nothing. Parsing lives in module_utils/aw_apt.py.
version_added: "0.1.0"
author: agent-workstation contributors
options:
  package:
    description: The package whose versions decide (C(nvidia-smi), C(cuda-drivers-580)).
    type: str
    required: true
  branch:
    description: The driver branch, three or four digits (C(550)).
    type: str
    required: true
  version:
    description: Exact package version or glob; null = installed, else newest of the branch.
    type: str
  variable:
    description: The inventory variable named in failure messages.
    type: str
    default: nvidia_driver_version
attributes:
  check_mode:
    support: full
    description: Read-only.
  diff_mode:
    support: none
    description: Changes nothing.
"""

EXAMPLES = r"""
- name: Resolve the 550 driver from Debian's non-free archive
  apt_version_resolve:
    package: nvidia-smi
    branch: "550"
    version: "550.163.01-*"
  register: __driver
"""

RETURN = r"""
version:
  description: The exact package version to pin.
  returned: success
  type: str
  sample: "550.163.01-2"
upstream_version:
  description: RV(version) without epoch and Debian revision (what nvidia-smi reports).
  returned: success
  type: str
  sample: "550.163.01"
offered:
  description: Versions of the branch on offer, newest first.
  returned: always
  type: list
  elements: str
installed:
  description: The installed version of O(package), or null.
  returned: always
  type: str
candidate:
  description: apt's candidate for O(package) (after every pin), or null.
  returned: always
  type: str
reason:
  description: Why RV(version) was chosen.
  returned: success
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.agent_workstation.aw.plugins.module_utils.aw_apt import (
    ResolveError,
    parse_policy,
    resolve_driver_version,
    upstream_version,
)


def main():
    module = AnsibleModule(
        argument_spec={
            "package": {"type": "str", "required": True},
            "branch": {"type": "str", "required": True},
            "version": {"type": "str"},
            "variable": {"type": "str", "default": "nvidia_driver_version"},
        },
        supports_check_mode=True,
    )
    p = module.params
    rc, out, err = module.run_command(
        ["apt-cache", "policy", p["package"]], environ_update={"LC_ALL": "C", "LANG": "C"}
    )
    if rc != 0:
        module.fail_json(msg=f"apt-cache policy {p['package']} failed (rc {rc}): {err.strip()}")
    policy = parse_policy(out).get(p["package"])
    offered = policy.versions if policy else []
    installed = policy.installed if policy else None
    base = {
        "changed": False,
        "installed": installed,
        "candidate": policy.candidate if policy else None,
    }
    try:
        res = resolve_driver_version(
            offered, p["branch"], p["version"], installed, package=p["package"]
        )
    except ResolveError as exc:
        module.fail_json(
            msg=f"{p['variable']}={p['version']!r}: {exc} Nothing was changed. Set {p['variable']} "
            "to one of the offered versions (or a glob such as '<upstream>-*'), or configure the "
            "source that carries the version you want.",
            offered=offered,
            **base,
        )
    module.exit_json(
        version=res.version,
        upstream_version=upstream_version(res.version),
        offered=res.offered,
        reason=res.reason,
        msg=f"{p['package']} {res.version}: {res.reason}",
        **base,
    )


if __name__ == "__main__":
    main()
