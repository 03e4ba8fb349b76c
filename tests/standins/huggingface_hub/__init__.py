"""Stand-in for huggingface_hub.snapshot_download in the vLLM stand-in image (tests only).

It is NOT huggingface_hub and downloads nothing (no model hub is reachable here). It checks what
roles/agent_stack's vLLM entrypoint asks of the real one: a pinned 40-hex revision and
HF_HUB_OFFLINE=0 for this one call, and appends one line per call to
/root/.cache/huggingface/standin-downloads so a test can see it ran once across restarts.
"""

from __future__ import annotations

import os
import re


def snapshot_download(repo_id: str, revision: str | None = None, **_: object) -> str:
    if os.environ.get("HF_HUB_OFFLINE") != "0":
        raise RuntimeError("stand-in: the download must run with HF_HUB_OFFLINE=0")
    if not revision or not re.fullmatch(r"[0-9a-f]{40}", revision):
        raise ValueError(f"stand-in: revision {revision!r} is not a pinned commit")
    cache = os.path.expanduser("~/.cache/huggingface")
    os.makedirs(cache, exist_ok=True)
    with open(os.path.join(cache, "standin-downloads"), "a", encoding="utf-8") as handle:
        handle.write(f"{repo_id}@{revision}\n")
    return os.path.join(
        cache, "hub", "models--" + repo_id.replace("/", "--"), "snapshots", revision
    )
