"""The inventory check of site.yml's first play, over its pure function and through Ansible."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "plugins" / "filter"))

from aw_inventory import inventory_problems, merge_specs  # noqa: E402 - after sys.path names plugins/filter

SPECS = merge_specs(
    [
        {
            "argument_specs": {
                "main": {
                    "options": {
                        "base_service_user": {"type": "str", "default": "agent"},
                        "base_journald_max_files": {"type": "int", "required": True},
                        "base_packages": {"type": "list", "elements": "str"},
                        "caddy_tls_mode": {"type": "str", "choices": ["internal", "tailscale"]},
                    }
                }
            }
        }
    ]
)
PREFIXES = ("base_", "caddy_")


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({"base_service_user": "agent", "unrelated_var": [1]}, []),
        (
            {"base_servce_user": "x"},
            ["base_servce_user is not a variable of this project. Did you mean base_service_user?"],
        ),
        ({"base_zzz": 1}, ["base_zzz is not a variable of this project."]),
        ({"base_user": "x"}, ["base_user was removed: use base_service_user."]),
        ({"base_journald_max_files": "three"}, ["base_journald_max_files"]),
        ({"base_packages": {"a": 1}}, ["base_packages"]),
        ({"caddy_tls_mode": "acme"}, ["caddy_tls_mode"]),
    ],
)
def test_problems(variables, expected):
    problems = inventory_problems(
        variables, SPECS, {"base_user": "use base_service_user."}, PREFIXES
    )
    assert len(problems) == len(expected), problems
    for line, want in zip(problems, expected, strict=True):
        assert want in line


def test_a_required_option_is_not_required_of_the_inventory():
    # Roles own their defaults: an inventory that leaves a variable out is fine.
    assert inventory_problems({}, SPECS, {}, PREFIXES) == []


def test_string_numbers_are_accepted_like_ansible_does():
    assert inventory_problems({"base_journald_max_files": "3"}, SPECS, {}, PREFIXES) == []


@pytest.mark.slow
def test_site_first_play_stops_on_a_typo_before_anything_runs():
    run = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "playbooks/validate.yml",
            "-e",
            "base_servce_user=x",
            "-e",
            "base_journald_max_files=many",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 2, run.stdout + run.stderr
    assert (
        "base_servce_user is not a variable of this project. Did you mean base_service_user?"
        in run.stdout
    )
    assert "base_journald_max_files" in run.stdout
    assert "nothing was changed" in run.stdout


@pytest.mark.slow
def test_shipped_inventory_passes_the_check():
    run = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "playbooks/validate.yml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]


@pytest.mark.slow
def test_a_removed_variable_names_its_replacement():
    run = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "playbooks/validate.yml",
            "-e",
            "caddy_admin_address=127.0.0.1:2019",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 2
    assert "caddy_admin_address was removed" in run.stdout
    assert "caddy_admin_socket" in run.stdout
