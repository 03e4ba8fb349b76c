"""OpenHands' app server 1.11.0 (the V1 app the stack runs), for real, with vLLM's CPU build:

1. the project's `openhands_settings` module, run by Ansible, stores the LLM settings the role
   derives (model, base URL, budgets, key from a file) through the app's real REST API, and a
   second run changes nothing (issue 11);
2. the agent queue (packages/aw-task) feeds it three tasks with concurrency 2 from a real Redis:
   every task reaches a final state through the app's V1 API, the sandboxes alive at once,
   counted from the app's own sandbox API, never exceed 2, each conversation's sandbox is
   deleted, and the results are written (issue 16).

Real: the app server and its agent-server sandboxes (the pinned pair, 1.11.0 + 1.34.0), vLLM,
Redis, the module, the worker. Stand-ins: the tiny random model (its text is noise, so what is
tested is wiring, states and results, not code quality) and the process sandbox service in
place of the Docker one (openhands_app.py gives the two adaptations and why).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import harness
import pytest
from conftest import get_metrics, http_json, metric_sum, run_module

TASK_TIMEOUT_S = 1500.0  # per task; the first sandbox imports the agent-server (minutes here)


@pytest.fixture(scope="module")
def app(work: Path) -> Iterator[harness.Server]:
    server = harness.start_openhands_app(state_dir=work / "openhands-app", log_dir=work / "logs")
    with server:
        yield server


@pytest.fixture(scope="module")
def configured(app, vllm_server, vllm_launch, work) -> dict:
    key_file = work / "secrets" / "vllm_api_key"  # written 0400 by vllm_launch
    args = {
        "url": app.url,
        # As roles/agent_stack derives them: LiteLLM's OpenAI provider + the first served name;
        # the app itself makes no LLM call, its sandboxes do (same host here).
        "model": "openai/" + vllm_launch["served"][0],
        "base_url": vllm_server.url + "/v1",
        "api_key_file": str(key_file),
        "key_state_file": str(work / "openhands-app" / "aw-llm-key.state"),
        "max_input_tokens": 24576,
        "max_output_tokens": 64,
        "native_tool_calling": True,
        "timeout": 120,
    }
    return {"args": args}


def test_settings_module_stores_the_llm_and_a_rerun_changes_nothing(app, configured) -> None:
    args = configured["args"]
    rc, dry = run_module("openhands_settings", args, check=True)
    assert rc == 0 and dry["changed"] is True, dry
    status, _, _ = http_json("GET", app.url + "/api/v1/settings")
    assert status == 404, "check mode stored settings"  # nothing saved before the first run

    rc, first = run_module("openhands_settings", args)
    assert rc == 0 and first["changed"] is True, first
    status, stored, _ = http_json("GET", app.url + "/api/v1/settings")
    assert status == 200, stored
    llm = stored["agent_settings"]["llm"]
    assert llm["model"] == args["model"] and llm["base_url"] == args["base_url"], llm
    assert llm["max_input_tokens"] == 24576 and llm["max_output_tokens"] == 64, llm
    assert stored["llm_api_key_set"] is True and llm.get("api_key") in (None, "**********"), llm

    rc, second = run_module("openhands_settings", args)
    assert rc == 0 and second["changed"] is False, second


def _sandboxes(app: harness.Server) -> list[dict]:
    status, page, _ = http_json("GET", app.url + "/api/v1/sandboxes/search?limit=100")
    assert status == 200, page
    return [s for s in page["items"] if s.get("status") in ("STARTING", "RUNNING")]


def test_the_queue_runs_three_tasks_two_at_a_time(app, configured, vllm_server, work) -> None:
    pytest.importorskip("aw_task", reason="packages/aw-task is installed by scripts/bootstrap.sh")
    from aw_task.config import Config
    from aw_task.model import State, new_task
    from aw_task.openhands import OpenHands
    from aw_task.store import Queue, connect
    from aw_task.worker import Worker

    redis_bin = shutil.which("redis-server")
    assert redis_bin, "redis-server missing. Fix: sudo apt-get install redis-server"
    port = harness.free_port()
    data = work / "redis"
    data.mkdir(exist_ok=True)
    redis = subprocess.Popen(
        [
            redis_bin,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(data),
            "--appendonly",
            "yes",
            "--save",
            "",
            "--requirepass",
            "real-test",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    (work / "redis_password").write_text("real-test\n")
    try:
        config = Config(
            redis_url=f"redis://127.0.0.1:{port}/0",
            redis_password_file=str(work / "redis_password"),
            openhands_url=app.url,
            results_dir=str(work / "results"),
            concurrency=2,
            timeout_multiplier=1.0,
            poll_interval_s=2.0,
            visibility_timeout_s=60.0,
            metrics_listen="",
        )
        for _ in range(100):
            try:
                queue = Queue(connect(config), config)
                queue.ensure_group()
                break
            except Exception:  # redis not up yet
                time.sleep(0.1)
        repo = work / "repo"
        repo.mkdir(exist_ok=True)
        subprocess.run(["git", "init", "-q", str(repo)], check=True)
        tasks = []
        for n in range(3):
            task = new_task(repo=str(repo), prompt=f"Say hello {n}.", timeout_s=TASK_TIMEOUT_S)
            queue.submit(task)
            tasks.append(task)

        before = metric_sum(get_metrics(vllm_server.url), "vllm:request_success_total")
        peak = 0
        peak_seen: list[dict] = []
        stop = threading.Event()

        def watch() -> None:
            nonlocal peak, peak_seen
            while not stop.is_set():
                alive = _sandboxes(app)
                if len(alive) > peak:
                    peak, peak_seen = len(alive), alive
                stop.wait(1.0)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        worker = Worker(config, queue, lambda: OpenHands(app.url), consumer="real-test")
        runner = threading.Thread(target=worker.run, kwargs={"max_idle_s": 5.0}, daemon=True)
        runner.start()
        runner.join(timeout=3 * TASK_TIMEOUT_S)
        stop.set()
        watcher.join(timeout=10)
        assert not runner.is_alive(), "the worker did not finish: " + app.log_tail()

        final = [queue.get(t.id) for t in tasks]
        states = [(t.id, t.state.value, t.result.reason if t.result else None) for t in final]
        print("tasks:", states)
        assert all(t.state in (State.SUCCEEDED, State.FAILED) for t in final), [
            (t.id, t.state, t.result) for t in final
        ]
        # Each task went through a real conversation of the app (its id is recorded).
        for t in final:
            assert t.attempts and all(a.conversation_id for a in t.attempts), t
            assert (Path(config.results_dir) / f"{t.id}.json").is_file()
        assert 1 <= peak <= 2, (
            f"sandboxes alive at once: {peak}: "
            + json.dumps([{k: s.get(k) for k in ("id", "status", "created_at")} for s in peak_seen])
            + f"; tasks {states}"
        )
        after = metric_sum(get_metrics(vllm_server.url), "vllm:request_success_total")
        assert after > before, "no LLM request reached vLLM: " + app.log_tail()
        # The worker deletes each conversation's sandbox when the task ends.
        assert _sandboxes(app) == [], _sandboxes(app)
    finally:
        redis.terminate()
        redis.wait(10)
