"""End state after side_effect.yml: Qwen3-Coder AWQ serves with its arguments, the failed
switch was rolled back to exactly those, the clients follow only the profile that was ready."""

import json

STATE = "/srv/agent-workstation/state"
CLIENTS = "/home/agent/.config/agent-workstation/clients.env"
GOOD = "qwen3-coder-30b-a3b-instruct-awq"


def running(host):
    cid = host.check_output(
        "cd /srv/agent-workstation/compose/agent-stack && docker compose ps -q vllm"
    )
    return json.loads(host.check_output(f"docker inspect -f '{{{{json .Config}}}}' {cid}"))


def test_good_profile_serves_with_its_arguments(host):
    config = running(host)
    cmd = config["Cmd"]
    assert cmd[:2] == ["serve", "QuantTrio/Qwen3-Coder-30B-A3B-Instruct-AWQ"]
    assert "--tool-call-parser=qwen3_coder" in cmd
    assert cmd[cmd.index("--served-model-name") + 1] == "qwen3-coder-30b-a3b-instruct"
    assert "--revision=c58857a7f41c0920f73d1b56678640f9c02017d7" in cmd
    assert "AW_MODEL=QuantTrio/Qwen3-Coder-30B-A3B-Instruct-AWQ" in config["Env"]
    assert "HF_HUB_OFFLINE=1" in config["Env"]
    key = host.file("/srv/agent-workstation/secrets/vllm_api_key").content_string.strip()
    models = json.loads(
        host.check_output(
            f"curl -fsS -H 'Authorization: Bearer {key}' http://127.0.0.1:8000/v1/models"
        )
    )
    assert [m["id"] for m in models["data"]] == ["qwen3-coder-30b-a3b-instruct"]


def test_rollback_restored_the_exact_arguments(host):
    good = host.file("/var/tmp/aw-test/after-good.txt").content_string.split(" ", 1)[1]
    back = host.file("/var/tmp/aw-test/after-rollback.txt").content_string.split(" ", 1)[1]
    assert json.loads(back) == json.loads(good)
    assert "--tool-call-parser=qwen3_coderx" not in json.loads(back)
    report = json.loads(host.file(f"{STATE}/model-upgrade-last.json").content_string)
    assert report["result"] == "rolled_back"
    assert report["profile"] == "test-bad-parser"
    assert report["previous"] == GOOD
    assert report["ready_again"] is True
    assert "did not become ready" in report["reason"]


def test_state_files_name_the_running_and_previous_profiles(host):
    current = json.loads(host.file(f"{STATE}/model-profile.json").content_string)
    previous = json.loads(host.file(f"{STATE}/model-profile.previous.json").content_string)
    assert current["profile"] == GOOD
    assert current["command"] == running(host)["Cmd"]
    assert previous["profile"] == GOOD  # the failed switch started from it


def test_clients_follow_the_ready_profile_only(host):
    now = host.file(CLIENTS)
    assert now.mode == 0o600 and now.user == "agent"
    text = now.content_string
    assert text == host.file("/var/tmp/aw-test/clients-after-good.env").content_string
    assert "ANTHROPIC_MODEL=qwen3-coder-30b-a3b-instruct" in text
    assert "OPENAI_MODEL=qwen3-coder-30b-a3b-instruct" in text
    assert "qwen2.5" not in text


def test_weights_downloaded_once_each_before_their_switch(host):
    lines = host.check_output(
        "docker run --rm -v agent-stack_hf_cache:/c agent-workstation/standin-vllm:test"
        " cat /c/standin-downloads"
    ).split()
    assert (
        lines.count(
            "QuantTrio/Qwen3-Coder-30B-A3B-Instruct-AWQ@c58857a7f41c0920f73d1b56678640f9c02017d7"
        )
        == 1
    )
    assert (
        lines.count("Qwen/Qwen2.5-Coder-32B-Instruct-AWQ@1ed0a6145da0ce550c628e8e8b678f51e695995d")
        == 1
    )
    # The old weights are kept: both markers stay in the cache.
    markers = host.check_output(
        "docker run --rm -v agent-stack_hf_cache:/c agent-workstation/standin-vllm:test"
        " ls /c/agent-workstation"
    ).split()
    assert len(markers) == 2
