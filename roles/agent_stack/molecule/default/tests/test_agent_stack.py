"""Testinfra checks of roles/agent_stack with the REAL vLLM (CPU build), Open WebUI and OpenHands
under the service user's rootless Docker; Qdrant and TEI are stand-ins (see the role README)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[5] / "tests/molecule_helpers"))
from openhands_rest import container_of, converse, vllm_requests

PROJECT = "/srv/agent-workstation/compose/agent-stack"
SECRETS = "/srv/agent-workstation/secrets"
SECRET_NAMES = [
    "vllm_api_key",
    "qdrant_api_key",
    "redis_password",
    "openwebui_admin_password",
    "openwebui_secret_key",
]
# The service user's rootless engine (roles/docker_rootless), as the role drives it.
DOCKER = (
    "runuser -u agent -- env XDG_RUNTIME_DIR=/run/user/$(id -u agent) "
    "DOCKER_HOST=unix:///run/user/$(id -u agent)/docker.sock docker"
)
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
    return json.loads(sh(host, f"cd {PROJECT} && {DOCKER} compose config --format json"))


@pytest.fixture(scope="module")
def containers(host) -> list[dict]:
    ids = sh(host, f"{DOCKER} ps -aq --filter label=com.docker.compose.project=agent-stack").split()
    assert len(ids) == 9, ids  # eight services and the Docker API filter
    return json.loads(sh(host, f"{DOCKER} inspect {' '.join(ids)}"))


def test_compose_project_validates(host):
    sh(host, f"cd {PROJECT} && {DOCKER} compose config -q")


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
        "--gpu-memory-utilization=0.2",
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


def test_model_served_from_the_image_cache_offline(host, containers):
    """The shim found its first-start marker (the image's cache, copied into the hf_cache volume):
    no download was attempted, and vLLM resolved the pinned revision offline."""
    vllm = next(
        c for c in containers if c["Config"]["Labels"]["com.docker.compose.service"] == "vllm"
    )
    logs = host.run(f"{DOCKER} logs {vllm['Id']}")
    text = logs.stdout + logs.stderr
    assert "downloading Qwen/Qwen2.5-Coder-32B-Instruct-AWQ" not in text
    snap = (
        "/root/.cache/huggingface/hub/models--Qwen--Qwen2.5-Coder-32B-Instruct-AWQ/snapshots/"
        "0123456789abcdef0123456789abcdef01234567/config.json"
    )
    sh(host, f"{DOCKER} exec {vllm['Id']} test -s {snap}")
    assert any(
        m["Type"] == "volume" and m["Destination"] == "/root/.cache/huggingface"
        for m in vllm["Mounts"]
    )


def vllm_success_total(host) -> float:
    """vLLM's vllm:request_success_total (all finish reasons), read from /metrics (no key)."""
    text = sh(host, "curl -sf http://127.0.0.1:8000/metrics")
    total = 0.0
    for line in text.splitlines():
        if line.startswith("vllm:request_success_total"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def http(host, method: str, url: str, body=None, headers: dict | None = None) -> tuple[int, object]:
    """curl from inside the instance; (status, parsed JSON or text)."""
    args = ["curl", "-s", "-o", "/tmp/aw-body", "-w", "%{http_code}", "-X", method]
    for k, v in {"content-type": "application/json", **(headers or {})}.items():
        args += ["-H", f"{k}: {v}"]
    if body is not None:
        host.run(f"cat > /tmp/aw-req.json <<'EOF'\n{json.dumps(body)}\nEOF")
        args += ["--data", "@/tmp/aw-req.json"]
    code = host.run(" ".join(shlex.quote(a) for a in [*args, url])).stdout.strip()
    raw = host.file("/tmp/aw-body").content_string
    try:
        return int(code), json.loads(raw)
    except ValueError:
        return int(code), raw


@pytest.fixture(scope="module")
def webui_token(host, secrets) -> str:
    status, body = http(
        host,
        "POST",
        "http://127.0.0.1:3001/api/v1/auths/signin",
        {"email": "admin@localhost", "password": secrets["openwebui_admin_password"]},
    )
    assert status == 200, body
    return str(body["token"])


def test_openwebui_admin_signin_with_the_secret(host, webui_token, secrets):
    assert webui_token
    status, _ = http(
        host,
        "POST",
        "http://127.0.0.1:3001/api/v1/auths/signin",
        {"email": "admin@localhost", "password": secrets["openwebui_admin_password"] + "x"},
    )
    assert status in (400, 401, 403), status  # a wrong password is refused


def test_openwebui_signup_is_refused(host, webui_token):
    status, body = http(
        host,
        "POST",
        "http://127.0.0.1:3001/api/v1/auths/signup",
        {"name": "Mallory", "email": "mallory@example.com", "password": "Mallory-pass-1"},
    )
    assert status == 403, body


def test_openwebui_chat_reaches_vllm(host, webui_token):
    auth = {"Authorization": f"Bearer {webui_token}"}
    status, body = http(host, "GET", "http://127.0.0.1:3001/api/models", headers=auth)
    assert status == 200, body
    assert ALIASES[0] in [m["id"] for m in body["data"]], body
    before = vllm_success_total(host)
    status, body = http(
        host,
        "POST",
        "http://127.0.0.1:3001/api/chat/completions",
        {
            "model": ALIASES[0],
            "stream": False,
            "max_tokens": 8,
            "messages": [{"role": "user", "content": "Say hello."}],
        },
        headers=auth,
    )
    assert status == 200, body
    assert vllm_success_total(host) >= before + 1


# Open WebUI 0.12.4's own reranker client (open_webui/retrieval/models/external.py,
# ExternalReranker: posts {model, query, documents, top_n}, reads results[].relevance_score) run
# in the Open WebUI container with the URL and model the role gives it: the scores must come
# from the TEI stand-in's /rerank through the role's adapter, not the client's fallback (None).
_RERANK_PROBE = r"""
import json, os
from open_webui.retrieval.models.external import ExternalReranker
r = ExternalReranker(api_key="", url=os.environ["RAG_EXTERNAL_RERANKER_URL"],
                     model=os.environ["RAG_RERANKING_MODEL"])
q = "who feeds the cats at dawn"
scores = r.predict([(q, "gravel roads are repaired in spring"),
                    (q, "the keeper feeds the cats every morning at dawn")])
print(json.dumps(None if scores is None else [float(s) for s in scores]))
"""


def test_openwebui_reranker_client_gets_reranker_scores(host):
    cid = sh(host, f"{DOCKER} ps -q --filter label=com.docker.compose.service=open-webui").strip()
    # The probe is a second Python process importing open_webui, which refuses to import without
    # WEBUI_SECRET_KEY (the server gets it from its secret file through the role's shim): a
    # throw-away value for this process only.
    out = sh(
        host,
        f"{DOCKER} exec -e WEBUI_SECRET_KEY=probe-only {cid} python3 -c "
        f"{shlex.quote(_RERANK_PROBE)}",
    )
    scores = json.loads(out.strip().splitlines()[-1])
    assert scores is not None and len(scores) == 2, out
    # The TEI stand-in scores shared words (not a model): the second text shares more.
    assert scores[1] > scores[0], scores


DOC_TEXT = (
    "The lighthouse keeper of Port Azure feeds seven cats every morning at dawn.\n"
    "Gravel roads in the valley are repaired each spring by the village council.\n"
)


def test_openwebui_document_embedded_stored_and_reranked(host, webui_token, secrets):
    """A document uploaded to the real Open WebUI is embedded (TEI stand-in), stored in the Qdrant
    stand-in through Open WebUI's own qdrant-client, and a query's scores are the reranker's
    (the TEI stand-in's /rerank through the role's adapter), not the fallback."""
    auth = {"Authorization": f"Bearer {webui_token}"}
    host.run(f"cat > /tmp/aw-lighthouse.txt <<'EOF'\n{DOC_TEXT}EOF")
    up = sh(
        host,
        f"curl -sf -H 'Authorization: Bearer {webui_token}' "
        "-F file=@/tmp/aw-lighthouse.txt http://127.0.0.1:3001/api/v1/files/",
    )
    file_id = json.loads(up)["id"]
    state = None
    for _ in range(300):
        status, state = http(
            host,
            "GET",
            f"http://127.0.0.1:3001/api/v1/files/{file_id}/process/status",
            headers=auth,
        )
        if status == 200 and state.get("status") in {"completed", "failed"}:
            break
        time.sleep(1)
    assert state and state.get("status") == "completed", state
    # Stored in Qdrant (stand-in) under this file, with the content prefix-free text.
    status, scrolled = http(
        host,
        "POST",
        "http://127.0.0.1:6333/collections/open-webui_files/points/scroll",
        {"limit": 100},
        headers={"api-key": secrets["qdrant_api_key"]},
    )
    assert status == 200, scrolled
    texts = [
        p["payload"]["text"]
        for p in scrolled["result"]["points"]
        if p["payload"].get("metadata", {}).get("file_id") == file_id
    ]
    assert any("cats" in t for t in texts), scrolled
    query = "Who feeds the cats?"
    status, res = http(
        host,
        "POST",
        "http://127.0.0.1:3001/api/v1/retrieval/query/doc",
        {"collection_name": f"file-{file_id}", "query": query, "k": 2},
        headers=auth,
    )
    assert status == 200, res
    docs = res["documents"][0]
    assert any("cats" in d for d in docs), res
    # The same question to the reranker directly (TEI's own /rerank shape): the scores Open
    # WebUI returned are exactly these, so they came from the reranker, not a fallback.
    status, ranks = http(
        host, "POST", "http://127.0.0.1:8082/rerank", {"query": query, "texts": docs}
    )
    assert status == 200, ranks
    want = sorted(round(r["score"], 4) for r in ranks)
    got = sorted(round(float(s), 4) for s in res["distances"][0])
    assert got == want, {"openwebui": got, "reranker": want}


def test_openwebui_settings_from_the_environment(host):
    cid = sh(host, f"{DOCKER} ps -q --filter label=com.docker.compose.service=open-webui").strip()
    env = dict(
        e.split("=", 1) for e in json.loads(sh(host, f"{DOCKER} inspect {cid}"))[0]["Config"]["Env"]
    )
    assert env["ENABLE_PERSISTENT_CONFIG"] == "false"
    assert env["ENABLE_SIGNUP"] == "false"
    assert env["RAG_EMBEDDING_QUERY_PREFIX"] == "search_query: "
    assert env["RAG_EMBEDDING_CONTENT_PREFIX"] == "search_document: "


def openhands_settings(host) -> dict:
    status, body = http(host, "GET", "http://127.0.0.1:3000/api/v1/settings")
    assert status == 200, body
    return body


def test_openhands_settings_read_back_from_the_real_app(host):
    """What the role wrote through the REAL app's settings API, read back from it (GET)."""
    body = openhands_settings(host)
    llm = body["agent_settings"]["llm"]
    assert llm["model"] == "openai/qwen2.5-coder-32b-instruct", llm
    assert llm["base_url"].endswith(":8000/v1"), llm
    assert llm.get("api_key") in (None, "", "**********"), "the key must not come back in clear"
    assert sh(host, "curl -sf http://127.0.0.1:3000/alive").strip().startswith('{"status"')


def test_openhands_environment(containers):
    oh = next(
        c for c in containers if c["Config"]["Labels"]["com.docker.compose.service"] == "openhands"
    )
    env = dict(e.split("=", 1) for e in oh["Config"]["Env"])
    assert {
        k: env.get(k)
        for k in (
            "AGENT_SERVER_IMAGE_REPOSITORY",
            "AGENT_SERVER_IMAGE_TAG",
            "DOCKER_HOST",
            "OH_SANDBOX_KIND",
            "OH_SANDBOX_MAX_NUM_SANDBOXES",
            "OH_PERSISTENCE_DIR",
        )
    } == {
        "AGENT_SERVER_IMAGE_REPOSITORY": "ghcr.io/openhands/agent-server",
        "AGENT_SERVER_IMAGE_TAG": "1.34.0-python",
        "DOCKER_HOST": "tcp://docker-socket-proxy:2375",
        "OH_SANDBOX_KIND": "DockerSandboxServiceInjector",
        # agent_stack_openhands_max_sandboxes (3 in this scenario, default 2).
        "OH_SANDBOX_MAX_NUM_SANDBOXES": "3",
        "OH_PERSISTENCE_DIR": "/.openhands",
    }


def test_every_listener_is_on_localhost_under_rootless(host):
    """Under rootless Docker the published ports are bound by RootlessKit in the host's network
    namespace: every one of the stack's ports listens on 127.0.0.1 only, each socket owned by
    the service user inside its engine's user unit. (Owner and cgroup from `ss -e`: `ss -p`
    names the process only for some of RootlessKit's sockets, seen 2026-12-03.)"""
    ports = {"8000", "3000", "3001", "6333", "6379", "8081", "8082"}
    uid = host.user("agent").uid
    unit = f"user@{uid}.service/app.slice/docker.service"
    out = sh(host, "ss -Hltne")
    seen = {}
    for line in out.splitlines():
        local = line.split()[3]
        addr, port = local.rsplit(":", 1)
        if port in ports:
            seen.setdefault(port, set()).add((addr, f"uid:{uid} " in line and unit in line))
    assert set(seen) == ports, seen
    for port, binds in seen.items():
        assert binds == {("127.0.0.1", True)}, (port, binds)


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


def test_tei_rerank_rejects_openwebui_body_directly(host):
    """Why the adapter exists: TEI's /rerank answers 422 to Open WebUI's Jina/Cohere body."""
    code = host.run(
        "curl -s -o /dev/null -w '%{http_code}' -H 'content-type: application/json' "
        '-d \'{"model":"m","query":"q","documents":["a"],"top_n":1}\' '
        "http://127.0.0.1:8082/rerank"
    ).stdout
    assert code == "422"


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
    # The service user's rootless socket (roles/docker_rootless), nothing else.
    uid = sh(host, "id -u agent").strip()
    assert [m["Source"] for m in proxy["Mounts"] if m["Destination"] == "/var/run/docker.sock"] == [
        f"/run/user/{uid}/docker.sock"
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


def test_sandbox_image_first_tag_is_the_plain_name(host):
    """OpenHands 1.11.0 takes a sandbox's spec from its image's FIRST tag (RepoTags sorted by
    full name); another tag first made every conversation end in ERROR."""
    tags = json.loads(
        sh(host, f"{DOCKER} image inspect ghcr.io/openhands/agent-server:1.34.0-python")
    )[0]["RepoTags"]
    assert tags[0] == "ghcr.io/openhands/agent-server:1.34.0-python", tags


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
    started_before = started_at(host)
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
    # ... and restarted nothing: every container's StartedAt is what it was before the run.
    assert started_at(host) == started_before


def started_at(host) -> dict[str, str]:
    ids = sh(host, f"{DOCKER} ps -aq --filter label=com.docker.compose.project=agent-stack").split()
    return {
        c["Name"]: c["State"]["StartedAt"]
        for c in json.loads(sh(host, f"{DOCKER} inspect {' '.join(ids)}"))
    }


# --- a conversation in a sandbox, on the shipped default (sandboxes on the service user's
# engine): the agent-server reaches vLLM and the app's webhooks at host.docker.internal, which
# roles/docker_rootless points at the host's loopback (host-gateway-ip 10.0.2.2). This path
# keeps network egress (roles/sandbox_engine is the no-egress one, its `stack` scenario).
@pytest.fixture(scope="module")
def conversation(host):
    return converse(host, "agent_stack default")


def test_a_conversation_in_a_sandbox_reaches_vllm_and_finishes(host, conversation):
    names = sh(host, f"{DOCKER} ps --format '{{{{.Names}}}}'").split()
    assert container_of(conversation) in names, (conversation["task"], names)
    assert vllm_requests(host) > conversation["vllm_before"]
    assert conversation["conversation"].get("execution_status") == "finished", conversation


def test_sandbox_ports_listen_on_the_hosts_loopback_only(host, conversation):
    """OpenHands publishes the sandbox's ports with no host IP; the engine's "ip" keeps them on
    127.0.0.1 (not reachable from off the host)."""
    name = container_of(conversation)
    ports = [
        line.rsplit(":", 1)[1]
        for line in sh(host, f"{DOCKER} port {name}").splitlines()
        if line.strip()
    ]
    assert ports, f"{name} publishes no port"
    listeners = sh(host, "ss -Hltn").split("\n")
    for port in ports:
        addrs = {
            ln.split()[3].rsplit(":", 1)[0]
            for ln in listeners
            if ln.split() and ln.split()[3].endswith(f":{port}")
        }
        assert addrs == {"127.0.0.1"}, (port, addrs)
