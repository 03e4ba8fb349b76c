"""Run the modules through Ansible itself, with the fake nvidia-smi and the vLLM stand-in."""

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
STANDIN = ROOT / "tests" / "standins" / "vllm_standin.py"
BIN = Path(sys.executable).parent


def ansible_env(**extra):
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=str(ROOT / "collections"),
        ANSIBLE_CALLBACKS_ENABLED="ansible.posix.json",
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        ANSIBLE_NOCOLOR="1",
        PATH=f"{ROOT / 'tests' / 'fakes'}:{BIN}:{env.get('PATH', '')}",
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_module(module, args, **env):
    """`ansible localhost -m agent_workstation.aw.MODULE -a JSON` and return (rc, result dict)."""
    ansible = shutil.which("ansible", path=str(BIN)) or "ansible"
    proc = subprocess.run(
        [
            ansible,
            "localhost",
            "-i",
            "localhost,",
            "-c",
            "local",
            "-m",
            f"agent_workstation.aw.{module}",
            "-a",
            json.dumps(args),
        ],
        check=False,
        capture_output=True,
        text=True,
        env=ansible_env(**env),
        cwd=ROOT,
        timeout=120,
    )
    out = json.loads(proc.stdout)
    task = out["plays"][0]["tasks"][0]["hosts"]["localhost"]
    return proc.returncode, task


@pytest.fixture
def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def standin(free_port, tmp_path):
    procs = []

    def start(*args):
        status = tmp_path / f"status-{len(procs)}.json"
        proc = subprocess.Popen(
            [
                sys.executable,
                str(STANDIN),
                "--port",
                str(free_port),
                "--status-file",
                str(status),
                *args,
            ],
        )
        procs.append(proc)
        return f"http://127.0.0.1:{free_port}", status

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=10)
