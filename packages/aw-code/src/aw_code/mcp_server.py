"""The MCP server (official `mcp` SDK, streamable HTTP at /mcp) with the tools the peers name
(zilliztech/claude-context): search_code, index_codebase, get_indexing_status, clear_index.
/metrics (Prometheus) and /healthz are served beside it on the same port."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .errors import AwCodeError
from .search import render, trim_to_budget
from .service import Service

TOOLS = ("search_code", "index_codebase", "get_indexing_status", "clear_index")


def build(service: Service, max_tokens: int = 4000) -> MCPServer:
    mcp = MCPServer(
        "aw-code",
        instructions="Search the indexed repositories of this workstation by meaning and by identifiers. "
        "search_code returns path:lines with the code; use it before reading files.",
    )

    @mcp.tool()
    def search_code(
        query: str,
        repository: str | None = None,
        limit: int = 8,
        rerank: bool = True,
        max_tokens: int = max_tokens,
    ) -> str:
        """Find code by a natural-language description or identifiers. Returns path:start-end (symbol)
        and the snippet for each hit, best first, within max_tokens. repository: a path, directory
        name or collection (default: every indexed repository)."""
        try:
            hits = service.search(query, repository, max(1, min(limit, 50)), "hybrid", rerank)
        except AwCodeError as exc:
            return f"error: {exc}"
        return render(trim_to_budget(hits, max_tokens))

    @mcp.tool()
    def index_codebase(path: str) -> str:
        """Index (or re-index incrementally) the git repository at path. Returns the counts as JSON."""
        try:
            return json.dumps(service.index(path).as_json())
        except AwCodeError as exc:
            return f"error: {exc}"

    @mcp.tool()
    def get_indexing_status() -> str:
        """Indexed repositories, their collections, files, chunks, last run and index lag (JSON)."""
        return json.dumps(service.status())

    @mcp.tool()
    def clear_index(repository: str) -> str:
        """Delete the index of one repository (path, directory name or collection)."""
        try:
            return json.dumps({"cleared": service.clear(repository)})
        except AwCodeError as exc:
            return f"error: {exc}"

    @mcp.custom_route("/metrics", methods=["GET"])  # type: ignore[untyped-decorator]
    async def metrics(_request: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @mcp.custom_route("/healthz", methods=["GET"])  # type: ignore[untyped-decorator]
    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok", "repositories": len(service.repos), "errors": len(service.errors)})

    return mcp


def serve(service: Service, host: str, port: int, watch: Sequence[str], allowed_hosts: Sequence[str] = ()) -> None:
    """Serve MCP on host:port; index and watch the given repositories in a background thread."""
    mcp = build(service)
    hosts = ["127.0.0.1:*", "localhost:*", "[::1]:*", *allowed_hosts]
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=hosts,
        allowed_origins=[f"http://{h}" for h in hosts],
    )
    app = mcp.streamable_http_app(transport_security=security, host=host)
    if watch:
        threading.Thread(target=service.watch, args=(list(watch),), daemon=True, name="aw-code-watch").start()
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    try:
        server.run()
    finally:
        service.stop.set()
