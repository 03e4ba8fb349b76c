# Copyright: agent-workstation contributors
# SPDX-License-Identifier: Apache-2.0 (see LICENSE at the repository root)
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
    experts: int = 0
    moe_intermediate_size: int = 0


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
        experts=int(cfg.get("num_experts") or cfg.get("n_routed_experts") or 0),
        moe_intermediate_size=int(cfg.get("moe_intermediate_size") or 0),
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
    """(linear-layer parameters, embedding + lm_head parameters); biases and norms ignored.

    A mixture-of-experts layer (``num_experts`` > 0, e.g. Qwen3-MoE) holds every expert's
    gate/up/down projections (``moe_intermediate_size`` wide) and a router (hidden x experts).
    """
    q = geom.hidden_size * geom.attention_heads * geom.head_dim
    kv = 2 * geom.hidden_size * geom.kv_heads * geom.head_dim
    o = geom.attention_heads * geom.head_dim * geom.hidden_size
    if geom.experts > 0 and geom.moe_intermediate_size > 0:
        mlp = geom.experts * 3 * geom.hidden_size * geom.moe_intermediate_size
        mlp += geom.hidden_size * geom.experts
    else:
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


def kv_heads_per_gpu(geom: ModelGeometry, tensor_parallel_size: int) -> int:
    """KV heads each GPU holds under tensor parallelism (vLLM splits them, or replicates them
    when there are more GPUs than KV heads)."""
    tp = tensor_parallel_size
    if tp < 1:
        raise VramInputError(f"tensor_parallel_size must be >= 1, got {tp}.")
    if geom.attention_heads % tp:
        raise VramInputError(
            f"tensor_parallel_size {tp} does not divide the model's {geom.attention_heads} "
            "attention heads (vLLM refuses it). Fix: use a GPU count that divides it."
        )
    if geom.kv_heads % tp and tp % geom.kv_heads:
        raise VramInputError(
            f"tensor_parallel_size {tp} and the model's {geom.kv_heads} KV heads do not divide "
            "one another (vLLM refuses it). Fix: use a GPU count that divides the KV heads."
        )
    return max(1, geom.kv_heads // tp)


@dataclass
class VramPlan:
    fits: bool
    gpu_memory_mib: int
    gpu_memory_utilization: float
    tensor_parallel_size: int
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
    tensor_parallel_size: int = 1,
) -> VramPlan:
    """Plan one GPU (or each of ``tensor_parallel_size`` equal GPUs) for ``config``.

    Under tensor parallelism every GPU holds 1/N of the weights and of the KV heads, and its
    own ``overhead_mib``; ``budget_bytes``, ``weights_bytes``, ``overhead_bytes`` and
    ``kv_available_bytes`` are per GPU, ``kv_bytes_per_token`` is for the whole model.
    """
    if not 0 < gpu_memory_utilization <= 1:
        raise VramInputError(
            f"gpu_memory_utilization must be in (0, 1], got {gpu_memory_utilization}."
        )
    if gpu_memory_mib <= 0 or max_model_len <= 0 or max_num_seqs <= 0 or full_context_seqs <= 0:
        raise VramInputError(
            "gpu_memory_mib, max_model_len, max_num_seqs and full_context_seqs must be positive."
        )
    geom = geometry(config)
    tp = int(tensor_parallel_size)
    per_gpu_heads = kv_heads_per_gpu(geom, tp)
    per_token = kv_bytes_per_token(geom, kv_cache_dtype)
    per_token_gpu = int(
        2
        * geom.layers
        * per_gpu_heads
        * geom.head_dim
        * kv_element_bytes(kv_cache_dtype, geom.dtype)
    )
    if weights_bytes is None:
        weights_total = estimate_weights_bytes(geom, quantization)
        source = f"estimated from config ({quantization or geom.quant_method or geom.dtype})"
    else:
        weights_total = int(weights_bytes)
        source = "declared"
    weights = weights_total // tp
    budget = int(gpu_memory_mib * MIB * gpu_memory_utilization)
    overhead = int(overhead_mib * MIB)
    available = budget - weights - overhead
    needed = per_token_gpu * max_model_len * full_context_seqs
    capacity_tokens = max(0, available // per_token_gpu)
    fit = (capacity_tokens // full_context_seqs) // BLOCK_SIZE * BLOCK_SIZE
    fits = available >= needed
    shortfall = max(0, needed - available)
    chosen_len = max_model_len if fits else fit
    vllm_args: dict[str, Any] = {
        "max_model_len": chosen_len,
        "kv_cache_dtype": kv_cache_dtype,
        "gpu_memory_utilization": gpu_memory_utilization,
        "max_num_seqs": max_num_seqs,
    }
    if tp > 1:
        vllm_args["tensor_parallel_size"] = tp
    gpus = f"{tp} x {gpu_memory_mib} MiB" if tp > 1 else f"{gpu_memory_mib} MiB"
    per_gpu = " per GPU" if tp > 1 else ""
    summary = (
        f"{gpus} x {gpu_memory_utilization:g} = {_gib(budget)} budget{per_gpu}; weights "
        f"{_gib(weights)}{per_gpu} ({source}), overhead {_gib(overhead)}, KV room "
        f"{_gib(max(available, 0))}; {max_model_len} tokens x {per_token // 1024} KiB/token "
        f"({kv_cache_dtype}) x {full_context_seqs} seq = {_gib(needed * tp)}"
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
        tensor_parallel_size=tp,
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


# --- Model profiles: the catalogue (playbooks/vars/models.yml) against the clients' needs ------
#
# A profile is one catalogue entry: a Hugging Face repository at a pinned revision, its
# architecture (config.json key names), declared weights, quantization and vLLM tool parser.
# A client declares the context it needs (prompt + output + headroom tokens), how many such
# sequences it runs at once, and whether it needs native tool calls. The planner decides, for
# a card and the enabled clients, what every profile gives and which client it leaves without.

PROFILE_KEYS = (
    "model",
    "revision",
    "architecture",
    "weights_bytes",
    "quantization",
    "served_model_names",
    "tool_call_parser",
    "native_tool_calls",
    "default_max_model_len",
    "min_vllm_version",
)
CLIENT_KEYS = (
    "prompt_tokens",
    "output_tokens",
    "headroom_tokens",
    "concurrent",
    "native_tool_calls",
)
ARCHITECTURE_KEYS = (
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "hidden_size",
    "max_position_embeddings",
    "torch_dtype",
)
# Cards the planner names when the hardware at hand cannot serve the clients: (label, MiB that
# nvidia-smi reports). 24 GB: RTX 3090/4090 (24564, the captures in tests/fixtures/nvidia-smi);
# 32 GB: RTX 5090 (32607); 48 GB: RTX A6000 / 6000 Ada / L40S (49140); 80 GB: A100/H100 (81559).
STANDARD_CARDS: tuple[tuple[str, int], ...] = (
    ("24 GB", 24564),
    ("32 GB", 32607),
    ("48 GB", 49140),
    ("80 GB", 81559),
)
_SHA = "0123456789abcdef"


def is_pinned_revision(value: object) -> bool:
    """A 40-hex-digit commit sha (a branch name such as ``main`` moves)."""
    return isinstance(value, str) and len(value) == 40 and all(c in _SHA for c in value.lower())


def profile_config(profile: dict[str, Any]) -> dict[str, Any]:
    """A config.json-shaped dict from a profile's ``architecture`` (same key names)."""
    arch = dict(profile.get("architecture") or {})
    missing = [key for key in ARCHITECTURE_KEYS if key not in arch]
    if missing:
        raise VramInputError(
            f"profile {profile.get('model')!r}: architecture lacks {', '.join(missing)} "
            "(copy them from the model's config.json)."
        )
    return arch


def client_context(client: dict[str, Any]) -> int:
    """Tokens one sequence of this client needs: prompt + output + headroom."""
    return (
        int(client["prompt_tokens"]) + int(client["output_tokens"]) + int(client["headroom_tokens"])
    )


def check_catalogue(profiles: dict[str, Any], clients: dict[str, Any]) -> list[str]:
    """What is wrong with the catalogue itself (keys, types); [] when it can be planned."""
    problems: list[str] = []
    if not profiles:
        problems.append("the model catalogue (aw_model_profiles) is empty.")
    for name, profile in (profiles or {}).items():
        if not isinstance(profile, dict):
            problems.append(f"profile {name}: not a mapping.")
            continue
        missing = [key for key in PROFILE_KEYS if key not in profile]
        if missing:
            problems.append(f"profile {name}: lacks {', '.join(missing)}.")
            continue
        try:
            profile_config(profile)
        except VramInputError as exc:
            problems.append(f"profile {name}: {exc}")
        names = profile["served_model_names"]
        if not (isinstance(names, list) and names and all(isinstance(n, str) and n for n in names)):
            problems.append(f"profile {name}: served_model_names must be a non-empty name list.")
    for name, client in (clients or {}).items():
        missing = [key for key in CLIENT_KEYS if key not in (client or {})]
        if missing:
            problems.append(f"client {name}: lacks {', '.join(missing)}.")
    return problems


@dataclass
class ClientFit:
    name: str
    ok: bool
    context_needed: int
    concurrent: int
    native_tool_calls: bool
    reasons: list[str]


def _tensor_parallel(config: dict[str, Any], gpu_count: int, wanted: int | None) -> int:
    geom = geometry(config)
    if wanted is not None:
        kv_heads_per_gpu(geom, int(wanted))  # raises with the reason
        return int(wanted)
    for tp in range(max(1, gpu_count), 0, -1):
        try:
            kv_heads_per_gpu(geom, tp)
        except VramInputError:
            continue
        return tp
    return 1


def plan_profile(  # noqa: PLR0917 - the decision's inputs, in the order the docstring names them
    name: str,
    profile: dict[str, Any],
    clients: dict[str, Any],
    enabled: list[str],
    gpu_memory_mib: int,
    gpu_count: int = 1,
    *,
    max_model_len: int | None = None,
    kv_cache_dtype: str = "fp8",
    gpu_memory_utilization: float = 0.92,
    overhead_mib: int = 1536,
    max_num_seqs: int = 4,
    tensor_parallel_size: int | None = None,
) -> dict[str, Any]:
    """What profile ``name`` gives each enabled client on ``gpu_count`` x ``gpu_memory_mib``.

    ``max_model_len`` None plans the profile's ``default_max_model_len`` (never beyond the
    model's ``max_position_embeddings``) and, where that does not fit, the largest length that
    does. A client runs when the planned ``max_model_len`` holds its context, the KV cache
    holds ``concurrent`` such sequences at once, and the profile gives native tool calls where
    the client needs them.
    """
    config = profile_config(profile)
    positions = int(config["max_position_embeddings"])
    tp = _tensor_parallel(config, gpu_count, tensor_parallel_size)
    wanted = (
        int(max_model_len)
        if max_model_len
        else min(int(profile["default_max_model_len"]), positions)
    )
    problems: list[str] = []
    if wanted > positions:
        problems.append(
            f"max_model_len {wanted} exceeds {name}'s max_position_embeddings {positions} "
            "(its config.json; this project does not configure rope scaling)."
        )
    vram = plan_vram(
        config,
        gpu_memory_mib,
        min(wanted, positions),
        gpu_memory_utilization=gpu_memory_utilization,
        kv_cache_dtype=kv_cache_dtype,
        max_num_seqs=max_num_seqs,
        weights_bytes=int(profile["weights_bytes"]),
        overhead_mib=overhead_mib,
        tensor_parallel_size=tp,
    )
    planned = int(vram.vllm_args["max_model_len"])
    fits: list[ClientFit] = []
    for client_name in enabled:
        client = clients[client_name]
        need = client_context(client)
        concurrent = int(client["concurrent"])
        tools = bool(client["native_tool_calls"])
        reasons = []
        if planned < need:
            reasons.append(
                f"needs {need} tokens of context ({client['prompt_tokens']} prompt + "
                f"{client['output_tokens']} output + {client['headroom_tokens']} headroom), "
                f"the plan gives {planned}"
            )
        elif vram.kv_tokens_capacity < need * concurrent:
            reasons.append(
                f"runs {concurrent} sequences of {need} tokens at once ({need * concurrent}), "
                f"the KV cache holds {vram.kv_tokens_capacity}"
            )
        if tools and not profile["native_tool_calls"]:
            reasons.append(
                f"needs native tool calls, which {name} does not give reliably "
                f"(parser {profile['tool_call_parser']}: "
                f"{profile.get('tool_calls_note', 'see the catalogue')})"
            )
        fits.append(ClientFit(client_name, not reasons, need, concurrent, tools, reasons))
    failing = [fit.name for fit in fits if not fit.ok]
    return {
        "profile": name,
        "ok": planned > 0 and not failing and not problems,
        "tensor_parallel_size": tp,
        "gpu_count": int(gpu_count),
        "gpu_memory_mib": int(gpu_memory_mib),
        "max_model_len": planned,
        "vram": vram.as_dict(),
        "clients": {fit.name: asdict(fit) for fit in fits},
        "failing_clients": failing,
        "problems": problems,
        "settings": derive_settings(
            name, profile, clients, vram=vram, max_model_len=planned, tensor_parallel_size=tp
        ),
    }


def derive_settings(
    name: str,
    profile: dict[str, Any],
    clients: dict[str, Any],
    *,
    vram: VramPlan,
    max_model_len: int,
    tensor_parallel_size: int,
) -> dict[str, Any]:
    """The one source of names and sizes for vLLM and its clients (see the module's RETURN)."""
    served = [str(n) for n in profile["served_model_names"]]
    openhands_out = int((clients.get("openhands") or {}).get("output_tokens", 4096))
    claude_out = int((clients.get("claude_agent_sdk") or {}).get("output_tokens", 8192))
    vllm_args: dict[str, Any] = dict(vram.vllm_args)
    vllm_args.update(
        {
            "max_model_len": max_model_len,
            "tensor_parallel_size": tensor_parallel_size,
            "model": profile["model"],
            "revision": profile["revision"],
            "served_model_names": served,
            "tool_call_parser": profile["tool_call_parser"],
            "enable_auto_tool_choice": True,
            "quantization": profile.get("vllm_quantization"),
        }
    )
    cli = [f"--revision={profile['revision']}", "--served-model-name", *served]
    cli += [
        f"--max-model-len={max_model_len}",
        f"--kv-cache-dtype={vram.kv_cache_dtype}",
        f"--gpu-memory-utilization={vram.gpu_memory_utilization:g}",
        f"--max-num-seqs={vram.max_num_seqs}",
        "--enable-auto-tool-choice",
        f"--tool-call-parser={profile['tool_call_parser']}",
    ]
    if tensor_parallel_size > 1:
        cli.append(f"--tensor-parallel-size={tensor_parallel_size}")
    if profile.get("vllm_quantization"):
        cli.append(f"--quantization={profile['vllm_quantization']}")
    return {
        "profile": name,
        "model": profile["model"],
        "revision": profile["revision"],
        "served_model_names": served,
        "model_name": served[0],
        "tool_call_parser": profile["tool_call_parser"],
        "max_model_len": max_model_len,
        "openhands_max_input_tokens": max(0, max_model_len - openhands_out),
        "openhands_max_output_tokens": openhands_out,
        "claude_code_max_output_tokens": claude_out,
        "vllm_args": vllm_args,
        "vllm_cli": cli,
    }


def _gpus(count: int, mib: int) -> str:
    return f"{count} x {mib} MiB"


def hardware_that_fits(
    profiles: dict[str, Any],
    clients: dict[str, Any],
    enabled: list[str],
    only: str | None = None,
    **options: Any,
) -> tuple[str, str] | None:
    """(hardware, profile) of the smallest standard card set (1 or 2 equal GPUs) on which a
    profile (``only`` that one) serves every enabled client; None when none does."""
    sets = sorted(
        ((count, label, mib) for label, mib in STANDARD_CARDS for count in (1, 2)),
        key=lambda item: (item[0] * item[2], item[0]),
    )
    for count, label, mib in sets:
        for name, profile in profiles.items():
            if only is not None and name != only:
                continue
            try:
                plan = plan_profile(name, profile, clients, enabled, mib, count, **options)
            except VramInputError:
                continue
            if plan["ok"]:
                return (f"{count} x {label}" if count > 1 else f"one {label} card", name)
    return None


def plan_site(  # noqa: PLR0917 - the decision's inputs, as vram_plan passes them
    profiles: dict[str, Any],
    clients: dict[str, Any],
    enabled: list[str],
    profile_name: str,
    gpu_memory_mib: int,
    gpu_count: int = 1,
    **options: Any,
) -> dict[str, Any]:
    """The whole decision: every profile planned on this hardware, the chosen one (``auto``:
    the first in catalogue order that serves every enabled client), its problems and a message
    that names the profile (or, where none fits, the hardware) that would serve them."""
    problems = check_catalogue(profiles, clients)
    if problems:
        raise VramInputError("playbooks/vars/models.yml: " + " ".join(problems))
    unknown = [c for c in enabled if c not in clients]
    if unknown:
        raise VramInputError(
            f"workstation_clients names {', '.join(map(repr, unknown))}, not in the client table; "
            f"known clients: {', '.join(clients)}. Fix: use those names."
        )
    if profile_name != "auto" and profile_name not in profiles:
        raise VramInputError(
            f"preflight_model_profile {profile_name!r} is not in the catalogue "
            f"(playbooks/vars/models.yml); use auto or one of: {', '.join(profiles)}."
        )
    plans = {
        name: plan_profile(name, profile, clients, enabled, gpu_memory_mib, gpu_count, **options)
        for name, profile in profiles.items()
    }
    fitting = [name for name, plan in plans.items() if plan["ok"]]
    if profile_name == "auto":
        # None serves everyone: report the one that serves the most, then the longest context.
        chosen = (
            fitting[0]
            if fitting
            else max(
                plans,
                key=lambda n: (-len(plans[n]["failing_clients"]), plans[n]["max_model_len"]),
            )
        )
    else:
        chosen = profile_name
    plan = plans[chosen]
    gpus = _gpus(gpu_count, gpu_memory_mib)
    problems = list(plan["problems"])
    if not is_pinned_revision(profiles[chosen]["revision"]):
        problems.append(
            f"profile {chosen} has no pinned revision (revision: "
            f"{profiles[chosen]['revision']!r} in playbooks/vars/models.yml); a moving branch "
            "would change the weights under the stack. "
            f"Fix: set revision to the 40-hex commit sha from "
            f"https://huggingface.co/{profiles[chosen]['model']}/commits/main."
        )
    if plan["failing_clients"] or plan["max_model_len"] <= 0:
        failing = plan["failing_clients"]
        lines = [
            f"{client}: {'; '.join(r.rstrip('.') for r in plan['clients'][client]['reasons'])}"
            for client in failing
        ]
        head = (
            f"profile {chosen} on {gpus} (max_model_len {plan['max_model_len']}, KV cache "
            f"{plan['vram']['kv_tokens_capacity']} tokens, "
            f"tensor parallel {plan['tensor_parallel_size']})"
        )
        if plan["max_model_len"] <= 0:
            arithmetic = plan["vram"]["message"].split("; the weights")[0]
            lines.insert(0, f"its weights do not fit ({arithmetic})")
        others = [name for name in fitting if name != chosen]
        if others:
            alt = plans[others[0]]
            fix = (
                f"Fix: set preflight_model_profile: {others[0]} (max_model_len "
                f"{alt['max_model_len']}, tool parser {alt['settings']['tool_call_parser']}, "
                f"serves {', '.join(enabled)})"
            )
        else:
            where = hardware_that_fits(profiles, clients, enabled, **options)
            fix = f"Fix: no profile serves {', '.join(enabled)} on {gpus}; " + (
                f"{where[0]} would (profile {where[1]})"
                if where
                else "no standard card set of the catalogue does"
            )
        fix += f", or remove {', '.join(failing) or 'clients'} from workstation_clients."
        problems.append(
            f"{head} cannot serve every enabled client: "
            + " ".join(f"{line}." for line in lines)
            + " "
            + fix
        )
    message = (
        f"profile {chosen} on {gpus}: max_model_len {plan['max_model_len']}, "
        f"KV cache {plan['vram']['kv_tokens_capacity']} tokens, tool parser "
        f"{profiles[chosen]['tool_call_parser']}; "
        + (
            f"serves {', '.join(enabled)}."
            if not plan["failing_clients"]
            else f"cannot serve {', '.join(plan['failing_clients'])}."
        )
    )
    return {
        "ok": not problems,
        "profile": chosen,
        "requested": profile_name,
        "fitting_profiles": fitting,
        "plan": plan,
        "plans": {name: _summary(p) for name, p in plans.items()},
        "settings": plan["settings"],
        "problems": problems,
        "message": message,
    }


def _summary(plan: dict[str, Any]) -> dict[str, Any]:
    return {
        "ok": plan["ok"],
        "max_model_len": plan["max_model_len"],
        "kv_tokens_capacity": plan["vram"]["kv_tokens_capacity"],
        "tensor_parallel_size": plan["tensor_parallel_size"],
        "failing_clients": plan["failing_clients"],
    }


def card_table(
    profiles: dict[str, Any],
    clients: dict[str, Any],
    enabled: list[str],
    counts: tuple[int, ...] = (1, 2),
    **options: Any,
) -> list[dict[str, Any]]:
    """For each standard card and GPU count: the default profile and what each profile gives
    (the README's table is this function's output)."""
    rows = []
    for label, mib in STANDARD_CARDS:
        for count in counts:
            site = plan_site(profiles, clients, enabled, "auto", mib, count, **options)
            rows.append(
                {
                    "card": label,
                    "gpu_memory_mib": mib,
                    "gpu_count": count,
                    "default": site["profile"] if site["fitting_profiles"] else None,
                    "profiles": site["plans"],
                }
            )
    return rows
