#!/usr/bin/python
# Copyright: agent-workstation contributors
# SPDX-License-Identifier: Apache-2.0 (see LICENSE at the repository root)

DOCUMENTATION = r"""
---
module: openhands_settings
short_description: Write OpenHands V1's LLM settings through its settings API, idempotently
description:
  - OpenHands V1 (app server 1.x) takes its LLM from per-user settings, not from C(config.toml).
    This module waits until the app answers C(GET /alive), reads C(GET /api/v1/settings),
    compares the managed fields (C(model), C(base_url), C(max_input_tokens),
    C(max_output_tokens), C(native_tool_calling)) and whether the key is the one last written,
    and only on a difference posts the fields as C(agent_settings_diff.llm) to
    C(/api/v1/settings), then reads the settings back to confirm.
  - The key is never returned by OpenHands (GET masks it); a SHA-256 fingerprint of the key
    written is kept in O(key_state_file) so that a changed key is written again.
  - Uses only the Python standard library. The request and response shapes come from
    openhands-ai 1.11.0 C(openhands/app_server/settings/settings_router.py).
version_added: "0.1.0"
author: agent-workstation contributors
options:
  url:
    description: Base URL of the OpenHands app server, e.g. C(http://127.0.0.1:3000).
    type: str
    required: true
  model:
    description: LiteLLM model name with its provider prefix, e.g. C(openai/qwen3-coder).
    type: str
    required: true
  base_url:
    description: The LLM endpoint as seen from inside a sandbox (the agent-server makes the call).
    type: str
    required: true
  api_key_file:
    description: File on the managed host whose first line is the LLM key.
    type: path
    required: true
  key_state_file:
    description: Private file (written 0600) holding the fingerprint of the key last written.
    type: path
    required: true
  max_input_tokens:
    description: Context budget OpenHands may send.
    type: int
  max_output_tokens:
    description: Output cap per call.
    type: int
  native_tool_calling:
    description: Use the server's tool-call API (vLLM with C(--enable-auto-tool-choice)).
    type: bool
  session_api_key_file:
    description: File holding the app's C(SESSION_API_KEY), sent as C(X-Session-API-Key).
    type: path
  mcp_url:
    description:
      - "URL of a streamable-HTTP MCP server as seen from inside a sandbox (the agent-server
        connects to it), e.g. C(http://host.docker.internal:8765/mcp) for aw-code; stored as
        C(agent_settings.mcp_config[mcp_name]) = C({url, transport=http})."
      - Empty (the default) leaves OpenHands' MCP servers alone. Other servers in the map are
        kept; the module refuses when one of them carries a secret (OpenHands replaces the whole
        map on a write and shows secrets only redacted, so they would be erased).
    type: str
    default: ""
  mcp_name:
    description: Name of the managed MCP server in OpenHands' C(mcp_config).
    type: str
    default: aw-code
  timeout:
    description: Seconds to wait for C(/alive).
    type: float
    default: 300
attributes:
  check_mode:
    support: full
    description: Reads the settings and reports what would change; writes nothing.
  diff_mode:
    support: full
    description: Before and after of the managed fields (never the key).
"""

EXAMPLES = r"""
- name: Point OpenHands at the local vLLM
  openhands_settings:
    url: http://127.0.0.1:3000
    model: openai/qwen2.5-coder-32b-instruct
    base_url: http://host.docker.internal:8000/v1
    api_key_file: /srv/agent-workstation/secrets/vllm_api_key
    key_state_file: /srv/agent-workstation/state/openhands_llm_key.fingerprint
    max_input_tokens: 24576
    max_output_tokens: 4096
    native_tool_calling: true
    mcp_url: http://host.docker.internal:8765/mcp
  no_log: true
"""

RETURN = r"""
changed_fields:
  description: Managed fields that differed, with their stored and wanted values.
  returned: always
  type: dict
key:
  description: Why the key was (or would be) written, or null.
  returned: always
  type: str
mcp:
  description: The managed MCP server ({changed, before, after}); null without mcp_url.
  returned: always
  type: dict
settings:
  description: The managed fields as OpenHands reports them after the run.
  returned: always
  type: dict
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.agent_workstation.aw.plugins.module_utils.aw_openhands import (
    current_llm,
    current_mcp,
    desired_llm,
    desired_mcp_server,
    error_text,
    http,
    key_fingerprint,
    plan,
    plan_mcp,
    settings_payload,
    wait_alive,
)


def read_first_line(module, path, what):
    try:
        with open(path, encoding="utf-8") as handle:
            value = handle.readline().strip()
    except OSError as exc:
        module.fail_json(msg=f"{what}: cannot read {path}: {exc.strerror}.")
    if not value:
        module.fail_json(msg=f"{what} {path} is empty.")
    module.no_log_values.add(value)
    return value


def main():
    module = AnsibleModule(
        argument_spec={
            "url": {"type": "str", "required": True},
            "model": {"type": "str", "required": True},
            "base_url": {"type": "str", "required": True},
            "api_key_file": {"type": "path", "required": True},
            "key_state_file": {"type": "path", "required": True, "no_log": False},
            "max_input_tokens": {"type": "int"},
            "max_output_tokens": {"type": "int"},
            "native_tool_calling": {"type": "bool"},
            "session_api_key_file": {"type": "path", "no_log": False},
            "mcp_url": {"type": "str", "default": ""},
            "mcp_name": {"type": "str", "default": "aw-code"},
            "timeout": {"type": "float", "default": 300},
        },
        supports_check_mode=True,
    )
    p = module.params
    try:
        desired = desired_llm(
            p["model"],
            p["base_url"],
            p["max_input_tokens"],
            p["max_output_tokens"],
            p["native_tool_calling"],
        )
        server = desired_mcp_server(p["mcp_url"]) if p["mcp_url"] else None
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    api_key = read_first_line(module, p["api_key_file"], "api_key_file")
    headers = {}
    if p["session_api_key_file"]:
        headers["X-Session-API-Key"] = read_first_line(
            module, p["session_api_key_file"], "session_api_key_file"
        )
    base = p["url"].rstrip("/")

    alive, last = wait_alive(base, headers, p["timeout"])
    if not alive:
        module.fail_json(
            msg=f"OpenHands at {base} did not answer GET /alive within {p['timeout']:g} s "
            f"(last: {last}). Check `docker logs` of the openhands container."
        )

    status, body, raw = http("GET", f"{base}/api/v1/settings", headers)
    if status not in (200, 404):
        module.fail_json(msg=f"GET {base}/api/v1/settings answered {error_text(status, body, raw)}")
    try:
        current, key_set = current_llm(body if status == 200 else None)
    except ValueError as exc:
        module.fail_json(msg=f"GET {base}/api/v1/settings: {exc}")

    stored = None
    if os.path.exists(p["key_state_file"]):
        with open(p["key_state_file"], encoding="utf-8") as handle:
            stored = handle.readline().strip() or None
    fingerprint = key_fingerprint(api_key)
    todo = plan(current, key_set, desired, fingerprint, stored)
    mcp = None
    if server is not None:
        try:
            mcp = plan_mcp(current_mcp(body if status == 200 else None), p["mcp_name"], server)
        except ValueError as exc:
            module.fail_json(msg=f"GET {base}/api/v1/settings: {exc}")
    mcp_changed = mcp is not None and mcp["changed"]
    result = {
        "changed": todo["changed"] or mcp_changed,
        "changed_fields": todo["fields"],
        "key": todo["key"],
        "mcp": {k: mcp[k] for k in ("changed", "before", "after")} if mcp else None,
        "settings": current,
        "diff": {
            "before": {k: current.get(k) for k in desired},
            "after": dict(desired),
        },
    }
    if mcp:
        key = "mcp_config." + p["mcp_name"]
        result["diff"]["before"][key] = mcp["before"]
        result["diff"]["after"][key] = mcp["after"]
    if not result["changed"] or module.check_mode:
        module.exit_json(**result)

    status, body, raw = http(
        "POST",
        f"{base}/api/v1/settings",
        headers,
        settings_payload(
            desired if todo["changed"] else None,
            api_key if todo["changed"] else None,
            mcp["config"] if mcp_changed else None,
        ),
    )
    if status != 200:
        module.fail_json(
            msg=f"POST {base}/api/v1/settings answered {error_text(status, body, raw)}", **result
        )
    status, body, raw = http("GET", f"{base}/api/v1/settings", headers)
    try:
        after, key_set = current_llm(body if status == 200 else None)
    except ValueError as exc:
        module.fail_json(msg=f"reading the settings back: {exc}", **result)
    left = plan(after, key_set, desired, fingerprint, fingerprint)
    if mcp is not None and current_mcp(body).get(p["mcp_name"]) != server:
        module.fail_json(
            msg="OpenHands stored the settings but reads back another MCP server "
            f"{p['mcp_name']!r}: {current_mcp(body).get(p['mcp_name'])}",
            **result,
        )
    if left["changed"]:
        module.fail_json(
            msg="OpenHands stored the settings but reads back something else: "
            f"{left['fields'] or left['key']}",
            **result,
        )
    state_dir = os.path.dirname(p["key_state_file"])
    if state_dir:
        os.makedirs(state_dir, mode=0o700, exist_ok=True)
    descriptor = os.open(p["key_state_file"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(fingerprint + "\n")
    os.chmod(p["key_state_file"], 0o600)
    result["settings"] = after
    module.exit_json(**result)


if __name__ == "__main__":
    main()
