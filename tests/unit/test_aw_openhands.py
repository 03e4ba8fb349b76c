"""OpenHands V1 settings planning (plugins/module_utils/aw_openhands.py).

The bodies below follow openhands-ai 1.11.0's settings_router.py (GET masks the key and adds
llm_api_key_set; 404 {"error": "Settings not found"} before the first save). They are built from
that source, not captured from a running app.
"""

import pytest
from ansible_collections.agent_workstation.aw.plugins.module_utils.aw_openhands import (
    current_llm,
    current_mcp,
    desired_llm,
    desired_mcp_server,
    is_alive,
    key_fingerprint,
    plan,
    plan_mcp,
    settings_payload,
)

WANT = desired_llm("openai/qwen", "http://host.docker.internal:8000/v1", 24576, 4096, True)


def get_body(llm: dict, key_set: bool) -> dict:
    return {
        "agent_settings": {"agent_kind": "openhands", "llm": {**llm, "api_key": None}},
        "conversation_settings": {},
        "llm_api_key_set": key_set,
        "provider_tokens_set": {},
    }


def test_desired_drops_unset_fields_and_checks_input():
    assert desired_llm("openai/m", "http://x:1/v1") == {
        "model": "openai/m",
        "base_url": "http://x:1/v1",
    }
    with pytest.raises(ValueError, match="provider prefix"):
        desired_llm("qwen", "http://x/v1")
    with pytest.raises(ValueError, match="http"):
        desired_llm("openai/qwen", "vllm:8000/v1")


def test_current_from_404_and_from_a_body():
    assert current_llm(None) == ({}, False)
    llm, key_set = current_llm(
        get_body({"model": "openai/qwen", "base_url": "u", "temperature": 0}, True)
    )
    assert llm == {"model": "openai/qwen", "base_url": "u"}
    assert key_set is True
    with pytest.raises(ValueError, match=r"agent_settings\.llm"):
        current_llm({"error": "Invalid token"})


@pytest.mark.parametrize(
    ("stored_llm", "key_set", "stored_fp", "fields", "key"),
    [
        ({}, False, None, set(WANT), "no key is stored"),
        (dict(WANT), True, key_fingerprint("k"), set(), None),
        (
            dict(WANT),
            True,
            key_fingerprint("old"),
            set(),
            "the key differs from the one last written",
        ),
        (dict(WANT), True, None, set(), "the stored key was not written by this role"),
        (
            {**WANT, "base_url": "http://vllm:8000/v1"},
            True,
            key_fingerprint("k"),
            {"base_url"},
            None,
        ),
        (
            {**WANT, "max_output_tokens": None},
            True,
            key_fingerprint("k"),
            {"max_output_tokens"},
            None,
        ),
    ],
)
def test_plan(stored_llm, key_set, stored_fp, fields, key):
    todo = plan(stored_llm, key_set, WANT, key_fingerprint("k"), stored_fp)
    assert set(todo["fields"]) == fields
    assert todo["key"] == key
    assert todo["changed"] is bool(fields or key)


def test_payload_uses_the_diff_shape_only():
    body = settings_payload(WANT, "k")
    assert set(body) == {"agent_settings_diff"}
    assert body["agent_settings_diff"]["llm"]["api_key"] == "k"
    assert "agent_settings" not in body  # the legacy key gets 422


def test_fingerprint_is_not_the_key():
    fp = key_fingerprint("s3cret")
    assert fp.startswith("sha256:") and "s3cret" not in fp and len(fp) == 71


@pytest.mark.parametrize(
    ("status", "body", "alive"),
    [
        (200, {"status": "ok"}, True),
        (200, "OK", False),
        (200, None, False),
        (502, None, False),
        (None, None, False),
    ],
)
def test_alive(status, body, alive):
    assert is_alive(status, body) is alive


# ---- MCP servers (openhands-sdk 1.34.0 MCPServer; app 1.11.0 Settings.update replaces the map)

AW = {"url": "http://host.docker.internal:8765/mcp", "transport": "http"}


def test_mcp_server_shape_and_bad_url():
    assert desired_mcp_server(AW["url"]) == AW
    with pytest.raises(ValueError, match="mcp_url"):
        desired_mcp_server("host.docker.internal:8765/mcp")


@pytest.mark.parametrize(
    ("body", "servers"),
    [
        (None, {}),
        ({"agent_settings": {"llm": {}}}, {}),
        ({"agent_settings": {"mcp_config": {}}}, {}),
        ({"agent_settings": {"mcp_config": {"aw-code": AW}}}, {"aw-code": AW}),
        # the legacy wrapper the SDK still unwraps
        ({"agent_settings": {"mcp_config": {"mcpServers": {"aw-code": AW}}}}, {"aw-code": AW}),
    ],
)
def test_current_mcp(body, servers):
    assert current_mcp(body) == servers


def test_current_mcp_rejects_a_non_object():
    with pytest.raises(ValueError, match="mcp_config"):
        current_mcp({"agent_settings": {"mcp_config": ["x"]}})


def test_plan_mcp_no_change_when_stored():
    todo = plan_mcp({"aw-code": AW, "other": {"url": "http://o/mcp"}}, "aw-code", AW)
    assert todo["changed"] is False


def test_plan_mcp_adds_and_keeps_other_servers():
    other = {"url": "http://other:9000/mcp", "transport": "http"}
    todo = plan_mcp({"other": other}, "aw-code", AW)
    assert todo["changed"] and todo["before"] is None
    assert todo["config"] == {"other": other, "aw-code": AW}


def test_plan_mcp_replaces_a_changed_url():
    todo = plan_mcp({"aw-code": {"url": "http://old/mcp", "transport": "http"}}, "aw-code", AW)
    assert todo["changed"] and todo["config"] == {"aw-code": AW}


def test_plan_mcp_refuses_to_erase_another_servers_secret():
    other = {"url": "https://mcp.example/mcp", "headers": {"Authorization": "**********"}}
    with pytest.raises(ValueError, match=r"other.*erase"):
        plan_mcp({"other": other}, "aw-code", AW)


def test_payload_with_mcp_only_leaves_the_llm_alone():
    body = settings_payload(None, None, {"aw-code": AW})
    assert body == {"agent_settings_diff": {"mcp_config": {"aw-code": AW}}}
