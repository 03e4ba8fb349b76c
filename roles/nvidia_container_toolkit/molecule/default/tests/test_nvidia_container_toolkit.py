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
