#!/usr/bin/python
# Copyright: agent-workstation contributors
# SPDX-License-Identifier: Apache-2.0 (see LICENSE at the repository root)

DOCUMENTATION = r"""
---
module: vram_plan
short_description: Plan GPU memory for a vLLM model (weights, KV cache, max_model_len)
description:
  - "Budget = O(gpu_memory_mib) x O(gpu_memory_utilization). Weights and
    O(overhead_mib) (activation peak of vLLM's profiling run, CUDA graph pools, CUDA
    context) come off it; the rest is KV cache."
  - "KV cache per token = 2 x layers x KV heads x head dim x bytes per element (from the
    model's C(config.json)). Qwen2.5-Coder-32B: 64 x 8 x 128, so 256 KiB/token at fp16 and
    128 KiB at fp8."
  - The plan needs O(full_context_seqs) sequences of O(max_model_len) tokens to fit (vLLM
    refuses to start unless one does). RV(max_model_len_fit) is the largest length that fits,
    rounded down to the 16-token KV block.
  - RV(vllm_args) holds the arguments a vLLM role can pass as they are.
  - Reads O(model_config) when it is a path on the managed host; changes nothing.
  - "Profile mode (O(profiles) given): plans every profile of the catalogue
    (C(playbooks/vars/models.yml)) on O(gpu_count) x O(gpu_memory_mib), decides which enabled
    client (O(enabled_clients)) each leaves without context, KV room or native tool calls,
    picks O(profile) (C(auto): the first that serves them all) and returns the derived
    settings (RV(settings)). RV(problems) says what stops a deploy, naming the profile (or,
    where none fits, the hardware) that would serve the clients."
version_added: "0.1.0"
author: agent-workstation contributors
options:
  model_config:
    description:
      - The model's C(config.json), as a path on the managed host or as a dict.
      - When omitted, the shipped config of Qwen/Qwen2.5-Coder-32B-Instruct-AWQ is used.
    type: raw
  weights_bytes:
    description: Bytes the weights take on the GPU. When omitted, estimated from the config.
    type: int
  quantization:
    description:
      - Estimate the weights for this quantization (ignored when O(weights_bytes) is given).
        Default is what the config's C(quantization_config) says, else its dtype.
    type: str
    choices: [awq, gptq, fp8, int8, fp16, bf16, none]
  max_model_len:
    description:
      - Context length to plan for (tokens). Required without O(profiles).
      - In profile mode, omitted or 0 plans the profile's C(default_max_model_len), or the
        largest length that fits when that does not.
    type: int
  profiles:
    description: The model catalogue (C(aw_model_profiles)); switches on profile mode.
    type: dict
  clients:
    description: The clients' needs (C(aw_model_clients)). Required with O(profiles).
    type: dict
  enabled_clients:
    description: Names in O(clients) that this workstation serves.
    type: list
    elements: str
    default: []
  profile:
    description: Catalogue entry to plan, or C(auto).
    type: str
    default: auto
  gpu_count:
    description: Equal GPUs that vLLM may use (tensor parallel).
    type: int
    default: 1
  tensor_parallel_size:
    description: vLLM's C(--tensor-parallel-size); omitted = the largest valid size <= O(gpu_count).
    type: int
  kv_cache_dtype:
    description: vLLM's C(--kv-cache-dtype); C(auto) is the model's dtype.
    type: str
    default: auto
    choices: [auto, fp8, fp8_e4m3, fp8_e5m2, fp16, bf16]
  max_num_seqs:
    description: vLLM's C(--max-num-seqs), passed through to RV(vllm_args).
    type: int
    default: 4
  full_context_seqs:
    description: How many sequences of O(max_model_len) tokens must fit at once.
    type: int
    default: 1
  gpu_memory_mib:
    description: Total GPU memory (MiB), e.g. C(memory_total_mib) from M(nvidia_gpu).
    type: int
    required: true
  gpu_memory_utilization:
    description: vLLM's C(--gpu-memory-utilization).
    type: float
    default: 0.9
  overhead_mib:
    description: Runtime overhead inside the budget (activations, CUDA graphs, context).
    type: int
    default: 1536
  fail_on_overflow:
    description: When false, a plan that does not fit returns RV(fits)=false without failing.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: Only reads; same in check mode.
  diff_mode:
    support: none
    description: Changes nothing.
seealso:
  - module: nvidia_gpu
"""

EXAMPLES = r"""
- name: Plan Qwen2.5-Coder-32B-AWQ with fp8 KV cache on the detected GPU
  vram_plan:
    weights_bytes: 19327352832
    max_model_len: 24576
    kv_cache_dtype: fp8
    max_num_seqs: 4
    gpu_memory_mib: "{{ __gpu.gpus[0].memory_total_mib }}"
    gpu_memory_utilization: 0.92
    fail_on_overflow: false
  register: __vram

- name: Pass the plan to vLLM
  ansible.builtin.debug:
    msg: "--max-model-len {{ __vram.vllm_args.max_model_len }}"
"""

RETURN = r"""
fits:
  description: Whether O(max_model_len) fits.
  returned: always
  type: bool
kv_bytes_per_token:
  description: KV-cache bytes per token.
  returned: always
  type: int
  sample: 131072
kv_cache_bytes:
  description: KV-cache bytes O(max_model_len) x O(full_context_seqs) needs.
  returned: always
  type: int
  sample: 3221225472
kv_available_bytes:
  description: Budget left for the KV cache (negative when the weights do not fit).
  returned: always
  type: int
weights_bytes:
  description: Weights used in the plan.
  returned: always
  type: int
  sample: 19327352832
weights_source:
  description: C(declared) or how it was estimated.
  returned: always
  type: str
budget_bytes:
  description: O(gpu_memory_mib) x O(gpu_memory_utilization) in bytes.
  returned: always
  type: int
overhead_bytes:
  description: The runtime overhead in bytes.
  returned: always
  type: int
max_model_len_fit:
  description: The largest max_model_len that fits (multiple of 16; 0 if none).
  returned: always
  type: int
  sample: 21040
kv_tokens_capacity:
  description: Tokens the KV room holds.
  returned: always
  type: int
shortfall_bytes:
  description: Bytes missing for O(max_model_len) (0 when it fits).
  returned: always
  type: int
kv_cache_dtype:
  description: The KV-cache dtype planned.
  returned: always
  type: str
gpu_memory_utilization:
  description: The utilisation planned.
  returned: always
  type: float
max_num_seqs:
  description: Passed through.
  returned: always
  type: int
vllm_args:
  description: vLLM arguments; C(max_model_len) is O(max_model_len) when it fits, else
    RV(max_model_len_fit).
  returned: always
  type: dict
  sample: {max_model_len: 21040, kv_cache_dtype: fp8, gpu_memory_utilization: 0.92,
           max_num_seqs: 4}
msg:
  description: The numbers in words, with the fix when it does not fit.
  returned: always
  type: str
ok:
  description: Profile mode; no problem stops a deploy.
  returned: with profiles
  type: bool
profile:
  description: Profile mode; the profile planned (the chosen one when O(profile) is C(auto)).
  returned: with profiles
  type: str
  sample: qwen3-coder-30b-a3b-instruct-awq
fitting_profiles:
  description: Profile mode; catalogue profiles that serve every enabled client here.
  returned: with profiles
  type: list
  elements: str
plans:
  description: Profile mode; per profile, C(ok), C(max_model_len), C(kv_tokens_capacity),
    C(tensor_parallel_size), C(failing_clients).
  returned: with profiles
  type: dict
clients:
  description: Profile mode; per enabled client, C(ok), C(context_needed), C(concurrent),
    C(native_tool_calls) and the C(reasons) it cannot run.
  returned: with profiles
  type: dict
problems:
  description: Profile mode; what stops a deploy (a client that cannot run, an unpinned revision).
  returned: with profiles
  type: list
  elements: str
vram_message:
  description: Profile mode; the VRAM arithmetic of the planned profile in words (RV(msg) is the
    profile decision).
  returned: with profiles
  type: str
settings:
  description:
    - Profile mode; the derived settings, one source for the stack.
    - C(model), C(revision), C(served_model_names), C(model_name) (the first), C(tool_call_parser),
      C(max_model_len), C(openhands_max_input_tokens) (max_model_len minus OpenHands' output),
      C(openhands_max_output_tokens), C(claude_code_max_output_tokens), C(vllm_args) (a superset
      of RV(vllm_args)) and C(vllm_cli) (the C(vllm serve) flags after the model).
  returned: with profiles
  type: dict
"""

import json

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.agent_workstation.aw.plugins.module_utils.aw_result import (
    exit_with_verdict,
)
from ansible_collections.agent_workstation.aw.plugins.module_utils.aw_vram import (
    QWEN25_CODER_32B_INSTRUCT_AWQ_CONFIG,
    VramInputError,
    plan_site,
    plan_vram,
)


def load_config(module, value):
    if value is None:
        return QWEN25_CODER_32B_INSTRUCT_AWQ_CONFIG
    if isinstance(value, dict):
        return value
    path = str(value)
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except OSError as exc:
        module.fail_json(msg=f"model_config: cannot read {path}: {exc.strerror}.")
    except ValueError as exc:
        module.fail_json(msg=f"model_config: {path} is not JSON ({exc}).")
    return None


def main():
    module = AnsibleModule(
        argument_spec={
            "model_config": {"type": "raw"},
            "weights_bytes": {"type": "int"},
            "quantization": {
                "type": "str",
                "choices": ["awq", "gptq", "fp8", "int8", "fp16", "bf16", "none"],
            },
            "max_model_len": {"type": "int"},
            "profiles": {"type": "dict"},
            "clients": {"type": "dict"},
            "enabled_clients": {"type": "list", "elements": "str", "default": []},
            "profile": {"type": "str", "default": "auto"},
            "gpu_count": {"type": "int", "default": 1},
            "tensor_parallel_size": {"type": "int"},
            "kv_cache_dtype": {
                "type": "str",
                "default": "auto",
                "choices": ["auto", "fp8", "fp8_e4m3", "fp8_e5m2", "fp16", "bf16"],
            },
            "max_num_seqs": {"type": "int", "default": 4},
            "full_context_seqs": {"type": "int", "default": 1},
            "gpu_memory_mib": {"type": "int", "required": True},
            "gpu_memory_utilization": {"type": "float", "default": 0.9},
            "overhead_mib": {"type": "int", "default": 1536},
            "fail_on_overflow": {"type": "bool", "default": True},
        },
        required_by={"profiles": "clients"},
        supports_check_mode=True,
    )
    p = module.params
    if p["profiles"] is not None:
        plan_profiles(module, p)
        return
    if p["max_model_len"] is None:
        module.fail_json(msg="max_model_len is required unless profiles is given.")
    config = load_config(module, p["model_config"])
    try:
        plan = plan_vram(
            config,
            p["gpu_memory_mib"],
            p["max_model_len"],
            gpu_memory_utilization=p["gpu_memory_utilization"],
            kv_cache_dtype=p["kv_cache_dtype"],
            max_num_seqs=p["max_num_seqs"],
            weights_bytes=p["weights_bytes"],
            quantization=p["quantization"],
            overhead_mib=p["overhead_mib"],
            full_context_seqs=p["full_context_seqs"],
        )
    except VramInputError as exc:
        module.fail_json(msg=str(exc))
    exit_with_verdict(module, plan.as_dict(), plan.fits, p["fail_on_overflow"])


def plan_profiles(module, p):
    try:
        site = plan_site(
            p["profiles"],
            p["clients"],
            p["enabled_clients"],
            p["profile"],
            p["gpu_memory_mib"],
            p["gpu_count"],
            max_model_len=p["max_model_len"] or None,
            kv_cache_dtype=p["kv_cache_dtype"],
            gpu_memory_utilization=p["gpu_memory_utilization"],
            overhead_mib=p["overhead_mib"],
            max_num_seqs=p["max_num_seqs"],
            tensor_parallel_size=p["tensor_parallel_size"],
        )
    except VramInputError as exc:
        module.fail_json(msg=str(exc))
    plan = site["plan"]
    report = dict(plan["vram"])
    report.update(
        {
            "ok": site["ok"],
            "profile": site["profile"],
            "fitting_profiles": site["fitting_profiles"],
            "plans": site["plans"],
            "clients": plan["clients"],
            "problems": site["problems"],
            "settings": site["settings"],
            "vllm_args": site["settings"]["vllm_args"],
            "message": site["message"],
            "vram_message": plan["vram"]["message"],
        }
    )
    exit_with_verdict(module, report, site["ok"], p["fail_on_overflow"])


if __name__ == "__main__":
    main()
