"""Start and stop the REAL components of the stack as plain processes on loopback, for tests.

Importable by any test (tests/real/conftest.py wraps these as fixtures):

    from harness import venv, start_vllm, start_openwebui, start_agent_server
    model = tiny_model("qwen2")
    with start_vllm(["serve", str(model), "--max-model-len=4096"], api_key="k") as vllm:
        requests.get(vllm.url + "/health")

- `venv(component)` builds (or reuses) the component's venv with tests/real/build.sh.
- Every server gets a free 127.0.0.1 port, its output in a log file, and `/health` (or the path
  given) polled until it answers 200 while the process is alive; a start that fails raises with
  the log's tail. `Server.stop()` ends the process group the harness started (by its id: SIGTERM,
  then SIGKILL), nothing else.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
LOOPBACK = "127.0.0.1"

# vLLM's CPU build sizes its KV cache from this (GiB); the tiny models need very little and the
# test machines are shared. The CPU build's thread binding is left at its default.
VLLM_CPU_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1"}
# Nothing started here may phone home.
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
}


def _cache_root() -> Path:
    return Path(
        os.environ.get("AW_REAL_CACHE", Path.home() / ".cache" / "agent-workstation" / "real")
    )


def venv(component: str) -> Path:
    """The ready venv of COMPONENT (vllm, openwebui, openhands), built if needed."""
    out = subprocess.run(
        [str(HERE / "build.sh"), component], check=True, stdout=subprocess.PIPE, text=True
    ).stdout
    path = Path(out.strip().splitlines()[-1])
    if not (path / ".ready").is_file():
        raise RuntimeError(f"build.sh {component} printed {path}, which has no .ready marker")
    return path


def tiny_model(arch: str = "qwen2") -> Path:
    """A tiny random-weight model of ARCH (tests/real/tiny_model.py), cached by recipe."""
    python = venv("vllm") / "bin" / "python"
    out_dir = _cache_root() / "models" / f"tiny-{arch}"
    out = subprocess.run(
        [str(python), str(HERE / "tiny_model.py"), "--arch", arch, str(out_dir)],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout
    return Path(out.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A started process; `url` is http://HOST:PORT (HOST 127.0.0.1 unless started elsewhere)."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    argv: list[str] = field(default_factory=list)
    host: str = LOOPBACK

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, grace: float = 20.0) -> None:
        if self.process.poll() is not None:
            return
        # The harness started the process in its own session: its pid is the group id.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_http(server: Server, path: str = "/health", timeout: float = 300.0) -> None:
    """Poll GET PATH until it answers 200; raise (with the log tail) if the process dies."""
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        if not server.alive():
            raise RuntimeError(
                f"{server.name} exited with {server.process.returncode} before {path} answered;"
                f" log {server.log}:\n{server.log_tail()}"
            )
        try:
            with urllib.request.urlopen(server.url + path, timeout=5) as r:
                if r.status == 200:
                    return
                last = f"HTTP {r.status}"
        except urllib.error.HTTPError as e:
            last = f"HTTP {e.code}"
        except (urllib.error.URLError, OSError) as e:
            last = str(e)
        time.sleep(0.5)
    server.stop()
    raise TimeoutError(
        f"{server.name}: {path} did not answer 200 within {timeout:.0f}s (last: {last});"
        f" log {server.log}:\n{server.log_tail()}"
    )


def start_process(
    name: str,
    argv: Sequence[str],
    *,
    port: int,
    env: Mapping[str, str] | None = None,
    health: str | None = "/health",
    timeout: float = 300.0,
    cwd: Path | None = None,
    log_dir: Path | None = None,
    host: str = LOOPBACK,
) -> Server:
    """Start ARGV (its own session, output to a log), wait for HEALTH on HOST:PORT."""
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix=f"aw-real-{name}-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{name}.log"
    full_env = {**os.environ, **OFFLINE_ENV, **(env or {})}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=full_env,
            cwd=str(cwd) if cwd else None,
            start_new_session=True,
        )
    server = Server(name=name, process=proc, port=port, log=log, argv=list(argv), host=host)
    if health is not None:
        try:
            wait_http(server, health, timeout)
        except BaseException:
            server.stop()
            raise
    return server


def start_vllm(
    args: Sequence[str],
    *,
    api_key: str | None = None,
    entrypoint: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 300.0,
    log_dir: Path | None = None,
    host: str = LOOPBACK,
    port: int | None = None,
) -> Server:
    """Start the vLLM CPU build: `ENTRYPOINT ARGS --host=HOST --port=FREE` (HOST 127.0.0.1).

    PORT, when given, replaces the free port (two workers on two addresses, one port).

    ARGS is what follows `vllm` (e.g. ["serve", MODEL, ...]). The loopback host and a free port
    are appended last, so they win over any --host/--port in ARGS (vLLM's argparse keeps the last
    value). ENTRYPOINT defaults to the venv's `vllm` console script; a test may pass the compose
    file's shim (e.g. ["/bin/sh", "-c", SCRIPT, "vllm"]), with `vllm` on PATH from the venv.
    API_KEY, when given, is exported as VLLM_API_KEY.
    """
    v = venv("vllm")
    port = port or free_port()
    run_env = {**VLLM_CPU_ENV, "PATH": f"{v / 'bin'}:{os.environ.get('PATH', '')}"}
    if api_key is not None:
        run_env["VLLM_API_KEY"] = api_key
    run_env.update(env or {})
    head = list(entrypoint) if entrypoint is not None else [str(v / "bin" / "vllm")]
    argv = [*head, *args, f"--host={host}", f"--port={port}"]
    return start_process(
        "vllm",
        argv,
        port=port,
        env=run_env,
        timeout=timeout,
        log_dir=log_dir,
        health="/health",
        host=host,
    )


def start_openwebui(
    env: Mapping[str, str],
    *,
    data_dir: Path,
    timeout: float = 300.0,
    log_dir: Path | None = None,
) -> Server:
    """Start Open WebUI (`open-webui serve`) with ENV on a free loopback port; DATA_DIR its data."""
    v = venv("openwebui")
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    run_env = {
        "DATA_DIR": str(data_dir),
        "PATH": f"{v / 'bin'}:{os.environ.get('PATH', '')}",
        **env,
    }
    argv = [str(v / "bin" / "open-webui"), "serve", "--host", LOOPBACK, "--port", str(port)]
    return start_process(
        "openwebui", argv, port=port, env=run_env, timeout=timeout, log_dir=log_dir, cwd=data_dir
    )


def start_agent_server(
    *,
    session_api_key: str,
    work_dir: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 180.0,
    log_dir: Path | None = None,
) -> Server:
    """Start OpenHands' agent-server (openhands-agent-server 1.34.0) as a plain process.

    Clients send SESSION_API_KEY in the `X-Session-API-Key` header.
    """
    v = venv("openhands")
    port = free_port()
    work_dir.mkdir(parents=True, exist_ok=True)
    run_env = {
        "SESSION_API_KEY": session_api_key,
        "OH_SESSION_API_KEYS_0": session_api_key,
        "OH_CONVERSATIONS_PATH": str(work_dir / "conversations"),
        "OH_BASH_EVENTS_DIR": str(work_dir / "bash_events"),
        "OH_WORKSPACE_PATH": str(work_dir / "workspace"),
        "PATH": f"{v / 'bin'}:{os.environ.get('PATH', '')}",
        **(env or {}),
    }
    argv = [
        str(v / "bin" / "python"),
        "-m",
        "openhands.agent_server",
        "--host",
        LOOPBACK,
        "--port",
        str(port),
    ]
    return start_process(
        "agent-server",
        argv,
        port=port,
        env=run_env,
        timeout=timeout,
        log_dir=log_dir,
        cwd=work_dir,
        health="/health",
    )


def start_openhands_app(
    *,
    state_dir: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 900.0,
    log_dir: Path | None = None,
) -> Server:
    """Start OpenHands' app server 1.11.0 with the process sandbox service (openhands_app.py).

    State (settings.json, conversations) goes to STATE_DIR (OH_PERSISTENCE_DIR, as the compose
    file sets it); sandboxes are agent-server 1.34.0 processes under STATE_DIR/sandboxes.
    """
    v = venv("openhands")
    port = free_port()
    state_dir.mkdir(parents=True, exist_ok=True)
    run_env = {
        # What the compose file sets for the app (roles/agent_stack/templates/compose.yml.j2).
        "OH_PERSISTENCE_DIR": str(state_dir),
        "LOG_ALL_EVENTS": "true",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        # The test's sandbox service (openhands_app.py says why).
        "RUNTIME": "process",
        "TMPDIR": str(state_dir / "tmp"),
        "PATH": f"{v / 'bin'}:{os.environ.get('PATH', '')}",
        **(env or {}),
    }
    (state_dir / "tmp").mkdir(exist_ok=True)
    argv = [str(v / "bin" / "python"), str(Path(__file__).parent / "openhands_app.py"), str(port)]
    return start_process(
        "openhands-app",
        argv,
        port=port,
        env=run_env,
        timeout=timeout,
        log_dir=log_dir,
        cwd=state_dir,
        health="/alive",
    )


@contextlib.contextmanager
def running(server: Server) -> Iterator[Server]:
    try:
        yield server
    finally:
        server.stop()
