"""vLLM readiness interpretation over recorded responses (tests/fixtures/vllm/README.md)."""

import json
from pathlib import Path

import pytest
from ansible.module_utils.aw_promtext import parse
from ansible.module_utils.aw_vllm import (
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
