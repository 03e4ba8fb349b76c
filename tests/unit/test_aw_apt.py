"""Version resolution, apt-cache, dkms, mokutil parsing over real captured outputs.

Fixtures: tests/fixtures/apt/ (captured here from Debian's archive, and public captures of
NVIDIA's CUDA repository) and tests/fixtures/host/; tests/fixtures/README.md names the sources.
"""

import shutil
import subprocess
import sys

import pytest
from ansible_collections.agent_workstation.aw.plugins.module_utils.aw_apt import (
    AptInputError,
    ResolveError,
    compare_versions,
    dkms_missing_kernels,
    newest_kernel,
    parse_dkms_status,
    parse_madison,
    parse_policy,
    parse_sb_state,
    parse_test_key,
    resolve_driver_version,
    sort_versions,
    upstream_version,
)
from conftest import FIXTURES, ROOT

APT = FIXTURES / "apt"
HOST = FIXTURES / "host"


def _read(path):
    return path.read_text(encoding="utf-8")


# ---- Debian version ordering, checked against the real dpkg where it exists -----------------

PAIRS = [
    ("550.163.01-4~bpo13+1", "550.163.01-2"),
    ("550.163.01-2", "550.163.01-1"),
    ("1.0", "1.0~rc1"),
    ("1:0.1", "9.9"),
    ("535.261.03-1", "535.183.01-1~deb12u1"),
    ("6.12.117-1", "6.12.38-1"),
    ("7.3.4-1~bpo13+1", "6.12.117-1"),
    ("1.0a", "1.0"),
    ("1.0", "1.0~"),
    ("2.0-1", "2.0"),
    ("560.28.03-1", "555.42.06-1"),
]


@pytest.mark.parametrize(("high", "low"), PAIRS)
def test_compare_versions(high, low):
    assert compare_versions(high, low) > 0
    assert compare_versions(low, high) < 0
    assert compare_versions(high, high) == 0


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="dpkg is not installed on this machine")
@pytest.mark.parametrize(("high", "low"), PAIRS)
def test_compare_versions_agrees_with_real_dpkg(high, low):
    real = (
        subprocess.run(["dpkg", "--compare-versions", high, "gt", low], check=False).returncode == 0
    )
    assert real is (compare_versions(high, low) > 0)


def test_sort_versions_newest_first():
    assert sort_versions(
        ["550.163.01-2", "550.163.01-4~bpo13+1", "550.163.01-2", "550.90.07-1"]
    ) == [
        "550.163.01-4~bpo13+1",
        "550.163.01-2",
        "550.90.07-1",
    ]


def test_bad_version():
    with pytest.raises(AptInputError):
        compare_versions("x:1", "1")


# ---- apt-cache policy / madison (real outputs) -------------------------------------------------


def test_policy_debian13_with_backports():
    p = parse_policy(_read(APT / "debian13" / "apt-cache-policy-nvidia-smi.txt"))["nvidia-smi"]
    assert p.installed is None
    assert p.candidate == "550.163.01-2"
    assert p.versions == ["550.163.01-4~bpo13+1", "550.163.01-2"]
    assert p.offers[0].priorities == [100] and "trixie-backports/non-free" in p.offers[0].sources[0]


def test_policy_installed_two_packages():
    out = parse_policy(
        _read(APT / "debian13-installed" / "apt-cache-policy-nvidia-smi-libnvidia-ml1.txt")
    )
    assert set(out) == {"nvidia-smi", "libnvidia-ml1"}
    smi = out["nvidia-smi"]
    assert smi.installed == "550.163.01-2"
    installed = [o for o in smi.offers if o.installed]
    assert [o.version for o in installed] == ["550.163.01-2"]
    assert installed[0].sources[-1] == "/var/lib/dpkg/status"
    # the dpkg status entry alone is not an offer, but here a source carries the version too
    assert smi.versions == ["550.163.01-4~bpo13+1", "550.163.01-2"]


def test_policy_debian12():
    p = parse_policy(_read(APT / "debian12" / "apt-cache-policy-nvidia-smi.txt"))["nvidia-smi"]
    assert p.versions == ["535.261.03-1"]


def test_policy_cuda_repository_german_locale():
    p = parse_policy(
        _read(APT / "cuda-repo" / "apt-cache-policy-nvidia-driver.debian12-cuda.de.txt")
    )
    drv = p["nvidia-driver"]
    assert drv.versions[:3] == ["560.28.03-1", "555.42.06-1", "555.42.02-1"]
    assert [o.version for o in drv.offers if o.installed] == ["555.42.06-1"]


def test_policy_cuda_repository_negative_priority():
    p = parse_policy(
        _read(APT / "cuda-repo" / "apt-cache-policy-cuda-drivers-fabricmanager.ubuntu2204-cuda.txt")
    )
    fm = p["cuda-drivers-fabricmanager"]
    assert fm.offers[0].priorities == [-1] or fm.offers[0].priorities == [580, 580]
    assert len(fm.versions) == 5
    assert "550.54.14-1" in fm.versions


def test_policy_unknown_package_prints_nothing():
    assert parse_policy("") == {}
    assert parse_policy("N: Unable to locate package no-such-package\n") == {}


def test_policy_garbage_is_refused():
    with pytest.raises(AptInputError):
        parse_policy("nvidia-smi:\n  Version table:\n garbage here\n")


def test_madison_real():
    m = parse_madison(
        _read(APT / "debian13-installed" / "apt-cache-madison-nvidia-smi-libnvidia-ml1.txt")
    )
    assert [o.version for o in m["nvidia-smi"]] == ["550.163.01-4~bpo13+1", "550.163.01-2"]
    assert [o.version for o in m["libnvidia-ml1"]] == ["550.163.01-4~bpo13+1", "550.163.01-2"]
    padded = parse_madison(_read(APT / "debian13" / "apt-cache-madison-dkms.txt"))
    assert [o.version for o in padded["dkms"]] == ["3.2.2-1~deb13u1"]


def test_madison_and_policy_agree():
    for rel in ("debian13", "debian12"):
        for pkg in ("nvidia-smi", "nvidia-driver", "nvidia-kernel-dkms", "linux-headers-amd64"):
            pol = parse_policy(_read(APT / rel / f"apt-cache-policy-{pkg}.txt"))[pkg]
            mad = parse_madison(_read(APT / rel / f"apt-cache-madison-{pkg}.txt"))[pkg]
            assert pol.versions == [o.version for o in mad], (rel, pkg)


# ---- resolution ---------------------------------------------------------------------------------


def _offered(rel, pkg="nvidia-smi"):
    return parse_policy(_read(APT / rel / f"apt-cache-policy-{pkg}.txt"))[pkg].versions


def test_resolve_exact_offered():
    r = resolve_driver_version(_offered("debian13"), "550", "550.163.01-2")
    assert r.version == "550.163.01-2"


def test_resolve_glob_takes_newest_match():
    r = resolve_driver_version(_offered("debian13"), "550", "550.163.01-*")
    assert r.version == "550.163.01-4~bpo13+1"


def test_resolve_none_keeps_installed_else_newest():
    offered = _offered("debian13")
    assert (
        resolve_driver_version(offered, "550", None, installed="550.163.01-2").version
        == "550.163.01-2"
    )
    assert resolve_driver_version(offered, "550", None).version == "550.163.01-4~bpo13+1"


def test_resolve_missing_version_lists_offered():
    with pytest.raises(ResolveError) as err:
        resolve_driver_version(_offered("debian13"), "550", "550.144.03-1", package="nvidia-smi")
    msg = str(err.value)
    assert "550.144.03-1" in msg and "550.163.01-4~bpo13+1, 550.163.01-2" in msg


def test_resolve_branch_not_offered_names_other_branches():
    # Debian 12's archive carries 535 only: a 550 pin there names what it does carry.
    with pytest.raises(
        ResolveError, match=r"branch 550 on offer: none; other branches offered: 535"
    ):
        resolve_driver_version(_offered("debian12"), "550", "550.163.01-2")


def test_resolve_cuda_repo_branch():
    offered = parse_policy(
        _read(APT / "cuda-repo" / "apt-cache-policy-nvidia-driver.debian12-cuda.de.txt")
    )["nvidia-driver"].versions
    assert resolve_driver_version(offered, "550", "550.*").version == "550.90.07-1"
    assert resolve_driver_version(offered, "545", None).version == "545.23.08-1"
    with pytest.raises(ResolveError, match="580"):
        resolve_driver_version(offered, "580", None)


def test_resolve_bad_branch():
    with pytest.raises(ResolveError):
        resolve_driver_version(["550.163.01-2"], "latest", None)


def test_upstream_version():
    assert upstream_version("550.163.01-4~bpo13+1") == "550.163.01"
    assert upstream_version("1:535.261.03-1") == "535.261.03"


# ---- dkms / mokutil -----------------------------------------------------------------------------


def test_dkms_debian_names_its_module_nvidia_current():
    entries = parse_dkms_status(
        _read(HOST / "dkms-status-debian13-nvidia-current-550.recorded.txt")
    )
    assert [(e.module, e.version, e.kernel, e.state) for e in entries] == [
        ("nvidia-current", "550.163.01", "6.12.107+deb13-amd64", "installed")
    ]
    module = "nvidia(-current)?(-open)?"
    assert dkms_missing_kernels(entries, module, "550.163.01", ["6.12.107+deb13-amd64"]) == []
    assert dkms_missing_kernels(
        entries, module, "550.163.01", ["6.12.107+deb13-amd64", "6.12.117+deb13-amd64"]
    ) == ["6.12.117+deb13-amd64"]
    # a module of another version does not count
    assert dkms_missing_kernels(entries, module, "550.144.03", ["6.12.107+deb13-amd64"]) == [
        "6.12.107+deb13-amd64"
    ]


def test_dkms_two_kernels_nvidia():
    entries = parse_dkms_status(_read(HOST / "dkms-status-nvidia-595-two-kernels.recorded.txt"))
    kernels = [e.kernel for e in entries]
    assert newest_kernel(kernels) == "6.19.6+deb14-amd64"
    assert dkms_missing_kernels(entries, "nvidia", "595.45.04", kernels) == []


def test_dkms2_format_and_built_is_not_installed():
    entries = parse_dkms_status(_read(HOST / "dkms-status-dkms2-two-kernels.handmade.txt"))
    assert [e.state for e in entries] == ["installed", "built"]
    assert dkms_missing_kernels(
        entries, "nvidia", "535.261.03", ["6.1.0-37-amd64", "6.1.0-38-amd64"]
    ) == ["6.1.0-38-amd64"]


def test_dkms_added_only_and_warning_note():
    entries = parse_dkms_status(
        "nvidia-current/550.163.01: added\n"
        "nvidia/595.45.04, 6.19.6+deb14-amd64, x86_64: installed"
        " (WARNING! Diff between built and installed module!)\n"
    )
    assert entries[0].kernel is None and entries[0].state == "added"
    assert entries[1].state == "installed"


def test_newest_kernel_orders_like_dpkg():
    assert newest_kernel(["6.1.0-9-amd64", "6.1.0-37-amd64", "6.1.0-10-amd64"]) == "6.1.0-37-amd64"


def test_sb_state_real_container_output():
    assert (
        parse_sb_state(_read(HOST / "mokutil-sb-state-no-efi.debian13-container.txt"))
        == "unsupported"
    )


@pytest.mark.parametrize(
    ("text", "state"),
    [
        # mokutil's own printf strings (mokutil.c sb_state())
        ("SecureBoot enabled\n", "enabled"),
        ("SecureBoot disabled\n", "disabled"),
        ("SecureBoot disabled\nPlatform is in Setup Mode\n", "disabled"),
        ("Failed to read SecureBoot\n", "unsupported"),
        ("This system doesn't support Secure Boot\n", "unsupported"),
        ("SecureBoot unknown", "unknown"),
    ],
)
def test_sb_state_strings(text, state):
    assert parse_sb_state(text) == state


def test_sb_state_garbage():
    with pytest.raises(AptInputError):
        parse_sb_state("command not found")


def test_test_key():
    assert parse_test_key("/var/lib/dkms/mok.pub is already enrolled\n") is True
    assert parse_test_key("/var/lib/dkms/mok.pub is not enrolled\n") is False


# ---- gpg fingerprints (filter), over gpg's real colon output of Debian's archive keys ----------

sys.path.insert(0, str(ROOT / "plugins" / "filter"))
from aw_gpg import primary_fingerprints  # noqa: E402 - after sys.path names plugins/filter


def test_gpg_primary_fingerprint_only():
    colons = _read(HOST / "gpg-show-keys-debian-bookworm-automatic.txt")
    fprs = primary_fingerprints(colons)
    assert fprs == ["B8B80B5B623EAB6AD8775C45B7C5D7D6350947F8"]
    # the subkey's fingerprint is in the listing but is not a primary fingerprint
    assert "4CB50190207B4758A3F73A796ED0E7B82643E131" in colons


def test_gpg_ed25519_key():
    assert primary_fingerprints(_read(HOST / "gpg-show-keys-debian-bookworm-stable.txt")) == [
        "4D64FEC119C2029067D6E791F8D2585B8783D481"
    ]


@pytest.mark.skipif(shutil.which("gpg") is None, reason="gpg is not installed on this machine")
def test_gpg_real_run_matches_fixture(tmp_path):
    key = "/usr/share/keyrings/debian-archive-bookworm-stable.gpg"
    if not shutil.which("gpg") or not __import__("os").path.exists(key):
        pytest.skip(f"{key} is not on this machine")
    out = subprocess.run(
        [
            "gpg",
            "--batch",
            "--no-options",
            "--homedir",
            str(tmp_path),
            "--show-keys",
            "--with-colons",
            key,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert primary_fingerprints(out) == ["4D64FEC119C2029067D6E791F8D2585B8783D481"]
