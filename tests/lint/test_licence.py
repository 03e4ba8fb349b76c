"""One licence everywhere: the LICENSE file, pyproject.toml, every role's and package's metadata."""

import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
LICENCE = "Apache-2.0"
ROLES = sorted(p for p in (ROOT / "roles").iterdir() if (p / "meta" / "main.yml").exists())
PACKAGES = sorted((ROOT / "packages").glob("*/pyproject.toml"))


def test_licence_file_is_the_apache_2_0_text():
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text
    assert "Version 2.0, January 2004" in text


@pytest.mark.parametrize("pyproject", [ROOT / "pyproject.toml", *PACKAGES], ids=str)
def test_pyproject_licence(pyproject):
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    assert project.get("license") == LICENCE, f"{pyproject}: license must be {LICENCE!r}"


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_role_licence(role):
    meta = yaml.safe_load((role / "meta" / "main.yml").read_text(encoding="utf-8"))
    assert meta["galaxy_info"]["license"] == LICENCE, f"{role.name}: meta/main.yml license"
