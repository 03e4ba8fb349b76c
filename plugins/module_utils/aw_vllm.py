# Copyright: agent-workstation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""vLLM readiness: pure interpretation functions, then a small urllib client (stdlib only).

Facts this relies on: while the model loads, vLLM does not listen at all (connection refused);
``/health`` answers 200 (empty body) when ready and 503 once the engine has died;
``/v1/models`` lists the ``--served-model-name`` aliases; the KV-cache gauge is
``vllm:kv_cache_usage_perc`` on newer releases and ``vllm:gpu_cache_usage_perc`` on older.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from ansible.module_utils.aw_promtext import parse as parse_prometheus

KV_CACHE_METRICS = ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")
ANTHROPIC_VERSION = "2023-06-01"


# ---------------------------------------------------------------- pure functions


def summarize_metrics(text: str) -> dict[str, Any]:
    """KV-cache usage (max over engines/models) and request gauges (summed)."""
    samples = parse_prometheus(text)
    result: dict[str, Any] = {
        "kv_cache_usage": None,
        "kv_cache_metric": None,
        "num_requests_running": None,
        "num_requests_waiting": None,
    }
    for name in KV_CACHE_METRICS:
        found = [s.value for s in samples if s.name == name]
        if found:
            result["kv_cache_usage"] = max(found)
            result["kv_cache_metric"] = name
            break
    for key in ("num_requests_running", "num_requests_waiting"):
        found = [s.value for s in samples if s.name == f"vllm:{key}"]
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


def served_model_name_fix(served: list[str], missing: list[str]) -> str:
    names = list(served) + [m for m in missing if m not in served]
    return (
        f"the server does not serve {', '.join(repr(m) for m in missing)}. Start vLLM with "
        f"`--served-model-name {' '.join(names)}` (the first name is the one responses echo), "
        "or change the clients' model name to one of "
        f"{', '.join(repr(s) for s in served) or '(none served)'}."
    )


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
    request_timeout: float = 30.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Layered readiness; returns the module's result keys (never raises on HTTP errors)."""
    base = url.rstrip("/")
    expected = list(expected_models or [])
    auth = {"Authorization": f"Bearer {api_key}"} if api_key else {}
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
                    "vLLM does not listen while it loads the model; check `docker logs` of the "
                    "vLLM container for an out-of-memory or download error, or raise timeout.",
                )
            return done(
                "timeout_unhealthy",
                f"{base}/health answered {reply.status} until the {timeout:g} s timeout: the "
                "engine is up but not healthy (it answers 503 after the engine died). Check "
                "the container logs and restart it.",
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
    missing = missing_models(expected, served)
    result["missing_models"] = missing
    if missing:
        return done(
            "missing_models", f"vLLM is healthy but {served_model_name_fix(served, missing)}"
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
        headers = dict(auth)
        headers["anthropic-version"] = ANTHROPIC_VERSION
        if api_key:
            headers["x-api-key"] = api_key
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
                    fix = " " + served_model_name_fix(served, [alias])
                return done(
                    "messages_failed",
                    f"POST /v1/messages (Anthropic format) for {alias!r} answered "
                    f"{reply.status}: {detail}.{fix}",
                )

    result["phase"] = "metrics"
    reply = http("GET", f"{base}/metrics", auth, timeout=request_timeout)
    if reply.status == 200:
        result["metrics"] = summarize_metrics(reply.text)
    else:
        result["metrics"] = {"error": f"/metrics answered {reply.status or reply.error}"}
    result["phase"] = "ready"
    return done(None, f"vLLM at {base} is ready, serving {', '.join(served)}.")
