"""The main command's promise on a machine with no NVIDIA GPU (like CI): site.yml stops in its
check stage (which reports the preflight's GPU problems with every other one), within a
minute, changes nothing, and its last lines say what is missing.

This runs the real site.yml against this machine (ansible_connection local), with PATH cleared
of any nvidia-smi. It first runs in --check mode; the real run happens only if the check run
stopped in the preflight, so a broken preflight can never go on to change the test machine.
"""

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")

pytestmark = pytest.mark.slow


def _env_without_nvidia_smi(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    dirs = [d for d in env.get("PATH", "").split(os.pathsep) if d]
    env["PATH"] = os.pathsep.join(d for d in dirs if not (Path(d) / "nvidia-smi").exists())
    env["ANSIBLE_FORCE_COLOR"] = "false"
    env["ANSIBLE_NOCOLOR"] = "true"
    # A private fact cache, so this test neither reads nor leaves the operator's cache.
    env["ANSIBLE_CACHE_PLUGIN_CONNECTION"] = str(tmp_path / "facts")
    return env


def _run_site(tmp_path: Path, *extra: str) -> tuple[subprocess.CompletedProcess, float]:
    env = _env_without_nvidia_smi(tmp_path)
    assert shutil.which("nvidia-smi", path=env["PATH"]) is None
    start = time.monotonic()
    run = subprocess.run(
        [PLAYBOOK, "site.yml", "-i", "inventories/workstation", *extra],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return run, time.monotonic() - start


def _recap(stdout: str) -> dict[str, int]:
    match = re.search(r"localhost\s+:\s+(ok=.*)", stdout)
    assert match, stdout[-2000:]
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match.group(1))}


def _tasks_run(stdout: str) -> list[str]:
    return re.findall(r"^TASK \[(.+?)\]", stdout, flags=re.MULTILINE)


def _report_tail(stdout: str) -> str:
    # The last lines a person reads: the report and the failure, before the recap.
    return stdout[: stdout.rfind("PLAY RECAP")][-8000:]


def _assert_stopped_in_the_check_stage(stdout: str) -> None:
    """Nothing past the check stage ran: the host play never started, and the only role tasks
    are the roles' read-only preflight checks the check stage includes."""
    assert "PLAY [Prepare the host]" not in stdout, stdout[-3000:]
    start = stdout.find("PLAY [Check every input before anything changes]")
    assert start >= 0, stdout[-3000:]
    # roles/workstation (the contract: defaults and their argument check only) is the one role
    # every play loads; any other role task before the check stage is a change made too early.
    early = _tasks_run(stdout[:start])
    assert not [n for n in early if " : " in n and not n.startswith("workstation : ")], early


def test_site_stops_in_preflight_and_changes_nothing(tmp_path):
    check, _ = _run_site(tmp_path, "--check", "--diff")
    assert check.returncode != 0, "site.yml --check went on without a GPU"
    assert _recap(check.stdout)["changed"] == 0
    _assert_stopped_in_the_check_stage(check.stdout)

    run, seconds = _run_site(tmp_path)
    assert run.returncode != 0, run.stdout[-3000:]
    recap = _recap(run.stdout)
    assert recap["changed"] == 0, recap
    assert recap["failed"] == 1, recap
    _assert_stopped_in_the_check_stage(run.stdout)
    # How fast it stops is a benchmark (README "Benchmarks"), not a bound here: a timed assert
    # fails on a loaded machine without saying anything about the code.
    print(f"site.yml stopped in the check stage after {seconds:.1f}s")

    tail = _report_tail(run.stdout)
    assert "nvidia-smi" in tail
    assert "problem" in tail
    assert "RESULT:" in tail
