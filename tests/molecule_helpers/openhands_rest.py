"""Shared by Molecule scenarios' testinfra tests: a conversation started through the REAL
OpenHands app's REST API (openhands-ai 1.11.0; the routes and shapes as
packages/aw-task/src/aw_task/openhands.py reads them), followed until it ends, and vLLM's
finished-request counter. Imported by roles/agent_stack/molecule/default and
roles/sandbox_engine/molecule/stack (sys.path from the repository root)."""

from __future__ import annotations

import json
import shlex
import time
from typing import Any

APP = "http://127.0.0.1:3000"
VLLM = "http://127.0.0.1:8000"
PREFIX = "oh-agent-server-"  # DockerSandboxServiceInjector.container_name_prefix (1.11.0)


def http_json(host: Any, method: str, url: str, body: object = None) -> Any:
    """The JSON answer of one request. The app rate-limits per client address
    (openhands-ai 1.11.0 app_server/app.py: InMemoryRateLimiter(requests=10, seconds=1),
    middleware.py answers 429 {"message": "Too many requests"} above twice that), and every
    client on the host, the sandboxes' webhook callbacks included, reaches it from one
    address: a 429 is waited out (Retry-After: 1), up to 10 times."""
    data = ""
    if body is not None:
        data = f"-H 'Content-Type: application/json' --data {shlex.quote(json.dumps(body))}"
    for _ in range(10):
        out = host.run(f"curl -sS --max-time 30 -w '\\n%{{http_code}}' -X {method} {data} {url}")
        assert out.rc == 0, out.stderr
        text, _, code = out.stdout.rpartition("\n")
        if code != "429":
            break
        time.sleep(1)
    assert code.startswith("2"), f"{method} {url}: HTTP {code} {text[:500]}"
    return json.loads(text)


def vllm_requests(host: Any) -> float:
    """vLLM's finished-request counter (its /metrics needs no key), summed over labels."""
    text = host.check_output(f"curl -sS --max-time 10 {VLLM}/metrics")
    lines = [x for x in text.splitlines() if x.startswith("vllm:request_success_total")]
    assert lines, "vllm:request_success_total missing from /metrics"
    return sum(float(x.rsplit(" ", 1)[1]) for x in lines)


def converse(host: Any, title: str, start_s: float = 1200, run_s: float = 1200) -> dict:
    """Start one conversation (POST /api/v1/app-conversations), wait for its start task to be
    READY and the conversation to end; returns the start task, the conversation and vLLM's
    counter before it."""
    before = vllm_requests(host)
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
            "title": title,
        },
    )
    started = time.time()
    while True:
        url = f"{APP}/api/v1/app-conversations/start-tasks?ids={task['id']}"
        found = http_json(host, "GET", url)
        task = found[0] or task
        if task.get("status") in ("READY", "ERROR") or time.time() - started > start_s:
            break
        time.sleep(5)
    start_took = time.time() - started
    assert task.get("status") == "READY", task
    conv_id = task["app_conversation_id"]
    assert conv_id, task
    conv: dict = {}
    while time.time() - started < start_s + run_s:
        found = http_json(host, "GET", f"{APP}/api/v1/app-conversations?ids={conv_id}")
        conv = found[0] or {}
        if conv.get("execution_status") in ("finished", "error", "stuck"):
            break
        time.sleep(5)
    ended = time.time() - started
    print(f"sandbox ready in {start_took:.0f}s, conversation ended after {ended:.0f}s")
    return {"task": task, "conversation": conv, "vllm_before": before}


def container_of(conversation: dict) -> str:
    """The sandbox's container name: SandboxInfo.id is the container's name (1.11.0)."""
    sandbox_id = conversation["task"]["sandbox_id"]
    return sandbox_id if sandbox_id.startswith(PREFIX) else PREFIX + sandbox_id
