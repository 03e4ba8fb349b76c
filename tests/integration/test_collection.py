"""The repository as the collection agent_workstation.aw (galaxy.yml, README "As a collection"):
built by ansible-galaxy, installed into an empty directory, and used from outside the checkout
with no ansible.cfg of ours, so only the installed archive can answer."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from conftest import BIN, ROOT

GALAXY = shutil.which("ansible-galaxy", path=str(BIN)) or "ansible-galaxy"
ANSIBLE = shutil.which("ansible", path=str(BIN)) or "ansible"
PLAYBOOK = shutil.which("ansible-playbook", path=str(BIN)) or "ansible-playbook"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    work = tmp_path_factory.mktemp("collection")

    def galaxy(*args: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [GALAXY, "collection", *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
            cwd=work,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc

    galaxy("build", str(ROOT), "--output-path", str(work))
    (archive,) = work.glob("agent_workstation-aw-*.tar.gz")
    target = work / "installed"
    install = galaxy("install", "--no-deps", "--force", "-p", str(target), str(archive))
    # --force: ansible-galaxy says "Nothing to do" and installs nothing when a copy exists in a
    # default path (ansible-lint puts one in ~/.ansible/collections); the copy must be HERE.
    assert (target / "ansible_collections/agent_workstation/aw/MANIFEST.json").is_file(), (
        install.stdout
    )
    return archive, target


def _env(target: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    empty = target.parent / "ansible.cfg"  # none of this repository's settings
    empty.write_text("[defaults]\n", encoding="utf-8")
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(target),
        ANSIBLE_CONFIG=str(empty),
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        ANSIBLE_NOCOLOR="1",
    )
    return env


def test_the_archive_holds_the_collection_not_the_tests(installed):
    archive, _ = installed
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    for wanted in (
        "galaxy.yml" if "galaxy.yml" in names else "MANIFEST.json",
        "meta/runtime.yml",
        "plugins/modules/vllm_ready.py",
        "plugins/module_utils/aw_vllm.py",
        "plugins/filter/aw_packages.py",
        "roles/agent_stack/tasks/main.yml",
        "playbooks/stack.yml",
    ):
        assert wanted in names, wanted
    for unwanted in ("tests/", "molecule/", "roles/base/molecule/", "collections/", ".venv/"):
        assert not any(n.startswith(unwanted) for n in names), unwanted


def test_a_module_runs_from_the_installed_collection(installed, tmp_path):
    """psu_budget imports its module_utils by the collection's path: this fails when an import
    still names ansible.module_utils.aw_* (only a checkout's old ansible.cfg could serve that)."""
    _, target = installed
    args = {"gpu_power_limits_w": [450], "psu_watts": 1000, "cpu_tdp_w": 125}
    proc = subprocess.run(
        [
            *(ANSIBLE, "localhost", "-i", "localhost,", "-c", "local"),
            *("-m", "agent_workstation.aw.psu_budget", "-a", json.dumps(args)),
        ],
        capture_output=True,
        text=True,
        check=False,
        env=_env(target),
        cwd=tmp_path,
        timeout=120,
    )
    out = json.loads(proc.stdout)
    result = out["plays"][0]["tasks"][0]["hosts"]["localhost"]
    assert proc.returncode == 0, result
    assert result["ok"] is True
    assert result["peak_w"] > 450


def test_a_filter_and_a_role_resolve_from_the_installed_collection(installed, tmp_path):
    _, target = installed
    play = tmp_path / "play.yml"
    play.write_text(
        """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: A filter by its full name
      ansible.builtin.debug:
        msg: "{{ ['ii  bash'] | agent_workstation.aw.aw_missing_packages(['bash', 'aw-none']) }}"
    - name: A role's entry point by its full name
      ansible.builtin.include_role:
        name: agent_workstation.aw.workstation
        tasks_from: facts
      vars:
        workstation_facts_user: root
    - ansible.builtin.debug:
        var: workstation_user_facts
""",
        encoding="utf-8",
    )
    proc = subprocess.run(
        [PLAYBOOK, "-i", "localhost,", "-c", "local", str(play)],
        capture_output=True,
        text=True,
        check=False,
        env=_env(target),
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    tasks = json.loads(proc.stdout)["plays"][0]["tasks"]
    assert tasks[0]["hosts"]["localhost"]["msg"] == ["aw-none"]
    facts = tasks[-1]["hosts"]["localhost"]["workstation_user_facts"]
    assert (facts["exists"], facts["uid"]) == (True, "0")


def test_site_syntax_resolves_every_full_name_from_a_checkout():
    """site.yml through the checkout's ansible.cfg (collections/ link): every module and role
    it names resolves; a short module name left behind fails here."""
    proc = subprocess.run(
        [PLAYBOOK, "--syntax-check", "site.yml", "-i", "inventories/workstation"],
        capture_output=True,
        text=True,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")},
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
