"""Issue 17, the `external` tier, against a real OpenAI/Anthropic-compatible server.

The "external" server is the real vLLM CPU build (started exactly as the compose template
renders it, tests/real/conftest.py `vllm_launch`), listening on this machine's first
non-loopback address, as a server elsewhere on the network would: the inventory check refuses a
loopback URL for `external` (a container would reach itself there). The stack is then rendered
with `workstation_llm_source: external` and that URL, and each host-side consumer is run:

- the compose file has no `vllm` service and Open WebUI is pointed at <url>/v1;
- the project's `vllm_ready` module, run by Ansible with the URL and the key FILE, reports the
  server ready with the served names and answers its chat-completion and /v1/messages checks;
- clients.env, sourced by bash as a user would, drives the real Anthropic SDK (a streamed
  /v1/messages call with a tool) against it.

Not run here: Open WebUI and OpenHands inside containers reaching it (no registry for their
images), and an engine other than vLLM behind the URL.
"""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator

import harness
import pytest
import render
from conftest import run_module, start_rendered_vllm
from test_clients_env import CLAUDE_CODE_DEFAULT_MAX_OUTPUT, CLIENT


def _non_loopback_address() -> str:
    # The address the kernel would send from to reach an outside host (no packet is sent).
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("198.51.100.1", 9))  # TEST-NET-2: routed, never reached
        addr = s.getsockname()[0]
    assert not addr.startswith("127."), f"no non-loopback IPv4 address on this machine: {addr}"
    return addr


@pytest.fixture(scope="module")
def external_server(vllm_launch, work) -> Iterator[harness.Server]:
    host = _non_loopback_address()
    with start_rendered_vllm(vllm_launch, work / "logs-external", host=host) as server:
        yield server


@pytest.fixture(scope="module")
def external(external_server, vllm_launch, work, secrets_values) -> dict:
    key_file = work / "secrets" / "vllm_api_key"  # the 0400 file vllm_launch wrote: "yours"
    extra = {
        "workstation_llm_source": "external",
        "workstation_llm_base_url": external_server.url,
        "workstation_llm_api_key_file": str(key_file),
        "workstation_llm_served_model_names": vllm_launch["served"],
    }
    rendered = render.render_stack(work / "rendered-external", secrets_values, extra)
    return {"rendered": rendered, "key_file": key_file, "url": external_server.url}


def test_the_stack_has_no_vllm_and_open_webui_reads_the_external_url(external):
    services = external["rendered"].compose["services"]
    assert "vllm" not in services, sorted(services)
    webui = services["open-webui"]["environment"]
    assert webui["OPENAI_API_BASE_URL"] == external["url"] + "/v1", webui


def test_vllm_ready_against_the_external_server(external, vllm_launch):
    args = {
        "url": external["url"],
        "expected_models": vllm_launch["served"],
        "check_completion": True,
        "check_messages": True,
        "api_key_file": str(external["key_file"]),
        "timeout": 60,
    }
    rc, res = run_module("vllm_ready", args)
    assert rc == 0 and res["ready"] is True, res
    assert res["missing_models"] == [] and res["problem"] is None, res


def test_clients_env_drives_the_anthropic_sdk_against_the_external_server(external, work):
    env_file = external["rendered"].clients_env_path
    text = env_file.read_text()
    assert f"ANTHROPIC_BASE_URL={external['url']}" in text or external["url"] in text, text
    script = work / "anthropic_client_external.py"
    script.write_text(CLIENT)
    python = harness.venv("vllm") / "bin" / "python"
    proc = subprocess.run(
        ["env", "-i", "HOME=/nonexistent", "PATH=/usr/bin:/bin", "bash", "-c",
         'set -a; . "$1"; set +a; exec "$2" "$3" "$4"', "bash",
         str(env_file), str(python), str(script), str(CLAUDE_CODE_DEFAULT_MAX_OUTPUT)],
        check=False, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["ok"], json.dumps(result)
    assert result["events"][0] == "message_start" and "message_stop" in result["events"]
