# Copyright: agent-workstation contributors
# SPDX-License-Identifier: Apache-2.0 (see LICENSE at the repository root)
"""SGLang as the local tier's engine (workstation_llm_engine: sglang): what it cannot serve.

The lists below are SGLang 0.5.17's, read in its source (the PyPI wheel sglang==0.5.17:
srt/server_args.py `kv_cache_dtype` choices and QUANTIZATION_CHOICES, srt/function_call/
function_call_parser.py ToolCallParserEnum); tests/contracts/sglang-0.5.17.json records them with
every CLI flag (scripts/sglang-contract.py), and tests/unit/test_sglang.py fails when the lists
here stop being a subset of that record. Facts used:

- one `--served-model-name` (a str, not a list): `/v1/models` lists only that name; the OpenAI
  and Anthropic handlers do not check the request's `model` (no 404 for another name), but
  `base:adapter` is read as a LoRA adapter (serving_base.py _parse_model_parameter), so a name
  with a colon would be sent to an adapter that does not exist;
- `--kv-cache-dtype` has no plain `fp8` (vLLM's): fp8_e4m3 is what vLLM's fp8 means on CUDA;
- the API key is only `--api-key` (no environment variable, no file option): the stack passes
  it through `--config <yaml>` (server_args_config_parser.py), so it is never on a command line.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

DOCUMENTATION = """
name: aw_sglang_problems
short_description: What the stack's settings ask of SGLang that SGLang 0.5.17 cannot serve.
description:
  - One line per problem, each naming the variable, its value and the fix; empty when fine.
positional: _input
options:
  _input:
    description: >-
      kv_cache_dtype, quantization, tool_call_parser, served_model_names, extra_args (the vLLM
      ones), tensor_parallel_size.
    type: dict
    required: true
"""

SGLANG_VERSION = "0.5.17"
# vLLM's --kv-cache-dtype values (what vram_plan writes) -> SGLang's.
KV_CACHE_DTYPES = {
    "auto": "auto",
    "fp8": "fp8_e4m3",
    "fp8_e4m3": "fp8_e4m3",
    "fp8_e5m2": "fp8_e5m2",
}
TOOL_CALL_PARSERS = (
    "deepseekv3",
    "glm45",
    "hermes",
    "kimi_k2",
    "llama3",
    "mistral",
    "pythonic",
    "qwen",
    "qwen25",
    "qwen3_coder",
)
QUANTIZATIONS = (
    "awq",
    "awq_marlin",
    "compressed-tensors",
    "fp8",
    "gptq",
    "gptq_marlin",
    "marlin",
)


def kv_cache_dtype(value: Any) -> str:
    """SGLang's --kv-cache-dtype for vLLM's value (vram_plan's); unknown values are refused."""
    text = str(value)
    if text not in KV_CACHE_DTYPES:
        raise AnsibleFilterError(
            f"aw_sglang_kv_cache_dtype: {text!r} has no SGLang equivalent "
            f"(known: {', '.join(KV_CACHE_DTYPES)})"
        )
    return KV_CACHE_DTYPES[text]


def sglang_problems(values: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    kv = str(values.get("kv_cache_dtype", "auto"))
    if kv not in KV_CACHE_DTYPES:
        problems.append(
            f'agent_stack_vllm_args.kv_cache_dtype="{kv}" has no SGLang {SGLANG_VERSION} '
            f"equivalent. Fix: use one of {', '.join(KV_CACHE_DTYPES)} (fp8 becomes SGLang's "
            "fp8_e4m3), or workstation_llm_engine=vllm."
        )
    quant = values.get("quantization")
    if quant and str(quant) not in QUANTIZATIONS:
        problems.append(
            f'agent_stack_vllm_args.quantization="{quant}" is not one this project passes to '
            f"SGLang {SGLANG_VERSION}. Fix: use one of {', '.join(QUANTIZATIONS)} (or none: "
            "SGLang reads it from the checkpoint), or workstation_llm_engine=vllm."
        )
    parser = str(values.get("tool_call_parser", ""))
    if parser not in TOOL_CALL_PARSERS:
        problems.append(
            f'agent_stack_vllm_tool_call_parser="{parser}" is not a tool-call parser of SGLang '
            f"{SGLANG_VERSION} that this project maps. Fix: use one of "
            f"{', '.join(TOOL_CALL_PARSERS)} (hermes for Qwen2.5-Coder, qwen3_coder for "
            "Qwen3-Coder), or workstation_llm_engine=vllm."
        )
    names = [str(n) for n in values.get("served_model_names") or []]
    with_colon = [n for n in names if ":" in n]
    if with_colon:
        problems.append(
            f"agent_stack_vllm_served_model_names={names} has {with_colon}: SGLang reads "
            '"base:adapter" as a LoRA adapter and would not serve the base model under that '
            "name. Fix: use names without a colon."
        )
    extra = list(values.get("extra_args") or [])
    if extra:
        problems.append(
            f"agent_stack_vllm_extra_args={extra} are vLLM arguments and are not passed to "
            "SGLang. Fix: move them to agent_stack_sglang_extra_args, written as SGLang's "
            "flags (python -m sglang.launch_server --help), or empty agent_stack_vllm_extra_args."
        )
    tp = values.get("tensor_parallel_size", 1)
    try:
        tp_ok = int(tp) >= 1
    except (TypeError, ValueError):
        tp_ok = False
    if not tp_ok:
        problems.append(
            f'agent_stack_vllm_args.tensor_parallel_size="{tp}" is not a whole number >= 1 '
            "(SGLang's --tp-size). Fix: leave it to the VRAM plan (the GPU count)."
        )
    return problems


def _problems_filter(values):
    if not isinstance(values, Mapping):
        raise AnsibleFilterError("aw_sglang_problems expects a mapping")
    return sglang_problems(values)


class FilterModule:
    """SGLang filters."""

    def filters(self):
        return {"aw_sglang_problems": _problems_filter, "aw_sglang_kv_cache_dtype": kv_cache_dtype}
