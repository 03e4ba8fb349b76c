"""clients.env, sourced as a user would, drives a real Anthropic client against the real vLLM.

The role's clients.env.j2 is rendered with the role's defaults (only agent_stack_vllm_port is set
to the port this test's vLLM listens on). The file is sourced by bash (`set -a; . FILE; set +a`)
and the call is made by the real Anthropic Python SDK (PyPI `anthropic`, which vLLM itself
depends on and so is in the vllm venv) with nothing but that environment. The SDK, like Claude
Code and the Claude Agent SDK, sends ANTHROPIC_API_KEY as `x-api-key` and ANTHROPIC_AUTH_TOKEN as
`Authorization: Bearer` (anthropic/_client.py: `_api_key_auth`, `_bearer_auth`), and uses
ANTHROPIC_BASE_URL. max_tokens is what Claude Code would ask for: CLAUDE_CODE_MAX_OUTPUT_TOKENS
when set, else Claude Code's default of 32,000 output tokens.

This fails while clients.env gives only ANTHROPIC_API_KEY (vLLM answers 401 to x-api-key,
real-software.md item 4) or leaves the output cap above the served context (item 5).
"""

from __future__ import annotations

import json
import subprocess

import harness
import render

CLAUDE_CODE_DEFAULT_MAX_OUTPUT = 32000

CLIENT = r"""
import json, os, sys
import anthropic

# Exactly what the environment gives: the SDK reads ANTHROPIC_API_KEY, ANTHROPIC_AUTH_TOKEN and
# ANTHROPIC_BASE_URL itself.
client = anthropic.Anthropic(max_retries=0, timeout=300)
model = os.environ["ANTHROPIC_MODEL"]
max_tokens = int(os.environ.get("CLAUDE_CODE_MAX_OUTPUT_TOKENS") or sys.argv[1])
tool = {"name": "get_weather", "description": "Get the weather of a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                         "required": ["city"]}}
result = {"max_tokens": max_tokens,
          "sent_x_api_key": bool(os.environ.get("ANTHROPIC_API_KEY")),
          "sent_bearer": bool(os.environ.get("ANTHROPIC_AUTH_TOKEN"))}
try:
    with client.messages.stream(
        model=model, max_tokens=max_tokens, tools=[tool],
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
    ) as stream:
        events = [e.type for e in stream]
        final = stream.get_final_message()
    result.update(ok=True, events=events, stop_reason=final.stop_reason, model=final.model)
except anthropic.APIStatusError as e:
    result.update(ok=False, status=e.status_code, error=str(e)[:500])
print(json.dumps(result))
"""


def test_streamed_messages_call_with_a_tool_from_clients_env(vllm_server, work, secrets_values):
    out = work / "rendered-clients"
    rendered = render.render_stack(out, secrets_values, {"agent_stack_vllm_port": vllm_server.port})
    env_file = rendered.clients_env_path
    python = harness.venv("vllm") / "bin" / "python"
    script = work / "anthropic_client.py"
    script.write_text(CLIENT)
    proc = subprocess.run(
        [
            "env",
            "-i",
            "HOME=/nonexistent",
            "PATH=/usr/bin:/bin",
            "bash",
            "-c",
            'set -a; . "$1"; set +a; exec "$2" "$3" "$4"',
            "bash",
            str(env_file),
            str(python),
            str(script),
            str(CLAUDE_CODE_DEFAULT_MAX_OUTPUT),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["ok"], (
        "the Anthropic SDK, configured only by clients.env, failed against vLLM: "
        + json.dumps(result)
        + "\nFix (roles/agent_stack/templates/clients.env.j2): give the key as"
        " ANTHROPIC_AUTH_TOKEN (sent as Bearer, the only header vLLM's key check reads), and"
        " cap CLAUDE_CODE_MAX_OUTPUT_TOKENS below the served --max-model-len."
    )
    assert result["events"][0] == "message_start" and "message_stop" in result["events"]
    assert result["stop_reason"] in {"end_turn", "max_tokens", "tool_use"}
