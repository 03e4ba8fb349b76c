"""The queue and the worker against a real Redis (redis-server, AOF on) and the OpenHands
stand-in (tests/standin_openhands.py). Counts of conversations and live sandboxes come from
the OpenHands side (the stand-in); states, entries and counters from Redis itself."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from aw_task import cli
from aw_task.config import Config
from aw_task.metrics import Metrics
from aw_task.model import State, Task, new_task
from aw_task.openhands import OpenHands
from aw_task.store import Queue
from aw_task.worker import Worker
from prometheus_client import generate_latest
from standin_openhands import StandIn


def submit(queue: Queue, repo: Path, prompt: str, **kw: object) -> Task:
    task = new_task(repo=str(repo), prompt=prompt, **kw)  # type: ignore[arg-type]
    queue.submit(task)
    return task


def factory(url: str) -> Callable[[], OpenHands]:
    return lambda: OpenHands(url, transient_backoff_s=0.05)


def run_worker(config: Config, queue: Queue, url: str, idle: float = 1.0) -> Worker:
    worker = Worker(config, queue, factory(url), consumer="w-test")
    worker.run(max_idle_s=idle)
    return worker


def wait_for(check: Callable[[], bool], timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_a_task_runs_its_result_is_stored_and_its_sandbox_deleted(
    config: Config, queue: Queue, standin: StandIn, repo: Path
) -> None:
    url = _url(standin)
    task = submit(queue, repo, "add a file STANDIN:write=new.txt", accept="test -f new.txt")
    run_worker(config, queue, url)
    done = queue.get(task.id)
    assert done.state is State.SUCCEEDED
    assert done.result is not None
    assert done.result.final_message == "done (stand-in)"
    assert done.result.accept_exit_code == 0
    assert done.result.changed_files == [{"status": "ADDED", "path": "new.txt"}]
    assert standin.starts == 1 and standin.deletes == 1 and standin.live() == 0
    stored = json.loads((Path(config.results_dir) / f"{task.id}.json").read_text())
    assert stored["state"] == "succeeded" and stored["id"] == task.id
    assert queue.r.xlen(config.stream) == 0  # acked and deleted with the final state
    assert queue.stats()["succeeded"] == 1


def _url(standin: StandIn) -> str:
    assert standin.server is not None
    return f"http://127.0.0.1:{standin.server.server_address[1]}"


# (concurrency, OpenHands' sandbox limit, expected live sandboxes at most and at peak)
@pytest.mark.parametrize("case", [(2, 5, 2), (3, 1, 1)], ids=["n2", "limit1"])
def test_parallelism_never_exceeds_n(
    config: Config, queue: Queue, standin: StandIn, repo: Path, case: tuple[int, int, int]
) -> None:
    config.concurrency, config.openhands_max_sandboxes, expected = case
    tasks = [submit(queue, repo, "STANDIN:sleep=0.4") for _ in range(6)]
    run_worker(config, queue, _url(standin))
    assert all(queue.get(t.id).state is State.SUCCEEDED for t in tasks)
    # Counted from OpenHands' side: sandboxes alive at once (created, not yet deleted).
    assert standin.max_live == expected
    assert standin.starts == 6 and standin.deletes == 6


def test_an_erroring_conversation_is_retried_once_then_failed_with_the_reason(
    config: Config, queue: Queue, standin: StandIn, repo: Path
) -> None:
    task = submit(queue, repo, "STANDIN:error ", retries=3)
    run_worker(config, queue, _url(standin))
    done = queue.get(task.id)
    assert done.state is State.FAILED
    assert done.result is not None and done.result.reason is not None
    assert "after one retry" in done.result.reason
    assert "LLMBadRequestError" in done.result.reason
    assert standin.starts_for(task.id) == 2 and standin.live() == 0
    assert [a.outcome for a in done.attempts] == ["error", "error"]
    assert queue.stats()["retried"] == 1 and queue.stats()["failed"] == 1


# (event_grace_s, how late the events reach the app, what the reason must hold). The real app got
# the error event about 10 s after the status said "error" (webhook batches, tests/real/README.md):
# the worker waits for it up to event_grace_s, then falls back to the status.
@pytest.mark.parametrize(
    "case",
    [(5.0, 0.5, "LLMBadRequestError"), (0.2, 30.0, "execution_status error")],
    ids=["within-grace", "after-grace"],
)
def test_a_late_error_event(
    config: Config, queue: Queue, standin: StandIn, repo: Path, case: tuple[float, float, str]
) -> None:
    config.event_grace_s, late, reason = case
    task = submit(queue, repo, f"STANDIN:error STANDIN:late-events={late}", retries=0)
    run_worker(config, queue, _url(standin))
    done = queue.get(task.id)
    assert done.state is State.FAILED and done.result is not None
    assert reason in (done.result.reason or ""), done.result.reason


def test_a_late_final_message_is_waited_for(
    config: Config, queue: Queue, standin: StandIn, repo: Path
) -> None:
    config.event_grace_s = 5.0
    task = submit(queue, repo, "STANDIN:sleep=0.1 STANDIN:late-events=0.5")
    run_worker(config, queue, _url(standin))
    done = queue.get(task.id)
    assert done.state is State.SUCCEEDED and done.result is not None
    assert done.result.final_message == "done (stand-in)"


def test_one_error_then_success(config: Config, queue: Queue, standin: StandIn, repo: Path) -> None:
    task = submit(queue, repo, "STANDIN:error-first")
    run_worker(config, queue, _url(standin))
    done = queue.get(task.id)
    assert done.state is State.SUCCEEDED
    assert [a.outcome for a in done.attempts] == ["error", "finished"]


def test_a_transient_503_is_retried_in_place(
    config: Config, queue: Queue, standin: StandIn, repo: Path
) -> None:
    task = submit(queue, repo, "STANDIN:503-once")
    run_worker(config, queue, _url(standin))
    done = queue.get(task.id)
    assert done.state is State.SUCCEEDED and len(done.attempts) == 1
    assert standin.starts_for(task.id) == 1


def test_a_failed_acceptance_command_is_retried_with_the_failure_in_the_prompt(
    config: Config, queue: Queue, standin: StandIn, repo: Path
) -> None:
    task2 = submit(queue, repo, "fix it STANDIN:fix=ok2", accept="test -f ok2", retries=1)
    run_worker(config, queue, _url(standin))
    done2 = queue.get(task2.id)
    assert done2.state is State.SUCCEEDED
    assert [a.outcome for a in done2.attempts] == ["accept_failed", "finished"]
    second = [c for c in standin.conversations.values() if c.title == f"aw-task {task2.id} #2"]
    assert second and "did not pass the acceptance command `test -f ok2`" in second[0].prompt


def test_the_acceptance_budget_runs_out(
    config: Config, queue: Queue, standin: StandIn, repo: Path
) -> None:
    task = submit(queue, repo, "never", accept="exit 3", retries=1)
    run_worker(config, queue, _url(standin))
    done = queue.get(task.id)
    assert done.state is State.FAILED
    assert done.result is not None and done.result.accept_exit_code == 3
    assert done.result.reason == "acceptance command failed: `exit 3` exited 3"
    assert standin.starts_for(task.id) == 2


def test_cancel_stops_the_conversation_and_frees_its_sandbox(
    config: Config, queue: Queue, standin: StandIn, repo: Path
) -> None:
    task = submit(queue, repo, "STANDIN:sleep=60")
    worker = Worker(config, queue, factory(_url(standin)), consumer="w-test")
    thread = threading.Thread(target=worker.run, kwargs={"max_idle_s": 1.0})
    thread.start()
    try:
        wait_for(lambda: standin.live() == 1)
        assert cli._cancel(queue, task.id) == 0
        wait_for(lambda: queue.get(task.id).state is State.CANCELLED)
    finally:
        thread.join(30)
    assert standin.live() == 0 and standin.deletes == 1
    assert queue.r.xlen(config.stream) == 0
    assert queue.stats()["cancelled"] == 1


def test_cancel_of_a_queued_task_removes_its_entry(
    config: Config, queue: Queue, repo: Path
) -> None:
    task = submit(queue, repo, "p")
    assert queue.r.xlen(config.stream) == 1
    assert cli._cancel(queue, task.id) == 0
    assert queue.get(task.id).state is State.CANCELLED
    assert queue.r.xlen(config.stream) == 0
    assert cli._cancel(queue, task.id) == cli.EXIT_USAGE  # already cancelled


def _worker_env(config: Config, url: str, consumer: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AW_TASK_")}
    env.update(
        {
            "AW_TASK_CONFIG": "/nonexistent.toml",
            "AW_TASK_REDIS_URL": config.redis_url,
            "AW_TASK_REDIS_PASSWORD_FILE": config.redis_password_file,
            "AW_TASK_STREAM": config.stream,
            "AW_TASK_KEY_PREFIX": config.key_prefix,
            "AW_TASK_GROUP": config.group,
            "AW_TASK_OPENHANDS_URL": url,
            "AW_TASK_RESULTS_DIR": config.results_dir,
            "AW_TASK_VISIBILITY_TIMEOUT_S": str(config.visibility_timeout_s),
            "AW_TASK_POLL_INTERVAL_S": "0.05",
            "AW_TASK_METRICS_LISTEN": "",
            "AW_TASK_CONSUMER": consumer,
        }
    )
    return env


@pytest.mark.parametrize("same_consumer", [True, False], ids=["restart", "other-worker"])
def test_kill_9_mid_task_loses_nothing_and_it_finishes_exactly_once(
    config: Config, queue: Queue, standin: StandIn, repo: Path, same_consumer: bool
) -> None:
    url = _url(standin)
    task = submit(queue, repo, "STANDIN:sleep=4")
    cmd = [sys.executable, "-m", "aw_task", "worker", "--exit-when-idle", "3"]
    first = subprocess.Popen(cmd, env=_worker_env(config, url, "w-one"))
    try:
        wait_for(lambda: standin.live() == 1)
        wait_for(lambda: queue.get(task.id).state is State.RUNNING)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    # Nothing lost: still running in Redis, its entry pending in the consumer group.
    assert queue.get(task.id).state is State.RUNNING
    pending = queue.r.xpending(config.stream, config.group)
    assert pending["pending"] == 1
    # The second worker's idle window (1 s) is shorter than the time until the dead worker's
    # entry turns claimable (the 3 s visibility timeout): it must wait for it, not exit idle.
    second = subprocess.run(
        [*cmd[:-1], "1"],
        env=_worker_env(config, url, "w-one" if same_consumer else "w-two"),
        timeout=60,
        check=True,
    )
    assert second.returncode == 0
    done = queue.get(task.id)
    assert done.state is State.SUCCEEDED
    # Exactly once: one conversation (the recovered worker followed the one already started),
    # one final state, nothing left pending or in the stream.
    assert standin.starts_for(task.id) == 1 and standin.deletes == 1
    assert len(done.attempts) == 1
    assert queue.stats()["succeeded"] == 1
    assert queue.r.xpending(config.stream, config.group)["pending"] == 0
    assert queue.r.xlen(config.stream) == 0
    assert (Path(config.results_dir) / f"{task.id}.json").is_file()


def test_kill_9_during_the_sandbox_start_resumes_that_start_and_never_starts_twice(
    config: Config, queue: Queue, standin: StandIn, repo: Path
) -> None:
    """Killed while OpenHands still starts the sandbox (no conversation yet): the restarted
    worker finds the start task by the attempt's conversation id and waits on it; a second
    POST would start a second sandbox for the same attempt (the real app names the sandbox
    after the conversation id)."""
    url = _url(standin)
    task = submit(queue, repo, "STANDIN:slowstart=4 STANDIN:sleep=0.5")
    cmd = [sys.executable, "-m", "aw_task", "worker", "--exit-when-idle", "3"]
    first = subprocess.Popen(cmd, env=_worker_env(config, url, "w-one"))
    try:
        wait_for(lambda: standin.starts == 1)

        def recorded() -> bool:
            attempts = queue.get(task.id).attempts
            return bool(attempts) and attempts[0].start_task_id is not None

        wait_for(recorded)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    conv_id = queue.get(task.id).attempts[0].conversation_id
    assert standin.conversation_json(conv_id) is None  # still starting when killed
    # Found by its conversation id even before READY (the fallback when the start task's id
    # was not recorded yet), although the app's own conversation_id__eq filter misses it.
    found = OpenHands(url).start_task_for(conv_id)
    assert found is not None and found["id"] == queue.get(task.id).attempts[0].start_task_id
    subprocess.run(cmd, env=_worker_env(config, url, "w-one"), timeout=60, check=True)
    done = queue.get(task.id)
    assert done.state is State.SUCCEEDED, done
    assert standin.starts == 1, f"{standin.starts} start requests for one attempt"
    assert len(done.attempts) == 1 and done.attempts[0].conversation_id == conv_id
    assert queue.stats()["succeeded"] == 1


def test_a_task_model_goes_to_openhands_as_llm_model(
    config: Config, queue: Queue, standin: StandIn, repo: Path
) -> None:
    task = submit(queue, repo, "STANDIN:sleep=0.1", model="openai/other-alias")
    plain = submit(queue, repo, "STANDIN:sleep=0.1")
    run_worker(config, queue, _url(standin))
    bodies = {t["request"]["title"]: t["request"] for t in standin.start_tasks.values()}
    assert bodies[f"aw-task {task.id} #1"]["llm_model"] == "openai/other-alias"
    assert "llm_model" not in bodies[f"aw-task {plain.id} #1"]
    with pytest.raises(ValueError, match="--model"):
        new_task(repo=str(repo), prompt="x", model="bad model")


def test_a_lease_keeps_a_second_worker_off_a_running_task(
    config: Config, queue: Queue, standin: StandIn, repo: Path
) -> None:
    task = submit(queue, repo, "STANDIN:sleep=5")
    url = _url(standin)
    one = Worker(config, queue, factory(url), consumer="w-a")
    two = Worker(config, queue, factory(url), consumer="w-b")
    threads = [threading.Thread(target=w.run, kwargs={"max_idle_s": 2.0}) for w in (one, two)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    # 5 s > the 3 s visibility timeout: without renewals the second worker would have claimed it.
    assert queue.get(task.id).state is State.SUCCEEDED
    assert standin.starts_for(task.id) == 1 and standin.max_live == 1


def _sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in metrics")


def test_metrics_match_the_real_queue_state(
    config: Config, queue: Queue, standin: StandIn, repo: Path
) -> None:
    metrics = Metrics(queue, config.effective_concurrency)
    tasks = [submit(queue, repo, "STANDIN:sleep=0.1") for _ in range(3)]
    cli._cancel(queue, tasks[0].id)
    time.sleep(0.2)
    text = generate_latest(metrics.registry).decode()
    states = [t.state for t in queue.all()]
    assert _sample(text, "aw_task_queue_depth") == states.count(State.QUEUED) == 2
    assert _sample(text, "aw_task_running") == states.count(State.RUNNING) == 0
    assert _sample(text, "aw_task_cancelled_total") == 1
    assert _sample(text, "aw_task_oldest_waiting_age_seconds") >= 0.2
    worker = Worker(config, queue, factory(_url(standin)), metrics=metrics, consumer="w-m")
    worker.run(max_idle_s=1.0)
    text = generate_latest(metrics.registry).decode()
    assert _sample(text, "aw_task_queue_depth") == 0
    assert _sample(text, "aw_task_oldest_waiting_age_seconds") == 0
    assert _sample(text, "aw_task_finished_total") == 2 == queue.stats()["succeeded"]
    assert _sample(text, 'aw_task_duration_seconds_count{status="succeeded"}') == 2
    assert _sample(text, "aw_task_redis_up") == 1


def test_cli_errors_are_clear(
    config: Config,
    repo: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in _worker_env(config, "http://127.0.0.1:9", "cli").items():
        if key.startswith("AW_TASK_"):
            monkeypatch.setenv(key, value)
    assert cli.main(["submit", "--repo", str(tmp_path / "nope"), "--prompt", "x"]) == 2
    assert "--repo" in capsys.readouterr().err
    assert cli.main(["show", "feedbeef0000"]) == cli.EXIT_UNKNOWN
    assert "no task with id 'feedbeef0000'" in capsys.readouterr().err
    assert cli.main(["submit", "--repo", str(repo), "--prompt", "x"]) == 0
    out = capsys.readouterr()
    assert "OpenHands at http://127.0.0.1:9 is unreachable; the task is queued" in out.err
    task_id = out.out.strip()
    assert cli.main(["list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [t["id"] for t in listed] == [task_id] and listed[0]["state"] == "queued"
    assert cli.main(["retry", task_id]) == cli.EXIT_USAGE  # not finished yet
    assert "this needs it to be" in capsys.readouterr().err
    monkeypatch.setenv("AW_TASK_REDIS_URL", "redis://127.0.0.1:9/0")
    assert cli.main(["list"]) == cli.EXIT_UNREACHABLE
    assert "Redis at redis://127.0.0.1:9/0 is unreachable" in capsys.readouterr().err


def test_a_failed_start_frees_the_sandbox_it_left_behind(
    config: Config, queue: Queue, standin: StandIn, repo: Path
) -> None:
    """The real app server 1.11.0 keeps a failed start's sandbox alive (tests/real); the worker
    deletes it, so failed starts do not pile up beyond the concurrency."""
    task = submit(queue, repo, "STANDIN:startfail")
    run_worker(config, queue, _url(standin))
    done = queue.get(task.id)
    assert done.state is State.FAILED
    assert done.result is not None and "start task" in (done.result.reason or "")
    attempts = len(done.attempts)
    assert attempts == 2  # retried once
    assert standin.sandbox_deletes == attempts and not standin.orphans
    assert standin.live() == 0
