"""The upgrade playbooks roll over the fleet one worker at a time and stop at the first failure
(issue 17, "fleet operations").

Real ansible-playbook runs playbooks/upgrade-vllm.yml and upgrade-driver.yml over an inventory
of two workers (group llm_workers, both connection local on this machine, no become). The first
worker's input is bad, so its entry point refuses it before anything changes; the second one's
is bad too, so that if the roll went on it would fail the same harmless way. With the shipped
header (serial 1) the second worker must run no task at all. The control: the same run with both
workers in one batch (serial 2) reaches the second worker, so the first assertion depends on the
play's serial and not on something else stopping the run.
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

BAD = {
    # A malformed digest: roles/agent_stack's upgrade_vllm refuses it in its first check.
    "upgrade-vllm": {"vllm_new_image": "vllm/vllm-openai@sha256:1234abcd"},
    # No version: roles/nvidia_driver's upgrade refuses to guess.
    "upgrade-driver": {},
}


def _roll(tmp_path: Path, playbook: str, extra: dict) -> tuple[str, dict[str, int]]:
    host = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "upgrade_vllm_expected_models": ["qwen2.5-coder-32b-instruct"],
        "workstation_llm_fleet_address": "192.0.2.11",
    }
    inventory = {
        "all": {"vars": {"workstation_llm_source": "fleet"}},
        "workstation": {
            "hosts": {"w0": host, "w1": {**host, "workstation_llm_fleet_address": "192.0.2.12"}}
        },
        "llm_workers": {"hosts": {"w0": {}, "w1": {}}},
        "llm_router": {"hosts": {"w0": {}}},
    }
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "extra.yml").write_text(yaml.safe_dump({"ansible_become": False, **extra}))
    proc = subprocess.run(
        [
            *(PLAYBOOK, f"playbooks/{playbook}.yml", "-i", str(tmp_path / "hosts.yml")),
            *("-e", f"@{tmp_path / 'extra.yml'}"),
        ],
        cwd=ROOT,
        env=dict(os.environ, ANSIBLE_NOCOLOR="1"),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    # Tasks each host ran: the "ok:/failed:/skipping: [host]" result lines, counted.
    ran = {
        h: len(re.findall(rf"^(?:ok|changed|failed|fatal|skipping): \[{h}\]", out, re.M))
        for h in ("w0", "w1")
    }
    return out, ran


@pytest.mark.parametrize("playbook", sorted(BAD))
def test_the_roll_stops_before_the_next_worker(tmp_path, playbook):
    out, ran = _roll(tmp_path, playbook, BAD[playbook])
    assert ran["w0"] > 0, out[-3000:]
    assert ran["w1"] == 0, f"w1 ran {ran['w1']} task results after w0 failed:\n{out[-3000:]}"
    assert re.search(r"^w0\s+:\s+ok=\d+\s+changed=0\s+unreachable=0\s+failed=1", out, re.M), out[
        -2000:
    ]
    assert not re.search(r"^w1\s+:", out, re.M), out[-2000:]


@pytest.mark.parametrize("playbook", sorted(BAD))
def test_control_one_batch_reaches_both_workers(tmp_path, playbook):
    prefix = playbook.replace("-", "_")
    out, ran = _roll(tmp_path, playbook, {**BAD[playbook], f"{prefix}_serial": 2})
    assert ran["w0"] > 0 and ran["w1"] > 0, out[-3000:]
