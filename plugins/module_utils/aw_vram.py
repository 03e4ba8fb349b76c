# Copyright: agent-workstation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""GPU memory plan for serving a decoder-only model with vLLM (pure arithmetic).

Budget (bytes): ``gpu_memory x gpu_memory_utilization`` is what vLLM allows itself. From it
come the weights, a runtime overhead (activation peak of the profiling run, CUDA graph pools,
CUDA context / non-torch allocations) and the rest is KV cache.

KV cache per token = 2 (K and V) x layers x kv_heads x head_dim x bytes per element.
vLLM refuses to start unless one sequence of ``max_model_len`` tokens fits in the KV cache,
so the plan requires ``full_context_seqs`` (default 1) such sequences to fit.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

MIB = 1024 * 1024
GIB = 1024 * MIB
BLOCK_SIZE = 16  # vLLM's default KV block size, in tokens

DTYPE_BYTES: dict[str, float] = {
    "float32": 4,
    "fp32": 4,
    "float16": 2,
    "fp16": 2,
    "half": 2,
    "bfloat16": 2,
    "bf16": 2,
    "fp8": 1,
    "fp8_e4m3": 1,
    "fp8_e5m2": 1,
    "float8_e4m3fn": 1,
    "int8": 1,
}
KV_CACHE_DTYPES = ("auto", "fp8", "fp8_e4m3", "fp8_e5m2", "fp16", "bf16")
# Bytes per weight of the *linear* layers for each quantization; embeddings and lm_head
# stay 16-bit. 4-bit group quantization adds an fp16 scale and a 4-bit zero per group.
QUANTIZATIONS = ("awq", "gptq", "fp8", "int8", "fp16", "bf16", "none")

# The published config.json of Qwen/Qwen2.5-Coder-32B-Instruct-AWQ (see
# tests/fixtures/models/README and playbooks/files/models/), so callers need no file.
QWEN25_CODER_32B_INSTRUCT_AWQ_CONFIG: dict[str, Any] = {
    "architectures": ["Qwen2ForCausalLM"],
    "attention_dropout": 0.0,
    "bos_token_id": 151643,
    "eos_token_id": 151645,
    "hidden_act": "silu",
    "hidden_size": 5120,
    "initializer_range": 0.02,
    "intermediate_size": 27648,
    "max_position_embeddings": 32768,
    "max_window_layers": 64,
    "model_type": "qwen2",
    "num_attention_heads": 40,
    "num_hidden_layers": 64,
    "num_key_value_heads": 8,
    "quantization_config": {
        "bits": 4,
        "group_size": 128,
        "modules_to_not_convert": None,
        "quant_method": "awq",
        "version": "gemm",
        "zero_point": True,
    },
    "rms_norm_eps": 1e-06,
    "rope_scaling": None,
    "rope_theta": 1000000.0,
    "sliding_window": 131072,
    "tie_word_embeddings": False,
    "torch_dtype": "float16",
    "transformers_version": "4.43.1",
    "use_cache": True,
    "use_sliding_window": False,
    "vocab_size": 152064,
}


class VramInputError(ValueError):
    """The model config or an option cannot be used."""


@dataclass
class ModelGeometry:
    layers: int
    attention_heads: int
    kv_heads: int
    head_dim: int
    hidden_size: int
    intermediate_size: int
    vocab_size: int
    tie_word_embeddings: bool
    dtype: str
    quant_method: str | None
    quant_bits: int | None
    quant_group_size: int | None


def _text_config(config: dict[str, Any]) -> dict[str, Any]:
    # Multimodal configs nest the language model under text_config.
    inner = config.get("text_config")
    if isinstance(inner, dict) and "num_hidden_layers" in inner:
        merged = dict(inner)
        merged.setdefault("quantization_config", config.get("quantization_config"))
        return merged
    return config


def geometry(config: dict[str, Any]) -> ModelGeometry:
    cfg = _text_config(config)
    try:
        layers = int(cfg["num_hidden_layers"])
        heads = int(cfg["num_attention_heads"])
        hidden = int(cfg["hidden_size"])
    except KeyError as exc:
        raise VramInputError(
            f"model_config lacks {exc.args[0]!r}: is this a Hugging Face config.json of a "
            "decoder-only model?"
        ) from exc
    kv_heads = int(cfg.get("num_key_value_heads") or heads)
    head_dim = int(cfg.get("head_dim") or hidden // heads)
    quant = cfg.get("quantization_config") or {}
    dtype = str(cfg.get("torch_dtype") or cfg.get("dtype") or "float16")
    return ModelGeometry(
        layers=layers,
        attention_heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        hidden_size=hidden,
        intermediate_size=int(cfg.get("intermediate_size") or 4 * hidden),
        vocab_size=int(cfg.get("vocab_size") or 0),
        tie_word_embeddings=bool(cfg.get("tie_word_embeddings", False)),
        dtype=dtype,
        quant_method=(
            str(quant.get("quant_method")).lower() if quant.get("quant_method") else None
        ),
        quant_bits=int(quant["bits"]) if quant.get("bits") else None,
        quant_group_size=int(quant["group_size"]) if quant.get("group_size") else None,
    )


def kv_element_bytes(kv_cache_dtype: str, model_dtype: str) -> float:
    name = model_dtype if kv_cache_dtype == "auto" else kv_cache_dtype
    if kv_cache_dtype not in KV_CACHE_DTYPES:
        raise VramInputError(
            f"kv_cache_dtype {kv_cache_dtype!r} is not one of {', '.join(KV_CACHE_DTYPES)}."
        )
    try:
        return DTYPE_BYTES[name.lower()]
    except KeyError as exc:
        raise VramInputError(f"unknown model dtype {name!r} for kv_cache_dtype auto") from exc


def kv_bytes_per_token(geom: ModelGeometry, kv_cache_dtype: str = "auto") -> int:
    per = kv_element_bytes(kv_cache_dtype, geom.dtype)
    return int(2 * geom.layers * geom.kv_heads * geom.head_dim * per)


def parameter_counts(geom: ModelGeometry) -> tuple[int, int]:
    """(linear-layer parameters, embedding + lm_head parameters); biases and norms ignored."""
    q = geom.hidden_size * geom.attention_heads * geom.head_dim
    kv = 2 * geom.hidden_size * geom.kv_heads * geom.head_dim
    o = geom.attention_heads * geom.head_dim * geom.hidden_size
    mlp = 3 * geom.hidden_size * geom.intermediate_size
    linear = geom.layers * (q + kv + o + mlp)
    embed = geom.vocab_size * geom.hidden_size * (1 if geom.tie_word_embeddings else 2)
    return linear, embed


def estimate_weights_bytes(geom: ModelGeometry, quantization: str | None = None) -> int:
    """Weights on the GPU; ``quantization`` None means "as the config says"."""
    method = (quantization or geom.quant_method or "none").lower()
    if method not in QUANTIZATIONS:
        raise VramInputError(
            f"quantization {quantization!r} is not one of {', '.join(QUANTIZATIONS)}."
        )
    linear, embed = parameter_counts(geom)
    if method in ("awq", "gptq"):
        bits = geom.quant_bits or 4
        group = geom.quant_group_size or 128
        # packed weights + fp16 scale and packed zero point per group
        per_weight = bits / 8 + (2 + bits / 8) / group
    elif method in ("fp8", "int8"):
        per_weight = 1.0
    else:
        per_weight = DTYPE_BYTES.get(geom.dtype.lower(), 2)
        if method in ("fp16", "bf16"):
            per_weight = 2
    return int(linear * per_weight + embed * 2)


@dataclass
class VramPlan:
    fits: bool
    gpu_memory_mib: int
    gpu_memory_utilization: float
    budget_bytes: int
    weights_bytes: int
    weights_source: str
    overhead_bytes: int
    kv_cache_dtype: str
    kv_bytes_per_token: int
    max_model_len: int
    max_num_seqs: int
    full_context_seqs: int
    kv_cache_bytes: int
    kv_available_bytes: int
    max_model_len_fit: int
    kv_tokens_capacity: int
    shortfall_bytes: int
    vllm_args: dict[str, Any]
    message: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _gib(value: float) -> str:
    return f"{value / GIB:.2f} GiB"


def plan_vram(
    config: dict[str, Any],
    gpu_memory_mib: int,
    max_model_len: int,
    *,
    gpu_memory_utilization: float = 0.9,
    kv_cache_dtype: str = "auto",
    max_num_seqs: int = 4,
    weights_bytes: int | None = None,
    quantization: str | None = None,
    overhead_mib: int = 1536,
    full_context_seqs: int = 1,
) -> VramPlan:
    if not 0 < gpu_memory_utilization <= 1:
        raise VramInputError(
            f"gpu_memory_utilization must be in (0, 1], got {gpu_memory_utilization}."
        )
    if gpu_memory_mib <= 0 or max_model_len <= 0 or max_num_seqs <= 0 or full_context_seqs <= 0:
        raise VramInputError(
            "gpu_memory_mib, max_model_len, max_num_seqs and full_context_seqs must be positive."
        )
    geom = geometry(config)
    per_token = kv_bytes_per_token(geom, kv_cache_dtype)
    if weights_bytes is None:
        weights = estimate_weights_bytes(geom, quantization)
        source = f"estimated from config ({quantization or geom.quant_method or geom.dtype})"
    else:
        weights = int(weights_bytes)
        source = "declared"
    budget = int(gpu_memory_mib * MIB * gpu_memory_utilization)
    overhead = int(overhead_mib * MIB)
    available = budget - weights - overhead
    needed = per_token * max_model_len * full_context_seqs
    capacity_tokens = max(0, available // per_token)
    fit = (capacity_tokens // full_context_seqs) // BLOCK_SIZE * BLOCK_SIZE
    fits = available >= needed
    shortfall = max(0, needed - available)
    chosen_len = max_model_len if fits else fit
    vllm_args = {
        "max_model_len": chosen_len,
        "kv_cache_dtype": kv_cache_dtype,
        "gpu_memory_utilization": gpu_memory_utilization,
        "max_num_seqs": max_num_seqs,
    }
    summary = (
        f"{gpu_memory_mib} MiB x {gpu_memory_utilization:g} = {_gib(budget)} budget; weights "
        f"{_gib(weights)} ({source}), overhead {_gib(overhead)}, KV room {_gib(max(available, 0))}"
        f"; {max_model_len} tokens x {per_token // 1024} KiB/token ({kv_cache_dtype}) x "
        f"{full_context_seqs} seq = {_gib(needed)}"
    )
    if fits:
        message = f"fits: {summary}; KV cache holds {capacity_tokens} tokens."
    elif fit > 0:
        util_needed = (weights + overhead + needed) / (gpu_memory_mib * MIB)
        hint = (
            f", or raise gpu_memory_utilization to {math.ceil(util_needed * 100) / 100:.2f}"
            if util_needed <= 0.98
            else ""
        )
        hint_fp8 = (
            ", or use kv_cache_dtype fp8"
            if kv_element_bytes(kv_cache_dtype, geom.dtype) > 1
            else ""
        )
        message = (
            f"does not fit: {summary} (short by {_gib(shortfall)}). Fix: set max_model_len "
            f"<= {fit}{hint}{hint_fp8}, or use a GPU with more memory."
        )
    else:
        message = (
            f"does not fit at all: {summary}; the weights and overhead alone exceed the budget. "
            "Fix: a smaller or more quantized model, or a GPU with more memory."
        )
    return VramPlan(
        fits=fits,
        gpu_memory_mib=int(gpu_memory_mib),
        gpu_memory_utilization=gpu_memory_utilization,
        budget_bytes=budget,
        weights_bytes=weights,
        weights_source=source,
        overhead_bytes=overhead,
        kv_cache_dtype=kv_cache_dtype,
        kv_bytes_per_token=per_token,
        max_model_len=max_model_len,
        max_num_seqs=max_num_seqs,
        full_context_seqs=full_context_seqs,
        kv_cache_bytes=needed,
        kv_available_bytes=available,
        max_model_len_fit=fit,
        kv_tokens_capacity=capacity_tokens,
        shortfall_bytes=shortfall,
        vllm_args=vllm_args,
        message=message,
    )
