#!/usr/bin/python
# Copyright: agent-workstation contributors
# SPDX-License-Identifier: Apache-2.0 (see LICENSE at the repository root)

DOCUMENTATION = r"""
module: vllm_profile_command
short_description: The vLLM serve command of a model profile, from the running one
description:
  - Rewrites the running vLLM container's command (C(serve MODEL --flag ...), as
    roles/agent_stack renders it) for a model profile's settings (vram_plan RETURN C(settings)).
    The model, revisions, served names, sizing, tensor parallel, quantization and tool-call parser
    are replaced; every other argument is kept. Pure, it reads and changes nothing on the host.
  - Used by playbooks/upgrade-model.yml; the logic lives in module_utils/aw_profile.py.
options:
  command:
    description: The running container's command (C(docker inspect) Config.Cmd).
    type: list
    elements: str
    required: true
  settings:
    description: The profile's settings (vram_plan RETURN C(settings)).
    type: dict
    required: true
  profiles:
    description: The catalogue (aw_model_profiles), to name the profile the running command serves.
    type: dict
    default: {}
attributes:
  check_mode:
    support: full
    description: Computes only.
  diff_mode:
    support: full
    description: Returns the old and the new command as the diff.
"""

EXAMPLES = r"""
- name: Work out the new vLLM command
  vllm_profile_command:
    command: "{{ (__inspect.stdout | from_json).Config.Cmd }}"
    settings: "{{ __aw_vram.settings }}"
    profiles: "{{ aw_model_profiles }}"
  register: __cmd
"""

RETURN = r"""
command:
  description: The new command.
  returned: success
  type: list
  elements: str
differs:
  description: Whether the new command differs from the running one.
  returned: success
  type: bool
running_profile:
  description: The catalogue profile whose model and revision the running command serves, or null.
  returned: success
  type: str
running_served_model_names:
  description: The running command's served names.
  returned: success
  type: list
  elements: str
removed:
  description: Arguments only in the running command.
  returned: success
  type: list
  elements: str
added:
  description: Arguments only in the new command.
  returned: success
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.agent_workstation.aw.plugins.module_utils.aw_profile import (
    ProfileCommandError,
    command_diff,
    profile_of,
    serve_command,
    served_names,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "command": {"type": "list", "elements": "str", "required": True},
            "settings": {"type": "dict", "required": True},
            "profiles": {"type": "dict", "default": {}},
        },
        supports_check_mode=True,
    )
    running = list(module.params["command"])
    try:
        new = serve_command(running, module.params["settings"])
        running_profile = profile_of(running, module.params["profiles"])
        running_names = served_names(running)
    except ProfileCommandError as exc:
        module.fail_json(msg=f"command: {exc}")
    except KeyError as exc:
        module.fail_json(msg=f"settings lacks {exc}; pass vram_plan's RETURN settings.")
    diff = command_diff(running, new)
    module.exit_json(
        changed=False,
        command=new,
        differs=new != running,
        running_profile=running_profile,
        running_served_model_names=running_names,
        diff={"before": "\n".join(running) + "\n", "after": "\n".join(new) + "\n"},
        **diff,
    )


if __name__ == "__main__":
    main()
