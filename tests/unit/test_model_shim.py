"""The vLLM and SGLang entrypoint shims (roles/agent_stack/vars/main.yml): the pinned revision is
downloaded on the first start only, with HF_HUB_OFFLINE=0 for that download alone; a failed
download starts nothing and leaves no marker; the key reaches vLLM from the secret file.

The shims run here under /bin/sh as the container runs them, with two substitutions: the
container's paths (/root/.cache/huggingface, /run/secrets, /dev/shm) point into a temporary
directory, and `python3`, `vllm` are recording stand-ins on PATH. The download itself is
huggingface_hub's (the Hub cannot be reached here); what is tested is the shim's own logic,
which the real-image scenario never reaches (its image carries the model and the marker).
"""

from __future__ import annotations

import pathlib
import subprocess

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
VARS = yaml.safe_load((ROOT / "roles/agent_stack/vars/main.yml").read_text())
MODEL = "Qwen/Qwen2.5-Coder-32B-Instruct-AWQ"
REVISION = "0123456789abcdef0123456789abcdef01234567"

RECORDER = """#!/bin/sh
printf '%s HF_HUB_OFFLINE=%s VLLM_API_KEY=%s ARGS=%s\\n' "$(basename "$0")" \
  "${HF_HUB_OFFLINE:-}" "${VLLM_API_KEY:-}" "$*" >> "$AW_CALLS"
[ "$(basename "$0")" = python3 ] && exit "${AW_PYTHON_RC:-0}"
exit 0
"""


@pytest.fixture
def box(tmp_path: pathlib.Path) -> pathlib.Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("python3", "vllm"):
        tool = bin_dir / name
        tool.write_text(RECORDER)
        tool.chmod(0o755)
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets/vllm_api_key").write_text("k3y\n")
    (tmp_path / "hf").mkdir()
    (tmp_path / "shm").mkdir()
    return tmp_path


def run_shim(box: pathlib.Path, name: str, python_rc: int = 0) -> subprocess.CompletedProcess:
    script = (
        VARS[name]
        .replace("/root/.cache/huggingface", str(box / "hf"))
        .replace("/run/secrets", str(box / "secrets"))
        .replace("/dev/shm", str(box / "shm"))
    )
    env = {
        "PATH": f"{box / 'bin'}:/usr/bin:/bin",
        "AW_CALLS": str(box / "calls"),
        "AW_PYTHON_RC": str(python_rc),
        "AW_MODEL": MODEL,
        "AW_MODEL_REVISION": REVISION,
        "HF_HUB_OFFLINE": "1",  # as the compose environment sets it
    }
    return subprocess.run(
        ["/bin/sh", "-c", script, "vllm", "serve", MODEL],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def calls(box: pathlib.Path) -> list[str]:
    path = box / "calls"
    return path.read_text().splitlines() if path.exists() else []


def marker(box: pathlib.Path) -> pathlib.Path:
    return box / "hf/agent-workstation" / f"{MODEL}@{REVISION}".replace("/", "_")


def test_vllm_shim_downloads_once_then_runs_offline(box: pathlib.Path) -> None:
    first = run_shim(box, "_agent_stack_vllm_shim")
    assert first.returncode == 0, first.stderr
    assert "downloading" in first.stderr and "first start only" in first.stderr
    download, serve = calls(box)
    assert download.startswith("python3 HF_HUB_OFFLINE=0 ")
    assert f"{MODEL} {REVISION}" in download
    # vLLM itself offline, with the key from the file (not from the environment it was given).
    assert serve == f"vllm HF_HUB_OFFLINE=1 VLLM_API_KEY=k3y ARGS=serve {MODEL}"
    assert marker(box).exists()
    second = run_shim(box, "_agent_stack_vllm_shim")
    assert second.returncode == 0 and "downloading" not in second.stderr
    assert [c.split()[0] for c in calls(box)] == ["python3", "vllm", "vllm"]


def test_a_failed_download_starts_nothing_and_leaves_no_marker(box: pathlib.Path) -> None:
    failed = run_shim(box, "_agent_stack_vllm_shim", python_rc=1)
    assert failed.returncode == 1
    assert [c.split()[0] for c in calls(box)] == ["python3"]
    assert not marker(box).exists()
    # The next start tries again.
    again = run_shim(box, "_agent_stack_vllm_shim")
    assert again.returncode == 0
    assert [c.split()[0] for c in calls(box)] == ["python3", "python3", "vllm"]


def test_sglang_shim_downloads_once_and_keeps_the_key_off_argv_and_env(box: pathlib.Path) -> None:
    first = run_shim(box, "_agent_stack_sglang_shim")
    assert first.returncode == 0, first.stderr
    download, launch = calls(box)
    assert download.startswith("python3 HF_HUB_OFFLINE=0 ")
    assert launch.startswith("python3 HF_HUB_OFFLINE=1 VLLM_API_KEY= ARGS=-m sglang.launch_server")
    assert "k3y" not in launch
    config = box / "shm/aw-sglang.yaml"
    assert config.read_text() == "api-key: 'k3y'\n"
    assert oct(config.stat().st_mode & 0o777) == "0o600"
    run_shim(box, "_agent_stack_sglang_shim")
    assert [c.split()[0] for c in calls(box)] == ["python3", "python3", "python3"]
    assert sum("HF_HUB_OFFLINE=0" in c for c in calls(box)) == 1


def test_the_shims_name_the_container_paths_substituted_here() -> None:
    """The substitutions above must hit: a renamed path would leave the test on the real one."""
    for name in ("_agent_stack_vllm_shim", "_agent_stack_sglang_shim"):
        assert "/root/.cache/huggingface/agent-workstation/" in VARS[name]
        assert "/run/secrets/vllm_api_key" in VARS[name]
    assert "/dev/shm/aw-sglang.yaml" in VARS["_agent_stack_sglang_shim"]
