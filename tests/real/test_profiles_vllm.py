"""Each catalogue profile's own vLLM flags (the `vllm_cli` the plan derives, parser included)
are accepted by the real vLLM 0.32 CPU build serving a tiny random model of that profile's
architecture (tests/real/tiny_model.py: qwen2 for the seed, qwen3_moe for Qwen3-Coder).

Proves: the flags parse, the tool parser loads for that architecture's tokenizer, the served
aliases are what clients will ask for, and a chat completion with tools and tool_choice auto
answers 200 through the parser. Not proved: the quality of tool calls (random weights), GPU
flags' effect (CPU build), the pinned revision (a local directory has none, so --revision is
left out) and the profile's max_model_len (the tiny model has 4096 positions).
Needs tests/real/harness.py, build.sh and tiny_model.py (the "real" branch). Not yet run when
committed: the shared vLLM CPU build was still installing (see the branch's report).
"""

import json
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "plugins" / "module_utils"))

import aw_vram  # noqa: E402 - the planner, importable without Ansible
import harness  # noqa: E402 - tests/real's process harness

CATALOGUE = yaml.safe_load((ROOT / "playbooks" / "vars" / "models.yml").read_text())
PROFILES = CATALOGUE["aw_model_profiles"]
CLIENTS = CATALOGUE["aw_model_clients"]


def _flags(name):
    site = aw_vram.plan_site(PROFILES, CLIENTS, [], name, 81559, 1)
    flags = [f for f in site["settings"]["vllm_cli"] if not f.startswith("--revision=")]
    flags = [f for f in flags if not f.startswith("--max-model-len=")]
    return site["settings"], [*flags, "--max-model-len=2048"]


def _post(url, body, key):
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=120) as resp:
        return resp.status, json.loads(resp.read())


@pytest.mark.parametrize("name", list(PROFILES))
def test_profile_flags_are_served_by_the_cpu_build(name):
    settings, flags = _flags(name)
    arch = PROFILES[name]["architecture"]["model_type"]
    model = harness.tiny_model(arch)
    key = "profiles-test-key"
    with harness.start_vllm(["serve", str(model), *flags], api_key=key) as vllm:
        req = urllib.request.Request(
            vllm.url + "/v1/models", headers={"Authorization": f"Bearer {key}"}
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            served = [m["id"] for m in json.loads(resp.read())["data"]]
        assert served == settings["served_model_names"]
        status, body = _post(
            vllm.url + "/v1/chat/completions",
            {
                "model": settings["model_name"],
                "messages": [{"role": "user", "content": "List the files."}],
                "tools": [
                    {
                        "type": "function",
                        "function": {
                            "name": "ls",
                            "description": "List files",
                            "parameters": {"type": "object", "properties": {}},
                        },
                    }
                ],
                "tool_choice": "auto",
                "max_tokens": 16,
            },
            key,
        )
        assert status == 200
        assert body["model"] == settings["model_name"]
        assert body["choices"][0]["message"]["role"] == "assistant"
