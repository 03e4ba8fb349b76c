"""Testinfra checks for roles/base, run by Molecule against the converged container."""

import json

import pytest

SERVICE_USER = "agent"
DATA_DIR = "/srv/agent-workstation"


@pytest.mark.parametrize(
    "name",
    ["acl", "curl", "jq", "unattended-upgrades", "less", "python3-debian", "systemd-timesyncd"],
)
def test_packages_installed(host, name):
    assert host.package(name).is_installed


def test_service_user(host):
    user = host.user(SERVICE_USER)
    assert user.exists
    assert user.home == "/home/agent"
    assert user.shell == "/bin/bash"
    assert "users" in user.groups
    # A normal user, not a system one: rootless Docker needs its subordinate ids.
    assert user.uid >= 1000


@pytest.mark.parametrize(
    ("path", "mode"),
    [
        (DATA_DIR, 0o755),
        (f"{DATA_DIR}/compose", 0o755),
        (f"{DATA_DIR}/backups", 0o700),
        (f"{DATA_DIR}/state", 0o700),
        (f"{DATA_DIR}/secrets", 0o700),
    ],
)
def test_data_directories(host, path, mode):
    directory = host.file(path)
    assert directory.is_directory
    assert directory.user == SERVICE_USER
    assert directory.mode == mode


def test_journald_caps_are_loaded(host):
    conf = host.file("/etc/systemd/journald.conf.d/50-agent-workstation.conf")
    assert conf.contains("^SystemMaxFileSize=10M$")
    assert conf.contains("^SystemMaxFiles=3$")
    # journald itself must accept the drop-in: systemd-analyze reports unknown keys.
    out = host.run("systemd-analyze cat-config systemd/journald.conf")
    assert out.rc == 0
    assert "SystemMaxFileSize=10M" in out.stdout
    assert host.service("systemd-journald").is_running


def test_docker_log_caps(host):
    daemon = json.loads(host.file("/etc/docker/daemon.json").content_string)
    assert daemon == {"log-driver": "json-file", "log-opts": {"max-size": "10m", "max-file": "3"}}


def test_timesyncd_configured_and_enabled(host):
    assert host.file("/etc/systemd/timesyncd.conf.d/50-agent-workstation.conf").contains(
        "^NTP=ntp.example.invalid$"
    )
    assert host.service("systemd-timesyncd").is_enabled


def test_unattended_upgrades_blacklist_reaches_apt(host):
    # Ask apt itself, so a syntax error in the drop-in or a lost list item fails the test.
    out = host.check_output("apt-config dump Unattended-Upgrade::Package-Blacklist")
    for pattern in ("nvidia-", "libnvidia-", "cuda-", "libcuda"):
        assert f'"{pattern}"' in out
    periodic = host.check_output("apt-config dump APT::Periodic::Unattended-Upgrade")
    assert '"1"' in periodic
    reboot = host.check_output("apt-config dump Unattended-Upgrade::Automatic-Reboot")
    assert '"false"' in reboot


def test_system_is_running(host):
    # systemd as PID 1 must be healthy after the role: nothing it started failed.
    state = host.run("systemctl is-system-running").stdout.strip()
    assert state == "running", host.run("systemctl --failed --no-legend").stdout


def test_deb822_repository_can_import_python_debian(host):
    # ansible.builtin.deb822_repository imports debian.deb822 on the managed host
    cmd = host.run("python3 -c 'import debian.deb822'")
    assert cmd.rc == 0, cmd.stderr
