"""The operations' entry points refuse bad input before they touch anything.

playbooks/upgrade-vllm.yml, restore.yml and upgrade-driver.yml are thin plays around
include_role tasks_from (roles/agent_stack upgrade_vllm, roles/maintenance restore,
roles/nvidia_driver upgrade). Each row runs the playbook as an operator does, against this
machine (connection local, no become), with one bad value: the run must fail at the entry
point's argument-spec validation or its first assert, name the variable, and report changed=0
with no task after the refusal (no Docker, no service user and no GPU are needed to get there,
which is the point: nothing that could change was reached). The real runs of these playbooks
against Docker are molecule/operations.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")

pytestmark = pytest.mark.slow

GOOD_DIGEST = "vllm/vllm-openai@sha256:" + "0" * 64

# (id, playbook, extra vars, what the output must say, the task that must be the last one run)
ROWS = [
    (
        "upgrade-vllm-malformed-digest",
        "upgrade-vllm.yml",
        {"vllm_new_image": "vllm/vllm-openai@sha256:1234abcd"},
        ["vllm_new_image='vllm/vllm-openai@sha256:1234abcd'", "repository@sha256"],
        "Check the new image before anything changes",
    ),
    (
        "upgrade-vllm-timeout-not-a-number",
        "upgrade-vllm.yml",
        {"vllm_new_image": GOOD_DIGEST, "upgrade_vllm_ready_timeout": "soon"},
        ["upgrade_vllm_ready_timeout", "unable to convert to int"],
        "Validating arguments against arg spec 'upgrade_vllm'",
    ),
    (
        "upgrade-vllm-compose-files-not-a-list",
        "upgrade-vllm.yml",
        {"vllm_new_image": GOOD_DIGEST, "upgrade_vllm_compose_files": {"a": 1}},
        ["upgrade_vllm_compose_files", "list"],
        "Validating arguments against arg spec 'upgrade_vllm'",
    ),
    (
        "restore-no-backup-named",
        "restore.yml",
        {},
        ["restore_backup='(unset)'", "-e restore_backup=NAME"],
        "Refuse to guess which backup",
    ),
    (
        "restore-backup-not-a-timestamp",
        "restore.yml",
        {"restore_backup": "latest"},
        ["restore_backup='latest'"],
        "Refuse to guess which backup",
    ),
    (
        "restore-service-kind-unknown",
        "restore.yml",
        {
            "restore_backup": "20250101T023000Z",
            "restore_services": [{"name": "x", "kind": "podman"}],
        },
        ["kind must be one of: compose, systemd", "podman"],
        "Validating arguments against arg spec 'restore'",
    ),
    (
        "upgrade-driver-no-version",
        "upgrade-driver.yml",
        {},
        ["nvidia_driver_version='(unset)'"],
        "Check the requested version before anything changes",
    ),
    (
        "upgrade-driver-version-off-branch",
        "upgrade-driver.yml",
        {"nvidia_driver_branch": "570", "nvidia_driver_version": "535.261.03-1"},
        ["nvidia_driver_version='535.261.03-1'", "nvidia_driver_branch='570'"],
        "Check the requested version before anything changes",
    ),
    (
        "upgrade-driver-skip-check-not-a-bool",
        "upgrade-driver.yml",
        {"nvidia_driver_version": "570.133.20-1", "upgrade_driver_skip_image_check": "maybe"},
        ["upgrade_driver_skip_image_check", "bool"],
        "Validating arguments against arg spec 'upgrade'",
    ),
] + [
    (
        f"{playbook}-external-tier",
        f"{playbook}.yml",
        {"workstation_llm_source": "external", "workstation_llm_base_url": "http://192.0.2.2:8000"},
        [f"{playbook}: localhost runs no vLLM of this project", "workstation_llm_source=external"],
        "Refuse a host that runs no vLLM of this project",
    )
    # The external tier has no vLLM here: each operation on the model server refuses first
    # (playbooks/tasks/serves-here.yml), before it asks a GPU or Docker anything.
    for playbook in ("upgrade-vllm", "upgrade-model", "upgrade-driver")
]


def _run(tmp_path: Path, playbook: str, extra: dict) -> subprocess.CompletedProcess:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        yaml.safe_dump(
            {
                "workstation": {
                    "hosts": {
                        "localhost": {
                            "ansible_connection": "local",
                            "ansible_python_interpreter": sys.executable,
                            # The served names are given, so no GPU plan runs first.
                            "upgrade_vllm_expected_models": ["qwen2.5-coder-32b-instruct"],
                        }
                    }
                }
            }
        )
    )
    extra_file = tmp_path / "extra.yml"
    extra_file.write_text(yaml.safe_dump({"ansible_become": False, **extra}))
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_CALLBACK_RESULT_FORMAT="json")
    return subprocess.run(
        [PLAYBOOK, f"playbooks/{playbook}", "-i", str(inventory), "-e", f"@{extra_file}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


@pytest.mark.parametrize("row", ROWS, ids=[row[0] for row in ROWS])
def test_operation_refuses_before_anything_changes(tmp_path, row):
    row_id, playbook, extra, expect, last_task = row
    proc = _run(tmp_path, playbook, extra)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, f"{row_id}: the run passed:\n{out[-3000:]}"
    assert "Traceback" not in out, out[-3000:]
    for text in expect:
        assert text in out, f"{row_id}: {text!r} not in the output:\n{out[-3000:]}"
    recap = re.search(r"localhost\s+:\s+ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=1", out)
    assert recap, out[-3000:]
    assert recap.group(1) == "0"
    # The refusal is the last task: nothing after it (the compose, restore or driver tasks) ran.
    tasks = re.findall(r"^TASK \[(?:[a-z_]+ : )?(.*?)\] \**$", proc.stdout, re.M)
    assert tasks and tasks[-1].startswith(last_task), tasks[-5:]
