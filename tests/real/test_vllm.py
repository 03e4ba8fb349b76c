"""vLLM (CPU build 0.32.0) started exactly as roles/agent_stack's compose template starts it.

The server is the real vLLM; the weights are a tiny random Qwen2 (a stand-in: no GPU, no hub),
so generated text is noise: what is checked is protocol, parser and status, never content.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
import yaml
from conftest import get_metrics, http_json, metric_sum, run_module

REPO = Path(__file__).resolve().parents[2]
WEATHER_TOOL_OPENAI = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the weather of a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
WEATHER_TOOL_ANTHROPIC = {
    "name": "get_weather",
    "description": "Get the weather of a city",
    "input_schema": WEATHER_TOOL_OPENAI["function"]["parameters"],
}


def sse_events(raw: str) -> list[tuple[str, dict]]:
    events = []
    for block in raw.split("\n\n"):
        name, data = "", ""
        for line in block.splitlines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                data += line.split(":", 1)[1].strip()
        if data and data != "[DONE]":
            events.append((name, json.loads(data)))
    return events


def post_stream(url: str, body: dict, headers: dict[str, str]) -> tuple[int, str, str]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    req.add_header("Content-Type", "application/json")
    for k, v in headers.items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=300) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode()


def test_health(vllm_server):
    with urllib.request.urlopen(vllm_server.url + "/health", timeout=10) as r:
        assert r.status == 200


def test_models_need_the_bearer_key_and_list_every_alias(vllm_server, bearer, vllm_launch):
    status, body, _ = http_json("GET", vllm_server.url + "/v1/models")
    assert status == 401, body
    status, body, _ = http_json("GET", vllm_server.url + "/v1/models", headers=bearer)
    assert status == 200, body
    assert [m["id"] for m in body["data"]] == vllm_launch["served"]


def test_messages_streamed_with_one_tool(vllm_server, bearer, vllm_launch):
    status, ctype, raw = post_stream(
        vllm_server.url + "/v1/messages",
        {
            "model": vllm_launch["served"][0],
            "max_tokens": 16,
            "stream": True,
            "tools": [WEATHER_TOOL_ANTHROPIC],
            "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
        },
        {**bearer, "anthropic-version": "2023-06-01"},
    )
    assert status == 200, raw
    assert ctype.startswith("text/event-stream"), ctype
    events = sse_events(raw)
    names = [n or d.get("type", "") for n, d in events]
    assert names[0] == "message_start", names
    assert names[-1] == "message_stop", names
    assert "message_delta" in names, names
    delta = next(d for n, d in events if (n or d.get("type")) == "message_delta")
    assert delta["delta"]["stop_reason"] in {"end_turn", "max_tokens", "tool_use"}, delta


def test_messages_with_x_api_key_alone_is_refused(vllm_server, vllm_launch):
    """vLLM's key check reads only `Authorization: Bearer` (real-software.md item 4)."""
    status, body, _ = http_json(
        "POST",
        vllm_server.url + "/v1/messages",
        {
            "model": vllm_launch["served"][0],
            "max_tokens": 4,
            "messages": [{"role": "user", "content": "hi"}],
        },
        headers={"x-api-key": vllm_launch["key"], "anthropic-version": "2023-06-01"},
    )
    assert status == 401, body


def test_chat_completion_with_one_tool_auto_goes_through_the_profiles_parser(
    vllm_server, bearer, vllm_launch
):
    # The rendered profile's parser (the default 24 GB profile: qwen3_coder; the seed: hermes).
    catalogue = yaml.safe_load((REPO / "playbooks" / "vars" / "models.yml").read_text())
    (parser,) = {
        p["tool_call_parser"]
        for p in catalogue["aw_model_profiles"].values()
        if p["model"] == vllm_launch["model_id"]
    }
    assert f"--tool-call-parser={parser}" in vllm_launch["command"]
    status, body, _ = http_json(
        "POST",
        vllm_server.url + "/v1/chat/completions",
        {
            "model": vllm_launch["served"][0],
            "max_tokens": 16,
            "tools": [WEATHER_TOOL_OPENAI],
            "tool_choice": "auto",
            "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
        },
        headers=bearer,
    )
    assert status == 200, body
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert choice["finish_reason"] in {"stop", "length", "tool_calls"}, choice
    assert isinstance(choice["message"].get("tool_calls") or [], list)


def test_chat_completion_forced_tool_call_is_well_formed(vllm_server, bearer, vllm_launch):
    """A named tool choice: vLLM constrains decoding to the schema, so even random weights
    produce a real, parseable tool call."""
    status, body, _ = http_json(
        "POST",
        vllm_server.url + "/v1/chat/completions",
        {
            "model": vllm_launch["served"][0],
            "max_tokens": 48,
            "tools": [WEATHER_TOOL_OPENAI],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
            "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
        },
        headers=bearer,
    )
    assert status == 200, body
    calls = body["choices"][0]["message"]["tool_calls"]
    assert len(calls) == 1 and calls[0]["function"]["name"] == "get_weather", calls
    assert calls[0]["type"] == "function" and calls[0]["id"]


def test_max_tokens_over_the_context_is_a_400(vllm_server, bearer, vllm_launch):
    """real-software.md item 5: prompt + max_tokens > --max-model-len answers 400."""
    too_many = vllm_launch["max_model_len"] + 1000
    status, body, _ = http_json(
        "POST",
        vllm_server.url + "/v1/chat/completions",
        {
            "model": vllm_launch["served"][0],
            "max_tokens": too_many,
            "messages": [{"role": "user", "content": "hi"}],
        },
        headers=bearer,
    )
    assert status == 400, body
    assert str(vllm_launch["max_model_len"]) in json.dumps(body), body


def test_metrics_have_kv_cache_usage_and_request_counters(vllm_server, bearer, vllm_launch):
    before = metric_sum(get_metrics(vllm_server.url), "vllm:request_success_total")
    status, body, _ = http_json(
        "POST",
        vllm_server.url + "/v1/chat/completions",
        {
            "model": vllm_launch["served"][0],
            "max_tokens": 2,
            "messages": [{"role": "user", "content": "hi"}],
        },
        headers=bearer,
    )
    assert status == 200, body
    text = get_metrics(vllm_server.url)
    assert "vllm:kv_cache_usage_perc" in text
    assert "vllm:num_requests_running" in text
    assert "vllm:num_requests_waiting" in text
    assert metric_sum(text, "vllm:request_success_total") == before + 1


def test_vllm_ready_module_against_the_real_server(vllm_server, vllm_launch, work):
    """The project's vllm_ready module, run by Ansible, against this real server."""
    key_file = work / "secrets" / "vllm_api_key"
    args = {
        "url": vllm_server.url,
        "expected_models": vllm_launch["served"],
        "check_completion": True,
        "check_messages": True,
        "api_key_file": str(key_file),
        "timeout": 60,
    }
    rc, res = run_module("vllm_ready", args)
    assert rc == 0 and res["ready"] is True, res
    assert res["phase"] == "ready" and res["problem"] is None, res
    assert res["missing_models"] == []
    assert res["metrics"]["kv_cache_metric"] == "vllm:kv_cache_usage_perc"


@pytest.mark.parametrize("arch", ["qwen3_moe"])
def test_tiny_model_architecture_is_served_by_the_cpu_build(arch, work):
    """Issue 14: the CPU build serves a tiny model of each catalogue architecture with its
    parser flags (qwen3_moe: --tool-call-parser qwen3_coder)."""
    import harness

    model = harness.tiny_model(arch)
    key = "k-" + arch
    with harness.start_vllm(
        [
            "serve",
            str(model),
            "--served-model-name",
            arch,
            "--max-model-len=4096",
            "--enable-auto-tool-choice",
            "--tool-call-parser=qwen3_coder",
        ],
        api_key=key,
        timeout=600,
        log_dir=work / "logs" / arch,
    ) as server:
        status, body, _ = http_json(
            "POST",
            server.url + "/v1/chat/completions",
            {
                "model": arch,
                "max_tokens": 8,
                "tools": [WEATHER_TOOL_OPENAI],
                "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
            },
            headers={"Authorization": f"Bearer {key}"},
        )
        assert status == 200, (body, server.log_tail())
