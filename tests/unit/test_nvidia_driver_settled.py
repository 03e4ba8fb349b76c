"""roles/nvidia_driver: when a re-run may skip the list refresh and the version resolve.

`_nvidia_driver_settled_version` (vars/main.yml) is rendered by real Ansible from dpkg-query
rows as packages_read.yml registers them. Skipping is safe only when every versioned package
is installed at one version that matches the pin and no move was asked for; each other case
must resolve again (the empty string).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playbook_run import run_local_playbook

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ["nvidia-smi", "libcuda1"]


def _settled(tmp_path: Path, rows: list[str], **inventory: object) -> str:
    out = tmp_path / "settled.json"
    playbook = tmp_path / "settled.yml"
    playbook.write_text(
        f"""
- hosts: localhost
  gather_facts: false
  vars_files: [{ROOT}/roles/nvidia_driver/vars/main.yml]
  tasks:
    - ansible.builtin.copy:
        content: "{{{{ {{'v': _nvidia_driver_settled_version}} | to_json }}}}"
        dest: {out}
        mode: "0600"
"""
    )
    extra = {
        "nvidia_driver_packages": PACKAGES,
        "nvidia_driver_allow_upgrade": False,
        "nvidia_driver_version": "550.163.01-*",
        "__nvidia_driver_dpkg": {"stdout_lines": rows},
        **inventory,
    }
    run_local_playbook(playbook, extra, ROOT)
    return json.loads(out.read_text())["v"]


HELD = ["installed nvidia-smi 550.163.01-2 hold", "installed libcuda1 550.163.01-2 hold"]


def test_settled_at_the_pin(tmp_path: Path) -> None:
    rows = [*HELD, "installed bash 5.2.37-2 install", "config-files nvidia-smi 535.1-1 deinstall"]
    assert _settled(tmp_path, rows) == "550.163.01-2"


@pytest.mark.parametrize(
    ("rows", "inventory", "why"),
    [
        (HELD[:1], {}, "a versioned package is missing"),
        (
            [HELD[0], "installed libcuda1 550.163.02-1 hold"],
            {},
            "two versions installed",
        ),
        (HELD, {"nvidia_driver_version": "580.95.05-*"}, "the pin moved"),
        (HELD, {"nvidia_driver_version": "550.163.01-3"}, "an exact pin of another revision"),
        (HELD, {"nvidia_driver_allow_upgrade": True}, "a move was asked for"),
        (HELD, {"nvidia_driver_version": ""}, "no pin: the resolve keeps or picks"),
        (["half-installed nvidia-smi 550.163.01-2 hold", HELD[1]], {}, "not installed"),
    ],
)
def test_resolves_again(tmp_path: Path, rows: list[str], inventory: dict, why: str) -> None:
    assert _settled(tmp_path, rows, **inventory) == "", why
