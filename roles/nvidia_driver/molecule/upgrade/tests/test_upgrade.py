"""nvidia_driver upgrade scenario: real Debian NVIDIA packages, an old pin and a newer offer.

converge.yml installed nvidia-smi (with libnvidia-ml1, nvidia-alternative, nvidia-legacy-check)
at OLD from trixie, while trixie-backports offers NEW (prepare.yml). The tests run in file order
and build on each other's effects on the instance:

1. apt-get upgrade / dist-upgrade (simulated, then a real `apt-get -y upgrade`) leave the driver
   at OLD and held; a control run without the role's pin and holds shows NEW would be installed.
2. converge.yml with nvidia_driver_version=NEW (allow_upgrade false) is refused before any change.
3. malformed versions / branches are refused before any change.
4. converge.yml with NEW and nvidia_driver_allow_upgrade=true moves every driver package to NEW
   and holds them; re-runs with NEW report zero changes.

Steps 2-4 run ansible-playbook on the controller against the Molecule instance, with the
environment Molecule gives the verifier (ANSIBLE_CONFIG, roles path, MOLECULE_INVENTORY_FILE).
"""

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

OLD = "550.163.01-2"  # trixie/non-free; the same value as molecule.yml's nvidia_driver_version
NEW = "550.163.01-4~bpo13+1"  # trixie-backports/non-free
UPSTREAM = "550.163.01-"  # packages built from nvidia-graphics-drivers carry this version
DRIVER_PACKAGES = {"nvidia-smi", "libnvidia-ml1", "nvidia-alternative"}
# The role's nvidia_driver_hold_patterns (defaults/main.yml), minus the container toolkit.
NVIDIA = re.compile(
    r"^(nvidia-|libnvidia-|cuda-drivers|libcuda|firmware-nvidia|xserver-xorg-video-nvidia"
    r"|libegl-nvidia|libgl1-nvidia|libgles-nvidia|libglx-nvidia|libnvcuvid|libnvoptix"
    r"|libxnvctrl|glx-alternative-nvidia)"
)
TOOLKIT = re.compile(r"^(nvidia-container-|libnvidia-container)")
CONVERGE = Path(__file__).resolve().parent.parent / "converge.yml"
APT_FILES = (
    "/etc/apt/sources.list /etc/apt/sources.list.d/* /etc/apt/preferences.d/* "
    "/etc/apt/apt.conf.d/51agent-workstation-nvidia"
)
NO_LOCK = "-o Debug::NoLocking=1"
# apt options for the control runs: the scenario's backports preference only, not the role's pin.
ONLY_BACKPORTS_PREF = (
    "-o Dir::Etc::PreferencesParts=/etc/apt/molecule-no-preferences.d"
    " -o Dir::Etc::Preferences=/etc/apt/preferences.d/molecule-backports.pref"
)
UPGRADE = {"nvidia_driver_version": NEW, "nvidia_driver_allow_upgrade": True}


def _is_nvidia(name):
    return bool(NVIDIA.match(name)) and not TOOLKIT.match(name)


def _versions(host):
    """Installed NVIDIA packages and their versions, from dpkg-query -W."""
    out = host.check_output("dpkg-query -W -f='${db:Status-Status} ${Package} ${Version}\\n'")
    rows = [line.split() for line in out.splitlines()]
    return {r[1]: r[2] for r in rows if len(r) == 3 and r[0] == "installed" and _is_nvidia(r[1])}


def _selections(host):
    """dpkg --get-selections of the NVIDIA packages: name -> install|hold|..."""
    out = host.check_output("dpkg --get-selections")
    rows = [line.split() for line in out.splitlines()]
    names = {r[0].split(":")[0]: r[1] for r in rows if len(r) == 2}
    return {name: sel for name, sel in names.items() if _is_nvidia(name)}


def _state(host):
    return {
        "versions": _versions(host),
        "selections": _selections(host),
        "apt_files": host.check_output(f"sha256sum {APT_FILES}"),
    }


def _assert_driver_at(host, version):
    versions = _versions(host)
    assert set(versions) >= DRIVER_PACKAGES, f"driver packages missing: {versions}"
    driver = {n: v for n, v in versions.items() if v.startswith(UPSTREAM)}
    assert driver, versions
    assert all(v == version for v in driver.values()), f"expected all at {version}: {driver}"
    selections = _selections(host)
    assert set(selections) == set(versions), (selections, versions)
    not_held = sorted(n for n, sel in selections.items() if sel != "hold")
    assert not_held == [], f"NVIDIA packages not held: {not_held}"
    return versions


def _nvidia_in(apt_output):
    """NVIDIA package names anywhere in apt-get output (Inst/Remv lines, kept back, upgraded)."""
    return sorted({w for w in re.findall(r"[a-z0-9][a-z0-9.+-]+", apt_output) if _is_nvidia(w)})


def _playbook(extra_vars):
    """Run converge.yml on the controller against the instance; return (rc, stats, failures)."""
    # The json stdout callback; callbacks the Molecule ansible.cfg enables (profile_tasks) may
    # print lines of their own around the JSON document, which starts with a line "{".
    env = dict(
        os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_FORCE_COLOR="false"
    )
    venv_bin = Path(sys.executable).with_name("ansible-playbook")
    playbook = shutil.which("ansible-playbook") or str(venv_bin)
    inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    cmd = [playbook, "-i", inventory, str(CONVERGE), "-e", json.dumps(extra_vars)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, check=False)
    result = None
    start = re.search(r"^\{$", proc.stdout, re.M)
    if start:
        with contextlib.suppress(json.JSONDecodeError):
            result, _ = json.JSONDecoder().raw_decode(proc.stdout[start.start() :])
    if not isinstance(result, dict):
        tail = f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        raise AssertionError(f"no JSON from {cmd}: {tail}")
    (stats,) = result["stats"].values()
    failures = [
        (task["task"]["name"], res.get("msg", ""))
        for play in result["plays"]
        for task in play["tasks"]
        for res in task["hosts"].values()
        if res.get("failed") and not res.get("ignore_errors")
    ]
    return proc.returncode, stats, failures


def _assert_refused(extra_vars, task, *words):
    rc, stats, failures = _playbook(extra_vars)
    assert rc != 0 and stats["failures"] == 1, (rc, stats, failures)
    assert stats["changed"] == 0, stats
    [(name, msg)] = failures
    assert name == f"nvidia_driver : {task}", failures
    for word in words:
        assert word in msg, f"{word!r} not in the message: {msg}"
    return msg


def test_0_converged_at_old_version_and_newer_offered(host):
    assert host.system_info.codename == "trixie"
    _assert_driver_at(host, OLD)
    policy = host.check_output("apt-cache policy nvidia-smi")
    assert f"Candidate: {OLD}" in policy, policy
    assert re.search(rf"\*\*\* {re.escape(OLD)} 1001", policy), policy
    # NEW is really in the configured archive (if backports moved on, update NEW above).
    assert re.search(rf"^\s+{re.escape(NEW)} 500$", policy, re.M), policy
    assert "trixie-backports/non-free" in policy, policy


def test_1_apt_upgrade_leaves_the_driver_alone(host):
    before = _state(host)
    # Control: without the role's pin and holds this archive WOULD move the driver to NEW.
    control = host.check_output(f"apt-get -s {NO_LOCK} --ignore-hold {ONLY_BACKPORTS_PREF} upgrade")
    would = rf"^Inst nvidia-smi \[{re.escape(OLD)}\] \({re.escape(NEW)} "
    assert re.search(would, control, re.M), control
    # Each layer alone keeps it: the holds (pin ignored) ...
    holds_only = host.check_output(f"apt-get -s {NO_LOCK} {ONLY_BACKPORTS_PREF} upgrade")
    assert not re.search(r"^Inst (nvidia-|libnvidia-)", holds_only, re.M), holds_only
    # ... and the pin (holds ignored).
    pin_only = host.check_output(f"apt-get -s {NO_LOCK} --ignore-hold dist-upgrade")
    assert _nvidia_in(pin_only) == [], pin_only
    # Both together, as configured: no NVIDIA package is even listed.
    for action in ("upgrade", "dist-upgrade"):
        sim = host.check_output(f"apt-get -s {NO_LOCK} {action}")
        assert _nvidia_in(sim) == [], f"apt-get -s {action} lists NVIDIA packages:\n{sim}"
    # A real upgrade (a side effect on the instance).
    real = host.run("DEBIAN_FRONTEND=noninteractive apt-get -y upgrade")
    assert real.rc == 0, real.stdout + real.stderr
    assert _nvidia_in(real.stdout) == [], real.stdout
    assert _state(host) == before
    _assert_driver_at(host, OLD)


def test_2_new_version_without_allow_upgrade_is_refused_before_any_change(host):
    before = _state(host)
    msg = _assert_refused(
        {"nvidia_driver_version": NEW},
        "Stop before a driver upgrade that was not asked for",
        f"installed driver is {OLD}",
        f"pinned version is {NEW}",
        "playbooks/upgrade-driver.yml",
        "Nothing was changed",
    )
    assert "nvidia-smi" in msg
    assert _state(host) == before
    _assert_driver_at(host, OLD)


def test_3_malformed_version_or_branch_is_refused_before_any_change(host):
    before = _state(host)
    _assert_refused(
        {"nvidia_driver_version": "55o.1"},
        "Check the source, branch and version",
        'version="55o.1"',
        "nvidia_driver_version",
        "apt-cache policy",
    )
    _assert_refused(
        {"nvidia_driver_branch": "latest"},
        "Check the source, branch and version",
        'branch="latest"',
        "nvidia_driver_branch",
    )
    assert _state(host) == before
    _assert_driver_at(host, OLD)


def test_4_allowed_upgrade_moves_every_package_and_holds_again(host):
    before = _assert_driver_at(host, OLD)
    rc, stats, failures = _playbook(UPGRADE)
    assert rc == 0 and failures == [], (rc, stats, failures)
    assert stats["changed"] > 0, stats
    after = _assert_driver_at(host, NEW)
    assert set(after) == set(before), (before, after)
    moved = sorted(n for n, v in before.items() if v.startswith(UPSTREAM))
    assert all(after[n] == NEW for n in moved), after
    policy = host.check_output("apt-cache policy nvidia-smi")
    assert f"Installed: {NEW}" in policy and f"Candidate: {NEW}" in policy, policy
    assert re.search(rf"\*\*\* {re.escape(NEW)} 1001", policy), policy
    pref = host.file("/etc/apt/preferences.d/agent-workstation-nvidia.pref").content_string
    assert f"Pin: version {NEW}" in pref, pref


def test_5_rerun_with_the_new_version_changes_nothing(host):
    before = _state(host)
    # As playbooks/upgrade-driver.yml re-runs it, then as site.yml does (allow_upgrade false).
    for extra in (UPGRADE, {"nvidia_driver_version": NEW}):
        rc, stats, failures = _playbook(extra)
        assert rc == 0 and failures == [], (extra, rc, stats, failures)
        assert stats["changed"] == 0, (extra, stats)
    assert _state(host) == before
    _assert_driver_at(host, NEW)
    sim = host.check_output(f"apt-get -s {NO_LOCK} dist-upgrade")
    assert _nvidia_in(sim) == [], sim
