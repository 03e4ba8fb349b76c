"""playbooks/preflight.yml through ansible-playbook, with a fake nvidia-smi printing recorded
captures and a fake sysfs PCI tree: the report and the stop decision for each kind of machine."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SMI = ROOT / "tests" / "fixtures" / "nvidia-smi"
FAKE = ROOT / "tests" / "fakes" / "nvidia-smi"

pytestmark = pytest.mark.slow


def _preflight(tmp_path, *extra, **env):
    run_env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="false")
    run_env["ANSIBLE_CACHE_PLUGIN_CONNECTION"] = str(tmp_path / "facts")
    run_env.update({k: str(v) for k, v in env.items()})
    return subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "playbooks/preflight.yml", *extra],
        cwd=ROOT,
        env=run_env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _sysfs(tmp_path, with_gpu):
    root = tmp_path / "pci"
    devices = [("0000:00:00.0", "0x8086", "0x060000")]
    if with_gpu:
        devices.append(("0000:01:00.0", "0x10de", "0x030000"))
    for slot, vendor, pci_class in devices:
        (root / slot).mkdir(parents=True)
        (root / slot / "vendor").write_text(vendor)
        (root / slot / "class").write_text(pci_class)
    return root


def test_a_4090_with_its_driver_passes(tmp_path):
    # The capture's driver is 570.133.07; the shipped inventory pins branch 580.
    run = _preflight(
        tmp_path,
        "-e",
        f"preflight_nvidia_smi={FAKE}",
        "-e",
        "preflight_expected_driver_branch=570",
        FAKE_NVIDIA_SMI_XML=SMI / "rtx-4090-570-v12.handmade.xml",
    )
    assert run.returncode == 0, run.stdout[-3000:]
    assert "RESULT: all checks passed." in run.stdout
    assert "changed=0" in run.stdout


def test_a_gpu_without_its_driver_lets_the_host_stage_install_it(tmp_path):
    run = _preflight(
        tmp_path,
        "-e",
        "preflight_nvidia_smi=nvidia-smi-not-installed",
        "-e",
        f"preflight_sysfs_pci_path={_sysfs(tmp_path, with_gpu=True)}",
    )
    assert run.returncode == 0, run.stdout[-3000:]
    assert "no working driver yet" in run.stdout
    assert "RESULT: all checks passed." in run.stdout


def test_no_gpu_at_all_stops_with_the_reason_last(tmp_path):
    run = _preflight(
        tmp_path,
        "-e",
        "preflight_nvidia_smi=nvidia-smi-not-installed",
        "-e",
        f"preflight_sysfs_pci_path={_sysfs(tmp_path, with_gpu=False)}",
    )
    assert run.returncode == 2, run.stdout[-3000:]
    assert "no NVIDIA GPU on its PCI bus" in run.stdout
    assert "changed=0" in run.stdout


def test_a_driver_other_than_the_pinned_branch_is_a_problem(tmp_path):
    run = _preflight(
        tmp_path,
        "-e",
        f"preflight_nvidia_smi={FAKE}",
        FAKE_NVIDIA_SMI_XML=SMI / "rtx-4090-570-v12.handmade.xml",
    )
    assert run.returncode == 2
    assert "does not match the pinned '580'" in run.stdout


def test_a_driver_too_old_for_the_vllm_image_is_a_problem(tmp_path):
    run = _preflight(
        tmp_path,
        "-e",
        f"preflight_nvidia_smi={FAKE}",
        "-e",
        "preflight_expected_driver_branch=535",
        FAKE_NVIDIA_SMI_XML=SMI / "rtx-3090-525-v12.xml",
    )
    assert run.returncode == 2
    assert "CUDA: " in run.stdout
    assert "12.8" in run.stdout
