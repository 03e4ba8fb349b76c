#!/usr/bin/env python3
"""Named stand-ins for the agent stack's services that cannot run here (no registry, no GPU).

They are NOT Qdrant, Text Embeddings Inference, Open WebUI or OpenHands. Each answers the
endpoints the stack, its health checks and the backup job use, with the shapes those projects
document, and each checks that it was wired the way roles/agent_stack wires the real image:

- ``--kind qdrant``: started as ``./qdrant --config-path FILE`` like the real binary; reads the
  API key from that YAML fragment (``service.api_key``) and, like Qdrant, demands it (``api-key``
  header or ``Authorization: Bearer``) everywhere except /healthz, /livez, /readyz.
  GET /collections, POST /snapshots, POST /collections/NAME/snapshots, GET / (version), and
  an in-memory point store with the REST calls Open WebUI 0.12.4's Qdrant client makes
  (``retrieval/vector/dbs/qdrant_multitenancy.py`` through qdrant-client): collection exists /
  create / delete, payload index, points upsert, count, scroll, delete and ``points/query``
  (cosine similarity, ``filter.must`` of ``{key, match: {value}}`` conditions only; any other
  filter is answered 400 so a client relying on one fails visibly). Not Qdrant: no HNSW, no
  persistence, no quantization, one unnamed vector per point.
- ``--kind tei``: accepts exactly the command-line arguments of TEI 1.9.3
  (``router/src/main.rs``, ``struct Args``: an unknown one exits 2, as clap does, so
  ``--served-model-name`` passes and a typo does not); GET /health, /info; POST /embed,
  /v1/embeddings (768-dim vectors), and /rerank (reranker model ids only) in TEI's own shape:
  ``{query, texts}`` in, ``[{index, score}]`` out, 422 for a body without them (what TEI
  answers to Open WebUI's Jina/Cohere body).
- ``--kind openwebui``: started by the stack's entrypoint shim through ``bash start.sh``;
  /health answers 200 only if the secrets arrived in the process environment; GET
  /_standin/wiring calls vLLM, Qdrant, TEI's embeddings and the external reranker URL with the
  configured URLs and keys, posting the reranker exactly the body Open WebUI 0.12.4 posts
  (``{model, query, documents, top_n}``, ``retrieval/models/external.py``) and reading
  ``results[].relevance_score`` as Open WebUI does; it also reports the settings Open WebUI
  reads from its environment (persistent config, embedding prefixes).
- ``--kind openhands``: GET /alive (``{"status": "ok"}``) and /health (``"OK"``) as the V1 app
  server answers them; GET/POST /api/v1/settings in the shapes of openhands-ai 1.11.0
  (``settings_router.py``): 404 ``{"error": "Settings not found"}`` before the first save,
  422 for the legacy ``agent_settings`` key, a deep merge of ``agent_settings_diff``, the key
  masked (``api_key: null``, ``llm_api_key_set``) on GET, stored in
  ``$OH_PERSISTENCE_DIR/settings.json``. GET /_standin/wiring reports how many settings
  writes it took and pings the Docker API at DOCKER_HOST (the filtering proxy), as docker-py would.

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
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

QDRANT_VERSION = "1.19.1"
# TEI 1.9.3 router/src/main.rs, `struct Args` (clap long names): the only arguments it accepts.
TEI_ARGS = (
    "model-id",
    "revision",
    "tokenization-workers",
    "dtype",
    "served-model-name",
    "pooling",
    "max-concurrent-requests",
    "max-batch-tokens",
    "max-batch-requests",
    "max-client-batch-size",
    "auto-truncate",
    "default-prompt-name",
    "default-prompt",
    "dense-path",
    "hf-api-token",
    "hf-token",
    "hostname",
    "port",
    "uds-path",
    "huggingface-hub-cache",
    "payload-limit",
    "api-key",
    "json-output",
    "disable-spans",
    "otlp-endpoint",
    "otlp-service-name",
    "prometheus-port",
    "cors-allow-origin",
)
TEI_FLAGS = {"auto-truncate", "json-output", "disable-spans"}


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
    """GET /_ping where docker-py's from_env() sends it: DOCKER_HOST if set, else the socket."""
    host = os.environ.get("DOCKER_HOST", "")
    try:
        conn: http.client.HTTPConnection
        if host.startswith("tcp://"):
            conn = http.client.HTTPConnection(host[len("tcp://") :], timeout=10)
        else:
            conn = UnixHTTPConnection(
                host[len("unix://") :] if host.startswith("unix://") else path
            )
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
        # Open WebUI 0.12.4's ExternalReranker.predict body, verbatim in shape.
        "rerank": call(
            env.get("RAG_EXTERNAL_RERANKER_URL", ""),
            {"Authorization": f"Bearer {env.get('RAG_EXTERNAL_RERANKER_API_KEY', '')}"},
            {
                "model": env.get("RAG_RERANKING_MODEL", ""),
                "query": "which text is about llamas",
                "documents": ["a text about pandas", "a text about llamas"],
                "top_n": 2,
            },
        ),
    }
    out: dict[str, Any] = {
        name: {"status": status, "body": body} for name, (status, body) in checks.items()
    }
    try:
        ranked = json.loads(checks["rerank"][1])
        out["rerank_scores"] = [
            r["relevance_score"] for r in sorted(ranked["results"], key=lambda x: x["index"])
        ]
    except (ValueError, KeyError, TypeError):
        out["rerank_scores"] = None  # what Open WebUI then does: keep the documents unranked
    out["settings"] = {
        name: env.get(name)
        for name in (
            "ENABLE_PERSISTENT_CONFIG",
            "ENABLE_SIGNUP",
            "RAG_EMBEDDING_QUERY_PREFIX",
            "RAG_EMBEDDING_CONTENT_PREFIX",
        )
    }
    return out


def tei_arguments(argv: list[str]) -> dict[str, str | bool]:
    """Parse argv the way TEI 1.9.3's clap parser would; SystemExit(2) on an unknown argument."""
    parsed: dict[str, str | bool] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        name, _, value = arg[2:].partition("=") if arg.startswith("--") else ("", "", "")
        if name not in TEI_ARGS:
            print(f"error: unexpected argument '{arg}' found", file=sys.stderr)
            raise SystemExit(2)
        if name in TEI_FLAGS:
            parsed[name] = True
        elif value:
            parsed[name] = value
        else:
            i += 1
            if i >= len(argv):
                print(
                    f"error: a value is required for '--{name} <{name.upper()}>'", file=sys.stderr
                )
                raise SystemExit(2)
            parsed[name] = argv[i]
        i += 1
    return parsed


OPENHANDS_WRITES = {"count": 0}


def openhands_settings_path() -> str:
    return os.path.join(os.environ.get("OH_PERSISTENCE_DIR", "/.openhands"), "settings.json")


def openhands_load() -> dict[str, Any] | None:
    try:
        with open(openhands_settings_path(), encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return None


def deep_merge(base: dict[str, Any], diff: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in diff.items():
        out[k] = (
            deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
        )
    return out


def openhands_store(payload: Any) -> tuple[int, Any]:
    if not isinstance(payload, dict):
        return 422, {"detail": "body must be an object"}
    legacy = sorted(k for k in ("agent_settings", "conversation_settings") if k in payload)
    if legacy:
        return 422, {
            "error": "Use *_diff nested settings payloads instead of legacy keys",
            "keys": legacy,
        }
    stored = openhands_load() or {"agent_settings": {"llm": {}}}
    diff = payload.get("agent_settings_diff")
    if isinstance(diff, dict):
        stored["agent_settings"] = deep_merge(stored.get("agent_settings", {}), diff)
    path = openhands_settings_path()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(stored, handle)
    OPENHANDS_WRITES["count"] += 1
    return 200, {"message": "Settings stored"}


def openhands_get() -> tuple[int, Any]:
    stored = openhands_load()
    if stored is None:
        return 404, {"error": "Settings not found"}
    body = json.loads(json.dumps(stored))
    llm = body.setdefault("agent_settings", {}).setdefault("llm", {})
    body["llm_api_key_set"] = bool(llm.get("api_key"))
    llm["api_key"] = None
    return 200, body


def openhands_wiring() -> dict[str, Any]:
    ping = docker_ping()
    _status, settings = openhands_get()
    return {
        "settings_writes": OPENHANDS_WRITES["count"],
        "llm": (settings.get("agent_settings") or {}).get("llm")
        if isinstance(settings, dict)
        else None,
        "docker_ping": {"status": ping[0], "body": ping[1]},
        "environment": {
            k: os.environ.get(k)
            for k in (
                "AGENT_SERVER_IMAGE_REPOSITORY",
                "AGENT_SERVER_IMAGE_TAG",
                "DOCKER_HOST",
                "OH_SANDBOX_KIND",
                "OH_SANDBOX_HOST_PORT",
                "OH_SANDBOX_MAX_NUM_SANDBOXES",
                "OH_PERSISTENCE_DIR",
            )
        },
    }


# The Qdrant stand-in's in-memory points: collection -> {"points": {id: point}}.
QDRANT_COLLECTIONS: dict[str, dict[str, Any]] = {}


def _qdrant_payload_value(payload: dict[str, Any], key: str) -> Any:
    value: Any = payload
    for part in key.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _qdrant_matches(point: dict[str, Any], flt: Any) -> bool:
    """Qdrant's `filter` with `must` conditions of {key, match: {value}}; ValueError otherwise."""
    if not flt:
        return True
    if not isinstance(flt, dict) or set(flt) - {"must"} - {k for k, v in flt.items() if not v}:
        raise ValueError(f"stand-in supports filter.must only, got {flt}")
    for cond in flt.get("must") or []:
        if not (isinstance(cond, dict) and "key" in cond and "value" in (cond.get("match") or {})):
            raise ValueError(f"stand-in supports {{key, match: {{value}}}} conditions only: {cond}")
        if _qdrant_payload_value(point.get("payload") or {}, cond["key"]) != cond["match"]["value"]:
            return False
    return True


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    na = sum(x * x for x in a) ** 0.5
    nb = sum(y * y for y in b) ** 0.5
    return dot / (na * nb) if na and nb else 0.0


def qdrant_points_route(method: str, path: str, body: Any) -> tuple[int, Any] | None:
    """The point-store part of the Qdrant stand-in; None when PATH is not one of its routes."""
    m = re.fullmatch(r"/collections/([^/]+)(/.*)?", path)
    if not m:
        return None
    name, rest = m.group(1), m.group(2) or ""
    coll = QDRANT_COLLECTIONS.get(name)
    done = {"operation_id": 0, "status": "completed"}
    if rest == "/exists" and method == "GET":
        return 200, {"exists": coll is not None}
    if rest == "" and method == "PUT":
        QDRANT_COLLECTIONS.setdefault(name, {"points": {}, "config": body})
        return 200, True
    if rest == "" and method == "DELETE":
        return 200, QDRANT_COLLECTIONS.pop(name, None) is not None
    if rest == "" and method == "GET" and coll is not None:
        n = len(coll["points"])
        return 200, {"status": "green", "points_count": n, "indexed_vectors_count": n}
    if coll is None:
        return 404, {"error": f"Not found: Collection `{name}` doesn't exist!"}
    body = body if isinstance(body, dict) else {}
    try:
        if rest == "/index" and method == "PUT":
            return 200, done
        if rest == "/points" and method == "PUT":
            for point in body.get("points") or []:
                coll["points"][str(point["id"])] = point
            return 200, done
        chosen = [p for p in coll["points"].values() if _qdrant_matches(p, body.get("filter"))]
        if rest == "/points/count" and method == "POST":
            return 200, {"count": len(chosen)}
        if rest == "/points/delete" and method == "POST":
            ids = {str(i) for i in body.get("points") or []}
            if "filter" not in body and not ids:
                raise ValueError("stand-in: points/delete needs points or filter")
            for p in list(coll["points"].values()):
                if (ids and str(p["id"]) in ids) or ("filter" in body and p in chosen):
                    del coll["points"][str(p["id"])]
            return 200, done
        if rest == "/points/scroll" and method == "POST":
            limit = int(body.get("limit") or 10)
            offset = body.get("offset")
            ordered = sorted(chosen, key=lambda p: str(p["id"]))
            if offset is not None:
                ordered = [p for p in ordered if str(p["id"]) >= str(offset)]
            page, more = ordered[:limit], ordered[limit:]
            points = [{"id": p["id"], "payload": p.get("payload")} for p in page]
            return 200, {"points": points, "next_page_offset": more[0]["id"] if more else None}
        if rest == "/points/query" and method == "POST":
            query = body.get("query")
            if isinstance(query, dict) and list(query) == ["nearest"]:
                query = query["nearest"]  # qdrant-client sends NearestQuery as {"nearest": [...]}
            if not isinstance(query, list):
                raise ValueError(f"stand-in supports a plain vector as query, got {type(query)}")
            scored = sorted(
                ({**p, "score": _cosine(query, p.get("vector") or [])} for p in chosen),
                key=lambda p: p["score"],
                reverse=True,
            )[: int(body.get("limit") or 10)]
            points = [
                {"id": p["id"], "version": 0, "score": p["score"], "payload": p.get("payload")}
                for p in scored
            ]
            return 200, {"points": points}
    except (ValueError, KeyError, TypeError) as exc:
        return 400, {"error": str(exc)}
    return 404, {"error": f"stand-in: no route {method} {path}"}


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

        def do_PUT(self) -> None:
            self.route("PUT")

        def do_DELETE(self) -> None:
            self.route("DELETE")

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
                    names = [{"name": n} for n in sorted(QDRANT_COLLECTIONS)]
                    return self.send(
                        200, {"result": {"collections": names}, "status": "ok", "time": 1e-5}
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
                routed = qdrant_points_route(method, path, self.body())
                if routed is not None:
                    code, result = routed
                    if code == 200:
                        return self.send(200, {"result": result, "status": "ok", "time": 1e-4})
                    return self.send(code, {"status": result, "time": 0})
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
                    body = self.body() or {}
                    texts = body.get("texts") if isinstance(body, dict) else None
                    if not isinstance(texts, list) or not isinstance(body.get("query"), str):
                        # What TEI's axum Json extractor answers to a body that lacks them.
                        return self.send(
                            422,
                            "Failed to deserialize the JSON body into the target type: "
                            "missing field `texts`",
                            "text/plain",
                        )
                    # Deterministic stand-in scores (not a model): longer shared words rank higher.
                    words = set(body["query"].lower().split())
                    scores = [len(words & set(t.lower().split())) / (1 + len(words)) for t in texts]
                    ranks = [{"index": i, "score": sc} for i, sc in enumerate(scores)]
                    ranks.sort(key=lambda r: r["score"], reverse=True)
                    return self.send(200, ranks)
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
                if path == "/alive":
                    return self.send(200, {"status": "ok"})
                if path == "/health":
                    return self.send(200, "OK")
                if path == "/api/v1/settings" and method == "GET":
                    return self.send(*openhands_get())
                if path == "/api/v1/settings" and method == "POST":
                    return self.send(*openhands_store(self.body()))
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
    argv = sys.argv[1:] if argv is None else argv
    args, unknown = parser.parse_known_args(argv)
    if args.kind == "tei":
        tei = tei_arguments([a for a in argv if a not in ("--kind", "tei")])
        args.model_id = str(tei.get("model-id") or "")
        args.port = int(tei.get("port") or 80)
    elif unknown:
        print(f"standin {args.kind}: unexpected arguments {unknown}", file=sys.stderr)
        return 2
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
