"""OpenHands' app server 1.11.0 (the V1 app the stack runs), for real, with vLLM's CPU build:

1. the project's `openhands_settings` module, run by Ansible, stores the LLM settings the role
   derives (model, base URL, budgets, key from a file) through the app's real REST API, and a
   second run changes nothing (issue 11);
2. the agent queue (packages/aw-task, its worker run as `python -m aw_task worker` processes)
   feeds it from a real Redis at concurrency 2 (issue 16): the sandboxes and conversations alive
   at once, sampled from the app's own listings, never exceed 2; a worker killed with SIGKILL
   while OpenHands starts a task's sandbox is restarted and the task finishes exactly once (one
   start task and one conversation per attempt, one final state); a task whose conversation
   errors (its model is one vLLM does not serve: vLLM answers 404) is retried once, then failed
   with the reason; the worker's /metrics equal the queue's state read task by task; cancel of
   a running conversation deletes it and frees its sandbox.

Real: the app server and its agent-server sandboxes (the pinned pair, 1.11.0 + 1.34.0), vLLM,
Redis, the module, the worker and its CLI. Stand-ins: the tiny random model (its text is noise,
so what is tested is wiring, states and results, not code quality), the process sandbox service
in place of the Docker one (openhands_app.py gives the four adaptations and why), and, for the
cancel test only, an LLM endpoint that accepts connections and never answers (a socket of this
test), so the conversation is still running when it is cancelled.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import harness
import pytest
from conftest import get_metrics, http_json, metric_sum, run_module

TASK_TIMEOUT_S = 900.0  # per task; a sandbox imports the agent-server first (minutes here)
BAD_MODEL = "openai/aw-no-such-model"  # vLLM serves no such name: 404, a conversation error


@pytest.fixture(scope="module")
def app(work: Path) -> Iterator[harness.Server]:
    # openhands-ai 1.11.0 gives every conversation the browser tool (live_status_app_conversation_
    # service.py: get_default_tools(enable_browser=True)), and the agent-server 1.34.0 answers 500
    # to POST /api/conversations without a Chromium (tools/browser_use/impl.py
    # _ensure_chromium_available: PATH chromium, chromium-browser, google-chrome, ...). The
    # agent-server image ships one; a process sandbox uses the host's.
    assert shutil.which("chromium") or shutil.which("chromium-browser"), (
        "no Chromium on PATH: every conversation's start would end in a 500 from the agent-server."
        " Fix: sudo apt-get install chromium"
    )
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


def _uuid(value: object) -> str:
    return uuid.UUID(str(value)).hex


class Watch:
    """Samples the app's own listings every second: sandboxes alive (any status but MISSING),
    conversations not yet finished, and every start task and conversation id per title."""

    def __init__(self, app: harness.Server) -> None:
        self.app = app
        self.peak_sandboxes = 0
        self.peak_conversations = 0
        self.peak_seen: list[dict] = []
        self.start_tasks: dict[str, set[str]] = {}  # conversation id (hex) -> start task ids
        self.titles: dict[str, set[str]] = {}  # conversation title -> conversation ids (hex)
        self.errors: list[str] = []
        self.samples = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def sandboxes(self) -> list[dict]:
        status, page, _ = http_json("GET", self.app.url + "/api/v1/sandboxes/search?limit=100")
        assert status == 200, page
        return [s for s in page["items"] if s.get("status") != "MISSING"]

    def sample(self) -> None:
        alive = self.sandboxes()
        if len(alive) > self.peak_sandboxes:
            self.peak_sandboxes, self.peak_seen = len(alive), alive
        status, page, _ = http_json(
            "GET", self.app.url + "/api/v1/app-conversations/search?limit=100"
        )
        assert status == 200, page
        running = 0
        for c in page["items"]:
            self.titles.setdefault(str(c.get("title")), set()).add(_uuid(c["id"]))
            if c.get("execution_status") not in ("finished", "error", "stuck"):
                running += 1
        self.peak_conversations = max(self.peak_conversations, running)
        status, page, _ = http_json(
            "GET", self.app.url + "/api/v1/app-conversations/start-tasks/search?limit=100"
        )
        assert status == 200, page
        for t in page["items"]:
            conv = (t.get("request") or {}).get("conversation_id")
            if conv:
                self.start_tasks.setdefault(_uuid(conv), set()).add(str(t["id"]))

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                self.sample()
                self.samples += 1
            except Exception as exc:  # recorded and asserted empty
                self.errors.append(repr(exc))
            self.stop.wait(1.0)

    def __enter__(self) -> Watch:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)


@pytest.fixture(scope="module")
def queue_env(app, configured, work) -> Iterator[dict]:
    try:
        from aw_task.config import Config
        from aw_task.store import Queue, connect
    except ImportError as exc:  # a failure, not a skip: the venv lacks the package
        pytest.fail(f"aw_task is not importable ({exc}). Fix: ./scripts/bootstrap.sh test")
    rc, stored = run_module("openhands_settings", configured["args"])  # idempotent
    assert rc == 0, stored
    redis_bin = shutil.which("redis-server")
    assert redis_bin, "redis-server missing. Fix: sudo apt-get install redis-server"
    port = harness.free_port()
    data = work / "redis"
    data.mkdir(exist_ok=True)
    redis = subprocess.Popen(
        [redis_bin, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data),
         "--appendonly", "yes", "--save", "", "--requirepass", "real-test"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    password = work / "redis_password"
    password.write_text("real-test\n")
    password.chmod(0o600)
    config = Config(
        redis_url=f"redis://127.0.0.1:{port}/0",
        redis_password_file=str(password),
        openhands_url=app.url,
        results_dir=str(work / "results"),
        concurrency=2,
        openhands_max_sandboxes=2,
        timeout_multiplier=1.0,
        poll_interval_s=1.0,
        visibility_timeout_s=15.0,
        error_backoff_s=5.0,
        metrics_listen="",
    )
    queue = None
    for _ in range(100):
        try:
            queue = Queue(connect(config), config)
            queue.ensure_group()
            break
        except Exception:  # redis not up yet
            time.sleep(0.1)
    assert queue is not None, "redis-server did not start"
    repo = work / "repo"
    repo.mkdir(exist_ok=True)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    try:
        yield {"config": config, "queue": queue, "repo": repo}
    finally:
        redis.terminate()
        redis.wait(10)


def _worker_env(config, consumer: str, metrics_port: int | None = None) -> dict[str, str]:  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AW_TASK_")}
    env.update(
        {
            "AW_TASK_CONFIG": "/nonexistent.toml",
            "AW_TASK_REDIS_URL": config.redis_url,
            "AW_TASK_REDIS_PASSWORD_FILE": config.redis_password_file,
            "AW_TASK_OPENHANDS_URL": config.openhands_url,
            "AW_TASK_RESULTS_DIR": config.results_dir,
            "AW_TASK_CONCURRENCY": str(config.concurrency),
            "AW_TASK_OPENHANDS_MAX_SANDBOXES": str(config.openhands_max_sandboxes),
            "AW_TASK_TIMEOUT_MULTIPLIER": str(config.timeout_multiplier),
            "AW_TASK_POLL_INTERVAL_S": str(config.poll_interval_s),
            "AW_TASK_VISIBILITY_TIMEOUT_S": str(config.visibility_timeout_s),
            "AW_TASK_ERROR_BACKOFF_S": str(config.error_backoff_s),
            "AW_TASK_METRICS_LISTEN": f"127.0.0.1:{metrics_port}" if metrics_port else "",
            "AW_TASK_CONSUMER": consumer,
        }
    )
    return env


def _worker(config, consumer: str, log: Path, idle_s: float, metrics_port: int | None = None):  # type: ignore[no-untyped-def]
    out = log.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "aw_task", "worker", "--exit-when-idle", str(idle_s)],
        env=_worker_env(config, consumer, metrics_port),
        stdout=out,
        stderr=subprocess.STDOUT,
    )


def _until(check: Callable[[], bool], timeout: float, what: str, tail: Callable[[], str]) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        time.sleep(1.0)
    raise AssertionError(f"{what}: not within {timeout:.0f} s; " + tail())


def _expected_metrics(queue, ids: list[str]) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """The queue's state read task by task (not through the metrics code)."""
    from aw_task.model import State

    tasks = [queue.get(i) for i in ids]
    waiting = [t.submitted_at for t in tasks if t.state is State.QUEUED]
    return {
        "aw_task_queue_depth": sum(t.state is State.QUEUED for t in tasks),
        "aw_task_running": sum(t.state is State.RUNNING for t in tasks),
        "aw_task_finished_total": sum(t.state is State.SUCCEEDED for t in tasks),
        "aw_task_failed_total": sum(t.state is State.FAILED for t in tasks),
        "aw_task_cancelled_total": sum(t.state is State.CANCELLED for t in tasks),
        "aw_task_retried_total": sum(max(0, len(t.attempts) - 1) for t in tasks),
        "aw_task_submitted_total": len(tasks),
        "oldest": time.time() - min(waiting) if waiting else 0.0,
    }


def _assert_metrics(text: str, expected: dict[str, float]) -> None:
    for name, value in expected.items():
        if name == "oldest":
            age = metric_sum(text, "aw_task_oldest_waiting_age_seconds")
            assert abs(age - value) < 30, (age, value)
            continue
        assert metric_sum(text, name) == value, (name, metric_sum(text, name), value, text)


def test_the_queue_bounds_parallelism_survives_kill_9_and_retries_an_error_once(
    app, vllm_server, vllm_launch, queue_env, work
) -> None:
    from aw_task.metrics import Metrics
    from aw_task.model import TERMINAL, State, new_task
    from aw_task.openhands import OpenHands
    from prometheus_client import generate_latest

    config, queue, repo = queue_env["config"], queue_env["queue"], queue_env["repo"]
    logs = work / "logs"
    tail = app.log_tail
    started = time.monotonic()
    # Two rounds of sandbox starts (about 5 min each with the machine's load at 20): the first
    # task and the erroring one's first attempt, then its retry and the task to cancel.
    tasks = [
        new_task(repo=str(repo), prompt="Say hello.", timeout_s=TASK_TIMEOUT_S),
        new_task(repo=str(repo), prompt="Say hi.", timeout_s=TASK_TIMEOUT_S, model=BAD_MODEL),
        new_task(repo=str(repo), prompt="Say nothing.", timeout_s=TASK_TIMEOUT_S),
    ]
    for t in tasks:
        queue.submit(t)
    ids = [t.id for t in tasks]
    first, bad, cancelled = tasks
    before = metric_sum(get_metrics(vllm_server.url), "vllm:request_success_total")
    oh = OpenHands(app.url)
    with Watch(app) as watch:
        w1 = _worker(config, "real-worker", logs / "aw-task-worker.log", idle_s=30)
        try:
            # Kill it while OpenHands starts the first task's sandbox (the start task exists,
            # the conversation does not yet).
            def starting() -> bool:
                attempts = queue.get(first.id).attempts
                return bool(attempts) and oh.start_task_for(attempts[0].conversation_id) is not None

            _until(starting, 300, "the first task's start", tail)
        finally:
            w1.send_signal(signal.SIGKILL)
            w1.wait(10)
        killed_at = time.monotonic() - started
        conv = queue.get(first.id).attempts[0].conversation_id
        assert queue.get(first.id).state is State.RUNNING
        assert queue.r.xpending(config.stream, config.group)["pending"] >= 1
        # Metrics (the code the worker serves) against the state read task by task; nothing
        # moves in Redis while no worker runs.
        _assert_metrics(
            generate_latest(Metrics(queue, 2).registry).decode(), _expected_metrics(queue, ids)
        )

        metrics_port = harness.free_port()
        w2 = _worker(config, "real-worker", logs / "aw-task-worker.log", 30, metrics_port)
        try:
            # Cancel the third task while OpenHands starts its sandbox.
            def cancel_starting() -> bool:
                attempts = queue.get(cancelled.id).attempts
                return bool(attempts) and attempts[0].start_task_id is not None

            _until(cancel_starting, 3 * TASK_TIMEOUT_S, "the third task's start", tail)
            start_id = queue.get(cancelled.id).attempts[0].start_task_id
            st = oh.start_task(str(start_id)) or {}
            # The app names a requested conversation's sandbox after the conversation id.
            named = _uuid(queue.get(cancelled.id).attempts[0].conversation_id)
            cancel_sandbox = st.get("sandbox_id") or named
            cancel = subprocess.run(
                [sys.executable, "-m", "aw_task", "cancel", cancelled.id],
                env=_worker_env(config, "cli"),
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert cancel.returncode == 0 and "cancelling" in cancel.stdout, cancel
            print(
                f"cancelled during start task status {st.get('status')}, sandbox {cancel_sandbox}"
            )
            _until(
                lambda: all(queue.get(i).state in TERMINAL for i in ids),
                4 * TASK_TIMEOUT_S,
                "every task final",
                lambda: tail() + (logs / "aw-task-worker.log").read_text()[-4000:],
            )
            metrics = get_metrics(f"http://127.0.0.1:{metrics_port}")
            watch.sample()
        finally:
            w2.wait(120)
    elapsed = time.monotonic() - started
    final = {i: queue.get(i) for i in ids}
    summary = {
        i: (t.state.value, len(t.attempts), t.result.reason if t.result else None)
        for i, t in final.items()
    }
    print(f"queue test: {elapsed:.0f} s (killed at {killed_at:.0f} s); tasks {summary}")
    print(f"peaks: sandboxes {watch.peak_sandboxes}, conversations {watch.peak_conversations}")
    # A failed sample (the app busy on two loaded cores) loses one data point; most must work.
    print(f"samples {watch.samples}, failed {len(watch.errors)}: {watch.errors[:3]}")
    assert watch.samples >= 30 and len(watch.errors) <= watch.samples // 10, watch.errors
    assert w2.returncode == 0, (logs / "aw-task-worker.log").read_text()[-4000:]

    # Parallelism, from OpenHands' side, never above N = 2.
    assert 1 <= watch.peak_sandboxes <= 2, json.dumps(
        [{k: s.get(k) for k in ("id", "status", "created_at")} for s in watch.peak_seen]
    )
    assert watch.peak_conversations <= 2, watch.peak_conversations
    # Exactly once: each attempt had one start task and one conversation in the app, and the
    # killed task's attempt is the one started before the kill.
    for t in final.values():
        for a in t.attempts:
            assert watch.start_tasks.get(_uuid(a.conversation_id), set()).__len__() == 1, (
                t.id, a, watch.start_tasks,
            )  # fmt: skip
        seen = set().union(
            *(v for k, v in watch.titles.items() if k.startswith(f"aw-task {t.id} "))
        )
        assert seen <= {_uuid(a.conversation_id) for a in t.attempts}, (t.id, seen)
        assert (Path(config.results_dir) / f"{t.id}.json").is_file()
    assert (
        len(final[first.id].attempts) == 1 and final[first.id].attempts[0].conversation_id == conv
    )
    assert final[first.id].state is State.SUCCEEDED, summary
    # Cancel during the sandbox's start: cancelled, its sandbox deleted, no conversation left.
    stopped = final[cancelled.id]
    assert stopped.state is State.CANCELLED and len(stopped.attempts) == 1, summary
    assert stopped.attempts[0].outcome == "cancelled", stopped.attempts
    assert oh.conversation(stopped.attempts[0].conversation_id) is None
    assert cancel_sandbox and cancel_sandbox not in {s["id"] for s in watch.sandboxes()}
    # The erroring conversation: retried once, then failed with the reason.
    failed = final[bad.id]
    assert failed.state is State.FAILED and len(failed.attempts) == 2, summary
    assert failed.errors_retried == 1 and failed.result is not None
    reason = failed.result.reason or ""
    assert "aw-no-such-model" in reason or "NotFound" in reason, reason
    # vLLM served the good conversation.
    after = metric_sum(get_metrics(vllm_server.url), "vllm:request_success_total")
    assert after - before >= 1, (before, after)
    # The worker's /metrics equal the queue's real state; nothing left in the stream.
    _assert_metrics(metrics, _expected_metrics(queue, ids))
    assert queue.r.xlen(config.stream) == 0
    assert queue.r.xpending(config.stream, config.group)["pending"] == 0
    # Every conversation's sandbox was deleted.
    assert watch.sandboxes() == [], watch.sandboxes()


class Silent:
    """STAND-IN for an LLM that does not answer: accepts connections and never replies."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self.sock.close()
        for c in self.held:
            c.close()


def test_cancel_stops_a_running_conversation_and_frees_its_sandbox(
    app, configured, queue_env, work
) -> None:
    from aw_task.model import State, new_task
    from aw_task.openhands import OpenHands

    config, queue, repo = queue_env["config"], queue_env["queue"], queue_env["repo"]
    logs = work / "logs"
    silent = Silent()
    args = dict(configured["args"], base_url=f"http://127.0.0.1:{silent.port}/v1")
    rc, out = run_module("openhands_settings", args)
    assert rc == 0 and out["changed"] is True, out
    oh = OpenHands(app.url)
    watch = Watch(app)
    try:
        task = new_task(repo=str(repo), prompt="Say hello.", timeout_s=TASK_TIMEOUT_S)
        queue.submit(task)
        w = _worker(config, "real-worker", logs / "aw-task-worker.log", idle_s=10)
        try:

            def running() -> bool:
                attempts = queue.get(task.id).attempts
                conv = attempts and oh.conversation(attempts[0].conversation_id)
                return (
                    bool(conv) and conv.get("execution_status") == "running" and bool(silent.held)
                )

            _until(
                running, TASK_TIMEOUT_S, "a running conversation waiting on the LLM", app.log_tail
            )
            conv_id = queue.get(task.id).attempts[0].conversation_id
            sandbox_id = oh.conversation(conv_id)["sandbox_id"]
            assert sandbox_id in {s["id"] for s in watch.sandboxes()}
            cancel = subprocess.run(
                [sys.executable, "-m", "aw_task", "cancel", task.id],
                env=_worker_env(config, "cli"),
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert cancel.returncode == 0 and "cancelling" in cancel.stdout, cancel
            _until(
                lambda: queue.get(task.id).state is State.CANCELLED,
                120,
                "the cancel",
                lambda: (logs / "aw-task-worker.log").read_text()[-4000:],
            )
        finally:
            w.wait(120)
        assert oh.conversation(conv_id) is None, "the conversation is still there"
        assert sandbox_id not in {s["id"] for s in watch.sandboxes()}, watch.sandboxes()
        assert watch.sandboxes() == [], watch.sandboxes()
        done = queue.get(task.id)
        assert len(done.attempts) == 1 and done.attempts[0].outcome == "cancelled", done
        assert (Path(config.results_dir) / f"{task.id}.json").is_file()
    finally:
        silent.close()
        rc, out = run_module("openhands_settings", configured["args"])  # the real base URL back
        assert rc == 0, out
