"""A small client of the OpenHands V1 app server REST API (openhands-ai 1.11.0).

Routes and JSON shapes, read from the openhands-ai 1.11.0 wheel on PyPI
(`openhands/app_server/...`; the agent-server's models from openhands-sdk /
openhands-agent-server 1.58.2):
- GET  /alive                                  status/status_router.py -> {"status": "ok"}
- POST /api/v1/app-conversations               app_conversation/app_conversation_router.py
       body AppConversationStartRequest (app_conversation_models.py): conversation_id,
       initial_message (sdk/conversation/message_request.py SendMessageRequest: role,
       content [{"type": "text", "text"}], run), selected_repository, selected_branch, title,
       llm_model (overrides the settings' model for this conversation:
       live_status_app_conversation_service.py `_configure_llm`)
       -> AppConversationStartTask {id, status (WORKING ... READY | ERROR), detail,
          app_conversation_id, sandbox_id}
- GET  /api/v1/app-conversations/start-tasks?ids=ID   -> [AppConversationStartTask | null]
- GET  /api/v1/app-conversations/start-tasks/search?limit=100
       -> AppConversationStartTaskPage {items, next_page_id}, newest first (CREATED_AT_DESC);
       each item carries its `request` (with our conversation_id). Its conversation_id__eq
       filter compares `app_conversation_id`, which the app sets only once the start is READY
       (sql_app_conversation_start_task_service.py), so a start still in progress is found
       by filtering the items here (seen against the real 1.11.0).
- GET  /api/v1/app-conversations?ids=ID                -> [AppConversation | null]
       AppConversation: id, sandbox_id, sandbox_status (STARTING RUNNING PAUSED ERROR
       MISSING, sandbox/sandbox_models.py), execution_status (idle running paused
       waiting_for_confirmation finished error stuck deleting, sdk/conversation/state.py)
- GET  /api/v1/conversation/{id}/events/search?sort_order=TIMESTAMP_DESC&limit=N
       event/event_router.py -> EventPage {items: [Event], next_page_id}; events carry "kind":
       MessageEvent {source, llm_message {role, content}}, ActionEvent {action {kind:
       "FinishAction", message}}, ConversationErrorEvent {code, detail}
- GET  /api/v1/app-conversations/{id}/git/changes?path=P  -> [GitChange {status, path}]
       (proxied to the agent-server's /api/git/changes; sdk/git/models.py)
- DELETE /api/v1/app-conversations/{id}        -> Success {success: true}; deletes the
       conversation and, unless another conversation shares it, its sandbox.
- DELETE /api/v1/sandboxes/{id}?sandbox_id=ID   sandbox/sandbox_router.py -> Success (the
       route's path names `{id}` but the handler's parameter is `sandbox_id`, so FastAPI reads it
       from the QUERY and answers 422 without it: seen against the real 1.11.0); a start
       task that ends in ERROR (or never gets READY) leaves its sandbox behind: the real app
       server 1.11.0 kept them STARTING/RUNNING (tests/real/test_openhands_app.py), so the
       worker deletes the start task's sandbox_id itself.
Authentication: header X-Session-API-Key when the server has SESSION_API_KEY set
(app_server/utils/dependencies.py); none otherwise.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, cast

import httpx

TRANSIENT_STATUS = frozenset({502, 503, 504})
DONE_EXECUTION = frozenset({"finished", "error", "stuck"})
ERROR_EXECUTION = frozenset({"error", "stuck"})
DEAD_SANDBOX = frozenset({"ERROR", "MISSING"})


class OpenHandsError(RuntimeError):
    """OpenHands answered with an error or an unexpected shape."""


class OpenHandsUnreachable(OpenHandsError):
    """No answer (connection refused, timeout, dropped stream) even after the retry."""


class OpenHands:
    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        transient_backoff_s: float = 5.0,
        timeout_s: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        headers = {"X-Session-API-Key": api_key} if api_key else {}
        self.base_url = base_url.rstrip("/")
        self.http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout_s)
        self.transient_backoff_s = transient_backoff_s
        self.sleep = sleep
        self.retried = 0  # transient retries made (for tests and logs)

    def close(self) -> None:
        self.http.close()

    # --- transport: one retry of a transient failure after a backoff --------------------------
    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        last: Exception | None = None
        for attempt in range(2):
            try:
                response = self.http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                last = exc
            else:
                if response.status_code in TRANSIENT_STATUS:
                    last = OpenHandsError(
                        f"{method} {path}: HTTP {response.status_code} {response.text[:200]}"
                    )
                else:
                    if response.status_code >= 400:
                        raise OpenHandsError(
                            f"{method} {path}: HTTP {response.status_code} {response.text[:500]}"
                        )
                    return response.json() if response.content else None
            if attempt == 0:
                self.retried += 1
                self.sleep(self.transient_backoff_s)
        if isinstance(last, httpx.TransportError):
            raise OpenHandsUnreachable(
                f"OpenHands at {self.base_url} did not answer {method} {path} ({last!r}) "
                "after one retry. Fix: check the openhands container "
                "(docker compose ps) or openhands_url (AW_TASK_OPENHANDS_URL)"
            ) from last
        raise OpenHandsError(f"{last} (after one retry)")

    # --- the API ------------------------------------------------------------------------------
    def alive(self) -> bool:
        try:
            return bool(self.http.get("/alive", timeout=5).status_code == 200)
        except httpx.TransportError:
            return False

    def start(
        self,
        *,
        conversation_id: str,
        prompt: str,
        repository: str | None,
        branch: str | None,
        title: str,
        llm_model: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "conversation_id": conversation_id,
            "initial_message": {
                "role": "user",
                "content": [{"type": "text", "text": prompt}],
                "run": True,
            },
            "title": title,
        }
        if repository:
            body["selected_repository"] = repository
        if branch:
            body["selected_branch"] = branch
        if llm_model:
            body["llm_model"] = llm_model
        return cast("dict[str, Any]", self._call("POST", "/api/v1/app-conversations", json=body))

    def start_task(self, start_task_id: str) -> dict[str, Any] | None:
        items = self._call(
            "GET", "/api/v1/app-conversations/start-tasks", params={"ids": start_task_id}
        )
        return cast("dict[str, Any] | None", items[0] if items else None)

    def start_task_for(self, conversation_id: str) -> dict[str, Any] | None:
        """The newest start task requested for a conversation id, among the newest 100 (None:
        OpenHands never saw a start of it)."""
        page = self._call(
            "GET", "/api/v1/app-conversations/start-tasks/search", params={"limit": 100}
        )
        want = _hex(conversation_id)
        for item in (page or {}).get("items") or []:
            asked = (item.get("request") or {}).get("conversation_id")
            if want in (_hex(asked), _hex(item.get("app_conversation_id"))):
                return cast("dict[str, Any]", item)
        return None

    def conversation(self, conversation_id: str) -> dict[str, Any] | None:
        items = self._call("GET", "/api/v1/app-conversations", params={"ids": conversation_id})
        return cast("dict[str, Any] | None", items[0] if items else None)

    def events(self, conversation_id: str, limit: int = 100) -> list[dict[str, Any]]:
        page = self._call(
            "GET",
            f"/api/v1/conversation/{conversation_id}/events/search",
            params={"sort_order": "TIMESTAMP_DESC", "limit": limit},
        )
        return cast("list[dict[str, Any]]", (page or {}).get("items", []))

    def git_changes(self, conversation_id: str, path: str) -> list[dict[str, str]]:
        items = self._call(
            "GET", f"/api/v1/app-conversations/{conversation_id}/git/changes", params={"path": path}
        )
        return [{"status": str(i.get("status")), "path": str(i.get("path"))} for i in items or []]

    def delete_sandbox(self, sandbox_id: str) -> bool:
        try:
            self._call(
                "DELETE", f"/api/v1/sandboxes/{sandbox_id}", params={"sandbox_id": sandbox_id}
            )
        except OpenHandsError as exc:
            if "HTTP 404" in str(exc):
                return False
            raise
        return True

    def delete(self, conversation_id: str) -> bool:
        try:
            self._call("DELETE", f"/api/v1/app-conversations/{conversation_id}")
        except OpenHandsError as exc:
            if "HTTP 404" in str(exc):
                return False
            raise
        return True


def _hex(value: object) -> str | None:
    """A UUID in one spelling (the app answers both 8-4-4-4-12 and 32 hex digits)."""
    if not value:
        return None
    return str(value).replace("-", "").lower()


def final_message(events: list[dict[str, Any]]) -> str | None:
    """The agent's last word: the newest FinishAction message, else the newest agent
    MessageEvent's text (events newest first, as TIMESTAMP_DESC returns them)."""
    for event in events:
        action = event.get("action") or {}
        if event.get("kind") == "ActionEvent" and action.get("kind") == "FinishAction":
            return str(action.get("message", ""))
    for event in events:
        if event.get("kind") == "MessageEvent" and event.get("source") == "agent":
            parts = (event.get("llm_message") or {}).get("content") or []
            text = "".join(p.get("text", "") for p in parts if p.get("type") == "text")
            if text:
                return text
    return None


def error_detail(events: list[dict[str, Any]]) -> str | None:
    for event in events:
        if event.get("kind") in ("ConversationErrorEvent", "AgentErrorEvent"):
            code = event.get("code") or event.get("kind")
            return f"{code}: {event.get('detail') or event.get('error') or ''}".strip()
    return None
