#!/usr/bin/env python3
"""A stand-in for a vLLM OpenAI-compatible server, for tests on machines without a GPU.

It is NOT vLLM. It replays recorded real vLLM responses (tests/fixtures/vllm/, see the
README there for their sources) and reproduces vLLM's start-up states over time:

1. for ``--load-seconds`` it does not listen at all (connection refused), as vLLM does while
   it loads the model;
2. then for ``--unhealthy-seconds`` every endpoint answers 503;
3. then it is ready: ``/health`` 200 with an empty body, ``/v1/models`` lists every
   ``--served-model-name``, ``/v1/chat/completions`` and ``/v1/messages`` answer for served
   names and 404 "The model `X` does not exist." for others, ``/metrics`` replays
   ``--metrics-file``. A request that offers ``tools`` gets the recorded real vLLM 0.32
   answer to a tool request (``/v1/messages`` streamed as server-sent events, chat
   completions as JSON); ``"stream": true`` on ``/v1/messages`` is answered as SSE.

``--never-ready`` keeps answering 503 after it starts listening. ``--api-key`` makes every
``/v1/*`` endpoint demand ``Authorization: Bearer KEY``, as vLLM's middleware does: an
``x-api-key`` header alone gets 401, on ``/v1/messages`` too (seen on vLLM 0.32).
``--status-file`` receives JSON with the epoch times it started listening and became ready.

Standard library only: usable as a container entrypoint (``python3 vllm_standin.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "vllm"
DEFAULT_METRICS = FIXTURES / "metrics-v0.6-llama31-8b.txt"
RECORDED_MODEL = "meta-llama/Llama-3.1-8B-Instruct"
# Real vLLM 0.32 (CPU build) answers to the readiness tool requests (tests/fixtures/README.md).
TOOL_STREAM = "messages-tool-stream-v0.32-cpu.sse"
TOOL_CHAT = "chat-tool-v0.32-cpu.json"
TOOL_RECORDED_MODEL = "tiny-qwen2"


def _load_json(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


class Standin:
    """State shared by the handler; times are time.time() epochs."""

    def __init__(
        self,
        served: list[str],
        unhealthy_seconds: float = 0.0,
        never_ready: bool = False,
        metrics_text: str = "",
        api_key: str | None = None,
    ) -> None:
        self.served = served
        self.unhealthy_seconds = unhealthy_seconds
        self.never_ready = never_ready
        self.metrics_text = metrics_text
        self.api_key = api_key
        self.listening_at: float | None = None
        self.models_template = _load_json("models-v0.6-llama31-8b.json")
        self.chat_template = _load_json("chat-completion-v0.6-llama31-8b.json")
        self.messages_template = _load_json("messages.handmade.json")
        self.tool_stream = (FIXTURES / TOOL_STREAM).read_text()
        self.tool_chat = _load_json(TOOL_CHAT)
        self.requests: list[str] = []

    @property
    def ready_at(self) -> float | None:
        if self.never_ready or self.listening_at is None:
            return None
        return self.listening_at + self.unhealthy_seconds

    def is_ready(self) -> bool:
        ready_at = self.ready_at
        return ready_at is not None and time.time() >= ready_at

    def models_body(self) -> dict[str, Any]:
        entry = self.models_template["data"][0]
        data = []
        for name in self.served:
            item = json.loads(json.dumps(entry).replace(RECORDED_MODEL, name))
            item["root"] = self.served[0]
            data.append(item)
        return {"object": "list", "data": data}

    def echo(self, template: dict[str, Any]) -> dict[str, Any]:
        # vLLM echoes the first served name, whatever alias was asked for.
        return json.loads(json.dumps(template).replace(RECORDED_MODEL, self.served[0]))


def _stream_of(message: dict[str, Any]) -> str:
    """A non-tool Anthropic stream built from a recorded message (same event order as vLLM)."""
    start = {**message, "content": [], "stop_reason": None}
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": start})
    ]
    for i, block in enumerate(message.get("content", [])):
        events.append(
            (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": i,
                    "content_block": {"type": "text", "text": ""},
                },
            )
        )
        events.append(
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": i,
                    "delta": {"type": "text_delta", "text": block.get("text", "")},
                },
            )
        )
        events.append(("content_block_stop", {"type": "content_block_stop", "index": i}))
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": message.get("stop_reason")},
                "usage": message.get("usage", {}),
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events)


def make_handler(state: Standin) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, obj: Any) -> None:
            self._send(status, json.dumps(obj).encode())

        def _error(self, status: int, message: str, kind: str) -> None:
            self._json(
                status,
                {
                    "object": "error",
                    "message": message,
                    "type": kind,
                    "param": None,
                    "code": status,
                },
            )

        def _authorized(self) -> bool:
            if not state.api_key or not self.path.startswith("/v1"):
                return True
            return self.headers.get("Authorization") == f"Bearer {state.api_key}"

        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                return json.loads(raw or b"{}")
            except ValueError:
                return {}

        def _gate(self) -> bool:
            state.requests.append(f"{self.command} {self.path}")
            if not state.is_ready():
                self._send(503, b"", "text/plain")
                return False
            if not self._authorized():
                self._json(401, {"error": "Unauthorized"})
                return False
            return True

        def do_GET(self) -> None:
            if not self._gate():
                return
            if self.path == "/health":
                self._send(200, b"", "text/plain")
            elif self.path == "/v1/models":
                self._json(200, state.models_body())
            elif self.path == "/metrics":
                self._send(200, state.metrics_text.encode(), "text/plain; version=0.0.4")
            else:
                self._error(404, "Not Found", "NotFoundError")

        def do_POST(self) -> None:
            body_in = self._body() if self.headers.get("Content-Length") else {}
            if not self._gate():
                return
            model = str(body_in.get("model", ""))
            if self.path not in ("/v1/chat/completions", "/v1/messages"):
                self._error(404, "Not Found", "NotFoundError")
                return
            if model not in state.served:
                self._error(404, f"The model `{model}` does not exist.", "NotFoundError")
                return
            tools = bool(body_in.get("tools"))
            if self.path == "/v1/chat/completions":
                if tools:
                    self._json(
                        200,
                        json.loads(
                            json.dumps(state.tool_chat).replace(
                                TOOL_RECORDED_MODEL, state.served[0]
                            )
                        ),
                    )
                else:
                    self._json(200, state.echo(state.chat_template))
            elif body_in.get("stream"):
                text = (
                    state.tool_stream if tools else _stream_of(state.echo(state.messages_template))
                )
                self._send(
                    200,
                    text.replace(TOOL_RECORDED_MODEL, state.served[0]).encode(),
                    "text/event-stream; charset=utf-8",
                )
            else:
                self._json(200, state.echo(state.messages_template))

    return Handler


def serve(
    port: int,
    served: list[str],
    *,
    load_seconds: float = 0.0,
    unhealthy_seconds: float = 0.0,
    never_ready: bool = False,
    metrics_file: Path = DEFAULT_METRICS,
    api_key: str | None = None,
    host: str = "127.0.0.1",
    status_file: Path | None = None,
    stop: threading.Event | None = None,
) -> Standin:
    """Run until ``stop`` is set (or forever). Returns the state when stopped."""
    state = Standin(
        served=served,
        unhealthy_seconds=unhealthy_seconds,
        never_ready=never_ready,
        metrics_text=Path(metrics_file).read_text(),
        api_key=api_key,
    )
    stop = stop or threading.Event()
    if stop.wait(load_seconds):
        return state
    server = ThreadingHTTPServer((host, port), make_handler(state))
    server.daemon_threads = True
    state.listening_at = time.time()
    if status_file:
        Path(status_file).write_text(
            json.dumps({"listening_at": state.listening_at, "ready_at": state.ready_at})
        )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        stop.wait()
    finally:
        server.shutdown()
        server.server_close()
    return state


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--served-model-name",
        action="append",
        dest="served",
        default=None,
        help="a name /v1/models lists (repeatable; the first is echoed in responses)",
    )
    parser.add_argument(
        "--load-seconds",
        type=float,
        default=0.0,
        help="seconds before it listens (connection refused meanwhile)",
    )
    parser.add_argument(
        "--unhealthy-seconds", type=float, default=0.0, help="seconds of 503 answers once listening"
    )
    parser.add_argument(
        "--metrics-file",
        type=Path,
        default=DEFAULT_METRICS,
        help="Prometheus text replayed on /metrics",
    )
    parser.add_argument(
        "--never-ready", action="store_true", help="answer 503 forever once listening"
    )
    parser.add_argument("--api-key", default=None, help="demand this key (Bearer, on /v1/*)")
    parser.add_argument(
        "--status-file",
        type=Path,
        default=None,
        help="write {listening_at, ready_at} JSON here when listening",
    )
    args = parser.parse_args(argv)
    served = args.served or ["Qwen/Qwen2.5-Coder-32B-Instruct-AWQ"]
    with contextlib.suppress(KeyboardInterrupt):
        serve(
            args.port,
            served,
            load_seconds=args.load_seconds,
            unhealthy_seconds=args.unhealthy_seconds,
            never_ready=args.never_ready,
            metrics_file=args.metrics_file,
            api_key=args.api_key,
            host=args.host,
            status_file=args.status_file,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
