"""The workstation contract (roles/workstation) is the one place the shared facts are written.

- every role depends on roles/workstation, so its workstation_* defaults resolve when a role runs
  alone (Molecule, a playbook of one's own) as well as in site.yml;
- no shared fact (the data directory, the compose project names, every port of the contract) has
  a second literal in roles, playbooks, inventories or templates: comments, READMEs, tests and
  Molecule scenarios are documentation or test input and are not read;
- the shipped inventory sets only what differs from the defaults (kubespray's sample inventory
  style: the rest is shown commented);
- every contract variable is read somewhere outside the contract.

What counts as a literal port (LITERAL_PATTERNS): the port after a host address
(127.0.0.1:8000, localhost:, host.docker.internal:, 0.0.0.0:, 10.0.2.2:), the value of a key
or option named *port* (`port: 8000`, `--port 8000`), and an integer item of a YAML list whose
key is named *port*. A container's own port on its Compose network (`redis://redis:6379`, the
right side of "HOST:PORT:CONTAINER_PORT") is the image's, not the workstation's, and is not one.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CONTRACT_ROLE = ROOT / "roles" / "workstation"
CONTRACT_FILE = CONTRACT_ROLE / "defaults" / "main.yml"
CONTRACT = yaml.safe_load(CONTRACT_FILE.read_text(encoding="utf-8"))
ROLES = sorted(p for p in (ROOT / "roles").iterdir() if (p / "tasks" / "main.yml").exists())
INVENTORY = ROOT / "inventories" / "workstation" / "group_vars" / "all"

# Files that hold shared facts if anything does. Molecule scenarios and READMEs are left out
# (test input and documentation), and so is the contract's own argument spec: its defaults are
# kept equal to the contract by tests/lint/test_argument_specs.py, so it cannot drift.
_SUFFIXES = {".yml", ".yaml", ".j2", ".py", ".sh", ".cfg", ".toml", ".json"}


def _scanned_files() -> list[Path]:
    files = [ROOT / "site.yml"]
    for base in ("playbooks", "inventories", "roles"):
        for path in sorted((ROOT / base).rglob("*")):
            rel = path.relative_to(ROOT).as_posix()
            if not path.is_file() or path.suffix not in _SUFFIXES:
                continue
            if "/molecule/" in rel or path == CONTRACT_FILE:
                continue
            if path == CONTRACT_ROLE / "meta" / "argument_specs.yml":
                continue
            files.append(path)
    return files


def _ports() -> dict[int, str]:
    ports = {}
    for name, value in CONTRACT.items():
        if name.endswith("_port"):
            assert isinstance(value, int), f"{name} is not an integer in the contract"
            ports[value] = name
    return ports


def literal_patterns(ports: dict[int, str]) -> list[tuple[re.Pattern[str], str]]:
    """(pattern, the contract variable to use instead) for every shared fact."""
    data_dir = CONTRACT["workstation_data_dir"]
    stack = CONTRACT["workstation_stack_project"]
    obs = CONTRACT["workstation_observability_project"]
    patterns = [
        (re.compile(re.escape(data_dir) + r"(?![\w-])"), "workstation_data_dir"),
        # The stack project: alone or as a prefix of its volumes and networks (agent-stack_backend).
        (
            re.compile(
                r"(?<![\w-])"
                + re.escape(stack)
                + r"(?![\w-]*-)(?!\w)|(?<![\w-])"
                + re.escape(stack)
                + "_"
            ),
            "workstation_stack_project",
        ),
        # The observability project: as a Compose name, a directory, a volume prefix.
        (
            re.compile(r"^name:\s*['\"]?" + re.escape(obs) + r"['\"]?\s*$", re.M),
            "workstation_observability_project",
        ),
        (
            re.compile(r"compose/" + re.escape(obs) + r"(?![\w-])"),
            "workstation_observability_project",
        ),
        (
            re.compile(r"(?<![\w-])" + re.escape(obs) + r"_[a-z0-9]+-[a-z0-9-]+"),
            "workstation_observability_project",
        ),
    ]
    for port, name in ports.items():
        num = rf"{port}(?![\d.])"
        patterns += [
            (
                re.compile(
                    rf"(?:127\.0\.0\.1|localhost|host\.docker\.internal|0\.0\.0\.0|10\.0\.2\.2):{num}"
                ),
                name,
            ),
            (re.compile(rf"(?<![\w.])\w*port\w*['\"]?\s*[:=]\s*['\"]?{num}", re.I), name),
            (re.compile(rf"--[\w-]*port[ =]['\"]?{num}"), name),
        ]
    return patterns


def strip_comments(text: str, suffix: str) -> str:
    """The text without comments (YAML, shell and Python `#`, Jinja `{# #}`), line numbers kept."""
    text = re.sub(r"\{#.*?#\}", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    if suffix == ".json":
        return text
    # A `#` that starts a line or follows a blank starts a comment; one inside a word does not
    # (apt's "$(ARCH)", a URL fragment).
    return "\n".join(re.sub(r"(^|\s)#.*$", r"\1", line) for line in text.split("\n"))


def find_literals(text: str, suffix: str, ports: dict[int, str]) -> list[tuple[int, str, str]]:
    """(line number, the literal, the contract variable) of every shared fact written out."""
    clean = strip_comments(text, suffix)
    found = []
    for pattern, name in literal_patterns(ports):
        for match in pattern.finditer(clean):
            line = clean.count("\n", 0, match.start()) + 1
            found.append((line, match.group(0).strip(), name))
    if suffix in {".yml", ".yaml"}:
        found += _port_list_items(clean, ports)
    return sorted(set(found))


def _port_list_items(text: str, ports: dict[int, str]) -> list[tuple[int, str, str]]:
    """Integer items of a YAML list under a key named *port* (block or flow style)."""
    found = []
    key = None
    for number, line in enumerate(text.split("\n"), start=1):
        flow = re.match(r"^\s*-?\s*([\w]*port\w*):\s*\[(.*)\]\s*$", line, re.I)
        if flow:
            for item in re.findall(r"-?\d+", flow.group(2)):
                if int(item) in ports:
                    found.append((number, line.strip(), ports[int(item)]))
            key = None
            continue
        block = re.match(r"^\s*-?\s*(\w+):\s*$", line)
        if block:
            key = block.group(1) if "port" in block.group(1).lower() else None
            continue
        item = re.match(r"^\s*-\s*['\"]?(\d+)['\"]?\s*$", line)
        if key and item and int(item.group(1)) in ports:
            found.append((number, line.strip(), ports[int(item.group(1))]))
        elif not item and line.strip():
            key = None
    return found


def test_the_contract_defines_the_shared_facts():
    for name in (
        "workstation_service_user",
        "workstation_service_user_home",
        "workstation_data_dir",
        "workstation_stack_project",
        "workstation_observability_project",
        "workstation_docker_host",
        "workstation_llm_base_url",
        "workstation_llm_api_key_file",
        "workstation_llm_served_model_names",
    ):
        assert name in CONTRACT, f"the contract (roles/workstation) lacks {name}"
    assert len(_ports()) >= 17, "the contract should name every port of the site"
    assert len(set(_ports())) == len([n for n in CONTRACT if n.endswith("_port")]), (
        "two contract ports share a number"
    )


def test_the_contract_has_no_tasks():
    # A defaults-only role: as a dependency of every role it must not add work to each run (its
    # tasks/facts.yml runs only where a role or playbook includes it).
    assert not (CONTRACT_ROLE / "tasks" / "main.yml").exists()


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_every_role_depends_on_the_contract(role):
    meta = yaml.safe_load((role / "meta" / "main.yml").read_text(encoding="utf-8"))
    names = [
        d if isinstance(d, str) else d.get("role", d.get("name"))
        for d in meta.get("dependencies") or []
    ]
    assert "workstation" in names, (
        f"{role.name}/meta/main.yml: add `dependencies: [{{role: workstation}}]` so the "
        "workstation_* variables its defaults use resolve when it runs alone"
    )


SCANNED = _scanned_files()

# Ports that are the software's own inside its container (the image's, not the workstation's):
# the host side of each is published from the contract. Each entry must still be found, so a
# stale one fails too. (file, literal): why.
CONTAINER_PORTS = {
    (
        "roles/agent_stack/templates/compose.yml.j2",
        "--port=8000",
    ): "vLLM's port inside its container",
    ("roles/agent_stack/templates/compose.yml.j2", "port=8000"): "the same argument",
    (
        "roles/agent_stack/templates/compose.yml.j2",
        "127.0.0.1:8000",
    ): "vLLM's healthcheck, run inside its container",
    (
        "roles/agent_stack/templates/compose.yml.j2",
        "127.0.0.1:3000",
    ): "OpenHands' healthcheck, run inside its container",
    (
        "roles/observability/templates/loki/loki.yml.j2",
        "http_listen_port: 3100",
    ): "Loki's port inside its container",
}


@pytest.mark.parametrize("path", SCANNED, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_second_literal_of_a_shared_fact(path):
    rel = path.relative_to(ROOT).as_posix()
    found = find_literals(path.read_text(encoding="utf-8"), path.suffix, _ports())
    allowed = {literal for (file, literal) in CONTAINER_PORTS if file == rel}
    stale = allowed - {literal for _, literal, _ in found}
    assert not stale, (
        f"{rel}: CONTAINER_PORTS lists {sorted(stale)}, which is no longer there: remove it"
    )
    found = [hit for hit in found if hit[1] not in allowed]
    assert not found, "\n".join(
        f"{path.relative_to(ROOT)}:{line}: {literal!r} is a shared fact; write it as"
        f" {{{{ {name} }}}} (roles/workstation/defaults/main.yml)"
        for line, literal, name in found
    )


# The scanner itself: each row must be found (a scanner that finds nothing passes every file).
@pytest.mark.parametrize(
    ("text", "suffix", "variable"),
    [
        ("agent_stack_root: /srv/agent-workstation\n", ".yml", "workstation_data_dir"),
        ('x: "{{ a }}/srv/agent-workstation/secrets"\n', ".yml", "workstation_data_dir"),
        ("  - --project-name\n  - agent-stack\n", ".yml", "workstation_stack_project"),
        ("volumes: [agent-stack_redis_data]\n", ".yml", "workstation_stack_project"),
        ("name: observability\nservices: {}\n", ".j2", "workstation_observability_project"),
        ("- observability_grafana-data\n", ".yml", "workstation_observability_project"),
        ("dir: /x/compose/observability\n", ".yml", "workstation_observability_project"),
        ('url: "http://127.0.0.1:8000/v1"\n', ".yml", "workstation_vllm_port"),
        ("listen: localhost:9090\n", ".yml", "workstation_prometheus_port"),
        ("agent_stack_vllm_port: 8000\n", ".yml", "workstation_vllm_port"),
        (
            "firewall_tailnet_tcp_ports: [443, 8443, 3443]\n",
            ".yml",
            "workstation_openhands_https_port",
        ),
        ("firewall_allowed_tcp_ports:\n  - 443\n", ".yml", "workstation_openwebui_https_port"),
        ("DEFAULT_PORT = 8765\n", ".py", "workstation_code_index_port"),
        ("exec server --port 6333\n", ".sh", "workstation_qdrant_port"),
    ],
)
def test_the_scanner_finds_a_planted_literal(text, suffix, variable):
    names = {name for _, _, name in find_literals(text, suffix, _ports())}
    assert variable in names, f"{text!r}: found only {names}"


@pytest.mark.parametrize(
    ("text", "suffix"),
    [
        ("# agent_stack_root: /srv/agent-workstation\n", ".yml"),  # a comment
        ("{# 127.0.0.1:8000 #}\nname: x\n", ".j2"),  # a Jinja comment
        ('addr: "redis://redis:6379"\n', ".yml"),  # Redis's own port on its network
        ('- "{{ observability_grafana_listen }}:3000"\n', ".j2"),  # Grafana's container port
        ("observability_grafana_dir: x\n", ".yml"),  # a variable name, not the project
        ("tag: 4.5.2-4.8.1-ubuntu22.04\n", ".yml"),
        ("timeout: 3000\n", ".yml"),  # not a port
    ],
)
def test_the_scanner_leaves_what_is_not_a_shared_fact(text, suffix):
    assert find_literals(text, suffix, _ports()) == []


# The service user's runtime directory and its rootless engine's socket are looked up and
# derived in ONE task file (the first landing derived DOCKER_HOST in nine places, which drifted):
# roles and playbooks include roles/workstation/tasks/facts.yml and read workstation_user_facts.
FACTS_FILE = CONTRACT_ROLE / "tasks" / "facts.yml"
_RUNTIME_DIR = re.compile(r"/run/user/")


def find_derivations(text: str, suffix: str) -> list[int]:
    """Line numbers that write the runtime directory (/run/user/...) out, comments left aside."""
    clean = strip_comments(text, suffix)
    return [clean.count("\n", 0, m.start()) + 1 for m in _RUNTIME_DIR.finditer(clean)]


def test_the_facts_file_derives_the_docker_endpoint():
    text = FACTS_FILE.read_text(encoding="utf-8")
    assert find_derivations(text, ".yml"), "roles/workstation/tasks/facts.yml derives nothing"
    assert "workstation_user_facts" in text and "docker_host" in text


@pytest.mark.parametrize(
    "path",
    # Argument specs describe the derived default in words; they are documentation.
    [p for p in SCANNED if p != FACTS_FILE and p.name != "argument_specs.yml"],
    ids=lambda p: p.relative_to(ROOT).as_posix(),
)
def test_no_second_derivation_of_the_docker_endpoint(path):
    lines = find_derivations(path.read_text(encoding="utf-8"), path.suffix)
    assert not lines, (
        f"{path.relative_to(ROOT)}:{lines}: the runtime directory or the Docker socket derived"
        " again; include roles/workstation/tasks/facts.yml and read workstation_user_facts"
        " (runtime_dir, docker_host)"
    )


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ('DOCKER_HOST: "unix:///run/user/{{ uid }}/docker.sock"\n', [1]),
        ('x: 1\nXDG_RUNTIME_DIR: "/run/user/{{ uid }}"\n', [2]),
        ("# unix:///run/user/<uid>/docker.sock\n", []),
    ],
)
def test_the_derivation_scanner(text, found):
    assert find_derivations(text, ".yml") == found


def _role_defaults() -> dict[str, object]:
    merged: dict[str, object] = dict(CONTRACT)
    for role in ROLES:
        merged.update(
            yaml.safe_load((role / "defaults" / "main.yml").read_text(encoding="utf-8")) or {}
        )
    return merged


INVENTORY_FILES = sorted(INVENTORY.glob("*.yml"))


@pytest.mark.parametrize("path", INVENTORY_FILES, ids=lambda p: p.name)
def test_the_inventory_sets_only_what_differs(path):
    defaults = _role_defaults()
    values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    same = [name for name, value in values.items() if name in defaults and defaults[name] == value]
    assert not same, (
        f"{path.relative_to(ROOT)} sets {same} to their defaults; comment them out "
        "(`# name: value`) so a change of the default or the contract reaches this workstation"
    )


@functools.cache
def _text_outside_the_contract() -> str:
    parts = []
    for path in SCANNED:  # comments stripped: the inventory's commented copy is not a use
        parts.append(strip_comments(path.read_text(encoding="utf-8"), path.suffix))
    # The check stage's filters read role variables by name (plugins/filter/aw_check.py).
    parts += [p.read_text(encoding="utf-8") for p in sorted((ROOT / "plugins").rglob("*.py"))]
    contract_text = CONTRACT_FILE.read_text(encoding="utf-8")
    # Contract variables may be built from each other (workstation_secrets_dir from the data dir).
    parts.append(
        "\n".join(
            line.split(":", 1)[1]
            for line in contract_text.splitlines()
            if ":" in line and not line.startswith("#")
        )
    )
    return "\n".join(parts)


@pytest.mark.parametrize("name", sorted(CONTRACT), ids=str)
def test_every_contract_variable_is_read(name):
    assert re.search(rf"\b{name}\b", _text_outside_the_contract()), (
        f"{name} is in the contract but nothing reads it: remove it, or write the role defaults "
        "that mean it in its terms"
    )


def test_the_inventory_reads_only_what_every_play_has():
    # A play sees the inventory and the contract, but another role's defaults only where that
    # role runs: `code_index_embed_model: "{{ agent_stack_tei_embed_model }}"` breaks the code
    # retrieval play once the inventory stops setting agent_stack_tei_embed_model.
    defined = dict(CONTRACT)
    texts = {}
    for path in INVENTORY_FILES:
        defined.update(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
        texts[path] = strip_comments(path.read_text(encoding="utf-8"), path.suffix)
    role_defaults = set(_role_defaults()) - set(CONTRACT)
    missing = []
    for path, text in texts.items():
        for expression in re.findall(r"\{\{(.*?)\}\}", text, flags=re.S):
            # A name read with `| default(...)` is meant to be absent where its role does not run.
            for name in re.findall(
                r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b(?!\s*\|\s*default\b)", expression
            ):
                if name in role_defaults and name not in defined:
                    missing.append(f"{path.name}: {name}")
    assert not missing, (
        "the inventory reads role defaults it does not set (undefined in other roles' plays); "
        f"use the contract variable instead: {sorted(set(missing))}"
    )
