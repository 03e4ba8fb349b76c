#!/usr/bin/env python3
"""Named stand-ins for the agent stack's services that cannot run here (no registry, no GPU).

They are NOT Qdrant, Text Embeddings Inference, Open WebUI or OpenHands. Each answers the
endpoints the stack, its health checks and the backup job use, with the shapes those projects
document, and each checks that it was wired the way roles/agent_stack wires the real image:

- ``--kind qdrant``: started as ``./qdrant --config-path FILE`` like the real binary; reads the
  API key from that YAML fragment (``service.api_key``) and, like Qdrant, demands it (``api-key``
  header or ``Authorization: Bearer``) everywhere except /healthz, /livez, /readyz.
  GET /collections, POST /snapshots, POST /collections/NAME/snapshots, GET / (version).
- ``--kind tei``: started with TEI's own arguments (--model-id, --port); GET /health, /info;
  POST /embed, /v1/embeddings (768-dim vectors), /rerank when the model id names a reranker.
- ``--kind openwebui``: started by the stack's entrypoint shim through ``bash start.sh``;
  /health answers 200 only if the secrets arrived in the process environment; GET
  /_standin/wiring calls vLLM, Qdrant, TEI and the reranker with the configured URLs and keys.
- ``--kind openhands``: /api/v1/health answers 200 only if /app/config.toml is readable;
  GET /_standin/wiring calls the configured LLM base_url with its key and pings the Docker
  socket mounted at /var/run/docker.sock.

Standard library only (Python 3.11+), so it runs in an image built from the Debian base image.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import socket
import sys
import time
import tomllib
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

QDRANT_VERSION = "1.19.1"


def qdrant_key(path: str | None) -> str | None:
    if not path:
        return None
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    match = re.search(r"^\s+api_key:\s*\"?([^\"\n]+)\"?\s*$", text, re.M)
    return match.group(1) if match else None


def call(url: str, headers: dict[str, str], body: Any = None) -> tuple[int, str]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode(errors="replace")[:200]
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")[:200]
    except OSError as err:
        return 0, str(err)


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost")
        self.unix_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(self.unix_path)


def docker_ping(path: str = "/var/run/docker.sock") -> tuple[int, str]:
    try:
        conn = UnixHTTPConnection(path)
        conn.request("GET", "/_ping")
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    except OSError as err:
        return 0, str(err)


def openwebui_wiring() -> dict[str, Any]:
    env = os.environ
    vllm = env.get("OPENAI_API_BASE_URL", "")
    checks = {
        "vllm_models": call(
            f"{vllm}/models", {"Authorization": f"Bearer {env.get('OPENAI_API_KEY', '')}"}
        ),
        "qdrant_collections": call(
            f"{env.get('QDRANT_URI', '')}/collections", {"api-key": env.get("QDRANT_API_KEY", "")}
        ),
        "embeddings": call(
            f"{env.get('RAG_OPENAI_API_BASE_URL', '')}/embeddings",
            {},
            {"input": ["hello"], "model": env.get("RAG_EMBEDDING_MODEL", "")},
        ),
        "rerank": call(
            env.get("RAG_EXTERNAL_RERANKER_URL", ""), {}, {"query": "q", "texts": ["a", "b"]}
        ),
    }
    return {name: {"status": status, "body": body} for name, (status, body) in checks.items()}


def openhands_wiring() -> dict[str, Any]:
    with open("/app/config.toml", "rb") as handle:
        config = tomllib.load(handle)
    llm = config.get("llm", {})
    status, body = call(
        f"{llm.get('base_url', '')}/models", {"Authorization": f"Bearer {llm.get('api_key', '')}"}
    )
    ping = docker_ping()
    return {
        "llm_models": {"status": status, "body": body},
        "llm_model": llm.get("model"),
        "max_input_tokens": llm.get("max_input_tokens"),
        "docker_ping": {"status": ping[0], "body": ping[1]},
        "sandbox": config.get("sandbox", {}),
    }


def make_handler(args: argparse.Namespace, key: str | None) -> type[BaseHTTPRequestHandler]:
    reranker = "rerank" in (args.model_id or "")

    class Handler(BaseHTTPRequestHandler):
        server_version = f"standin-{args.kind}"

        def log_message(self, fmt: str, *a: Any) -> None:  # quiet: the container log stays small
            pass

        def send(self, code: int, payload: Any, content_type: str = "application/json") -> None:
            body = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def body(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                return json.loads(raw or b"null")
            except ValueError:
                return None

        def qdrant_authorized(self) -> bool:
            if not key:
                return True
            return (
                self.headers.get("api-key") == key
                or self.headers.get("Authorization") == f"Bearer {key}"
            )

        def do_GET(self) -> None:
            self.route("GET")

        def do_POST(self) -> None:
            self.route("POST")

        def route(self, method: str) -> None:
            path = self.path.split("?")[0]
            kind = args.kind
            if kind == "qdrant":
                if path in ("/healthz", "/livez", "/readyz"):
                    return self.send(200, "healthz check passed", "text/plain")
                if not self.qdrant_authorized():
                    return self.send(
                        401,
                        "Must provide an API key or an Authorization bearer token",
                        "text/plain",
                    )
                now = time.strftime("%Y-%m-%dT%H:%M:%S")
                if path == "/" and method == "GET":
                    return self.send(
                        200, {"title": "qdrant - vector search engine", "version": QDRANT_VERSION}
                    )
                if path == "/collections" and method == "GET":
                    return self.send(
                        200, {"result": {"collections": []}, "status": "ok", "time": 1e-5}
                    )
                if method == "POST" and (
                    path == "/snapshots" or re.fullmatch(r"/collections/[^/]+/snapshots", path)
                ):
                    snap = {
                        "name": f"standin-{int(time.time())}.snapshot",
                        "creation_time": now,
                        "size": 0,
                    }
                    return self.send(200, {"result": snap, "status": "ok", "time": 1e-3})
                return self.send(404, {"status": {"error": f"Not found: {path}"}, "time": 0})
            if kind == "tei":
                if path == "/health":
                    return self.send(200, "", "text/plain")
                if path == "/info":
                    return self.send(
                        200,
                        {
                            "model_id": args.model_id,
                            "model_type": "reranker" if reranker else "embedding",
                        },
                    )
                if path == "/embed" and not reranker:
                    inputs = (self.body() or {}).get("inputs", "")
                    n = len(inputs) if isinstance(inputs, list) else 1
                    return self.send(200, [[0.01] * 768 for _ in range(n)])
                if path == "/v1/embeddings" and not reranker:
                    data = (self.body() or {}).get("input", "")
                    n = len(data) if isinstance(data, list) else 1
                    items = [
                        {"object": "embedding", "embedding": [0.01] * 768, "index": i}
                        for i in range(n)
                    ]
                    return self.send(
                        200,
                        {
                            "object": "list",
                            "data": items,
                            "model": args.model_id,
                            "usage": {"prompt_tokens": n, "total_tokens": n},
                        },
                    )
                if path == "/rerank" and reranker:
                    texts = (self.body() or {}).get("texts", [])
                    return self.send(
                        200, [{"index": i, "score": 1.0 / (i + 1)} for i in range(len(texts))]
                    )
                return self.send(404, {"error": "Not Found", "error_type": "standin"})
            if kind == "openwebui":
                needed = [
                    "OPENAI_API_KEY",
                    "QDRANT_API_KEY",
                    "WEBUI_SECRET_KEY",
                    "WEBUI_ADMIN_PASSWORD",
                ]
                if path == "/health":
                    ok = all(os.environ.get(name) for name in needed)
                    return self.send(200 if ok else 500, {"status": ok})
                if path == "/_standin/wiring":
                    return self.send(200, openwebui_wiring())
                return self.send(404, {"detail": "Not Found"})
            if kind == "openhands":
                if path == "/api/v1/health":
                    ok = os.access("/app/config.toml", os.R_OK)
                    return self.send(200 if ok else 500, {"status": "ok" if ok else "no config"})
                if path == "/_standin/wiring":
                    return self.send(200, openhands_wiring())
                return self.send(404, {"detail": "Not Found"})
            return self.send(404, {"detail": "unknown kind"})

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--kind", required=True, choices=["qdrant", "tei", "openwebui", "openhands"]
    )
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--config-path", default=None)
    parser.add_argument("--model-id", default=None)
    args, _unknown = parser.parse_known_args(argv)
    port = args.port or {"qdrant": 6333, "tei": 80, "openwebui": 8080, "openhands": 3000}[args.kind]
    key = qdrant_key(args.config_path) if args.kind == "qdrant" else None
    if args.kind == "qdrant" and args.config_path and not key:
        print(f"standin qdrant: no service.api_key in {args.config_path}", file=sys.stderr)
        return 2
    server = ThreadingHTTPServer(("0.0.0.0", port), make_handler(args, key))
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
