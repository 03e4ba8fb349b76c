"""Package hygiene (issue 10, item 5): one licence in every source header, the project's
modules called by their full collection names, tags that follow one scheme in every role, and
no task that names a file which does not exist."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if (p / "tasks" / "main.yml").exists())
MODULES = sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("*.py"))
COLLECTION = "agent_workstation.aw"


class _Loader(yaml.SafeLoader):
    """yaml.SafeLoader that reads Ansible's !unsafe and !vault values as plain strings."""


for _tag in ("!unsafe", "!vault"):
    _Loader.add_constructor(_tag, lambda loader, node: loader.construct_scalar(node))


def _load(path: Path):
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)


def _tracked(*patterns: str) -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", *patterns],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [ROOT / p for p in out if (ROOT / p).is_file() and not (ROOT / p).is_symlink()]


def _tasks(node):
    """Every task mapping in a task file or play, blocks and handlers included."""
    if isinstance(node, list):
        for item in node:
            yield from _tasks(item)
    elif isinstance(node, dict):
        if any(k in node for k in ("block", "rescue", "always", "tasks", "handlers", "pre_tasks")):
            for key in (
                "block",
                "rescue",
                "always",
                "tasks",
                "handlers",
                "pre_tasks",
                "post_tasks",
            ):
                yield from _tasks(node.get(key) or [])
        else:
            yield node


TASK_FILES = [
    p
    for p in _tracked(
        "roles/*/tasks/*.yml", "roles/*/handlers/*.yml", "playbooks/*.yml", "playbooks/tasks/*.yml"
    )
]


@pytest.mark.parametrize("path", _tracked("*.py"), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_other_licence_in_a_source_header(path: Path):
    head = "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[:5])
    assert "General Public License" not in head, f"{path}: the project is Apache-2.0 (LICENSE)"


@pytest.mark.parametrize("path", TASK_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_project_modules_are_called_by_their_full_names(path: Path):
    short = [
        (task.get("name"), key)
        for task in _tasks(_load(path) or [])
        for key in task
        if key in MODULES
    ]
    assert not short, f"{path}: write {COLLECTION}.<module> for {short}"


def test_the_short_name_scanner_sees_a_short_name(tmp_path: Path):
    planted = [{"name": "x", "vllm_ready": {"url": "http://127.0.0.1:8000"}}]
    found = [key for task in _tasks(planted) for key in task if key in MODULES]
    assert found == ["vllm_ready"]


@pytest.mark.parametrize("role", ROLES)
def test_every_role_tags_its_parts_with_one_scheme(role: str):
    """Each import in tasks/main.yml carries the role's name (so --tags ROLE runs all of it)
    and only ROLE, ROLE_<part> or always: `--tags docker_rootless_configure` means the same
    kind of thing in every role."""
    tasks = yaml.safe_load(
        (ROOT / "roles" / role / "tasks" / "main.yml").read_text(encoding="utf-8")
    )
    for task in _tasks(tasks):
        tags = task.get("tags") or []
        tags = [tags] if isinstance(tags, str) else tags
        assert role in tags, (
            f"roles/{role}/tasks/main.yml: {task.get('name')!r} lacks the tag {role}"
        )
        odd = [t for t in tags if t not in (role, "always") and not t.startswith(role + "_")]
        assert not odd, f"roles/{role}/tasks/main.yml: {task.get('name')!r} has tags {odd}"


_FILE_KEYS = {
    "ansible.builtin.template": "templates",
    "ansible.builtin.copy": "files",
    "ansible.builtin.script": "files",
    "ansible.builtin.import_tasks": "tasks",
    "ansible.builtin.include_tasks": "tasks",
}


def _refs(path: Path):
    for task in _tasks(_load(path) or []):
        for module, where in _FILE_KEYS.items():
            args = task.get(module)
            if args is None:
                continue
            src = args if isinstance(args, str) else (args.get("src") or args.get("file"))
            if not src or "{{" in str(src) or (isinstance(args, dict) and args.get("remote_src")):
                continue
            yield task.get("name"), where, str(src)


@pytest.mark.parametrize("path", TASK_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_named_file_exists(path: Path):
    base = path.parent.parent if path.parent.name in ("tasks", "handlers") else path.parent
    missing = []
    for name, where, src in _refs(path):
        if src.startswith("/"):
            continue
        candidates = [base / where / src, path.parent / src, base / src]
        if not any(c.exists() for c in candidates):
            missing.append((name, src))
    assert not missing, f"{path}: these files do not exist: {missing}"


def test_the_reference_scanner_sees_a_missing_file(tmp_path: Path):
    (tmp_path / "tasks").mkdir()
    planted = tmp_path / "tasks" / "main.yml"
    planted.write_text(
        "- name: gone\n  ansible.builtin.template:\n    src: nothing-here.j2\n    dest: /tmp/x\n",
        encoding="utf-8",
    )
    assert list(_refs(planted)) == [("gone", "templates", "nothing-here.j2")]
    assert not (tmp_path / "templates" / "nothing-here.j2").exists()


MODULE_FILES = sorted((ROOT / "plugins" / "modules").glob("*.py"))
DOC_PARTS = ("DOCUMENTATION", "EXAMPLES", "RETURN")


@pytest.mark.parametrize("path", MODULE_FILES, ids=lambda p: p.name)
def test_module_documentation_is_yaml(path: Path):
    """DOCUMENTATION, EXAMPLES and RETURN parse (ansible-doc and ansible-lint read them; a bad
    one makes `ansible-doc agent_workstation.aw.<module>` fail)."""
    import ast

    found = {
        node.targets[0].id: node.value.value
        for node in ast.parse(path.read_text(encoding="utf-8")).body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and node.targets[0].id in DOC_PARTS
    }
    assert set(found) == set(DOC_PARTS), f"{path.name}: {sorted(found)}"
    for name, text in found.items():
        try:
            yaml.safe_load(text)
        except yaml.YAMLError as exc:
            pytest.fail(f"{path.name} {name}: {exc}")
