# Copyright: agent-workstation contributors
# SPDX-License-Identifier: Apache-2.0 (see LICENSE at the repository root)
"""OpenHands V1 LLM settings: pure planning functions, then a small urllib client (stdlib only).

What this relies on, read in openhands-ai 1.11.0 (the pinned app server, PyPI wheel):
- ``openhands/app_server/status/status_router.py``: ``GET /alive`` answers ``{"status": "ok"}``
  and ``GET /health`` answers ``"OK"`` (``/api/v1/health`` is not a route: the web UI answers).
- ``openhands/app_server/settings/settings_router.py``: ``GET /api/v1/settings`` answers 404
  ``{"error": "Settings not found"}`` before the first save, else the settings with
  ``agent_settings.llm`` (its ``api_key`` always ``null``) and ``llm_api_key_set`` (bool).
  ``POST /api/v1/settings`` deep-merges ``{"agent_settings_diff": {"llm": {...}}}`` into the
  stored settings and answers 200 ``{"message": "Settings stored"}``; the legacy keys
  ``agent_settings``/``conversation_settings`` get 422. With ``SESSION_API_KEY`` set in the
  app's environment every route wants ``X-Session-API-Key`` (``utils/dependencies.py``).
- ``app_conversation/live_status_app_conversation_service.py`` ``_configure_llm``: a new
  conversation starts from the saved LLM and overrides only model, base URL, key, usage id and
  streaming, so ``max_input_tokens``/``max_output_tokens``/``native_tool_calling`` reach the
  agent-server (the field names are the SDK's ``LLM`` model, openhands-sdk 1.34.0).

The key cannot be read back (GET masks it), so a change of key is detected through a SHA-256
fingerprint of the key that the caller keeps in a private state file.

MCP servers (``agent_settings.mcp_config``), read in openhands-ai 1.11.0 and openhands-sdk 1.34.0:
- SDK ``settings/model.py``: ``mcp_config: dict[str, MCPServer]`` (server name -> server; a
  legacy ``{"mcpServers": {...}}`` wrapper is unwrapped); ``mcp/config.py`` ``MCPServer``:
  ``url``, ``transport`` one of ``stdio|http|streamable-http|sse`` (``shttp`` is read as
  ``http``), ``headers``/``env``/``auth`` secrets that GET answers redacted (``**********``) and
  that a POST of the redacted value turns into nothing; serialized without empty fields.
- app ``settings/settings_models.py`` ``Settings.update``: ``agent_settings_diff.mcp_config``
  REPLACES the whole map (no deep merge), so the map is posted whole: the servers already
  stored plus the managed one.
- app ``live_status_app_conversation_service.py`` ``_merge_custom_mcp_config``: every new
  conversation adds the user's ``mcp_config`` to the agent's MCP servers; the agent-server in
  the sandbox makes the calls, so the URL must be reachable from a sandbox.
"""

from __future__ import annotations

import hashlib
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

# LLM fields this project manages (openhands-sdk LLM model); everything else is left alone.
MANAGED_FIELDS = (
    "model",
    "base_url",
    "max_input_tokens",
    "max_output_tokens",
    "native_tool_calling",
)


# ---------------------------------------------------------------- pure functions


def key_fingerprint(api_key: str) -> str:
    return "sha256:" + hashlib.sha256(api_key.encode()).hexdigest()


def desired_llm(
    model: str,
    base_url: str,
    max_input_tokens: int | None = None,
    max_output_tokens: int | None = None,
    native_tool_calling: bool | None = None,
) -> dict[str, Any]:
    """The managed, non-secret LLM fields (None = leave OpenHands' value alone)."""
    if not model or "/" not in model:
        raise ValueError(
            f"model is {model!r}: OpenHands (LiteLLM) needs a provider prefix, e.g. "
            "'openai/<served model name>' for vLLM's OpenAI API"
        )
    if not base_url.startswith(("http://", "https://")):
        raise ValueError(
            f"base_url is {base_url!r}: it must be an http(s) URL, e.g. http://host:8000/v1"
        )
    wanted: dict[str, Any] = {
        "model": model,
        "base_url": base_url,
        "max_input_tokens": max_input_tokens,
        "max_output_tokens": max_output_tokens,
        "native_tool_calling": native_tool_calling,
    }
    return {k: v for k, v in wanted.items() if v is not None}


def current_llm(body: Any) -> tuple[dict[str, Any], bool]:
    """(managed fields as stored, whether a key is stored) from a GET /api/v1/settings body.

    ``body`` None means 404 (nothing saved yet). Raises ValueError on an unexpected shape.
    """
    if body is None:
        return {}, False
    if not isinstance(body, dict):
        raise ValueError("the /api/v1/settings body is not a JSON object")
    agent = body.get("agent_settings")
    if not isinstance(agent, dict) or not isinstance(agent.get("llm"), dict):
        raise ValueError("the /api/v1/settings body has no agent_settings.llm object")
    llm = agent["llm"]
    return {k: llm.get(k) for k in MANAGED_FIELDS if k in llm}, bool(body.get("llm_api_key_set"))


def plan(
    current: dict[str, Any],
    key_set: bool,
    desired: dict[str, Any],
    fingerprint: str,
    stored_fingerprint: str | None,
) -> dict[str, Any]:
    """What has to change: {changed, fields: {name: {before, after}}, key: reason or None}."""
    fields = {
        name: {"before": current.get(name), "after": value}
        for name, value in desired.items()
        if current.get(name) != value
    }
    key_reason = None
    if not key_set:
        key_reason = "no key is stored"
    elif stored_fingerprint != fingerprint:
        key_reason = (
            "the key differs from the one last written"
            if stored_fingerprint
            else ("the stored key was not written by this role")
        )
    return {"changed": bool(fields) or key_reason is not None, "fields": fields, "key": key_reason}


REDACTED = "**********"  # openhands-sdk utils/pydantic_secrets.py REDACTED_SECRET_VALUE


def desired_mcp_server(url: str) -> dict[str, Any]:
    """One streamable-HTTP MCP server as the SDK serializes it (MCPServer, empty fields dropped)."""
    if not url.startswith(("http://", "https://")):
        raise ValueError(
            f"mcp_url is {url!r}: it must be an http(s) URL, e.g. http://host:8765/mcp"
        )
    return {"url": url, "transport": "http"}


def current_mcp(body: Any) -> dict[str, Any]:
    """The stored MCP server map from a GET /api/v1/settings body (None: nothing saved yet)."""
    if body is None:
        return {}
    agent = body.get("agent_settings") if isinstance(body, dict) else None
    servers = agent.get("mcp_config") if isinstance(agent, dict) else None
    if servers is None:
        return {}
    if isinstance(servers, dict) and isinstance(servers.get("mcpServers"), dict):
        servers = servers["mcpServers"]
    if not isinstance(servers, dict):
        raise ValueError(
            "the /api/v1/settings body has an agent_settings.mcp_config that is not an object"
        )
    return dict(servers)


def _has_redacted(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_has_redacted(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_redacted(v) for v in value)
    return value == REDACTED


def plan_mcp(current: dict[str, Any], name: str, server: dict[str, Any] | None) -> dict[str, Any]:
    """{changed, before, after, config}: the managed server `name` set to `server` (None: removed);
    config is the whole map to post. Refuses (ValueError) when another stored server carries a
    secret: GET only shows it redacted, and posting the map would erase it."""
    before = current.get(name)
    if before == server:
        return {"changed": False, "before": before, "after": server, "config": current}
    others = {k: v for k, v in current.items() if k != name}
    secret = sorted(k for k, v in others.items() if _has_redacted(v))
    if secret:
        raise ValueError(
            f"OpenHands' MCP settings hold other servers with secrets ({', '.join(secret)}): "
            "OpenHands replaces the whole MCP map on a write and shows their secrets only "
            f"redacted, so writing {name!r} would erase them. Fix: add {name!r} in OpenHands' "
            "UI (MCP settings), or remove those servers and re-add them after this run"
        )
    config = dict(others)
    if server is not None:
        config[name] = server
    return {"changed": True, "before": before, "after": server, "config": config}


def settings_payload(
    desired: dict[str, Any] | None, api_key: str | None, mcp_config: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The POST body: only the *_diff shape (legacy keys get 422). ``desired`` None leaves the
    LLM alone; ``mcp_config`` None leaves the MCP servers alone."""
    diff: dict[str, Any] = {}
    if desired is not None:
        diff["llm"] = {**desired, "api_key": api_key}
    if mcp_config is not None:
        diff["mcp_config"] = mcp_config
    return {"agent_settings_diff": diff}


def is_alive(status: int | None, body: Any) -> bool:
    return status == 200 and isinstance(body, dict) and body.get("status") == "ok"


def error_text(status: int | None, body: Any, raw: str) -> str:
    if isinstance(body, dict) and body.get("error"):
        return f"{status}: {body['error']}"
    return f"{status}: {raw[:200]}"


# ---------------------------------------------------------------- HTTP (urllib)


def http(
    method: str,
    url: str,
    headers: dict[str, str],
    body: dict[str, Any] | None = None,
    timeout: float = 15.0,
) -> tuple[int | None, Any, str]:
    """(status or None when unreachable, decoded JSON or None, raw text or the error)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers))
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            status, raw = reply.status, reply.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read().decode("utf-8", "replace")
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
        return None, None, str(getattr(exc, "reason", exc))
    try:
        decoded = json.loads(raw)
    except ValueError:
        decoded = None
    return status, decoded, raw


def wait_alive(
    url: str,
    headers: dict[str, str],
    timeout: float,
    *,
    poll_interval: float = 2.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[bool, str]:
    deadline = clock() + timeout
    last = ""
    while True:
        status, body, raw = http("GET", f"{url}/alive", headers, timeout=10.0)
        if is_alive(status, body):
            return True, ""
        last = f"{status}: {raw[:120]}" if status is not None else raw
        if clock() >= deadline:
            return False, last
        sleep(poll_interval)
