"""OpenHands V1 settings planning (plugins/module_utils/aw_openhands.py).

The bodies below follow openhands-ai 1.11.0's settings_router.py (GET masks the key and adds
llm_api_key_set; 404 {"error": "Settings not found"} before the first save). They are built from
that source, not captured from a running app.
"""

import pytest
from ansible.module_utils.aw_openhands import (
    current_llm,
    desired_llm,
    is_alive,
    key_fingerprint,
    plan,
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
