"""nvidia_container_toolkit default scenario (with a locally built STAND-IN package)."""

import re


def _table(text, name):
    """The `key = value` lines of one [table] of a TOML file (the layout NVIDIA ships)."""
    m = re.search(rf"^\[{re.escape(name)}\]\n(.*?)(?=^\[|\Z)", text, re.M | re.S)
    assert m, f"[{name}] missing:\n{text}"
    return dict(
        (k.strip(), v.strip())
        for k, v in (
            line.split("=", 1)
            for line in m.group(1).splitlines()
            if "=" in line and not line.startswith("#")
        )
    )


def test_toolkit_installed_at_pinned_version(host):
    pkg = host.package("nvidia-container-toolkit")
    assert pkg.is_installed
    assert pkg.version == "1.17.8-1"


def test_system_config_no_cgroups_for_rootless(host):
    text = host.file("/etc/nvidia-container-runtime/config.toml").content_string
    cli = _table(text, "nvidia-container-cli")
    assert cli["no-cgroups"] == "true"
    # The rest of the shipped table is kept.
    assert cli["load-kmods"] == "true"
    assert text.count("[nvidia-container-cli]") == 1


def test_user_config_no_cgroups(host):
    f = host.file("/home/agent/.config/nvidia-container-runtime/config.toml")
    assert f.exists and f.user == "agent" and f.mode == 0o644
    assert _table(f.content_string, "nvidia-container-cli")["no-cgroups"] == "true"


def test_no_nvidia_repository_when_disabled(host):
    assert not host.file("/etc/apt/sources.list.d/nvidia-container-toolkit.sources").exists


def test_pinned_and_held_against_a_newer_offer(host):
    policy = host.check_output("apt-cache policy nvidia-container-toolkit")
    # the stand-in repository offers 1.18.0-1; the role's pin keeps 1.17.8-1 the candidate
    assert "1.18.0-1" in policy
    assert "Candidate: 1.17.8-1" in policy
    assert "nvidia-container-toolkit" in host.check_output("apt-mark showhold").split()
    sim = host.check_output("apt-get -s -o Debug::NoLocking=1 dist-upgrade")
    assert not re.search(r"^Inst nvidia-container-toolkit", sim, re.M), sim


def test_pin_file(host):
    pref = host.file("/etc/apt/preferences.d/agent-workstation-nvidia-container-toolkit.pref")
    assert pref.mode == 0o644
    assert "Pin: version 1.17.8-1" in pref.content_string
