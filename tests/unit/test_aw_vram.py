"""VRAM plan arithmetic, on the shipped Qwen2.5-Coder-32B-Instruct-AWQ config."""

import json
from pathlib import Path

import pytest
from ansible_collections.agent_workstation.aw.plugins.module_utils.aw_vram import (
    GIB,
    MIB,
    QWEN25_CODER_32B_INSTRUCT_AWQ_CONFIG,
    VramInputError,
    estimate_weights_bytes,
    geometry,
    kv_bytes_per_token,
    plan_vram,
)

ROOT = Path(__file__).resolve().parents[2]
QWEN = QWEN25_CODER_32B_INSTRUCT_AWQ_CONFIG
AWQ_WEIGHTS = 18 * GIB


def test_shipped_config_files_equal_the_builtin():
    for path in (
        ROOT / "playbooks/files/models/qwen2.5-coder-32b-instruct-awq.config.json",
        ROOT / "tests/fixtures/models/qwen2.5-coder-32b-instruct-awq.config.json",
    ):
        assert json.loads(path.read_text()) == QWEN


def test_qwen_geometry():
    geom = geometry(QWEN)
    assert (geom.layers, geom.kv_heads, geom.head_dim) == (64, 8, 128)


@pytest.mark.parametrize(
    ("dtype", "per_token"),
    [
        ("auto", 256 * 1024),
        ("fp16", 256 * 1024),
        ("bf16", 256 * 1024),
        ("fp8", 128 * 1024),
        ("fp8_e4m3", 128 * 1024),
        ("fp8_e5m2", 128 * 1024),
    ],
)
def test_kv_bytes_per_token(dtype, per_token):
    assert kv_bytes_per_token(geometry(QWEN), dtype) == per_token


def test_32k_context_needs_8_gib_fp16_and_4_gib_fp8():
    geom = geometry(QWEN)
    assert kv_bytes_per_token(geom, "fp16") * 32768 == 8 * GIB
    assert kv_bytes_per_token(geom, "fp8") * 32768 == 4 * GIB


def test_awq_estimate_is_about_18_gib_not_16():
    estimate = estimate_weights_bytes(geometry(QWEN))
    assert 17.5 * GIB < estimate < 18.5 * GIB
    assert estimate_weights_bytes(geometry(QWEN), "fp16") > 60 * GIB


# gpu MiB, util, kv dtype, max_model_len, fits, max_model_len_fit
PLANS = [
    # RTX 4090 / 3090 (24564 MiB), 0.92, fp8: 24K does not fit, about 21K does
    (24564, 0.92, "fp8", 24576, False, 21040),
    # raising utilisation to 0.95 makes 24K fit
    (24564, 0.95, "fp8", 24576, True, 26928),
    # fp16 KV halves the room
    (24564, 0.92, "fp16", 24576, False, 10512),
    # a 48 GiB card fits 32K easily
    (49140, 0.92, "fp8", 32768, True, 201920),
    # a 16 GiB card cannot even hold the weights
    (16376, 0.92, "fp8", 8192, False, 0),
]


@pytest.mark.parametrize("case", PLANS)
def test_plans(case):
    gpu, util, dtype, length, fits, fit = case
    plan = plan_vram(
        QWEN,
        gpu,
        length,
        gpu_memory_utilization=util,
        kv_cache_dtype=dtype,
        weights_bytes=AWQ_WEIGHTS,
    )
    assert plan.fits is fits
    assert plan.max_model_len_fit == fit
    assert plan.max_model_len_fit % 16 == 0
    budget = int(gpu * MIB * util)
    assert plan.kv_available_bytes == budget - AWQ_WEIGHTS - 1536 * MIB
    assert plan.vllm_args == {
        "max_model_len": length if fits else fit,
        "kv_cache_dtype": dtype,
        "gpu_memory_utilization": util,
        "max_num_seqs": 4,
    }
    if fits:
        assert plan.shortfall_bytes == 0
    else:
        assert plan.shortfall_bytes > 0
        assert "Fix:" in plan.message and str(gpu) in plan.message


def test_fit_is_the_boundary():
    plan = plan_vram(
        QWEN,
        24564,
        24576,
        gpu_memory_utilization=0.92,
        kv_cache_dtype="fp8",
        weights_bytes=AWQ_WEIGHTS,
    )
    at = plan_vram(
        QWEN,
        24564,
        plan.max_model_len_fit,
        gpu_memory_utilization=0.92,
        kv_cache_dtype="fp8",
        weights_bytes=AWQ_WEIGHTS,
    )
    above = plan_vram(
        QWEN,
        24564,
        plan.max_model_len_fit + 16 * 8,
        gpu_memory_utilization=0.92,
        kv_cache_dtype="fp8",
        weights_bytes=AWQ_WEIGHTS,
    )
    assert at.fits is True
    assert above.fits is False


@pytest.mark.parametrize(
    ("config", "kwargs"),
    [
        ({"hidden_size": 1}, {}),
        (QWEN, {"kv_cache_dtype": "int4"}),
        (QWEN, {"gpu_memory_utilization": 1.5}),
        (QWEN, {"quantization": "exl2"}),
    ],
)
def test_bad_inputs(config, kwargs):
    with pytest.raises(VramInputError):
        plan_vram(config, 24564, 8192, **kwargs)
