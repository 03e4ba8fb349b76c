"""Testinfra checks of roles/agent_stack against the stand-in images (see the role README)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

PROJECT = "/srv/agent-workstation/compose/agent-stack"
SECRETS = "/srv/agent-workstation/secrets"
SECRET_NAMES = [
    "vllm_api_key",
    "qdrant_api_key",
    "redis_password",
    "openwebui_admin_password",
    "openwebui_secret_key",
]
DOCKER = "DOCKER_HOST=unix:///var/run/docker.sock docker"
ALIASES = ["qwen2.5-coder-32b-instruct", "claude-sonnet-4-5", "claude-haiku-4-5"]


def sh(host, cmd: str) -> str:
    result = host.run(cmd)
    assert result.rc == 0, f"{cmd}: rc={result.rc} {result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def secrets(host) -> dict[str, str]:
    values = {name: host.file(f"{SECRETS}/{name}").content_string.strip() for name in SECRET_NAMES}
    assert all(len(v) == 40 for v in values.values())
    return values


@pytest.fixture(scope="module")
def config(host) -> dict:
    return json.loads(
        sh(host, f"cd {PROJECT} && sudo -u agent {DOCKER} compose config --format json")
    )


@pytest.fixture(scope="module")
def containers(host) -> list[dict]:
    ids = sh(host, f"{DOCKER} ps -aq --filter label=com.docker.compose.project=agent-stack").split()
    assert len(ids) == 7, ids
    return json.loads(sh(host, f"{DOCKER} inspect {' '.join(ids)}"))


def test_compose_project_validates(host):
    sh(host, f"cd {PROJECT} && sudo -u agent {DOCKER} compose config -q")


def test_secret_files_are_private(host):
    directory = host.file(SECRETS)
    assert directory.user == "agent" and directory.mode == 0o700
    for name in [*SECRET_NAMES, "qdrant_config.yaml", "redis_auth.conf", "openhands_config.toml"]:
        f = host.file(f"{SECRETS}/{name}")
        assert f.user == "agent" and f.mode == 0o400, name


def test_every_port_is_on_localhost(config, containers):
    published = [p for svc in config["services"].values() for p in svc.get("ports", [])]
    assert len(published) == 7
    assert {p["host_ip"] for p in published} == {"127.0.0.1"}
    for c in containers:
        for bindings in (c["HostConfig"]["PortBindings"] or {}).values():
            assert {b["HostIp"] for b in bindings} == {"127.0.0.1"}, c["Name"]


def test_no_secret_in_rendered_files_or_inspect(host, secrets, config, containers):
    compose_text = host.file(f"{PROJECT}/compose.yml").content_string
    environments = json.dumps([svc.get("environment", {}) for svc in config["services"].values()])
    inspect_text = json.dumps(containers)
    for name, value in secrets.items():
        assert value not in compose_text, name
        assert value not in environments, name
        assert value not in inspect_text, name


def test_containers_pinned_policies(containers):
    for c in containers:
        name = c["Name"]
        assert c["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped", name
        assert c["HostConfig"]["LogConfig"] == {
            "Type": "json-file",
            "Config": {"max-file": "3", "max-size": "10m"},
        }, name
        assert c["Config"]["Healthcheck"]["Test"], name
        assert c["State"]["Health"]["Status"] == "healthy", name
        assert any(m["Type"] == "volume" for m in c["Mounts"]) or "openhands" not in name, name


def test_secrets_reach_containers_only_as_files(containers):
    for c in containers:
        for m in c["Mounts"]:
            if (
                m["Destination"].startswith("/run/secrets/")
                or m["Destination"] == "/app/config.toml"
            ):
                assert m["Source"].startswith(SECRETS + "/"), m
                assert not m["RW"], m


def test_vllm_arguments_and_aliases(host, containers, secrets):
    vllm = next(
        c for c in containers if c["Config"]["Labels"]["com.docker.compose.service"] == "vllm"
    )
    args = vllm["Args"]
    for expected in [
        "--enable-prefix-caching",
        "--enable-auto-tool-choice",
        "--tool-call-parser=hermes",
        "--max-model-len=24576",
        "--kv-cache-dtype=fp8",
        "--gpu-memory-utilization=0.92",
        "--max-num-seqs=4",
    ]:
        assert expected in args
    assert args[args.index("--served-model-name") + 1 :][:3] == ALIASES
    assert (
        host.run("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8000/v1/models").stdout
        == "401"
    )
    models = json.loads(
        sh(
            host,
            f"curl -sf -H 'Authorization: Bearer {secrets['vllm_api_key']}' http://127.0.0.1:8000/v1/models",
        )
    )
    assert [m["id"] for m in models["data"]] == ALIASES


def test_qdrant_demands_its_key(host, secrets):
    assert (
        host.run("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:6333/collections").stdout
        == "401"
    )
    sh(
        host,
        f"curl -sf -H 'api-key: {secrets['qdrant_api_key']}' http://127.0.0.1:6333/collections",
    )
    assert (
        host.run("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:6333/healthz").stdout
        == "200"
    )


def test_redis_password_and_appendonly(host):
    cid = sh(host, f"{DOCKER} ps -q --filter label=com.docker.compose.service=redis").strip()
    noauth = host.run(f"{DOCKER} exec {cid} redis-cli ping")
    assert "NOAUTH" in noauth.stdout + noauth.stderr
    out = sh(
        host,
        f"{DOCKER} exec {cid} sh -c "
        "'REDISCLI_AUTH=$(cat /run/secrets/redis_password) redis-cli config get appendonly'",
    )
    assert out.split() == ["appendonly", "yes"]


def test_openwebui_wiring(host):
    wiring = json.loads(sh(host, "curl -sf http://127.0.0.1:3001/_standin/wiring"))
    assert {name: check["status"] for name, check in wiring.items()} == {
        "vllm_models": 200,
        "qdrant_collections": 200,
        "embeddings": 200,
        "rerank": 200,
    }


def test_openhands_wiring(host):
    wiring = json.loads(sh(host, "curl -sf http://127.0.0.1:3000/_standin/wiring"))
    assert wiring["llm_models"]["status"] == 200
    assert wiring["llm_model"] == "openai/qwen2.5-coder-32b-instruct"
    assert wiring["max_input_tokens"] == 24576
    assert wiring["docker_ping"] == {"status": 200, "body": "OK"}
    assert wiring["sandbox"]["docker_runtime_kwargs"]["network"] == "agent-stack_sandbox"


def test_sandbox_network_is_internal(host):
    net = json.loads(sh(host, f"{DOCKER} network inspect agent-stack_sandbox"))[0]
    assert net["Internal"] is True


def test_clients_environment(host, secrets):
    env_file = host.file("/home/agent/.config/agent-workstation/clients.env")
    assert env_file.user == "agent" and env_file.mode == 0o600
    out = sh(
        host,
        "su - agent -c 'echo $ANTHROPIC_BASE_URL $ANTHROPIC_MODEL $ANTHROPIC_DEFAULT_SONNET_MODEL "
        "$GUARDKIT_MAX_PARALLEL_TASKS $OPENAI_BASE_URL $CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC'",
    )
    assert out.split() == [
        "http://127.0.0.1:8000",
        "qwen2.5-coder-32b-instruct",
        "claude-sonnet-4-5",
        "2",
        "http://127.0.0.1:8000/v1",
        "1",
    ]
    key = sh(host, "su - agent -c 'echo $ANTHROPIC_API_KEY'").strip()
    assert key == secrets["vllm_api_key"]


def test_verbose_run_leaks_no_secret(host, secrets):
    """Re-runs the converge with -v on the controller and greps its whole output for the secrets."""
    eph = os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY")
    inventory = os.environ.get("MOLECULE_INVENTORY_FILE")
    root = os.environ.get("AW_ROOT", str(Path(__file__).resolve().parents[5]))
    assert eph and inventory, "run through molecule (scripts/molecule.sh agent_stack verify)"
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=f"{eph}/ansible.cfg",
        ANSIBLE_ROLES_PATH=f"{root}/roles",
        ANSIBLE_LIBRARY=f"{root}/plugins/modules",
        ANSIBLE_MODULE_UTILS=f"{root}/plugins/module_utils",
        MOLECULE_PROJECT_DIRECTORY=f"{root}/roles/agent_stack",
        ANSIBLE_FORCE_COLOR="false",
    )
    run = subprocess.run(
        ["ansible-playbook", "-v", "-i", inventory, f"{root}/.config/molecule/converge.yml"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-3000:]
    assert "changed=0" in output
    for name, value in secrets.items():
        assert value not in output, name
