"""Start OpenHands' app server (openhands-ai 1.11.0) with its PROCESS sandbox service, for tests.

    python openhands_app.py PORT      (run with the `openhands` venv's Python)

Production runs the same app with the Docker sandbox service (roles/agent_stack compose.yml:
the app image 1.11.0 starting ghcr.io/openhands/agent-server:1.34.0-python sandboxes). Here
there is no image registry, so each sandbox is the same agent-server 1.34.0 started as a local
process by the app's own ProcessSandboxService (RUNTIME=process, app_server/config.py). Two
adaptations, both because of the machine the tests run on, each the only change:

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
"""

from __future__ import annotations

import os
import sys

from openhands.app_server.utils import environment


def _not_in_docker() -> bool:
    return False


environment.is_running_in_docker = _not_in_docker  # type: ignore[assignment]

from openhands.app_server.sandbox import process_sandbox_service as pss  # noqa: E402
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

import uvicorn  # noqa: E402

if __name__ == "__main__":
    uvicorn.run("openhands.app_server.app:app", host="127.0.0.1", port=int(sys.argv[1]))
