"""Ubuntu 24.04 differences of the host roles, rendered with Ansible's own templating.

No Ubuntu image can be built on the test machines (only Debian's archive is reachable), so each
host role keeps its Ubuntu differences in vars/Ubuntu.yml. These tests load the role's defaults,
that file and vars/main.yml exactly as Ansible would (trusted templates), with the facts of an
Ubuntu 24.04 host, and render what the role would do there. Facts are written here by hand
(Ubuntu 24.04's documented values), not gathered from a real Ubuntu host.
"""

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template
from conftest import ROOT

UBUNTU_2404 = {
    "distribution": "Ubuntu",
    "distribution_release": "noble",
    "distribution_version": "24.04",
    "distribution_major_version": "24",
    "os_family": "Debian",
    "architecture": "x86_64",
    "kernel": "6.8.0-51-generic",
    "virtualization_role": "host",
    "virtualization_type": "kvm",
}
DEBIAN_13 = {
    **UBUNTU_2404,
    "distribution": "Debian",
    "distribution_release": "trixie",
    "distribution_version": "13.2",
    "distribution_major_version": "13",
    "kernel": "6.12.57+deb13-amd64",
}


def _role_vars(role, os_file, facts, **overrides):
    loader = DataLoader()
    merged = {}
    for rel in ("defaults/main.yml", f"vars/{os_file}", "vars/main.yml"):
        path = ROOT / "roles" / role / rel
        if path.exists():
            merged.update(loader.load_from_file(str(path), trusted_as_template=True) or {})
    merged.update(overrides)
    merged["ansible_facts"] = facts
    merged["ansible_connection"] = "ssh"
    return Templar(loader=loader, variables=merged)


def _render(templar, name):
    return templar.template(trust_as_template("{{ " + name + " }}"))


@pytest.mark.parametrize("role", ["nvidia_driver", "firewall", "docker_rootless", "tailscale"])
def test_ubuntu_file_overrides_only_what_debian_defines(role):
    loader = DataLoader()
    ubuntu = loader.load_from_file(str(ROOT / "roles" / role / "vars" / "Ubuntu.yml")) or {}
    debian = loader.load_from_file(str(ROOT / "roles" / role / "vars" / "Debian.yml")) or {}
    assert ubuntu, role
    assert set(ubuntu) == set(debian), (role, set(ubuntu) ^ set(debian))


def test_nvidia_driver_ubuntu_packages_and_headers():
    t = _role_vars(
        "nvidia_driver",
        "Ubuntu.yml",
        UBUNTU_2404,
        nvidia_driver_branch="570",
        nvidia_driver_version="570.133.07-0ubuntu0.24.04.1",
    )
    assert _render(t, "_nvidia_driver_source") == "ubuntu"
    # 570 >= 560: NVIDIA's default is the open kernel modules
    assert _render(t, "_nvidia_driver_versioned_packages") == ["nvidia-driver-570-open"]
    assert _render(t, "_nvidia_driver_unversioned_packages") == [
        "nvidia-modprobe",
        "linux-headers-generic",
        "linux-headers-6.8.0-51-generic",
    ]
    assert _render(t, "_nvidia_driver_mok") == "/var/lib/shim-signed/mok/MOK.der"
    assert "update-secureboot-policy" in _render(t, "_nvidia_driver_mok_steps")


def test_nvidia_driver_ubuntu_headless_server_proprietary():
    t = _role_vars(
        "nvidia_driver",
        "Ubuntu.yml",
        UBUNTU_2404,
        nvidia_driver_branch="535",
        nvidia_driver_version="535.230.02-0ubuntu0.24.04.3",
        nvidia_driver_flavour="headless",
        nvidia_driver_server=True,
    )
    assert _render(t, "_nvidia_driver_versioned_packages") == [
        "nvidia-headless-535-server",
        "nvidia-utils-535-server",
    ]


def test_nvidia_driver_cuda_key_per_release():
    ubuntu = _role_vars("nvidia_driver", "Ubuntu.yml", UBUNTU_2404, nvidia_driver_source="cuda")
    assert _render(ubuntu, "_nvidia_driver_cuda_distro") == "ubuntu2404"
    assert _render(ubuntu, "_nvidia_driver_cuda_key_url").endswith(
        "/repos/ubuntu2404/x86_64/3bf863cc.pub"
    )
    assert (
        _render(ubuntu, "_nvidia_driver_cuda_key_fingerprint")
        == "EB693B3035CD5710E231E123A4B469963BF863CC"
    )
    debian = _role_vars("nvidia_driver", "Debian.yml", DEBIAN_13, nvidia_driver_source="cuda")
    assert _render(debian, "_nvidia_driver_cuda_distro") == "debian13"
    assert _render(debian, "_nvidia_driver_cuda_key_url").endswith(
        "/repos/debian13/x86_64/8793F200.pub"
    )
    assert (
        _render(debian, "_nvidia_driver_cuda_key_fingerprint")
        == "02182E60104FCDC26EAE1B8597A5D4CB8793F200"
    )


def test_nvidia_driver_cuda_open_follows_branch():
    t = _role_vars(
        "nvidia_driver",
        "Debian.yml",
        DEBIAN_13,
        nvidia_driver_source="cuda",
        nvidia_driver_branch="580",
        nvidia_driver_version="580.95.05-1",
    )
    assert _render(t, "_nvidia_driver_versioned_packages") == ["nvidia-open"]
    t = _role_vars(
        "nvidia_driver",
        "Debian.yml",
        DEBIAN_13,
        nvidia_driver_source="cuda",
        nvidia_driver_branch="550",
        nvidia_driver_version="550.163.01-1",
    )
    assert _render(t, "_nvidia_driver_versioned_packages") == ["cuda-drivers-550"]


def test_nvidia_driver_debian_headers_meta():
    t = _role_vars("nvidia_driver", "Debian.yml", DEBIAN_13)
    assert _render(t, "_nvidia_driver_kernel_headers") == [
        "linux-headers-amd64",
        "linux-headers-6.12.57+deb13-amd64",
    ]
    # trixie's default branch (550) keeps the proprietary module
    assert "nvidia-kernel-dkms" in _render(t, "_nvidia_driver_versioned_packages")


def test_firewall_ubuntu_allows_socket_activated_sshd():
    t = _role_vars("firewall", "Ubuntu.yml", UBUNTU_2404, firewall_ssh_port=2222)
    assert _render(t, "_firewall_os_public_listeners") == ["systemd:2222"]
    d = _role_vars("firewall", "Debian.yml", DEBIAN_13)
    assert _render(d, "_firewall_os_public_listeners") == []
