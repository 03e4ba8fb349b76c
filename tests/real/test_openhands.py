"""OpenHands' agent-server 1.34.0 (PyPI `openhands-agent-server`, the program inside the sandbox
image ghcr.io/openhands/agent-server:1.34.0-python) as a plain process, running a real
conversation whose LLM is the real vLLM CPU server started from the compose template.

Request shape from the agent-server's own source (openhands/agent_server/conversation_router.py
START_CONVERSATION_EXAMPLES; openhands/sdk/conversation/request.py StartConversationRequest):
`POST /api/conversations` with `X-Session-API-Key`, body `{agent_settings: {llm: {...}, tools},
workspace: {working_dir}, initial_message: {role, content: [{type: text, text}], run: true},
max_iterations}`; then `GET /api/conversations/{id}` until `execution_status` is terminal.
Stand-in: the tiny random model writes noise, so the agent (given no tools) answers with a
message and the conversation finishes; what is real is the protocol between the two servers.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import harness
import pytest
from conftest import get_metrics, http_json, metric_sum

TERMINAL = {"finished", "error", "stuck"}


@pytest.fixture(scope="module")
def agent_server(work: Path) -> Iterator[tuple[harness.Server, str]]:
    key = "test-session-" + secrets.token_hex(8)
    server = harness.start_agent_server(
        session_api_key=key,
        work_dir=work / "agent-server",
        env={"LITELLM_LOCAL_MODEL_COST_MAP": "True", "OPENHANDS_SUPPRESS_BANNER": "1"},
        log_dir=work / "logs",
    )
    with server:
        yield server, key


def test_agent_server_refuses_a_missing_session_key(agent_server) -> None:
    server, _ = agent_server
    status, body, _ = http_json("GET", server.url + "/api/conversations/search")
    assert status == 401, (status, body)


def test_conversation_runs_against_vllm(agent_server, vllm_server, vllm_launch, work) -> None:
    server, key = agent_server
    before = metric_sum(get_metrics(vllm_server.url), "vllm:request_success_total")
    body = {
        "agent_settings": {
            "llm": {
                "usage_id": "agent",
                # LiteLLM's OpenAI-compatible provider, as the role configures OpenHands.
                "model": "openai/" + vllm_launch["served"][0],
                "base_url": vllm_server.url + "/v1",
                "api_key": vllm_launch["key"],
                "max_output_tokens": 32,
                "num_retries": 0,
            },
            "tools": [],
        },
        "workspace": {"working_dir": str(work / "agent-server" / "workspace" / "project")},
        "initial_message": {
            "role": "user",
            "content": [{"type": "text", "text": "Say hello."}],
            "run": True,
        },
        "max_iterations": 3,
    }
    status, info, _ = http_json(
        "POST", server.url + "/api/conversations", body, {"X-Session-API-Key": key}
    )
    assert status == 201, (status, info, server.log_tail())
    cid = info["id"]
    deadline = time.monotonic() + 300
    state = info.get("execution_status")
    while time.monotonic() < deadline:
        status, info, _ = http_json(
            "GET", f"{server.url}/api/conversations/{cid}", headers={"X-Session-API-Key": key}
        )
        assert status == 200, (status, info)
        state = info.get("execution_status")
        if state in TERMINAL:
            break
        time.sleep(2)
    assert state == "finished", (state, info, server.log_tail())
    after = metric_sum(get_metrics(vllm_server.url), "vllm:request_success_total")
    assert after > before, "the conversation finished without a request reaching vLLM"
