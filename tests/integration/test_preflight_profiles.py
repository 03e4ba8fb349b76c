"""Model profiles through the real entry points: site.yml in --check mode stops in its preflight,
before any change, when the chosen profile leaves an enabled client without its context or
tool calls, and names the profile that would serve them; the preflight plans two equal GPUs
with tensor parallel. The GPUs are recorded nvidia-smi captures behind the fake nvidia-smi."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SMI = ROOT / "tests" / "fixtures" / "nvidia-smi"
FAKE = ROOT / "tests" / "fakes" / "nvidia-smi"
PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")

pytestmark = pytest.mark.slow
_BASE = [PLAYBOOK, "-i", "inventories/workstation"]


def _run(tmp_path, playbook, capture, *extra):
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="false")
    env["ANSIBLE_CACHE_PLUGIN_CONNECTION"] = str(tmp_path / "facts")
    env["FAKE_NVIDIA_SMI_XML"] = str(SMI / capture)
    return subprocess.run(
        [*_BASE, playbook, "-e", f"preflight_nvidia_smi={FAKE}", *extra],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _recap(stdout):
    match = re.search(r"localhost\s+:\s+(ok=.*)", stdout)
    assert match, stdout[-2000:]
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match.group(1))}


def test_site_refuses_the_seed_profile_on_a_24_gb_card_before_any_change(tmp_path):
    run = _run(
        tmp_path,
        "site.yml",
        "rtx-4090-570-v12.handmade.xml",
        "--check",
        "--diff",
        "-e",
        "preflight_expected_driver_branch=570",
        "-e",
        "preflight_model_profile=qwen2.5-coder-32b-instruct-awq",
    )
    assert run.returncode != 0, run.stdout[-3000:]
    recap = _recap(run.stdout)
    assert recap["changed"] == 0 and recap["failed"] == 1, recap
    # Stopped before any change: the host play never started; the only role tasks that ran are
    # the read-only preflight checks of the check stage (playbooks/check.yml), after the plan.
    assert "PLAY [Prepare the host]" not in run.stdout, run.stdout[-3000:]
    start = run.stdout.find("PLAY [Check every input before anything changes]")
    assert start >= 0, run.stdout[-3000:]
    ran = re.findall(r"^TASK \[(.+?)\]", run.stdout[:start], flags=re.MULTILINE)
    # roles/workstation (the contract: defaults and their argument check only) is the one role
    # every play loads; any other role task before the check stage is a change made too early.
    assert not [n for n in ran if " : " in n and not n.startswith("workstation : ")], ran
    tail = run.stdout[: run.stdout.rfind("PLAY RECAP")][-12000:]
    assert "RESULT:" in tail and "problem(s) before anything changes" in tail
    assert "MODEL: profile qwen2.5-coder-32b-instruct-awq on 1 x 24564 MiB" in tail
    assert "claude_agent_sdk: needs 47384 tokens of context" in tail
    assert "needs native tool calls" in tail
    assert "Fix: set preflight_model_profile: qwen3-coder-30b-a3b-instruct-awq" in tail


def test_preflight_plans_two_24_gb_gpus_with_tensor_parallel(tmp_path):
    run = _run(
        tmp_path,
        "playbooks/preflight.yml",
        "dual-a5000-590-v13.xml",
        "-e",
        "preflight_expected_driver_branch=590",
    )
    assert run.returncode == 0, run.stdout[-3000:]
    assert "RESULT: all checks passed." in run.stdout
    assert "MODEL: profile qwen3-coder-30b-a3b-instruct-fp8 on 2 x 24564 MiB" in run.stdout
    assert "--tensor-parallel-size=2" in run.stdout
    assert "--tool-call-parser=qwen3_coder" in run.stdout
    assert _recap(run.stdout)["changed"] == 0


def _report(stdout):
    """The preflight report's lines, as `Print the preflight report` printed them."""
    start = stdout.find("TASK [Print the preflight report]")
    assert start >= 0, stdout[-3000:]
    block = stdout[start:].split("TASK [", 2)[1]
    return re.findall(r'^        "(.*)",?$', block, flags=re.MULTILINE)


def test_the_fake_over_the_h200_capture_gives_the_report_the_real_h200_gave(tmp_path):
    """tests/device/recorded/preflight.txt is the preflight play over the REAL nvidia-smi of an
    H200 (tests/device/gpu-check.sh, 2026-12-04); h200-580-v13.xml is that machine's `-q -x`.
    Replayed through the fake, the same play must print the same report line for line, so the
    fake's path through the modules is the real one."""
    run = _run(tmp_path, "playbooks/preflight.yml", "h200-580-v13.xml")
    assert run.returncode != 0, run.stdout[-3000:]  # the 1000 W PSU cannot feed a 700 W card
    recorded = (ROOT / "tests" / "device" / "recorded" / "preflight.txt").read_text()
    assert _report(recorded), recorded
    assert _report(run.stdout) == _report(recorded)
    assert "Fix: cap each GPU at 521 W" in "\n".join(_report(run.stdout))
