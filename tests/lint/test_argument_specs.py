"""Every role's meta/argument_specs.yml lists exactly the variables of its defaults/main.yml.

This is the check the prometheus-community collection runs in CI: a default without a spec is
never validated, and a spec without a default is a variable nobody sets. Beyond the keys, the
documentation must not drift from the code: every spec default (in every entry point) equals
the value in defaults/main.yml, the README's variable block names every default with the same
value, and a default that nothing reads is flagged.
"""

import functools
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
# Every role, the defaults-only contract (roles/workstation) included.
ROLES = sorted(
    p for p in (ROOT / "roles").iterdir() if (p / "meta" / "argument_specs.yml").exists()
)


def _load(path: Path):
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


def test_there_are_roles():
    assert ROLES, "no role found under roles/"


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_role_has_specs_readme_and_defaults(role):
    for part in ("meta/argument_specs.yml", "meta/main.yml", "README.md", "defaults/main.yml"):
        assert (role / part).is_file(), f"{role.name} has no {part}"


def _entry_points(role: Path) -> dict:
    """Entry point name -> its options ({} when it has none)."""
    specs = _load(role / "meta" / "argument_specs.yml")["argument_specs"]
    return {entry: (spec or {}).get("options") or {} for entry, spec in specs.items()}


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_argument_specs_match_defaults(role):
    # The main entry point and the operations' entry points (tasks_from: upgrade_vllm, restore,
    # upgrade) share defaults/main.yml: together they specify exactly its variables.
    defaults = set(_load(role / "defaults" / "main.yml"))
    specs = set().union(*(set(options) for options in _entry_points(role).values()))
    assert specs == defaults, (
        f"{role.name}: only in defaults: {sorted(defaults - specs)}; "
        f"only in argument_specs: {sorted(specs - defaults)}"
    )


def _allowed_prefixes(role: Path, name: str) -> list[str]:
    """The role's prefix, and the name of each non-main entry point that lists the variable
    (an operation's options keep the names operators already use: upgrade_vllm_*, restore_*)."""
    entries = _entry_points(role)
    return [f"{role.name}_"] + [
        f"{entry}_" for entry, options in entries.items() if entry != "main" and name in options
    ]


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_variables_carry_the_role_prefix(role):
    defaults = _load(role / "defaults" / "main.yml")
    stray = [name for name in defaults if not name.startswith(tuple(_allowed_prefixes(role, name)))]
    assert not stray, (
        f"{role.name}: defaults without the '{role.name}_' prefix (or that of an entry point "
        f"listing them): {stray}"
    )


def test_entry_point_prefix_is_not_a_loophole(tmp_path):
    # A variable of the main entry point only must carry the role prefix even when another
    # entry point exists.
    role = tmp_path / "demo"
    (role / "meta").mkdir(parents=True)
    (role / "meta" / "argument_specs.yml").write_text(
        "argument_specs:\n"
        "  main: {options: {other_x: {}}}\n"
        "  restore: {options: {restore_x: {}}}\n",
        encoding="utf-8",
    )
    assert _allowed_prefixes(role, "restore_x") == ["demo_", "restore_"]
    assert _allowed_prefixes(role, "other_x") == ["demo_"]


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_every_spec_option_is_described(role):
    missing = [
        f"{entry}.{name}"
        for entry, options in _entry_points(role).items()
        for name, spec in options.items()
        if not (spec or {}).get("description")
    ]
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


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_argument_spec_defaults_equal_defaults_by_value(role):
    defaults = _load(role / "defaults" / "main.yml")
    wrong = []
    for entry, spec in _load(role / "meta" / "argument_specs.yml")["argument_specs"].items():
        for name, given in (spec.get("options") or {}).items():
            option = given or {}
            if name not in defaults:
                continue
            if "default" not in option:
                wrong.append(f"{entry}.{name}: no default (defaults/main.yml: {defaults[name]!r})")
            elif option["default"] != defaults[name]:
                wrong.append(
                    f"{entry}.{name}: {option['default']!r} != defaults/main.yml {defaults[name]!r}"
                )
    assert not wrong, (
        f"{role.name}/meta/argument_specs.yml differs from defaults/main.yml:\n" + "\n".join(wrong)
    )


_VARIABLES_BLOCK = re.compile(
    r"^## (?:Role )?[Vv]ariables[^\n]*\n(?:(?!^## ).)*?^```yaml\n(.*?)^```", re.M | re.S
)


def readme_variables(text: str) -> dict:
    """The first YAML block of the README's "Variables" (or "Role variables") section."""
    match = _VARIABLES_BLOCK.search(text)
    assert match, "no ```yaml block under a '## Variables' or '## Role variables' heading"
    return yaml.safe_load(match.group(1)) or {}


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_readme_variables_equal_defaults(role):
    defaults = _load(role / "defaults" / "main.yml")
    documented = readme_variables((role / "README.md").read_text(encoding="utf-8"))
    problems = [f"missing: {name}" for name in defaults if name not in documented]
    problems += [f"not a default: {name}" for name in documented if name not in defaults]
    problems += [
        f"{name}: README {documented[name]!r} != defaults/main.yml {defaults[name]!r}"
        for name in documented
        if name in defaults and documented[name] != defaults[name]
    ]
    assert not problems, f"{role.name}/README.md variable block:\n" + "\n".join(problems)


def test_readme_block_parser_sees_a_difference():
    text = "# Role\n\n## Variables\n```yaml\nx_port: 1  # a comment\ny: [a, b]\n```\n"
    assert readme_variables(text) == {"x_port": 1, "y": ["a", "b"]}
    assert readme_variables(text) != {"x_port": 2, "y": ["a", "b"]}


def _strip_comments(text: str) -> str:
    return "\n".join(re.sub(r"(^|\s)#.*$", r"\1", line) for line in text.split("\n"))


@functools.cache
def _readers() -> str:
    """Everything that can read a role variable: tasks, templates, handlers, vars, meta
    (argument specs excluded), files, playbooks, plugins, site.yml, and the inventory (comments
    stripped, so its commented copy of a default is not a read)."""
    parts = []
    paths = [ROOT / "site.yml"]
    for base in ("playbooks", "plugins", "inventories", "roles", "scripts"):
        paths += sorted(p for p in (ROOT / base).rglob("*") if p.is_file())
    for path in paths:
        rel = path.relative_to(ROOT).as_posix()
        if (
            "/molecule/" in rel
            or path.name in ("README.md", "argument_specs.yml")
            or path.suffix in (".pyc",)
        ):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        if rel.endswith("defaults/main.yml"):
            # A default may be read by another one (agent_queue_results_dir reads agent_queue_dir):
            # keep the values, drop the names being defined.
            text = "\n".join(re.sub(r"^[a-z_][a-z0-9_]*:", "", line) for line in text.split("\n"))
        parts.append(_strip_comments(text))
    return "\n".join(parts)


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_every_default_is_read(role):
    defaults = _load(role / "defaults" / "main.yml")
    unread = [name for name in defaults if not re.search(rf"\b{name}\b", _readers())]
    assert not unread, (
        f"{role.name}: defaults that nothing reads (tasks, templates, handlers, vars, other roles, "
        f"playbooks, plugins): {unread}. Remove them or use them."
    )


def test_readme_variable_blocks_are_generated_from_defaults():
    # scripts/readme-variables.py writes each block from defaults/main.yml; --check changes nothing.
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "readme-variables.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
