"""The nightly backup (roles/maintenance) saves the queue's results directory: its backup.json
template rendered by Ansible with the role's own defaults and vars, as the role renders it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
ROLE = REPO / "roles" / "maintenance"

PLAY = """
- hosts: localhost
  gather_facts: false
  vars_files:
    # The workstation contract every role depends on (roles/workstation), then the role's own.
    - {contract}/defaults/main.yml
    - {role}/defaults/main.yml
    - {role}/vars/main.yml
  vars:
    ansible_managed: test
    maintenance_state_dir: /var/lib/x
    _maintenance_docker_host: unix:///run/user/1000/docker.sock
  tasks:
    - ansible.builtin.copy:
        content: "{{{{ lookup('ansible.builtin.template', '{role}/templates/backup.json.j2') }}}}"
        dest: "{out}"
        mode: "0600"
"""


def render(tmp: Path, extra: dict[str, object]) -> list[dict[str, str]]:
    playbook = shutil.which("ansible-playbook", path=str(Path(sys.executable).parent))
    if playbook is None:
        pytest.fail("ansible-playbook is not in this venv. Fix: ./scripts/bootstrap.sh test")
    out = tmp / "backup.json"
    play = tmp / "play.yml"
    play.write_text(PLAY.format(contract=REPO / "roles" / "workstation", role=ROLE, out=out))
    (tmp / "extra.json").write_text(json.dumps(extra))
    done = subprocess.run(
        [
            playbook,
            "-i",
            "localhost,",
            "-c",
            "local",
            str(play),
            "-e",
            f"@{tmp / 'extra.json'}",
            "-e",
            f"ansible_python_interpreter={sys.executable}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    text = "".join(line for line in out.read_text().splitlines(True) if not line.startswith("#"))
    return list(json.loads(text)["paths"])


def test_the_backup_saves_the_queue_results_once_and_nothing_without_the_queue(
    tmp_path: Path,
) -> None:
    results = "/srv/agent-workstation/queue/results"
    assert render(tmp_path, {"agent_queue_results_dir": results}) == [
        {"name": "agent-queue-results", "path": results}
    ]
    listed = [{"name": "mine", "path": results}, {"name": "other", "path": "/srv/x"}]
    extra: dict[str, object] = {
        "agent_queue_results_dir": results,
        "maintenance_backup_paths": listed,
    }
    both = render(tmp_path, extra)
    assert both == listed  # already listed: not twice
    assert render(tmp_path, {}) == []  # no queue role in the inventory: nothing added
