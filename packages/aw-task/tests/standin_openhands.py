"""A STAND-IN for the OpenHands V1 app server (openhands-ai 1.11.0), for tests and the benchmark.

It is not OpenHands: it serves only the routes aw_task.openhands calls, with the JSON shapes of
the real models (cited in aw_task/openhands.py: app_conversation_router.py,
app_conversation_models.py, sandbox_models.py, event_router.py, sdk/conversation/state.py,
sdk/git/models.py), and counts what a real server would see (live sandboxes, starts, deletes)
so tests can assert from OpenHands' side. The agent is scripted by directives in the prompt:
  STANDIN:sleep=SECONDS   run that long, then finish (default 0.3)
  STANDIN:error           the conversation ends in execution_status "error"
  STANDIN:error-first     only the first attempt (title "... #1") errors
  STANDIN:startfail       the start task ends in ERROR
  STANDIN:write=NAME      the "agent" writes NAME in the repository named in the prompt
  STANDIN:fix=NAME        writes NAME only when the prompt reports a failed acceptance command
  STANDIN:503-once        the first poll of the conversation answers 503
  STANDIN:slowstart=S     the start task stays WORKING (no conversation yet) for S seconds, as
                          the real app's does while the sandbox starts
  STANDIN:late-events=S   the conversation's events reach events/search only S seconds after it
                          ended, as with the real app, whose sandboxes post events by webhook in
                          batches (agent-server 1.34.0 WebhookSpec: 5 events or flush_delay 30 s)
The tests that run the real app server are in tests/test_real_openhands.py.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

_REPO = re.compile(r"The repository to work on is at (\S+?); work there")


class Conversation:
    def __init__(self, conv_id: str, prompt: str, title: str) -> None:
        self.id = conv_id
        self.prompt = prompt
        self.title = title
        m = re.search(r"STANDIN:slowstart=([0-9.]+)", prompt)
        self.ready_at = time.monotonic() + (float(m.group(1)) if m else 0.0)
        self.created = self.ready_at
        self.sandbox_id = f"sandbox-{conv_id[:8]}"
        self.deleted = False
        self.polls = 0
        m = re.search(r"STANDIN:sleep=([0-9.]+)", prompt)
        self.run_s = float(m.group(1)) if m else 0.3
        self.error = "STANDIN:error " in prompt + " " or (
            "STANDIN:error-first" in prompt and title.endswith("#1")
        )
        self.written = False
        m = re.search(r"STANDIN:late-events=([0-9.]+)", prompt)
        self.events_delay_s = float(m.group(1)) if m else 0.0

    def events_visible(self) -> bool:
        return time.monotonic() >= self.created + self.run_s + self.events_delay_s

    def execution_status(self) -> str:
        if time.monotonic() - self.created < self.run_s:
            return "running"
        if not self.written:
            self.written = True
            m = re.search(r"STANDIN:write=(\S+)", self.prompt)
            if "did not pass the acceptance command" in self.prompt:
                m = m or re.search(r"STANDIN:fix=(\S+)", self.prompt)
            repo = _REPO.search(self.prompt)
            if m and repo:
                Path(repo.group(1), m.group(1)).write_text("written by the stand-in\n")
        return "error" if self.error else "finished"


class StandIn:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.conversations: dict[str, Conversation] = {}
        self.start_tasks: dict[str, dict[str, Any]] = {}
        self.max_live = 0
        self.starts = 0
        self.deletes = 0
        self.orphans: set[str] = set()
        self.sandbox_deletes = 0
        self.start_times: list[float] = []
        self.server: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None
        self.api_key: str | None = None

    # --- counters, from OpenHands' side --------------------------------------------------------
    def live(self) -> int:
        # A failed start leaves its sandbox behind until someone deletes it (seen with the real
        # app server 1.11.0: tests/real/test_openhands_app.py).
        return sum(1 for c in self.conversations.values() if not c.deleted) + len(self.orphans)

    def starts_for(self, task_id: str) -> int:
        return sum(1 for c in self.conversations.values() if f"aw-task {task_id} " in c.title)

    # --- server -------------------------------------------------------------------------------
    def start(self, port: int = 0) -> str:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

            def _send(self, code: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _auth(self) -> bool:
                if standin.api_key and self.headers.get("X-Session-API-Key") != standin.api_key:
                    self._send(401, {"detail": "Unauthorized"})
                    return False
                return True

            def do_GET(self) -> None:
                url = urlparse(self.path)
                q = parse_qs(url.query)
                if url.path == "/alive":
                    return self._send(200, {"status": "ok"})
                if not self._auth():
                    return None
                if url.path == "/api/v1/app-conversations/start-tasks":
                    return self._send(200, [standin.start_task_json(i) for i in q.get("ids", [])])
                if url.path == "/api/v1/app-conversations/start-tasks/search":
                    # newest first (CREATED_AT_DESC); conversation_id__eq compares
                    # app_conversation_id, null until READY, as the real SQL service does
                    wanted = q.get("conversation_id__eq", [None])[0]
                    every = [
                        standin.start_task_json(t["id"])
                        for t in reversed(list(standin.start_tasks.values()))
                    ]
                    found = [
                        t
                        for t in every
                        if t and (wanted is None or t["app_conversation_id"] == wanted)
                    ]
                    limit = int(q.get("limit", ["100"])[0])
                    return self._send(200, {"items": found[:limit], "next_page_id": None})
                if url.path == "/api/v1/app-conversations":
                    try:
                        items = [standin.conversation_json(i) for i in q["ids"]]
                    except _Transient:
                        return self._send(503, {"detail": "Service Unavailable (stand-in)"})
                    return self._send(200, items)
                m = re.fullmatch(r"/api/v1/conversation/([^/]+)/events/search", url.path)
                if m:
                    return self._send(200, standin.events_json(m.group(1)))
                m = re.fullmatch(r"/api/v1/app-conversations/([^/]+)/git/changes", url.path)
                if m:
                    return self._send(200, standin.changes_json(m.group(1), q["path"][0]))
                return self._send(404, {"detail": "Not Found"})

            def do_POST(self) -> None:
                if not self._auth():
                    return None
                if urlparse(self.path).path != "/api/v1/app-conversations":
                    return self._send(404, {"detail": "Not Found"})
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                return self._send(200, standin.start_conversation(body))

            def do_DELETE(self) -> None:
                if not self._auth():
                    return None
                path = urlparse(self.path).path
                sandbox = re.fullmatch(r"/api/v1/sandboxes/([^/]+)", path)
                if sandbox:
                    # The real route reads the id from the query (sandbox_router.py: path
                    # `{id}`, parameter `sandbox_id`): 422 without it, as FastAPI answers.
                    wanted = parse_qs(urlparse(self.path).query).get("sandbox_id", [None])[0]
                    if wanted is None:
                        return self._send(422, {"detail": [{"loc": ["query", "sandbox_id"]}]})
                    with standin.lock:
                        if wanted not in standin.orphans:
                            return self._send(404, {"detail": "Sandbox not found"})
                        standin.orphans.discard(wanted)
                        standin.sandbox_deletes += 1
                    return self._send(200, {"success": True})
                m = re.fullmatch(r"/api/v1/app-conversations/([^/]+)", path)
                if not m:
                    return self._send(404, {"detail": "Not Found"})
                with standin.lock:
                    conv = standin.conversations.get(m.group(1))
                    if conv is None or conv.deleted:
                        return self._send(404, {"detail": "Conversation not found"})
                    conv.deleted = True
                    standin.deletes += 1
                return self._send(200, {"success": True})

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    # --- behaviour ------------------------------------------------------------------------------
    def start_conversation(self, body: dict[str, Any]) -> dict[str, Any]:
        prompt = "".join(p["text"] for p in body["initial_message"]["content"])
        conv_id = body.get("conversation_id") or str(uuid.uuid4())
        task_id = str(uuid.uuid4())
        with self.lock:
            self.starts += 1
            self.start_times.append(time.time())
            failed = "STANDIN:startfail" in prompt
            if failed:
                self.orphans.add(f"sandbox-{conv_id[:8]}")
                self.max_live = max(self.max_live, self.live())
            else:
                self.conversations[conv_id] = Conversation(conv_id, prompt, body.get("title", ""))
                self.max_live = max(self.max_live, self.live())
            # AppConversationStartTask (app_conversation_models.py)
            task = {
                "id": task_id,
                "created_by_user_id": None,
                "status": "ERROR" if failed else "READY",
                "detail": "sandbox failed to start (stand-in)" if failed else None,
                "app_conversation_id": None if failed else conv_id,
                "sandbox_id": f"sandbox-{conv_id[:8]}",
                "agent_server_url": None,
                "request": body,
            }
            self.start_tasks[task_id] = task
        return {**task, "status": "WORKING"}

    def start_task_json(self, task_id: str) -> dict[str, Any] | None:
        task = self.start_tasks.get(task_id)
        if task is None:
            return None
        conv = self.conversations.get(str(task["app_conversation_id"]))
        if conv is not None and time.monotonic() < conv.ready_at:
            return {**task, "status": "WAITING_FOR_SANDBOX", "app_conversation_id": None}
        return task

    def conversation_json(self, conv_id: str) -> dict[str, Any] | None:
        conv = self.conversations.get(conv_id)
        if conv is None or conv.deleted or time.monotonic() < conv.ready_at:
            return None
        conv.polls += 1
        if "STANDIN:503-once" in conv.prompt and conv.polls == 1:
            raise _Transient
        # AppConversation (app_conversation_models.py)
        return {
            "id": conv.id,
            "created_by_user_id": None,
            "sandbox_id": conv.sandbox_id,
            "title": conv.title,
            "sandbox_status": "RUNNING",
            "execution_status": conv.execution_status(),
            "conversation_url": None,
            "session_api_key": None,
        }

    def events_json(self, conv_id: str) -> dict[str, Any]:
        conv = self.conversations[conv_id]
        items: list[dict[str, Any]] = []
        if not conv.events_visible():
            pass
        elif conv.error:
            items.append(
                {
                    "kind": "ConversationErrorEvent",
                    "source": "environment",
                    "code": "LLMBadRequestError",
                    "detail": "stand-in: the model answered 400",
                }
            )
        else:
            items.append(
                {
                    "kind": "ActionEvent",
                    "source": "agent",
                    "action": {"kind": "FinishAction", "message": "done (stand-in)"},
                }
            )
        return {"items": items, "next_page_id": None}

    def changes_json(self, conv_id: str, path: str) -> list[dict[str, str]]:
        m = re.search(r"STANDIN:write=(\S+)", self.conversations[conv_id].prompt)
        return [{"status": "ADDED", "path": m.group(1)}] if m else []


class _Transient(Exception):
    pass
