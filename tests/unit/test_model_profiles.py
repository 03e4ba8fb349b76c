"""The model catalogue (playbooks/vars/models.yml) against each model's real config.json, the
client-fit decisions over a table of cards, and the settings derived for the stack."""

import copy
import json
from pathlib import Path

import pytest
import yaml
from ansible_collections.agent_workstation.aw.plugins.module_utils.aw_vram import (
    GIB,
    MIB,
    STANDARD_CARDS,
    VramInputError,
    card_table,
    check_catalogue,
    client_context,
    estimate_weights_bytes,
    geometry,
    is_pinned_revision,
    kv_bytes_per_token,
    plan_profile,
    plan_site,
    plan_vram,
    profile_config,
)

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "models"
CATALOGUE = yaml.safe_load((ROOT / "playbooks" / "vars" / "models.yml").read_text())
PROFILES = CATALOGUE["aw_model_profiles"]
CLIENTS = CATALOGUE["aw_model_clients"]
INVENTORY = yaml.safe_load(
    (ROOT / "inventories" / "workstation" / "group_vars" / "all" / "model.yml").read_text()
)
DEFAULT_CLIENTS = INVENTORY["workstation_clients"]
AWQ3 = "qwen3-coder-30b-a3b-instruct-awq"
FP83 = "qwen3-coder-30b-a3b-instruct-fp8"
SEED = "qwen2.5-coder-32b-instruct-awq"
BASE3 = json.loads((FIXTURES / "qwen3-coder-30b-a3b-instruct.config.json").read_text())
# The inventory's planning options (group_vars/all/model.yml), as the preflight passes them.
OPTIONS = {
    "kv_cache_dtype": INVENTORY["preflight_kv_cache_dtype"],
    "gpu_memory_utilization": INVENTORY["preflight_gpu_memory_utilization"],
    "overhead_mib": INVENTORY["preflight_vram_overhead_mib"],
    "max_num_seqs": INVENTORY["preflight_max_num_seqs"],
}


def _fixture(name):
    return json.loads((ROOT / PROFILES[name]["config_fixture"]).read_text())


# --- the catalogue against the real config.json -------------------------------------------------


@pytest.mark.parametrize("name", list(PROFILES))
def test_architecture_numbers_are_those_of_the_config_json(name):
    config = _fixture(name)
    for key, value in PROFILES[name]["architecture"].items():
        if key == "head_dim" and "head_dim" not in config:
            # Qwen2 configs leave it out; transformers and vLLM use hidden / heads.
            assert value == config["hidden_size"] // config["num_attention_heads"]
            continue
        assert config[key] == value, f"{name}: architecture.{key}"


@pytest.mark.parametrize("name", [AWQ3, FP83])
def test_handmade_quantized_configs_change_only_the_quantization(name):
    # No real config.json of these two builds was found; the fixtures are the real base config
    # plus the build's quantization_config (tests/fixtures/README.md).
    assert ".handmade." in PROFILES[name]["config_fixture"]
    config = _fixture(name)
    assert {k: v for k, v in config.items() if k != "quantization_config"} == BASE3
    assert config["quantization_config"]["quant_method"] == name.rsplit("-", 1)[1]


def test_the_moe_estimate_reproduces_the_real_bf16_checkpoint_size():
    total = json.loads(
        (FIXTURES / "qwen3-coder-30b-a3b-instruct.safetensors-index-metadata.json").read_text()
    )["metadata"]["total_size"]
    estimate = estimate_weights_bytes(geometry(BASE3))
    # Only the RMSNorm weights (421,888 bytes) are left out of the estimate.
    assert 0 < total - estimate < 0.0001 * total


def test_declared_weights_agree_with_the_config():
    awq = estimate_weights_bytes(geometry(_fixture(AWQ3)))
    assert abs(PROFILES[AWQ3]["weights_bytes"] - awq) < 0.01 * awq
    assert PROFILES[FP83]["weights_bytes"] == estimate_weights_bytes(geometry(_fixture(FP83)))
    seed = estimate_weights_bytes(geometry(_fixture(SEED)))
    assert abs(PROFILES[SEED]["weights_bytes"] - seed) < 0.01 * seed


@pytest.mark.parametrize(
    ("name", "fp16_kib", "fp8_kib"), [(AWQ3, 96, 48), (FP83, 96, 48), (SEED, 256, 128)]
)
def test_kv_cache_per_token(name, fp16_kib, fp8_kib):
    geom = geometry(profile_config(PROFILES[name]))
    assert kv_bytes_per_token(geom, "fp16") == fp16_kib * 1024
    assert kv_bytes_per_token(geom, "fp8") == fp8_kib * 1024


def test_every_profile_is_complete_and_pinned():
    assert check_catalogue(PROFILES, CLIENTS) == []
    for name, profile in PROFILES.items():
        assert is_pinned_revision(profile["revision"]), name
        positions = profile["architecture"]["max_position_embeddings"]
        assert profile["default_max_model_len"] <= positions
    assert PROFILES[SEED]["tool_call_parser"] == "hermes"
    assert PROFILES[SEED]["native_tool_calls"] is False
    assert {PROFILES[n]["tool_call_parser"] for n in (AWQ3, FP83)} == {"qwen3_coder"}


@pytest.mark.parametrize("value", [None, "main", "c58857a", "z" * 40])
def test_an_unpinned_revision_stops_the_deploy(value):
    profiles = copy.deepcopy(PROFILES)
    profiles[AWQ3]["revision"] = value
    site = plan_site(profiles, CLIENTS, DEFAULT_CLIENTS, AWQ3, 24564, 1, **OPTIONS)
    assert site["ok"] is False
    assert any("no pinned revision" in p and AWQ3 in p for p in site["problems"])


def test_client_needs_are_the_sourced_numbers():
    assert client_context(CLIENTS["claude_agent_sdk"]) == 31000 + 8192 + 8192
    assert CLIENTS["openhands"]["prompt_tokens"] == 13359
    assert CLIENTS["queue_worker"]["concurrent"] == 2
    assert not CLIENTS["open_webui"]["native_tool_calls"]
    assert DEFAULT_CLIENTS == ["openhands", "claude_agent_sdk", "open_webui"]


# --- the card table --------------------------------------------------------------------------

MIB_OF = dict(STANDARD_CARDS)
# card, GPUs, default profile, tensor parallel of the default
TABLE = [
    ("24 GB", 1, AWQ3, 1),
    ("24 GB", 2, FP83, 2),
    ("32 GB", 1, AWQ3, 1),
    ("32 GB", 2, FP83, 2),
    ("48 GB", 1, FP83, 1),
    ("48 GB", 2, FP83, 2),
    ("80 GB", 1, FP83, 1),
    ("80 GB", 2, FP83, 2),
]


@pytest.mark.parametrize(("card", "count", "default", "tp"), TABLE)
def test_default_profile_per_card(card, count, default, tp):
    site = plan_site(PROFILES, CLIENTS, DEFAULT_CLIENTS, "auto", MIB_OF[card], count, **OPTIONS)
    assert site["ok"], site["problems"]
    assert site["profile"] == default
    assert site["plan"]["tensor_parallel_size"] == tp
    # The seed's model never serves the default clients: 32K native context, text tool calls.
    assert site["plans"][SEED]["ok"] is False
    assert set(site["plans"][SEED]["failing_clients"]) == {"openhands", "claude_agent_sdk"}


def test_card_table_covers_every_card_and_count():
    rows = card_table(PROFILES, CLIENTS, DEFAULT_CLIENTS, **OPTIONS)
    assert [(r["card"], r["gpu_count"], r["default"]) for r in rows] == [
        (card, count, default) for card, count, default, _ in TABLE
    ]


def test_fp8_needs_more_than_one_24_or_32_gb_card():
    for mib in (MIB_OF["24 GB"], MIB_OF["32 GB"]):
        plan = plan_profile(FP83, PROFILES[FP83], CLIENTS, DEFAULT_CLIENTS, mib, 1, **OPTIONS)
        assert plan["max_model_len"] == 0 and not plan["ok"]


def test_24_gb_default_gives_every_default_client_its_context_and_tool_calls():
    plan = plan_profile(AWQ3, PROFILES[AWQ3], CLIENTS, DEFAULT_CLIENTS, 24564, 1, **OPTIONS)
    assert plan["ok"]
    assert plan["max_model_len"] == 65536
    for name in DEFAULT_CLIENTS:
        assert plan["clients"][name]["ok"], plan["clients"][name]
        assert plan["max_model_len"] >= client_context(CLIENTS[name])
    # Every client of the table, the queue worker's two OpenHands tasks included, fits at once.
    everyone = list(CLIENTS)
    assert plan_profile(AWQ3, PROFILES[AWQ3], CLIENTS, everyone, 24564, 1, **OPTIONS)["ok"]


def test_the_public_rtx_3090_run_of_the_awq_build_fits_in_the_plan():
    # A public script serves this repository on a 24 GB RTX 3090 with --max-model-len 65536,
    # --kv-cache-dtype fp8, --gpu-memory-utilization 0.93 (tests/fixtures/README.md).
    options = dict(OPTIONS, gpu_memory_utilization=0.93)
    plan = plan_profile(AWQ3, PROFILES[AWQ3], CLIENTS, [], 24564, 1, max_model_len=65536, **options)
    assert plan["vram"]["fits"] is True


def test_the_seed_on_24_gb_is_refused_with_the_numbers_and_the_profile_that_would_work():
    site = plan_site(PROFILES, CLIENTS, DEFAULT_CLIENTS, SEED, 24564, 1, **OPTIONS)
    assert site["ok"] is False
    assert site["profile"] == SEED
    assert site["fitting_profiles"] == [AWQ3]
    clients = site["plan"]["clients"]
    assert clients["open_webui"]["ok"] is True
    assert clients["claude_agent_sdk"]["ok"] is False
    assert any("47384 tokens" in r for r in clients["claude_agent_sdk"]["reasons"])
    assert any("native tool calls" in r for r in clients["openhands"]["reasons"])
    (problem,) = site["problems"]
    assert "claude_agent_sdk" in problem and "openhands" in problem
    assert f"preflight_model_profile: {AWQ3}" in problem
    assert "max_model_len 65536" in problem and "qwen3_coder" in problem
    assert str(site["plan"]["max_model_len"]) in problem


def test_the_seed_serves_open_webui_alone():
    site = plan_site(PROFILES, CLIENTS, ["open_webui"], SEED, 24564, 1, **OPTIONS)
    assert site["ok"], site["problems"]


def test_where_no_profile_fits_the_message_names_the_hardware():
    site = plan_site(PROFILES, CLIENTS, DEFAULT_CLIENTS, "auto", 16376, 1, **OPTIONS)
    assert site["ok"] is False and site["fitting_profiles"] == []
    (problem,) = site["problems"]
    assert "one 24 GB card would (profile qwen3-coder-30b-a3b-instruct-awq)" in problem
    assert "16376 MiB" in problem


def test_two_gpus_name_the_tensor_parallel_hardware_for_fp8():
    site = plan_site(PROFILES, CLIENTS, DEFAULT_CLIENTS, FP83, 24564, 1, **OPTIONS)
    (problem,) = site["problems"]
    assert f"preflight_model_profile: {AWQ3}" in problem
    assert "weights do not fit" in problem


def test_concurrency_is_a_requirement_of_its_own():
    # A 20 GB card (RTX 4000 Ada: 20475 MiB): one OpenHands context fits, the queue worker's
    # two at once do not.
    plan = plan_profile(
        AWQ3, PROFILES[AWQ3], CLIENTS, ["openhands", "queue_worker"], 20475, 1, **OPTIONS
    )
    assert plan["clients"]["openhands"]["ok"] is True
    assert plan["clients"]["queue_worker"]["ok"] is False
    assert "2 sequences of 25647 tokens" in plan["clients"]["queue_worker"]["reasons"][0]


def test_a_context_beyond_the_native_positions_is_refused():
    plan = plan_profile(SEED, PROFILES[SEED], CLIENTS, [], 81559, 1, max_model_len=65536, **OPTIONS)
    assert not plan["ok"]
    assert "max_position_embeddings 32768" in plan["problems"][0]


@pytest.mark.parametrize(
    ("enabled", "profile", "message"),
    [
        (["claude_code"], "auto", "workstation_clients names 'claude_code'"),
        (DEFAULT_CLIENTS, "qwen3-coder", "preflight_model_profile 'qwen3-coder' is not"),
    ],
)
def test_bad_names_are_refused_with_the_variable(enabled, profile, message):
    with pytest.raises(VramInputError, match=message):
        plan_site(PROFILES, CLIENTS, enabled, profile, 24564, 1, **OPTIONS)


def test_a_broken_catalogue_entry_is_named():
    profiles = copy.deepcopy(PROFILES)
    del profiles[AWQ3]["architecture"]["num_key_value_heads"]
    del profiles[SEED]["tool_call_parser"]
    problems = check_catalogue(profiles, CLIENTS)
    assert any(AWQ3 in p and "num_key_value_heads" in p for p in problems)
    assert any(SEED in p and "tool_call_parser" in p for p in problems)
    with pytest.raises(VramInputError, match=r"models\.yml"):
        plan_site(profiles, CLIENTS, DEFAULT_CLIENTS, "auto", 24564, 1, **OPTIONS)


# --- tensor parallel --------------------------------------------------------------------------


def test_tensor_parallel_splits_weights_and_kv_heads():
    config = profile_config(PROFILES[FP83])
    one = plan_vram(config, 49140, 131072, kv_cache_dtype="fp8", weights_bytes=31 * GIB)
    two = plan_vram(
        config, 24564, 131072, kv_cache_dtype="fp8", weights_bytes=31 * GIB, tensor_parallel_size=2
    )
    assert two.weights_bytes == one.weights_bytes // 2
    assert two.kv_bytes_per_token == one.kv_bytes_per_token == 48 * 1024
    # 2 of the 4 KV heads per GPU: 24 KiB per token per GPU.
    assert two.kv_cache_bytes == 24 * 1024 * 131072
    assert two.kv_available_bytes == int(24564 * MIB * 0.9) - 31 * GIB // 2 - 1536 * MIB
    assert two.vllm_args["tensor_parallel_size"] == 2
    assert "tensor_parallel_size" not in one.vllm_args


def test_an_invalid_tensor_parallel_size_is_refused_and_auto_skips_it():
    config = profile_config(PROFILES[AWQ3])
    with pytest.raises(VramInputError, match="does not divide"):
        plan_vram(config, 24564, 8192, weights_bytes=16 * GIB, tensor_parallel_size=3)
    # Three GPUs: 32 heads do not split in three, so the plan uses two.
    plan = plan_profile(AWQ3, PROFILES[AWQ3], CLIENTS, DEFAULT_CLIENTS, 24564, 3, **OPTIONS)
    assert plan["tensor_parallel_size"] == 2


# --- derived settings -------------------------------------------------------------------------


def test_derived_settings_for_the_24_gb_default():
    site = plan_site(PROFILES, CLIENTS, DEFAULT_CLIENTS, "auto", 24564, 1, **OPTIONS)
    s = site["settings"]
    assert s["profile"] == AWQ3
    assert s["model"] == "QuantTrio/Qwen3-Coder-30B-A3B-Instruct-AWQ"
    assert s["revision"] == PROFILES[AWQ3]["revision"]
    assert s["served_model_names"] == ["qwen3-coder-30b-a3b-instruct"]
    assert s["model_name"] == "qwen3-coder-30b-a3b-instruct"
    assert s["max_model_len"] == 65536
    # OpenHands' input budget is derived from the planned context, never above it.
    assert s["openhands_max_input_tokens"] == 65536 - 4096
    assert s["openhands_max_input_tokens"] + s["openhands_max_output_tokens"] == s["max_model_len"]
    assert s["claude_code_max_output_tokens"] == 8192
    assert (
        CLIENTS["claude_agent_sdk"]["prompt_tokens"] + s["claude_code_max_output_tokens"]
        <= s["max_model_len"]
    )
    assert s["vllm_cli"] == [
        f"--revision={PROFILES[AWQ3]['revision']}",
        "--served-model-name",
        "qwen3-coder-30b-a3b-instruct",
        "--max-model-len=65536",
        "--kv-cache-dtype=fp8",
        "--gpu-memory-utilization=0.92",
        "--max-num-seqs=4",
        "--enable-auto-tool-choice",
        "--tool-call-parser=qwen3_coder",
    ]


def test_vllm_args_carry_what_the_agent_stack_role_requires():
    role_vars = yaml.safe_load((ROOT / "roles" / "agent_stack" / "vars" / "main.yml").read_text())
    site = plan_site(PROFILES, CLIENTS, DEFAULT_CLIENTS, "auto", 24564, 2, **OPTIONS)
    args = site["settings"]["vllm_args"]
    assert set(role_vars["_agent_stack_vllm_arg_keys"]) <= set(args)
    assert args["tensor_parallel_size"] == 2
    assert args["tool_call_parser"] == "qwen3_coder" and args["enable_auto_tool_choice"] is True
    assert "--tensor-parallel-size=2" in site["settings"]["vllm_cli"]
    assert args["max_model_len"] == site["settings"]["max_model_len"] == 131072
