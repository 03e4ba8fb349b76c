"""Every role's meta/argument_specs.yml lists exactly the variables of its defaults/main.yml.

This is the check the prometheus-community collection runs in CI: a default without a spec is
never validated, and a spec without a default is a variable nobody sets.
"""

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLES = sorted(p for p in (ROOT / "roles").iterdir() if (p / "tasks" / "main.yml").exists())


def _load(path: Path):
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


def test_there_are_roles():
    assert ROLES, "no role found under roles/"


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_role_has_specs_readme_and_defaults(role):
    for part in ("meta/argument_specs.yml", "meta/main.yml", "README.md", "defaults/main.yml"):
        assert (role / part).is_file(), f"{role.name} has no {part}"


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_argument_specs_match_defaults(role):
    defaults = set(_load(role / "defaults" / "main.yml"))
    specs = _load(role / "meta" / "argument_specs.yml")["argument_specs"]["main"]["options"]
    assert set(specs) == defaults, (
        f"{role.name}: only in defaults: {sorted(defaults - set(specs))}; "
        f"only in argument_specs: {sorted(set(specs) - defaults)}"
    )


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_variables_carry_the_role_prefix(role):
    defaults = _load(role / "defaults" / "main.yml")
    stray = [name for name in defaults if not name.startswith(f"{role.name}_")]
    assert not stray, f"{role.name}: defaults without the '{role.name}_' prefix: {stray}"


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_every_spec_option_is_described(role):
    specs = _load(role / "meta" / "argument_specs.yml")["argument_specs"]["main"]["options"]
    missing = [name for name, spec in specs.items() if not (spec or {}).get("description")]
    assert not missing, f"{role.name}: options without a description: {missing}"


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_templates_start_with_ansible_managed(role):
    offenders = []
    for template in sorted((role / "templates").rglob("*.j2")):
        head = template.read_text(encoding="utf-8").lstrip()[:200]
        # JSON has no comments and dockerd/Grafana refuse unknown keys: JSON templates are exempt.
        if template.name.endswith((".json.j2",)):
            continue
        if "ansible_managed" not in head:
            offenders.append(template.relative_to(role).as_posix())
    assert not offenders, (
        f"{role.name}: templates that do not open with ansible_managed: {offenders}"
    )
