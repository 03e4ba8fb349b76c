"""nvidia_driver default scenario: real Debian NVIDIA user-space packages, pinned and held."""

import re

PINNED = {"trixie": "550.163.01-2", "bookworm": "535.261.03-1"}


def _codename(host):
    return host.system_info.codename


def _nvidia_packages(host):
    out = host.check_output(
        "dpkg-query -W -f='${db:Status-Status} ${Package} ${Version} ${db:Status-Want}\\n'"
    )
    rows = [line.split() for line in out.splitlines()]
    return {
        r[1]: (r[2], r[3])
        for r in rows
        if r[0] == "installed" and re.match(r"(nvidia-|libnvidia-|libcuda|firmware-nvidia)", r[1])
    }


def test_user_space_installed_at_pinned_version(host):
    pinned = PINNED[_codename(host)]
    pkgs = _nvidia_packages(host)
    for name in ("nvidia-smi", "libnvidia-ml1", "nvidia-alternative"):
        assert name in pkgs, f"{name} not installed: {sorted(pkgs)}"
        assert pkgs[name][0] == pinned


def test_every_nvidia_package_held(host):
    pkgs = _nvidia_packages(host)
    assert len(pkgs) >= 3
    not_held = [n for n, (_, want) in pkgs.items() if want != "hold"]
    assert not_held == []
    holds = host.check_output("apt-mark showhold").split()
    assert "nvidia-smi" in holds and "libnvidia-ml1" in holds


def test_non_free_enabled_on_the_configured_mirror(host):
    sources = host.file("/etc/apt/sources.list").content_string
    codename = _codename(host)
    line = f"deb http://deb.debian.org/debian {codename} main contrib non-free non-free-firmware"
    assert line in sources.splitlines()


def test_apt_pin_prefers_pinned_version(host):
    pinned = PINNED[_codename(host)]
    policy = host.check_output("apt-cache policy nvidia-smi")
    assert f"Candidate: {pinned}" in policy
    assert re.search(rf"\*\*\* {re.escape(pinned)} 1001", policy), policy


def test_unattended_upgrades_blacklist(host):
    f = host.file("/etc/apt/apt.conf.d/51agent-workstation-nvidia")
    assert f.exists and f.mode == 0o644
    dump = host.check_output("apt-config dump Unattended-Upgrade::Package-Blacklist")
    for entry in ("nvidia-", "libnvidia-", "cuda-", "libcuda", "firmware-nvidia"):
        assert f'Unattended-Upgrade::Package-Blacklist:: "{entry}";' in dump, dump


# The real nvidia-smi's failures without a loaded driver: the first is what a host without the
# module prints; the second is what it printed in this project's Docker test containers.
NO_DRIVER = (
    "couldn't communicate with the NVIDIA driver",
    "Failed to initialize NVML: Unknown Error",
)


def test_real_nvidia_smi_fails_without_a_driver(host):
    cmd = host.run("/usr/bin/nvidia-smi")
    assert cmd.rc != 0
    assert any(msg in cmd.stdout + cmd.stderr for msg in NO_DRIVER), cmd.stdout + cmd.stderr


def test_power_limit_unit_and_no_needless_pl(host):
    unit = host.file("/etc/systemd/system/nvidia-power-limit.service")
    assert "ExecStart=/usr/bin/nvidia-smi --power-limit=450" in unit.content_string
    assert host.service("nvidia-power-limit.service").is_enabled
    log = host.file("/var/log/fake-nvidia-smi.log").content_string.splitlines()
    # The role's check read the recorded capture, and did not set a limit already enforced.
    assert "-q -x" in log
    assert not any("-pl" in line.split() for line in log)


def test_apt_upgrade_leaves_driver_alone(host):
    sim = host.check_output("apt-get -s -o Debug::NoLocking=1 dist-upgrade")
    assert not re.search(r"^Inst (nvidia-|libnvidia-)", sim, re.M), sim


def test_kernel_headers_meta_package_installed(host):
    # The meta package follows kernel updates (trixie's dkms does not pull headers itself). In a
    # container the running kernel is the host's, so only the meta package is installed.
    pkg = host.package("linux-headers-amd64")
    assert pkg.is_installed
    # it is not an NVIDIA package: not held by the driver role
    assert "linux-headers-amd64" not in host.check_output("apt-mark showhold").split()


def test_device_nodes_unit_before_user_managers(host):
    unit = host.file("/etc/systemd/system/nvidia-device-nodes.service").content_string
    assert "ExecStart=/usr/bin/nvidia-modprobe -u -c=0" in unit
    assert "Before=systemd-user-sessions.service" in unit
    assert host.service("nvidia-device-nodes.service").is_enabled
    # every user@UID.service instance wants and follows it (a drop-in on the template)
    deps = host.check_output("systemctl show -p Wants -p After user@1000.service")
    assert "nvidia-device-nodes.service" in deps.split("Wants=", 1)[1].split("\n", 1)[0]
    assert "nvidia-device-nodes.service" in deps.split("After=", 1)[1]
    # in a container the unit's condition keeps it from running (the device nodes are the host's)
    cond = host.run(
        "systemctl start nvidia-device-nodes.service"
        " && systemctl show -p ConditionResult nvidia-device-nodes.service"
    )
    assert "ConditionResult=no" in cond.stdout, cond.stdout + cond.stderr


def test_resolved_version_recorded_in_pin(host):
    pinned = PINNED[_codename(host)]
    pref = host.file("/etc/apt/preferences.d/agent-workstation-nvidia.pref").content_string
    assert f"Pin: version {pinned}" in pref
