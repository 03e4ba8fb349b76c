"""roles/workstation/tasks/facts.yml, the one place the service user is looked up and its Docker
endpoint derived, run by real Ansible on this machine (issue 10).

The users are real passwd entries of this machine: root (uid 0) and a name that does not exist
(the check stage of a first run, before roles/base has created the service user). The endpoint
precedence: a caller's own setting, then workstation_docker_host, then the rootless socket.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import yaml
from conftest import BIN, ROOT, ansible_env


def _run_facts(users: list[str], name: str, check: bool = False, **extra: str) -> list[dict]:
    """A play that includes facts.yml once per user, then prints workstation_user_facts; the
    json callback's task results."""
    play = [
        {
            "hosts": "localhost",
            "gather_facts": False,
            "roles": ["workstation"],
            "tasks": [
                {
                    "ansible.builtin.include_role": {"name": "workstation", "tasks_from": "facts"},
                    "vars": {"workstation_facts_user": user},
                }
                for user in users
            ]
            + [{"ansible.builtin.debug": {"var": "workstation_user_facts"}}],
        }
    ]
    playbook = ROOT / ".cache" / f"test-workstation-{name}.yml"
    playbook.parent.mkdir(exist_ok=True)
    playbook.write_text(yaml.safe_dump(play), encoding="utf-8")
    cmd = [shutil.which("ansible-playbook", path=str(BIN)) or "ansible-playbook"]
    cmd += ["-i", "localhost,", "-c", "local", str(playbook)]
    cmd += ["--check"] if check else []
    for var, value in extra.items():
        cmd += ["-e", json.dumps({var: value})]
    proc = subprocess.run(
        cmd,
        check=False,
        capture_output=True,
        text=True,
        env=ansible_env(
            ANSIBLE_ROLES_PATH=str(ROOT / "roles"), ANSIBLE_PYTHON_INTERPRETER=sys.executable
        ),
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    return json.loads(proc.stdout)["plays"][0]["tasks"]


def facts(user: str, check: bool = False, **extra: str) -> dict:
    tasks = _run_facts([user], "facts", check, **extra)
    return tasks[-1]["hosts"]["localhost"]["workstation_user_facts"]


@pytest.mark.parametrize("check", [False, True], ids=["run", "check"])
def test_an_existing_user_gets_its_runtime_dir_and_rootless_socket(check):
    got = facts("root", check=check)
    assert got["exists"] is True
    assert (got["uid"], got["gid"], got["home"]) == ("0", "0", "/root")
    assert got["runtime_dir"] == "/run/user/0"
    assert got["rootless_docker_host"] == got["docker_host"] == "unix:///run/user/0/docker.sock"


def test_a_missing_user_gives_empty_values_not_a_failure():
    got = facts("aw-no-such-user", check=True)
    assert got["exists"] is False
    assert got["uid"] == got["runtime_dir"] == got["docker_host"] == ""


def test_the_endpoint_precedence():
    contract = facts("root", workstation_docker_host="unix:///var/run/docker.sock")
    assert contract["docker_host"] == "unix:///var/run/docker.sock"
    assert contract["rootless_docker_host"] == "unix:///run/user/0/docker.sock"
    own = facts(
        "root",
        workstation_docker_host="unix:///var/run/docker.sock",
        workstation_facts_docker_host="tcp://127.0.0.1:2375",
    )
    assert own["docker_host"] == "tcp://127.0.0.1:2375"


def test_the_lookup_is_reused_only_for_the_same_existing_user():
    """facts.yml asks getent once per user in a run (a site run includes it ~10 times); a second
    user, then the first again, each get their own facts, and the second include for the same
    user skips the lookup."""
    users = ["root", "nobody", "root", "root"]
    tasks = _run_facts(users, "facts-reuse")
    lookups = [t for t in tasks if t["task"]["name"] == "workstation : Look up the service user"]
    derived = [
        t
        for t in tasks
        if t["task"]["name"] == "workstation : Derive the service user's facts and Docker endpoint"
    ]
    skipped = [bool(t["hosts"]["localhost"].get("skipped")) for t in lookups]
    assert skipped == [False, False, False, True]
    uids = [
        t["hosts"]["localhost"]["ansible_facts"]["workstation_user_facts"]["uid"] for t in derived
    ]
    nobody = subprocess.run(["id", "-u", "nobody"], capture_output=True, text=True, check=True)
    assert uids == ["0", nobody.stdout.strip(), "0", "0"]
