"""ansible-playbook on localhost for the unit tests that render a role's templates."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

# roles/agent_stack's resolved image references (_agent_stack_refs) for a template rendered
# without the pull tasks: one placeholder per image key of images.yml.
_STACK_IMAGE_KEYS = [
    "vllm",
    "openhands",
    "openhands_agent_server",
    "open_webui",
    "qdrant",
    "tei",
    "redis",
]
STACK_IMAGE_REFS = {
    key: {"ref": f"example/{key}:1", "pull": "missing", "tag": "1", "repository": f"example/{key}"}
    for key in [*_STACK_IMAGE_KEYS, "socket_proxy"]
}


def run_local_playbook(playbook: Path, extra: dict, cwd: Path) -> None:
    """ansible-playbook PLAYBOOK on localhost (connection local) with EXTRA as -e JSON, reading
    CWD/ansible.cfg; fails the test with Ansible's output when the run fails."""
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_CONFIG=str(cwd / "ansible.cfg"))
    res = subprocess.run(
        [
            str(Path(sys.executable).with_name("ansible-playbook")),
            "-i",
            "localhost,",
            "-c",
            "local",
            str(playbook),
            "-e",
            json.dumps(extra),
            "-e",
            "ansible_python_interpreter=" + sys.executable,
        ],
        check=False,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stdout + res.stderr
