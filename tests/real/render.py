"""Render roles/agent_stack's templates (compose.yml, clients.env) as the role would.

`render_stack(out_dir, secrets)` runs tests/real/render_stack.yml with the project's Ansible
(the role's defaults, vars and the inventory's image pins) and returns the rendered files. The
tree rendered is AW_REAL_REPO when set (e.g. AW_REAL_REPO=/work/wt/stack to test another
branch's templates), otherwise this checkout.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
OWN_REPO = HERE.parent.parent


def repo() -> Path:
    return Path(os.environ.get("AW_REAL_REPO", str(OWN_REPO))).resolve()


@dataclass
class Rendered:
    compose_path: Path
    clients_env_path: Path
    compose: dict[str, Any]

    def service(self, name: str) -> dict[str, Any]:
        svc: dict[str, Any] = self.compose["services"][name]
        return svc


def render_stack(
    out_dir: Path, secrets: dict[str, str], extra_vars: dict[str, Any] | None = None
) -> Rendered:
    """Render into OUT_DIR; EXTRA_VARS (e.g. a port) override role defaults as -e would."""
    out_dir.mkdir(parents=True, exist_ok=True)
    secrets_file = out_dir / "secrets.json"
    secrets_file.write_text(json.dumps({"_agent_stack_secret": secrets}))
    secrets_file.chmod(0o600)
    bin_dir = Path(sys.executable).parent
    playbook = shutil.which("ansible-playbook", path=str(bin_dir)) or "ansible-playbook"
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(repo() / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
    }
    argv = [
        playbook,
        "-i",
        "localhost,",
        str(HERE / "render_stack.yml"),
        "-e",
        json.dumps({"aw_repo": str(repo()), "aw_out": str(out_dir)}),
        "-e",
        f"aw_secrets_file={secrets_file}",
    ]
    if extra_vars:
        argv += ["-e", json.dumps(extra_vars)]
    proc = subprocess.run(
        argv, check=False, capture_output=True, text=True, env=env, cwd=repo(), timeout=300
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"rendering the agent_stack templates failed ({shlex.join(argv)}):\n"
            f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    compose_path = out_dir / "compose.yml"
    return Rendered(
        compose_path=compose_path,
        clients_env_path=out_dir / "clients.env",
        compose=yaml.safe_load(compose_path.read_text()),
    )
