"""Testinfra checks of roles/agent_stack against the stand-in images (see the role README)."""

from __future__ import annotations

import json
import os
import shlex
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
    assert len(ids) == 9, ids  # eight services and the Docker API filter
    return json.loads(sh(host, f"{DOCKER} inspect {' '.join(ids)}"))


def test_compose_project_validates(host):
    sh(host, f"cd {PROJECT} && sudo -u agent {DOCKER} compose config -q")


def test_secret_files_are_private(host):
    directory = host.file(SECRETS)
    assert directory.user == "agent" and directory.mode == 0o700
    for name in [*SECRET_NAMES, "qdrant_config.yaml", "redis_auth.conf"]:
        f = host.file(f"{SECRETS}/{name}")
        assert f.user == "agent" and f.mode == 0o400, name
    # V1 reads no LLM key from config.toml: no copy of the key is left in such a fragment.
    assert not host.file(f"{SECRETS}/openhands_config.toml").exists
    state = host.file("/srv/agent-workstation/state/openhands_llm_key.fingerprint")
    assert state.mode == 0o600 and state.content_string.startswith("sha256:")


def test_every_port_is_on_localhost(config, containers):
    published = [p for svc in config["services"].values() for p in svc.get("ports", [])]
    assert len(published) == 7  # the rerank adapter publishes nothing
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
        stateless = ("openhands", "rerank-adapter", "docker-socket-proxy")
        # Every service keeps its state in a named volume, except the stateless ones.
        assert any(m["Type"] == "volume" for m in c["Mounts"]) or any(
            s in name for s in stateless
        ), name


def test_secrets_reach_containers_only_as_files(containers):
    for c in containers:
        for m in c["Mounts"]:
            if m["Destination"].startswith("/run/secrets/"):
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
        "--revision=0123456789abcdef0123456789abcdef01234567",
        "--tokenizer-revision=0123456789abcdef0123456789abcdef01234567",
    ]:
        assert expected in args
    env = dict(e.split("=", 1) for e in vllm["Config"]["Env"])
    assert env["HF_HUB_OFFLINE"] == "1"
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
    # The key travels as Bearer only, as vLLM reads it: x-api-key alone gets 401 (as on 0.32).
    xkey = host.run(
        f"curl -s -o /dev/null -w '%{{http_code}}' -H 'x-api-key: {secrets['vllm_api_key']}' "
        "-H 'anthropic-version: 2023-06-01' -H 'content-type: application/json' "
        '-d \'{"model":"claude-sonnet-4-5","max_tokens":1,'
        '"messages":[{"role":"user","content":"hi"}]}\' '
        "http://127.0.0.1:8000/v1/messages"
    ).stdout
    assert xkey == "401"


def test_model_downloaded_once_then_offline(host):
    """The entrypoint's one-time download ran once (stand-in huggingface_hub), not per restart."""
    cid = sh(host, f"{DOCKER} ps -q --filter label=com.docker.compose.service=vllm").strip()
    log = sh(host, f"{DOCKER} exec {cid} cat /root/.cache/huggingface/standin-downloads")
    assert log.splitlines() == [
        "Qwen/Qwen2.5-Coder-32B-Instruct-AWQ@0123456789abcdef0123456789abcdef01234567"
    ]
    sh(host, f"{DOCKER} restart {cid}")
    sh(host, "timeout 60 sh -c 'until curl -sf http://127.0.0.1:8000/health; do sleep 1; done'")
    log = sh(host, f"{DOCKER} exec {cid} cat /root/.cache/huggingface/standin-downloads")
    assert len(log.splitlines()) == 1


def test_tei_arguments_match_tei_193(containers):
    """The stand-in exits 2 on any argument TEI 1.9.3 lacks; check the pinned revisions too."""
    for c in containers:
        service = c["Config"]["Labels"]["com.docker.compose.service"]
        if service.startswith("tei-"):
            args = c["Args"]
            assert "--served-model-name" in args and "--revision" in args, service
            assert c["State"]["Running"] and c["State"]["ExitCode"] == 0, service


def test_qdrant_refuses_to_start_without_its_key_file(host):
    image = sh(
        host,
        f"{DOCKER} ps --format '{{{{.Image}}}}' --filter label=com.docker.compose.service=qdrant",
    ).strip()
    cid = sh(host, f"{DOCKER} ps -q --filter label=com.docker.compose.service=qdrant").strip()
    entry = json.loads(sh(host, f"{DOCKER} inspect {cid}"))[0]["Config"]["Entrypoint"]
    run = host.run(
        f"{DOCKER} run --rm --entrypoint {entry[0]} {image} {entry[1]} {shlex.quote(entry[2])}"
    )
    assert run.rc == 1, run.stdout + run.stderr
    assert "refusing to start without an API key" in run.stderr


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
    statuses = {
        name: wiring[name]["status"]
        for name in ("vllm_models", "qdrant_collections", "embeddings", "rerank")
    }
    assert statuses == {
        "vllm_models": 200,
        "qdrant_collections": 200,
        "embeddings": 200,
        "rerank": 200,
    }
    # Open WebUI's own body through the adapter to TEI's /rerank: scores, not the fallback.
    scores = wiring["rerank_scores"]
    assert scores is not None and len(scores) == 2 and scores[1] > scores[0]
    assert wiring["settings"] == {
        "ENABLE_PERSISTENT_CONFIG": "false",
        "ENABLE_SIGNUP": "false",
        "RAG_EMBEDDING_QUERY_PREFIX": "search_query: ",
        "RAG_EMBEDDING_CONTENT_PREFIX": "search_document: ",
    }


def test_tei_rerank_rejects_openwebui_body_directly(host):
    """Why the adapter exists: TEI's /rerank answers 422 to Open WebUI's Jina/Cohere body."""
    code = host.run(
        "curl -s -o /dev/null -w '%{http_code}' -H 'content-type: application/json' "
        '-d \'{"model":"m","query":"q","documents":["a"],"top_n":1}\' '
        "http://127.0.0.1:8082/rerank"
    ).stdout
    assert code == "422"


def test_openhands_settings_written_through_the_api(host):
    wiring = json.loads(sh(host, "curl -sf http://127.0.0.1:3000/_standin/wiring"))
    assert wiring["llm"]["model"] == "openai/qwen2.5-coder-32b-instruct"
    assert wiring["llm"]["base_url"] == "http://vllm:8000/v1"
    assert wiring["llm"]["max_input_tokens"] == 24576
    assert wiring["llm"]["api_key"] is None  # masked on GET, as OpenHands does
    # One write on the first converge; the idempotence run and the -v re-run wrote nothing.
    assert wiring["settings_writes"] == 1
    assert wiring["docker_ping"] == {"status": 200, "body": "OK"}
    assert wiring["environment"] == {
        "AGENT_SERVER_IMAGE_REPOSITORY": "ghcr.io/openhands/agent-server",
        "AGENT_SERVER_IMAGE_TAG": "1.34.0-python",
        "DOCKER_HOST": "tcp://docker-socket-proxy:2375",
        "OH_SANDBOX_KIND": "DockerSandboxServiceInjector",
        "OH_SANDBOX_HOST_PORT": "3000",
        # agent_stack_openhands_max_sandboxes (3 in this scenario, default 2).
        "OH_SANDBOX_MAX_NUM_SANDBOXES": "3",
        "OH_PERSISTENCE_DIR": "/.openhands",
    }
    assert sh(host, "curl -sf http://127.0.0.1:3000/alive").strip() == '{"status": "ok"}'


def test_openhands_key_stored_by_openhands_not_in_the_role(host, secrets):
    cid = sh(host, f"{DOCKER} ps -q --filter label=com.docker.compose.service=openhands").strip()
    stored = json.loads(sh(host, f"{DOCKER} exec {cid} cat /.openhands/settings.json"))
    assert stored["agent_settings"]["llm"]["api_key"] == secrets["vllm_api_key"]


# Docker API requests sent from inside the OpenHands container, where OpenHands sends them, to
# the filter (the role's docker-socket-proxy.cfg run by Debian's haproxy). Paths carry the API
# version prefix docker-py adds. http.client does not normalise the path (".." stays as sent).
_PROXY_PROBE = r"""
import http.client, json, sys
out = []
for method, path in json.loads(sys.argv[1]):
    c = http.client.HTTPConnection("docker-socket-proxy", 2375, timeout=20)
    c.request(method, path, body=b"" if method == "POST" else None)
    r = c.getresponse()
    r.read()
    out.append(r.status)
print(json.dumps(out))
"""


def proxy_statuses(host, calls):
    cid = sh(host, f"{DOCKER} ps -q --filter label=com.docker.compose.service=openhands").strip()
    probe = shlex.quote(_PROXY_PROBE)
    arg = shlex.quote(json.dumps(calls))
    return dict(
        zip(
            [f"{m} {p}" for m, p in calls],
            json.loads(sh(host, f"{DOCKER} exec {cid} python3 -c {probe} {arg}")),
            strict=True,
        )
    )


def test_docker_api_filter_allows_what_openhands_calls(host):
    cid = sh(host, f"{DOCKER} ps -q --filter label=com.docker.compose.service=openhands").strip()
    got = proxy_statuses(
        host,
        [
            ["GET", "/version"],
            ["GET", "/v1.41/_ping"],
            ["GET", "/v1.41/containers/json?all=1"],
            ["GET", f"/v1.41/containers/{cid}/json"],
            ["GET", "/v1.41/images/ghcr.io%2Fopenhands%2Fagent-server:1.34.0-python/json"],
        ],
    )
    assert got == dict.fromkeys(got, 200), got


def test_docker_api_filter_denies_the_rest(host):
    cid = sh(host, f"{DOCKER} ps -q --filter label=com.docker.compose.service=openhands").strip()
    got = proxy_statuses(
        host,
        [
            ["GET", "/v1.41/secrets"],
            ["GET", "/swarm"],
            ["GET", "/v1.41/plugins"],
            ["POST", "/v1.41/build"],
            ["GET", "/v1.41/info"],
            ["GET", "/v1.41/events"],
            ["GET", "/v1.41/networks"],
            ["POST", "/v1.41/volumes/create"],
            ["POST", f"/v1.41/containers/{cid}/exec"],
            ["GET", f"/v1.41/containers/{cid}/archive?path=/"],
            ["POST", "/v1.41/images/create?fromSrc=-"],
            ["DELETE", "/v1.41/images/nothing-here:1"],  # 404 from the engine if let through
            ["GET", "/v1.41/containers/../secrets"],
            ["GET", "/v1.41/containers/%2e%2e/json"],
        ],
    )
    assert got == dict.fromkeys(got, 403), got


def test_openhands_has_no_docker_socket(host):
    """OpenHands reaches Docker only through the filter; only the proxy mounts the socket."""
    ids = {
        svc: sh(host, f"{DOCKER} ps -q --filter label=com.docker.compose.service={svc}").strip()
        for svc in ("openhands", "docker-socket-proxy")
    }
    oh = json.loads(sh(host, f"{DOCKER} inspect {ids['openhands']}"))[0]
    proxy = json.loads(sh(host, f"{DOCKER} inspect {ids['docker-socket-proxy']}"))[0]
    assert not [
        m for m in oh["Mounts"] if "docker.sock" in (m.get("Source", "") + m["Destination"])
    ], oh["Mounts"]
    assert [m["Source"] for m in proxy["Mounts"] if m["Destination"] == "/var/run/docker.sock"] == [
        "/var/run/docker.sock"
    ]
    assert (
        sh(
            host,
            f"{DOCKER} exec {ids['openhands']} "
            "sh -c 'ls /var/run/docker.sock /run/docker.sock 2>&1 || true'",
        ).count("No such file")
        == 2
    )
    # The proxy publishes no port and sits only on the internal docker_api network.
    assert proxy["HostConfig"]["PortBindings"] in ({}, None)
    assert sorted(proxy["NetworkSettings"]["Networks"]) == ["agent-stack_docker_api"]
    net = json.loads(sh(host, f"{DOCKER} network inspect agent-stack_docker_api"))[0]
    assert net["Internal"] is True


def test_sandbox_image_tagged_with_the_plain_name(host):
    tags = json.loads(
        sh(host, f"{DOCKER} image inspect ghcr.io/openhands/agent-server:1.34.0-python")
    )[0]["RepoTags"]
    assert "ghcr.io/openhands/agent-server:1.34.0-python" in tags


def test_no_internal_sandbox_network_claimed(host):
    """V1 never puts sandboxes on a project network: none is created to suggest otherwise."""
    nets = sh(host, f"{DOCKER} network ls --format '{{{{.Name}}}}'").split()
    assert "agent-stack_sandbox" not in nets


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
    token = sh(
        host, "su - agent -c 'echo $ANTHROPIC_AUTH_TOKEN $CLAUDE_CODE_MAX_OUTPUT_TOKENS'"
    ).split()
    assert token == [secrets["vllm_api_key"], "4096"]
    # Not exported by default: Claude Code would send it as x-api-key, which vLLM rejects.
    assert sh(host, "su - agent -c 'echo \"[$ANTHROPIC_API_KEY]\"'").strip() == "[]"


def test_messages_with_exactly_the_clients_env(host):
    """A /v1/messages call made from clients.env sourced in a shell, as a user does: streamed,
    one tool, only the headers Claude Code sends with ANTHROPIC_AUTH_TOKEN."""
    body = json.dumps(
        {
            "model": "claude-sonnet-4-5",
            "max_tokens": 64,
            "stream": True,
            "tools": [
                {
                    "name": "get_current_time",
                    "description": "time",
                    "input_schema": {"type": "object"},
                }
            ],
            "messages": [{"role": "user", "content": "What time is it?"}],
        }
    )
    host.run(f"cat > /tmp/aw-msg.json <<'EOF'\n{body}\nEOF")
    out = sh(
        host,
        "su - agent -c 'set -a; . ~/.config/agent-workstation/clients.env; set +a; "
        'curl -sf -H "Authorization: Bearer $ANTHROPIC_AUTH_TOKEN" '
        '-H "anthropic-version: 2023-06-01" -H "content-type: application/json" '
        '--data @/tmp/aw-msg.json "$ANTHROPIC_BASE_URL/v1/messages"\'',
    )
    assert out.startswith("event: message_start")
    assert "event: message_stop" in out


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
        ANSIBLE_COLLECTIONS_PATH=f"{root}/collections",
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
