#!/usr/bin/python
# Copyright: agent-workstation contributors
# SPDX-License-Identifier: Apache-2.0 (see LICENSE at the repository root)

DOCUMENTATION = r"""
---
module: vllm_ready
short_description: Wait for a vLLM server to be ready, layer by layer
description:
  - Polls C(/health) until it answers 200; a refused connection means the model is still
    loading (vLLM does not listen while it loads), a 503 means the engine is up but not
    healthy. Polls back off from 0.25 s, doubling up to O(poll_interval).
  - Then checks that C(/v1/models) lists every name in O(expected_models); a missing alias
    fails with the C(--served-model-name) to add.
  - Then optionally a one-token chat completion (O(check_completion)) and, for each alias,
    a one-token Anthropic-format C(/v1/messages) call (O(check_messages)).
  - Then optionally (O(check_tools)) a streamed C(/v1/messages) call and a non-streamed chat
    completion, each offering one tool; both must come back well-formed (status 200, SSE
    event order, closed content blocks, a valid C(stop_reason)/C(finish_reason), and any tool
    call naming the offered tool with JSON-object arguments). A model may answer in text.
  - Every request carries exactly the headers a real client sends, C(Authorization Bearer)
    (vLLM reads no other), plus C(anthropic-version) on C(/v1/messages), as Claude Code
    sends with C(ANTHROPIC_AUTH_TOKEN). No C(x-api-key), which vLLM answers with 401.
  - Then reads C(/metrics) (C(vllm:kv_cache_usage_perc), or the older
    C(vllm:gpu_cache_usage_perc), and the request gauges).
  - With O(engine=sglang), the same layers against SGLang (0.5.17). Its C(/health) answers 503
    while it starts; C(/v1/models) lists only its one C(--served-model-name), so only the first
    of O(expected_models) must be listed and every alias is proven by the C(/v1/messages) check
    (SGLang serves any requested model name); C(/metrics) gives C(sglang:token_usage),
    C(sglang:num_running_reqs) and C(sglang:num_queue_reqs).
  - Uses only the Python standard library; changes nothing.
version_added: "0.1.0"
author: agent-workstation contributors
options:
  url:
    description: Base URL of the server, e.g. C(http://127.0.0.1:8000).
    type: str
    required: true
  expected_models:
    description: Names that C(/v1/models) must list (the C(--served-model-name) aliases).
    type: list
    elements: str
    default: []
  timeout:
    description: Seconds to wait for C(/health) before failing.
    type: float
    default: 900
  poll_interval:
    description: Upper bound of the wait between two C(/health) polls (seconds).
    type: float
    default: 5
  request_timeout:
    description: Timeout of each HTTP request (seconds).
    type: float
    default: 30
  check_completion:
    description: Also ask for a one-token chat completion from the first expected model.
    type: bool
    default: false
  check_messages:
    description: Also call C(/v1/messages) (Anthropic Messages API) once per expected model.
    type: bool
    default: false
  check_tools:
    description: Also run the two tool-call checks against the first expected model.
    type: bool
    default: false
  api_key:
    description: Sent as C(Authorization Bearer), the only header vLLM's key check reads.
    type: str
  api_key_file:
    description: Read the API key from this file on the managed host (first line).
    type: path
  fail_on_not_ready:
    description: When false, a server that is not ready returns RV(ready)=false without failing.
    type: bool
    default: true
  engine:
    description: The server behind O(url), C(vllm) or C(sglang) (what C(/v1/models) lists, which
      metrics to read, the fixes suggested).
    type: str
    choices: [vllm, sglang]
    default: vllm
attributes:
  check_mode:
    support: full
    description: Only reads (one-token generations change no state); runs in check mode.
  diff_mode:
    support: none
    description: Changes nothing.
"""

EXAMPLES = r"""
- name: Wait for vLLM and check the aliases Claude-style clients use
  vllm_ready:
    url: http://127.0.0.1:8000
    expected_models:
      - Qwen/Qwen2.5-Coder-32B-Instruct-AWQ
      - claude-sonnet-4-5
    check_completion: true
    check_messages: true
    check_tools: true
    api_key_file: /etc/agent-workstation/secrets/vllm_api_key
    timeout: 900
    poll_interval: 5
  register: __vllm_ready
"""

RETURN = r"""
ready:
  description: Whether every requested layer passed.
  returned: always
  type: bool
elapsed_s:
  description: Seconds from the first poll to the verdict.
  returned: always
  type: float
  sample: 73.5
phase:
  description: The layer reached (C(health), C(models), C(completion), C(messages), C(tools),
    C(metrics), C(ready)).
  returned: always
  type: str
problem:
  description: Null, or C(timeout_loading), C(timeout_unhealthy), C(unauthorized),
    C(models_unreadable), C(missing_models), C(completion_failed), C(messages_failed),
    C(tools_failed).
  returned: always
  type: str
models:
  description: Names C(/v1/models) lists.
  returned: always
  type: list
  elements: str
missing_models:
  description: Expected names it does not list.
  returned: always
  type: list
  elements: str
checks:
  description: Results of the completion, messages and tool-call checks (C(tools_messages_stream),
    C(tools_chat), each with status, ok, problem, stop or finish reason and the tool calls seen).
  returned: always
  type: dict
metrics:
  description: From C(/metrics).
  returned: always
  type: dict
  contains:
    kv_cache_usage:
      description: KV-cache usage, 0 to 1 (max over engines).
      type: float
    kv_cache_metric:
      description: The metric it came from.
      type: str
      sample: vllm:kv_cache_usage_perc
    num_requests_running:
      description: Sum of C(vllm:num_requests_running) (SGLang C(sglang:num_running_reqs)).
      type: float
    num_requests_waiting:
      description: Sum of C(vllm:num_requests_waiting) (SGLang C(sglang:num_queue_reqs)).
      type: float
health_polls:
  description: How many times C(/health) was polled.
  returned: always
  type: int
msg:
  description: Verdict, with the fix when not ready.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.agent_workstation.aw.plugins.module_utils.aw_vllm import wait_ready


def main():
    module = AnsibleModule(
        argument_spec={
            "url": {"type": "str", "required": True},
            "expected_models": {"type": "list", "elements": "str", "default": []},
            "timeout": {"type": "float", "default": 900},
            "poll_interval": {"type": "float", "default": 5},
            "request_timeout": {"type": "float", "default": 30},
            "check_completion": {"type": "bool", "default": False},
            "check_messages": {"type": "bool", "default": False},
            "check_tools": {"type": "bool", "default": False},
            "api_key": {"type": "str", "no_log": True},
            "api_key_file": {"type": "path"},
            "fail_on_not_ready": {"type": "bool", "default": True},
            "engine": {"type": "str", "choices": ["vllm", "sglang"], "default": "vllm"},
        },
        mutually_exclusive=[["api_key", "api_key_file"]],
        supports_check_mode=True,
    )
    p = module.params
    if p["poll_interval"] <= 0 or p["timeout"] < 0:
        module.fail_json(msg="poll_interval must be > 0 and timeout >= 0.")
    api_key = p["api_key"]
    if p["api_key_file"]:
        try:
            with open(p["api_key_file"], encoding="utf-8") as handle:
                api_key = handle.readline().strip()
        except OSError as exc:
            module.fail_json(msg=f"api_key_file: cannot read {p['api_key_file']}: {exc.strerror}.")
        if not api_key:
            module.fail_json(msg=f"api_key_file {p['api_key_file']} is empty.")
        module.no_log_values.add(api_key)
    result = wait_ready(
        p["url"],
        p["expected_models"],
        timeout=p["timeout"],
        poll_interval=p["poll_interval"],
        api_key=api_key,
        check_completion=p["check_completion"],
        check_messages=p["check_messages"],
        check_tools=p["check_tools"],
        request_timeout=p["request_timeout"],
        engine=p["engine"],
    )
    if not result["ready"] and p["fail_on_not_ready"]:
        module.fail_json(changed=False, **result)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
