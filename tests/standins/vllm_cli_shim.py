#!/usr/bin/env python3
"""`vllm` on the PATH of the vLLM stand-in image (tests only): accepts the `vllm serve ...`
command line roles/agent_stack gives the real image, checks the arguments the role must pass,
and runs tests/standins/vllm_standin.py (recorded real vLLM responses) with the served names,
the port and the API key from VLLM_API_KEY, the way vLLM reads it. It also checks what the
role's entrypoint promises: the model revision is pinned (--revision, 40 hex digits, the same
as AW_MODEL_REVISION) and vLLM itself starts with HF_HUB_OFFLINE=1."""

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
