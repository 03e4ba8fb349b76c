# Copyright: agent-workstation contributors
# SPDX-License-Identifier: Apache-2.0 (see LICENSE at the repository root)
"""Pure functions for playbooks/upgrade-model.yml: the `vllm serve` command of a model profile.

The running vLLM container's command (``docker inspect`` Config.Cmd: ``serve MODEL --flag ...``,
as roles/agent_stack/templates/compose.yml.j2 renders it) is rewritten for another profile: the
flags the profile and its VRAM plan decide are replaced, in the template's order; every other
argument (--host, --port, --enable-prefix-caching, agent_stack_vllm_extra_args) is kept where it
was. A command the template rendered for profile B is therefore what this returns for B, so a
later site.yml run with B in the inventory finds nothing to recreate.
"""

from __future__ import annotations

from typing import Any

# Flags the profile or its plan decide (vram_plan RETURN settings.vllm_args).
MANAGED = (
    "--revision",
    "--tokenizer-revision",
    "--served-model-name",
    "--max-model-len",
    "--kv-cache-dtype",
    "--gpu-memory-utilization",
    "--max-num-seqs",
    "--tensor-parallel-size",
    "--quantization",
    "--tool-call-parser",
)


class ProfileCommandError(ValueError):
    """The running command is not a `vllm serve MODEL ...` command line."""


def _flag(arg: str) -> str:
    return arg.split("=", 1)[0]


def split_serve(command: list[str]) -> tuple[str, list[str]]:
    """(model, arguments after it) of ``serve MODEL ...``."""
    if len(command) < 2 or command[0] != "serve" or command[1].startswith("-"):
        raise ProfileCommandError(
            f"the running vLLM command {command!r} does not start with `serve MODEL`; "
            "roles/agent_stack renders `serve <model> --revision=... ...`. Fix: deploy the stack "
            "with site.yml, then run upgrade-model.yml."
        )
    return command[1], list(command[2:])


def _drop_managed(args: list[str]) -> list[str]:
    """The arguments without the managed flags (and the values after a bare managed flag)."""
    kept: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        flag = _flag(arg)
        if flag in MANAGED:
            i += 1
            if "=" not in arg:  # `--flag VALUE...`: skip the values up to the next flag
                while i < len(args) and not args[i].startswith("-"):
                    i += 1
            continue
        kept.append(arg)
        i += 1
    return kept


def serve_command(command: list[str], settings: dict[str, Any]) -> list[str]:
    """The `vllm serve` command of ``settings`` (vram_plan's), keeping the unmanaged arguments."""
    split_serve(command)
    args = settings["vllm_args"]
    revision = str(settings["revision"])
    rest = _drop_managed(command[2:])
    # --host/--port come right after the revisions in the template; keep them there.
    head = [a for a in rest if _flag(a) in ("--host", "--port")]
    tail = [a for a in rest if _flag(a) not in ("--host", "--port")]
    sized = [
        f"--max-model-len={int(args['max_model_len'])}",
        f"--kv-cache-dtype={args['kv_cache_dtype']}",
        f"--gpu-memory-utilization={float(args['gpu_memory_utilization'])}",
        f"--max-num-seqs={int(args['max_num_seqs'])}",
    ]
    if int(args.get("tensor_parallel_size") or 1) > 1:
        sized.append(f"--tensor-parallel-size={int(args['tensor_parallel_size'])}")
    if args.get("quantization"):
        sized.append(f"--quantization={args['quantization']}")
    parser = f"--tool-call-parser={settings['tool_call_parser']}"
    # The parser follows --enable-auto-tool-choice in the template; else it goes last.
    if "--enable-auto-tool-choice" in tail:
        at = tail.index("--enable-auto-tool-choice") + 1
        tail = [*tail[:at], parser, *tail[at:]]
    else:
        tail = [*tail, "--enable-auto-tool-choice", parser]
    return [
        "serve",
        str(settings["model"]),
        f"--revision={revision}",
        f"--tokenizer-revision={revision}",
        *head,
        "--served-model-name",
        *[str(n) for n in settings["served_model_names"]],
        *sized,
        *tail,
    ]


def served_names(command: list[str]) -> list[str]:
    """The --served-model-name aliases of a `vllm serve` command (the model id when none)."""
    model, args = split_serve(command)
    names: list[str] = []
    i = 0
    while i < len(args):
        if args[i] == "--served-model-name":
            i += 1
            while i < len(args) and not args[i].startswith("-"):
                names.append(args[i])
                i += 1
            continue
        if args[i].startswith("--served-model-name="):
            names.extend(args[i].split("=", 1)[1].split())
        i += 1
    return names or [model]


def flag_value(command: list[str], flag: str) -> str | None:
    """The value of ``--flag=VALUE`` or ``--flag VALUE`` in a command, or None."""
    for i, arg in enumerate(command):
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
        if arg == flag and i + 1 < len(command):
            return command[i + 1]
    return None


def profile_of(command: list[str], profiles: dict[str, Any]) -> str | None:
    """The catalogue profile whose model and revision the command serves, or None."""
    model, _ = split_serve(command)
    revision = flag_value(command, "--revision")
    for name, profile in profiles.items():
        if profile.get("model") == model and str(profile.get("revision")) == revision:
            return name
    return None


def command_diff(before: list[str], after: list[str]) -> dict[str, list[str]]:
    """Arguments only in the old command and only in the new one (order kept)."""
    return {
        "removed": [a for a in before if a not in after],
        "added": [a for a in after if a not in before],
    }
