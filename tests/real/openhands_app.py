"""Start OpenHands' app server (openhands-ai 1.11.0) with its PROCESS sandbox service, for tests.

    python openhands_app.py PORT      (run with the `openhands` venv's Python)

Production runs the same app with the Docker sandbox service (roles/agent_stack compose.yml:
the app image 1.11.0 starting ghcr.io/openhands/agent-server:1.34.0-python sandboxes). Here
there is no image registry, so each sandbox is the same agent-server 1.34.0 started as a local
process by the app's own ProcessSandboxService (RUNTIME=process, app_server/config.py). Five
adaptations, each because of the machine the tests run on or a flaw of the process service
alone, each the only change:

1. `is_running_in_docker()` answers False. This VM has /.dockerenv, so the app would rewrite
   http://localhost:PORT of its own process sandboxes to host.docker.internal
   (app_server/utils/docker_utils.py replace_localhost_hostname_for_docker), which does not
   resolve here. Under the Docker sandbox service that rewrite is right and is left alone.
2. The two sandbox start-up waits, the process sandbox's own (30 s, process_sandbox_service.py
   `_wait_for_server_ready`) and the conversation service's (120 s, sandbox_service.py
   `wait_for_sandbox_running`, `sandbox_startup_timeout`), become at least AW_OH_SANDBOX_READY_S
   (default 900 s): the agent-server's first import takes minutes on two loaded cores
   (tests/real/README.md), and a queued task then failed with "Sandbox failed to start within
   120s". Production's Docker sandboxes start from an image whose imports are compiled.
3. The process sandbox's port finder (`_find_unused_port`: bind, release, return) gives the
   SAME free port to two sandboxes started at once, because an agent-server binds it only after
   its slow import; the second then dies with "address already in use" (seen with the queue's
   two parallel tasks). The launcher remembers the ports it handed out and skips them. The
   Docker sandbox service production runs maps container ports and does not have this race.
4. A sandbox's status. ProcessSandboxService._get_process_status (process_sandbox_service.py,
   openhands-ai 1.11.0) reports RUNNING only while psutil sees the agent-server process in state
   `R` (on a CPU at that instant); an idle server waiting on its socket is `S` (sleeping) and is
   reported STARTING, with no exposed URLs. So after the start-up wait had seen it RUNNING once,
   the conversation service's next get_sandbox found it STARTING and failed
   (live_status_app_conversation_service.py `_get_agent_server_url`: `assert exposed_urls is not
   None`): every start task of the last run ended ERROR that way (the app's log). Here a live
   process that is not stopped or a zombie counts as RUNNING when its /alive health check
   answers 200 (the code that follows is unchanged: it sets the exposed URL) and as STARTING
   while it does not yet (the Docker service's own rule within its start-up grace,
   docker_sandbox_service.py `_container_to_checked_sandbox_info`). The Docker service reads the
   container's state, not the CPU's, and does not have this flaw.
"""

from __future__ import annotations

import os
import sys

from openhands.app_server.utils import environment


def _not_in_docker() -> bool:
    return False


environment.is_running_in_docker = _not_in_docker  # type: ignore[assignment]

from openhands.app_server.sandbox import process_sandbox_service as pss  # noqa: E402
from openhands.app_server.sandbox.sandbox_service import WEBHOOK_CALLBACK_VARIABLE  # noqa: E402
from openhands.app_server.utils import docker_utils  # noqa: E402

docker_utils.is_running_in_docker = _not_in_docker  # type: ignore[assignment]
_wait = pss.ProcessSandboxService._wait_for_server_ready
_ready_s = int(os.environ.get("AW_OH_SANDBOX_READY_S", "900"))


async def _wait_longer(self: pss.ProcessSandboxService, port: int, timeout: int = 30) -> bool:
    return await _wait(self, port, timeout=max(timeout, _ready_s))


pss.ProcessSandboxService._wait_for_server_ready = _wait_longer  # type: ignore[method-assign]

from openhands.app_server.sandbox import sandbox_service  # noqa: E402

_running = sandbox_service.SandboxService.wait_for_sandbox_running


async def _running_longer(self, sandbox_id, timeout=120, *args, **kwargs):  # type: ignore[no-untyped-def]
    return await _running(self, sandbox_id, max(timeout, _ready_s), *args, **kwargs)


sandbox_service.SandboxService.wait_for_sandbox_running = _running_longer  # type: ignore[method-assign]

_find = pss.ProcessSandboxService._find_unused_port
_given: set[int] = set()


def _find_unused_port_once(self: pss.ProcessSandboxService) -> int:
    base = self.base_port
    try:
        while True:
            port = _find(self)
            if port not in _given:
                _given.add(port)
                return port
            self.base_port = port + 1
    finally:
        self.base_port = base


pss.ProcessSandboxService._find_unused_port = _find_unused_port_once  # type: ignore[method-assign]

import psutil  # noqa: E402
from openhands.app_server.sandbox.sandbox_models import SandboxStatus  # noqa: E402

_to_info = pss.ProcessSandboxService._process_to_sandbox_info


def _process_status(
    self: pss.ProcessSandboxService, process_info: pss.ProcessInfo
) -> SandboxStatus:
    try:
        process = psutil.Process(process_info.pid)
        status = process.status() if process.is_running() else psutil.STATUS_DEAD
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return SandboxStatus.MISSING
    if status in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
        return SandboxStatus.MISSING
    if status == psutil.STATUS_STOPPED:
        return SandboxStatus.PAUSED
    return SandboxStatus.RUNNING  # alive: the health check in _process_to_sandbox_info decides


async def _checked_info(
    self: pss.ProcessSandboxService, sandbox_id: str, process_info: pss.ProcessInfo
):  # type: ignore[no-untyped-def]
    info = await _to_info(self, sandbox_id, process_info)
    if info.status == SandboxStatus.ERROR:  # alive but /alive not answering yet: still starting
        info.status = SandboxStatus.STARTING
    return info


pss.ProcessSandboxService._get_process_status = _process_status  # type: ignore[method-assign]
pss.ProcessSandboxService._process_to_sandbox_info = _checked_info  # type: ignore[method-assign]

# Adaptation 5: the event webhook. The Docker sandbox service gives every sandbox
# OH_WEBHOOKS_0_BASE_URL=http://host.docker.internal:<app port>/api/v1/webhooks
# (docker_sandbox_service.py, WEBHOOK_CALLBACK_VARIABLE from sandbox_service.py); the process
# service sets no webhook at all, so no event of a conversation ever reached the app
# (app_server/event_callback/webhook_router.py `on_event` saves them) and its events/search
# answered nothing: the queue's error reason and final message came back empty (the last run).
# Here each process sandbox gets the same variable, pointing at this app on loopback.
_start_agent = pss.ProcessSandboxService._start_agent_process


async def _start_with_webhook(self, **kwargs):  # type: ignore[no-untyped-def]
    # start_sandbox passes sandbox_id, port, working_dir, session_api_key, sandbox_spec by name.
    spec = kwargs.pop("sandbox_spec")
    hook = f"http://127.0.0.1:{sys.argv[1]}/api/v1/webhooks"
    env = {**spec.initial_env, WEBHOOK_CALLBACK_VARIABLE: hook}
    return await _start_agent(
        self, sandbox_spec=spec.model_copy(update={"initial_env": env}), **kwargs
    )


pss.ProcessSandboxService._start_agent_process = _start_with_webhook  # type: ignore[method-assign]

import uvicorn  # noqa: E402

if __name__ == "__main__":
    uvicorn.run("openhands.app_server.app:app", host="127.0.0.1", port=int(sys.argv[1]))
