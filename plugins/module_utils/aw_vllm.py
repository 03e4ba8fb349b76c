# Copyright: agent-workstation contributors
# SPDX-License-Identifier: Apache-2.0 (see LICENSE at the repository root)
"""vLLM readiness: pure interpretation functions, then a small urllib client (stdlib only).

Facts this relies on: while the model loads, vLLM does not listen at all (connection refused);
``/health`` answers 200 (empty body) when ready and 503 once the engine has died;
``/v1/models`` lists the ``--served-model-name`` aliases; the KV-cache gauge is
``vllm:kv_cache_usage_perc`` on newer releases and ``vllm:gpu_cache_usage_perc`` on older.
vLLM's API-key middleware reads ``Authorization: Bearer`` only (``x-api-key`` gets 401), and
only on ``/v1/*``: the checks send exactly what a real client sends (``client_headers``).

Tool-call checks: a streamed Anthropic ``/v1/messages`` call and a non-streamed OpenAI chat
completion, each with one tool. What is checked is the protocol (status, SSE event order,
content blocks, ``stop_reason``/``finish_reason``) and the tool-call parser's output (a tool
call, when there is one, names the offered tool and carries arguments that parse as a JSON
object); a model may answer in text instead, which is well-formed too. Shapes: vLLM's
``vllm/entrypoints/anthropic/serving.py`` and ``vllm/entrypoints/openai/chat_completion``.

SGLang (``engine="sglang"``; read in SGLang 0.5.17's source, the PyPI wheel): ``/health``
answers 503 while the server starts and 200 once up (srt/entrypoints/http_server.py); it serves
``/v1/models``, ``/v1/chat/completions``, ``/v1/messages`` and ``/v1/messages/count_tokens``;
its key check reads ``Authorization: Bearer`` only and leaves ``/health*`` and ``/metrics`` open
(srt/utils/auth.py); ``/v1/models`` lists only the one ``--served-model-name``, and requests
naming another model are served all the same (the handlers do not check it), so only the first
expected name is looked for in ``/v1/models`` and every alias is proven by the ``/v1/messages``
check; its gauges are ``sglang:token_usage`` (KV-cache pool usage, 0 to 1),
``sglang:num_running_reqs`` and ``sglang:num_queue_reqs`` (srt/observability/
metrics_collector.py), with ``--enable-metrics``.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from ansible_collections.agent_workstation.aw.plugins.module_utils.aw_promtext import (
    parse as parse_prometheus,
)

KV_CACHE_METRICS = ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")
ENGINES = ("vllm", "sglang")
# Per engine: the KV-cache gauges (first found wins), then the running and waiting gauges.
ENGINE_METRICS: dict[str, dict[str, Any]] = {
    "vllm": {
        "kv": KV_CACHE_METRICS,
        "num_requests_running": "vllm:num_requests_running",
        "num_requests_waiting": "vllm:num_requests_waiting",
    },
    "sglang": {
        "kv": ("sglang:token_usage",),
        "num_requests_running": "sglang:num_running_reqs",
        "num_requests_waiting": "sglang:num_queue_reqs",
    },
}
ENGINE_NAMES = {"vllm": "vLLM", "sglang": "SGLang"}
ANTHROPIC_VERSION = "2023-06-01"
# The one tool both tool-call checks offer.
TOOL_NAME = "get_current_time"
TOOL_DESCRIPTION = "Return the current time in a time zone."
TOOL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"timezone": {"type": "string", "description": "IANA zone, e.g. UTC"}},
    "required": ["timezone"],
}
TOOL_PROMPT = "What time is it in UTC? Use the get_current_time tool."
ANTHROPIC_STOP_REASONS = ("end_turn", "max_tokens", "stop_sequence", "tool_use")
OPENAI_FINISH_REASONS = ("stop", "length", "tool_calls")


# ---------------------------------------------------------------- pure functions


def summarize_metrics(text: str, engine: str = "vllm") -> dict[str, Any]:
    """KV-cache usage (max over engines/models) and request gauges (summed)."""
    names = ENGINE_METRICS[engine]
    samples = parse_prometheus(text)
    result: dict[str, Any] = {
        "kv_cache_usage": None,
        "kv_cache_metric": None,
        "num_requests_running": None,
        "num_requests_waiting": None,
    }
    for name in names["kv"]:
        found = [s.value for s in samples if s.name == name]
        if found:
            result["kv_cache_usage"] = max(found)
            result["kv_cache_metric"] = name
            break
    for key in ("num_requests_running", "num_requests_waiting"):
        found = [s.value for s in samples if s.name == names[key]]
        if found:
            result[key] = sum(found)
    return result


def served_model_ids(payload: Any) -> list[str]:
    """Model ids from an OpenAI-style ``/v1/models`` body."""
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
        raise ValueError("the /v1/models body has no 'data' list")
    return [str(item["id"]) for item in payload["data"] if isinstance(item, dict) and "id" in item]


def missing_models(expected: list[str], served: list[str]) -> list[str]:
    return [name for name in expected if name not in served]


def listed_models(expected: list[str], engine: str = "vllm") -> list[str]:
    """The expected names /v1/models must list: all for vLLM, the first for SGLang (one name)."""
    return list(expected[:1]) if engine == "sglang" else list(expected)


def served_model_name_fix(served: list[str], missing: list[str], engine: str = "vllm") -> str:
    if engine == "sglang":
        return (
            f"the server lists {', '.join(repr(s) for s in served) or '(none)'}, not "
            f"{', '.join(repr(m) for m in missing)}. SGLang serves one `--served-model-name`: "
            f"start it with `--served-model-name {missing[0]}` (the first of "
            "agent_stack_vllm_served_model_names), or make that name the first one."
        )
    names = list(served) + [m for m in missing if m not in served]
    return (
        f"the server does not serve {', '.join(repr(m) for m in missing)}. Start vLLM with "
        f"`--served-model-name {' '.join(names)}` (the first name is the one responses echo), "
        "or change the clients' model name to one of "
        f"{', '.join(repr(s) for s in served) or '(none served)'}."
    )


def _tool_fix(engine: str) -> str:
    if engine == "sglang":
        return "SGLang needs the --tool-call-parser of this model."
    return "vLLM needs --enable-auto-tool-choice and the --tool-call-parser of this model."


def next_delay(current: float, poll_interval: float, factor: float = 2.0) -> float:
    """Exponential backoff bounded by poll_interval."""
    return min(poll_interval, max(current, 0.05) * factor)


def health_state(status: int | None) -> str:
    if status is None:
        return "loading"
    if status == 200:
        return "healthy"
    if status in (401, 403):
        return "unauthorized"
    return "unhealthy"


def chat_payload(model: str) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [{"role": "user", "content": "Reply with one word: ready"}],
        "max_tokens": 1,
        "temperature": 0,
    }


def messages_payload(model: str) -> dict[str, Any]:
    return {
        "model": model,
        "max_tokens": 1,
        "messages": [{"role": "user", "content": "Reply with one word: ready"}],
    }


def is_chat_completion(body: Any) -> bool:
    return (
        isinstance(body, dict) and isinstance(body.get("choices"), list) and bool(body["choices"])
    )


def is_anthropic_message(body: Any) -> bool:
    return isinstance(body, dict) and body.get("type") == "message" and "content" in body


def error_detail(body: Any, raw: str) -> str:
    if isinstance(body, dict):
        err = body.get("error", body.get("message"))
        if isinstance(err, dict):
            return str(err.get("message") or err)
        if err:
            return str(err)
    return raw[:300]


def client_headers(client: str, api_key: str | None) -> dict[str, str]:
    """Exactly the auth headers a real client sends.

    ``anthropic``: Claude Code / the Agent SDK with ``ANTHROPIC_AUTH_TOKEN`` send
    ``Authorization: Bearer <token>`` and ``anthropic-version`` (with ``ANTHROPIC_API_KEY`` they
    would send ``x-api-key``, which vLLM rejects with 401). ``openai``: ``Authorization: Bearer``.
    """
    headers: dict[str, str] = {}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    if client == "anthropic":
        headers["anthropic-version"] = ANTHROPIC_VERSION
    elif client != "openai":
        raise ValueError(f"unknown client {client!r}")
    return headers


def messages_tool_payload(model: str, max_tokens: int = 64) -> dict[str, Any]:
    return {
        "model": model,
        "max_tokens": max_tokens,
        "stream": True,
        "tools": [
            {"name": TOOL_NAME, "description": TOOL_DESCRIPTION, "input_schema": TOOL_SCHEMA}
        ],
        "tool_choice": {"type": "auto"},
        "messages": [{"role": "user", "content": TOOL_PROMPT}],
    }


def chat_tool_payload(model: str, max_tokens: int = 64) -> dict[str, Any]:
    return {
        "model": model,
        "max_tokens": max_tokens,
        "temperature": 0,
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": TOOL_NAME,
                    "description": TOOL_DESCRIPTION,
                    "parameters": TOOL_SCHEMA,
                },
            }
        ],
        "tool_choice": "auto",
        "messages": [{"role": "user", "content": TOOL_PROMPT}],
    }


def parse_sse(text: str) -> list[tuple[str, Any]]:
    """Server-sent events as (event name, decoded JSON data); ``[DONE]`` and comments skipped.

    Raises ValueError on a data line that is not JSON.
    """
    events: list[tuple[str, Any]] = []
    name = ""
    data: list[str] = []
    for raw in [*text.splitlines(), ""]:
        line = raw.rstrip("\r")
        if not line:
            if data:
                payload = "\n".join(data)
                if payload.strip() != "[DONE]":
                    try:
                        decoded = json.loads(payload)
                    except ValueError as exc:
                        raise ValueError(
                            f"event {name or '?'}: data is not JSON: {payload[:120]}"
                        ) from exc
                    events.append((name or str(decoded.get("type", "")), decoded))
            name, data = "", []
        elif line.startswith(":"):
            continue
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())
    return events


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text) if text.strip() else {}
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def check_messages_stream(events: list[tuple[str, Any]], tool: str = TOOL_NAME) -> dict[str, Any]:
    """Check an Anthropic Messages stream: event order, blocks, tool_use input, stop_reason.

    Returns {ok, problem, stop_reason, tool_calls: [{name, input}], text}.
    """
    out: dict[str, Any] = {
        "ok": False,
        "problem": None,
        "stop_reason": None,
        "tool_calls": [],
        "text": "",
    }

    def bad(problem: str) -> dict[str, Any]:
        out["problem"] = problem
        return out

    names = [name for name, _ in events if name != "ping"]
    if not names:
        return bad("the stream carried no events")
    if names[0] != "message_start":
        return bad(f"the first event is {names[0]!r}, not 'message_start'")
    if names[-1] != "message_stop":
        return bad(f"the last event is {names[-1]!r}, not 'message_stop' (stream cut short?)")
    blocks: dict[int, dict[str, Any]] = {}
    for name, data in events:
        if name == "error":
            return bad(f"error event: {data.get('error', data)}")
        if name == "content_block_start":
            index = data.get("index")
            block = data.get("content_block") or {}
            if not isinstance(index, int) or index in blocks:
                return bad(f"content_block_start with a bad or repeated index {index!r}")
            blocks[index] = {
                "type": block.get("type"),
                "name": block.get("name"),
                "json": "",
                "open": True,
            }
        elif name == "content_block_delta":
            index = data.get("index")
            delta = data.get("delta") or {}
            if index not in blocks or not blocks[index]["open"]:
                return bad(f"content_block_delta for block {index!r}, which is not open")
            if delta.get("type") == "input_json_delta":
                blocks[index]["json"] += str(delta.get("partial_json", ""))
            elif delta.get("type") == "text_delta":
                out["text"] += str(delta.get("text", ""))
        elif name == "content_block_stop":
            index = data.get("index")
            if index not in blocks or not blocks[index]["open"]:
                return bad(f"content_block_stop for block {index!r}, which is not open")
            blocks[index]["open"] = False
        elif name == "message_delta":
            out["stop_reason"] = (data.get("delta") or {}).get("stop_reason")
    still_open = [i for i, b in blocks.items() if b["open"]]
    if still_open:
        return bad(f"content block(s) {still_open} never stopped")
    for block in blocks.values():
        if block["type"] == "tool_use":
            if block["name"] != tool:
                return bad(
                    f"a tool_use block names {block['name']!r}, not the offered tool {tool!r}"
                )
            arguments = _json_object(block["json"])
            if arguments is None:
                return bad(f"the tool_use input is not a JSON object: {block['json'][:120]!r}")
            out["tool_calls"].append({"name": block["name"], "input": arguments})
    if out["stop_reason"] not in ANTHROPIC_STOP_REASONS:
        return bad(f"stop_reason is {out['stop_reason']!r}, not one of {ANTHROPIC_STOP_REASONS}")
    if out["tool_calls"] and out["stop_reason"] != "tool_use":
        return bad(f"a tool was called but stop_reason is {out['stop_reason']!r}, not 'tool_use'")
    out["ok"] = True
    return out


def check_chat_tool_response(body: Any, tool: str = TOOL_NAME) -> dict[str, Any]:
    """Check an OpenAI chat completion answered with tools offered.

    Returns {ok, problem, finish_reason, tool_calls: [{name, arguments}], text}.
    """
    out: dict[str, Any] = {
        "ok": False,
        "problem": None,
        "finish_reason": None,
        "tool_calls": [],
        "text": "",
    }

    def bad(problem: str) -> dict[str, Any]:
        out["problem"] = problem
        return out

    if not is_chat_completion(body):
        return bad("the body has no 'choices'")
    choice = body["choices"][0]
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(message, dict):
        return bad("choices[0] has no 'message'")
    out["finish_reason"] = choice.get("finish_reason")
    out["text"] = message.get("content") or ""
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list):
        return bad("message.tool_calls is not a list")
    for call in calls:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not call.get("id"):
            return bad(f"a tool call lacks an id or a function: {call!r}"[:200])
        if function.get("name") != tool:
            return bad(f"a tool call names {function.get('name')!r}, not the offered tool {tool!r}")
        arguments = _json_object(str(function.get("arguments", "")))
        if arguments is None:
            return bad(
                f"tool call arguments are not a JSON object: {function.get('arguments')!r}"[:200]
            )
        out["tool_calls"].append({"name": function["name"], "arguments": arguments})
    if out["finish_reason"] not in OPENAI_FINISH_REASONS:
        return bad(f"finish_reason is {out['finish_reason']!r}, not one of {OPENAI_FINISH_REASONS}")
    # vLLM answers a named tool_choice with finish_reason "stop" (seen on 0.32), auto with
    # "tool_calls"; "length" means the call was cut off.
    if out["tool_calls"] and out["finish_reason"] not in ("tool_calls", "stop"):
        return bad(f"a tool was called but finish_reason is {out['finish_reason']!r}")
    if not out["tool_calls"] and "<tool_call>" in out["text"]:
        return bad(
            "the answer carries a raw <tool_call> block in its text: the tool-call parser did not "
            "parse it (check --tool-call-parser for this model)"
        )
    out["ok"] = True
    return out


# ---------------------------------------------------------------- HTTP (urllib)


class Response:
    def __init__(self, status: int | None, text: str, error: str | None = None) -> None:
        self.status = status
        self.text = text
        self.error = error

    def json(self) -> Any:
        try:
            return json.loads(self.text)
        except ValueError:
            return None


def http(
    method: str,
    url: str,
    headers: dict[str, str],
    body: dict[str, Any] | None = None,
    timeout: float = 10.0,
) -> Response:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers))
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return Response(reply.status, reply.read().decode("utf-8", "replace"))
    except urllib.error.HTTPError as exc:
        return Response(exc.code, exc.read().decode("utf-8", "replace"))
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return Response(None, "", str(reason))


def wait_ready(
    url: str,
    expected_models: list[str] | None = None,
    *,
    timeout: float = 900.0,
    poll_interval: float = 5.0,
    api_key: str | None = None,
    check_completion: bool = False,
    check_messages: bool = False,
    check_tools: bool = False,
    request_timeout: float = 30.0,
    engine: str = "vllm",
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Layered readiness; returns the module's result keys (never raises on HTTP errors)."""
    if engine not in ENGINES:
        raise ValueError(f"engine={engine!r} is not one of {', '.join(ENGINES)}")
    label = ENGINE_NAMES[engine]
    base = url.rstrip("/")
    expected = list(expected_models or [])
    auth = client_headers("openai", api_key)
    start = clock()
    deadline = start + timeout
    result: dict[str, Any] = {
        "ready": False,
        "phase": "health",
        "problem": None,
        "msg": "",
        "models": [],
        "missing_models": [],
        "checks": {},
        "metrics": {},
        "health_polls": 0,
        "last_health": None,
    }

    def done(problem: str | None, msg: str) -> dict[str, Any]:
        result["problem"] = problem
        result["ready"] = problem is None
        result["msg"] = msg
        result["elapsed_s"] = round(clock() - start, 3)
        return result

    delay = min(0.25, poll_interval)
    while True:
        reply = http("GET", f"{base}/health", auth, timeout=min(request_timeout, 10.0))
        result["health_polls"] += 1
        state = health_state(reply.status)
        result["last_health"] = reply.status if reply.status is not None else reply.error
        if state == "healthy":
            break
        if state == "unauthorized":
            return done("unauthorized", f"{base}/health answered {reply.status}: check api_key.")
        now = clock()
        if now >= deadline:
            if state == "loading":
                return done(
                    "timeout_loading",
                    f"{base} still refuses connections after {timeout:g} s ({reply.error}). "
                    f"{label} does not listen while it loads the model; check `docker logs` of "
                    "the container for an out-of-memory or download error, or raise timeout.",
                )
            return done(
                "timeout_unhealthy",
                f"{base}/health answered {reply.status} until the {timeout:g} s timeout: the "
                f"{label} server is up but not healthy (503 after the engine died; SGLang also "
                "while it starts). Check the container logs and restart it.",
            )
        sleep(min(delay, max(0.0, deadline - now)))
        delay = next_delay(delay, poll_interval)

    result["phase"] = "models"
    reply = http("GET", f"{base}/v1/models", auth, timeout=request_timeout)
    try:
        served = served_model_ids(reply.json())
    except ValueError:
        return done(
            "models_unreadable",
            f"{base}/v1/models answered {reply.status}: {error_detail(reply.json(), reply.text)}",
        )
    result["models"] = served
    missing = missing_models(listed_models(expected, engine), served)
    result["missing_models"] = missing
    if missing:
        return done(
            "missing_models",
            f"{label} is healthy but {served_model_name_fix(served, missing, engine)}",
        )

    names = expected or served[:1]
    if check_completion:
        result["phase"] = "completion"
        reply = http(
            "POST", f"{base}/v1/chat/completions", auth, chat_payload(names[0]), request_timeout
        )
        body = reply.json()
        ok = reply.status == 200 and is_chat_completion(body)
        result["checks"]["completion"] = {"model": names[0], "status": reply.status, "ok": ok}
        if not ok:
            return done(
                "completion_failed",
                f"POST /v1/chat/completions for {names[0]!r} answered {reply.status}: "
                f"{error_detail(body, reply.text or str(reply.error))}",
            )
    if check_messages:
        result["phase"] = "messages"
        headers = client_headers("anthropic", api_key)
        result["checks"]["messages"] = {}
        for alias in names:
            reply = http(
                "POST", f"{base}/v1/messages", headers, messages_payload(alias), request_timeout
            )
            body = reply.json()
            ok = reply.status == 200 and is_anthropic_message(body)
            result["checks"]["messages"][alias] = {"status": reply.status, "ok": ok}
            if not ok:
                detail = error_detail(body, reply.text or str(reply.error))
                fix = ""
                if reply.status == 404 and "does not exist" in detail:
                    fix = " " + served_model_name_fix(served, [alias], engine)
                return done(
                    "messages_failed",
                    f"POST /v1/messages (Anthropic format) for {alias!r} answered "
                    f"{reply.status}: {detail}.{fix}",
                )

    if check_tools:
        result["phase"] = "tools"
        model = names[0]
        reply = http(
            "POST",
            f"{base}/v1/messages",
            client_headers("anthropic", api_key),
            messages_tool_payload(model),
            request_timeout,
        )
        if reply.status == 200:
            try:
                verdict = check_messages_stream(parse_sse(reply.text))
            except ValueError as exc:
                verdict = {"ok": False, "problem": str(exc)}
        else:
            verdict = {
                "ok": False,
                "problem": error_detail(reply.json(), reply.text or str(reply.error)),
            }
        result["checks"]["tools_messages_stream"] = {
            "model": model,
            "status": reply.status,
            **verdict,
        }
        if not verdict["ok"]:
            return done(
                "tools_failed",
                f"POST /v1/messages (streamed, one tool) for {model!r} answered {reply.status}: "
                f"{verdict['problem']}. {_tool_fix(engine)}",
            )
        reply = http(
            "POST", f"{base}/v1/chat/completions", auth, chat_tool_payload(model), request_timeout
        )
        body = reply.json()
        if reply.status == 200:
            verdict = check_chat_tool_response(body)
        else:
            verdict = {"ok": False, "problem": error_detail(body, reply.text or str(reply.error))}
        result["checks"]["tools_chat"] = {"model": model, "status": reply.status, **verdict}
        if not verdict["ok"]:
            return done(
                "tools_failed",
                f"POST /v1/chat/completions (one tool) for {model!r} answered {reply.status}: "
                f"{verdict['problem']}. {_tool_fix(engine)}",
            )

    result["phase"] = "metrics"
    reply = http("GET", f"{base}/metrics", auth, timeout=request_timeout)
    if reply.status == 200:
        result["metrics"] = summarize_metrics(reply.text, engine)
    else:
        result["metrics"] = {"error": f"/metrics answered {reply.status or reply.error}"}
    result["phase"] = "ready"
    if engine == "sglang" and len(expected) > 1:
        return done(
            None,
            f"SGLang at {base} is ready, serving {', '.join(served)} (listed) and "
            f"{', '.join(expected[1:])} (answered, not listed: SGLang lists one name).",
        )
    return done(None, f"{label} at {base} is ready, serving {', '.join(served)}.")
