"""roles/agent_queue: installed, running as the service user's user service, and a submitted
task runs through the worker (against the OpenHands stand-in) to a stored result."""

import json
import time

AS_AGENT = "sudo -u agent XDG_RUNTIME_DIR=/run/user/$(id -u agent) "


def test_venv_owned_by_the_service_user(host):
    venv = host.file("/srv/agent-workstation/queue/venv")
    assert venv.is_directory and venv.user == "agent"
    assert host.file("/usr/local/bin/aw-task").is_symlink
    config = host.file("/home/agent/.config/aw-task/config.toml")
    assert config.mode == 0o640 and "redis_password_file" in config.content_string
    assert "molecule-redis-password" not in config.content_string


def test_worker_is_an_active_user_service(host):
    out = host.run(AS_AGENT + "systemctl --user is-active aw-task-worker.service")
    assert out.stdout.strip() == "active", out.stdout + out.stderr
    assert host.run(AS_AGENT + "systemctl --user is-enabled aw-task-worker.service").rc == 0


def test_submit_runs_and_stores_the_result(host):
    out = host.run(
        AS_AGENT + "aw-task submit --repo /srv/repo --prompt 'STANDIN:write=new.txt' "
        "--accept 'test -f new.txt'"
    )
    assert out.rc == 0, out.stderr
    task_id = out.stdout.strip()
    state = None
    for _ in range(120):
        shown = json.loads(host.check_output(AS_AGENT + f"aw-task show {task_id} --json"))
        state = shown["state"]
        if state in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(1)
    assert state == "succeeded", shown
    assert shown["result"]["accept_exit_code"] == 0
    stored = host.file(f"/srv/agent-workstation/queue/results/{task_id}.json")
    assert stored.exists and stored.user == "agent"
    assert json.loads(stored.content_string)["state"] == "succeeded"


def test_metrics_answer(host):
    text = host.check_output(
        "python3 -c \"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:9465/metrics').read().decode())\""
    )
    assert "aw_task_queue_depth 0.0" in text
    assert "aw_task_redis_up 1.0" in text
