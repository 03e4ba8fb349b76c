"""The worker: takes tasks off the stream, at most N at once, and runs each through OpenHands.

Delivery guarantees (Redis Streams consumer group, see store.py):
- at least once: an entry stays in the pending-entries list until the task's final state is
  written in the same MULTI as its XACK + XDEL; a worker killed with SIGKILL leaves it there,
  and its lease key expires, so the next worker (or the same one restarted: the consumer name
  is stable per host) takes it over (its own PEL via XREADGROUP 0, others' via XAUTOCLAIM
  after the visibility timeout);
- never twice at once: a task runs only while its worker holds the task's lease (redis-py
  Lock, renewed with the stream entry every third of the visibility timeout); a worker that
  loses it stops writing;
- a task recovered while RUNNING resumes following the conversation it had started (its id is
  written before the start request); when that conversation does not exist yet it asks
  OpenHands for the start task of that conversation id and waits on it (a worker killed during
  a sandbox's start-up), and starts the conversation only when OpenHands never saw it, so an
  attempt never has two conversations or two sandboxes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from redis.exceptions import LockError

from .config import Config
from .metrics import Metrics
from .model import TERMINAL, Attempt, Result, State, Task
from .openhands import (
    DEAD_SANDBOX,
    DONE_EXECUTION,
    ERROR_EXECUTION,
    OpenHands,
    OpenHandsError,
    OpenHandsUnreachable,
    error_detail,
    final_message,
)
from .policy import Decision, Outcome, decide, retry_prompt, scaled_timeout
from .store import Conflict, Queue, UnknownTask

log = logging.getLogger("aw_task.worker")


class LeaseLost(RuntimeError):
    pass


class Shutdown(RuntimeError):
    pass


@dataclasses.dataclass
class Held:
    task_id: str
    entry_id: str
    lease: Any
    lost: threading.Event = dataclasses.field(default_factory=threading.Event)


def sandbox_path(config: Config, repo: str) -> str:
    """Where OpenHands' sandbox sees a local repository."""
    if not config.workspace_host_root:
        return repo
    host = Path(config.workspace_host_root).resolve()
    path = Path(repo).resolve()
    try:
        rel = path.relative_to(host)
    except ValueError as exc:
        raise OpenHandsError(
            f"--repo {repo} is outside workspace_host_root {host}, which is what OpenHands' "
            "sandbox mounts. Fix: put the repository under it"
        ) from exc
    return str(Path(config.workspace_sandbox_root) / rel)


def write_result(results_dir: str, task: Task) -> Path:
    """ID.json (the whole task record) and ID.diff, written atomically."""
    directory = Path(results_dir).expanduser()
    directory.mkdir(parents=True, exist_ok=True, mode=0o750)
    target = directory / f"{task.id}.json"
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(json.loads(task.to_json()), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, target)
    if task.result and task.result.diff:
        diff = directory / f"{task.id}.diff"
        tmp = diff.with_suffix(".diff.tmp")
        tmp.write_text(task.result.diff, encoding="utf-8")
        os.replace(tmp, diff)
    return target


class Worker:
    def __init__(
        self,
        config: Config,
        queue: Queue,
        openhands: Callable[[], OpenHands],
        metrics: Metrics | None = None,
        consumer: str | None = None,
    ) -> None:
        self.config = config
        self.queue = queue
        self.openhands = openhands
        self.metrics = metrics
        self.consumer = consumer or os.environ.get("AW_TASK_CONSUMER") or socket.gethostname()
        self.slots = config.effective_concurrency
        self.held: dict[str, Held] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self._oh_down_logged = False

    # --- the main loop --------------------------------------------------------------------------
    def run(self, max_idle_s: float | None = None) -> None:
        self.queue.ensure_group()
        self.queue.forget_idle_consumers()
        self.export_missing_results()
        log.info(
            "worker %s: %d task(s) at once (concurrency %d, OpenHands sandbox limit %d)",
            self.consumer,
            self.slots,
            self.config.concurrency,
            self.config.openhands_max_sandboxes,
        )
        beat = threading.Thread(target=self._heartbeat, name="aw-task-heartbeat", daemon=True)
        beat.start()
        probe = self.openhands()
        idle_since = time.monotonic()
        with ThreadPoolExecutor(max_workers=self.slots, thread_name_prefix="aw-task") as pool:
            while not self.stop.is_set():
                free = self.slots - len(self.held)
                if free <= 0:
                    self.stop.wait(0.1)
                    continue
                if not probe.alive():
                    if not self._oh_down_logged:
                        log.error(
                            "OpenHands at %s is unreachable; tasks stay queued. Fix: check the "
                            "openhands container or openhands_url",
                            self.config.openhands_url,
                        )
                        self._oh_down_logged = True
                    self.stop.wait(self.config.poll_interval_s)
                    continue
                self._oh_down_logged = False
                started = 0
                for entry_id, task_id in self._deliveries(free):
                    if self._take(entry_id, task_id, pool):
                        started += 1
                # Idle means nothing to do anywhere: nothing held here, nothing started, and no
                # entry pending in the group. A dead worker's entry counts: it becomes claimable
                # only after the visibility timeout, and a worker that quit before then would
                # leave it (seen in CI: a drain worker started right after a SIGKILL exited 3 s
                # later, a few ms before the entry turned claimable).
                if started or self.held or self.queue.pending_count():
                    idle_since = time.monotonic()
                elif max_idle_s is not None and time.monotonic() - idle_since > max_idle_s:
                    break
        probe.close()

    def _deliveries(self, free: int) -> list[tuple[str, str]]:
        # 1. this consumer's own pending entries (a restart after SIGKILL), not running here.
        out = [(e, t) for e, t in self.queue.read_own(self.consumer) if t not in self.held]
        # 2. entries of workers that stopped renewing them; 3. new entries.
        out.extend(self.queue.claim_stale(self.consumer, free))
        if len(out) < free:
            out.extend(self.queue.read_new(self.consumer, free - len(out), block_ms=500))
        return out

    def _take(self, entry_id: str, task_id: str, pool: ThreadPoolExecutor) -> bool:
        with self.lock:
            if task_id in self.held or len(self.held) >= self.slots:
                return False
            lease = self.queue.lease(task_id)
            if not lease.acquire():
                return False  # another worker runs it; its renewals take the entry back
            held = Held(task_id, entry_id, lease)
            self.held[task_id] = held
        pool.submit(self._run_guarded, held)
        return True

    def _heartbeat(self) -> None:
        period = self.config.visibility_timeout_s / 3
        while not self.stop.wait(period):
            with self.lock:
                held = list(self.held.values())
            for h in held:
                try:
                    h.lease.reacquire()
                except LockError:
                    log.error("task %s: lease lost; another worker may take it", h.task_id)
                    h.lost.set()
            with contextlib.suppress(Exception):
                self.queue.renew(self.consumer, [h.entry_id for h in held if not h.lost.is_set()])

    def _run_guarded(self, held: Held) -> None:
        try:
            self.run_task(held)
        except (LeaseLost, Shutdown) as exc:
            log.warning("task %s: stopped (%s); it stays pending", held.task_id, exc)
        except Exception:
            log.exception("task %s: worker error; it stays pending and is retried", held.task_id)
        finally:
            with contextlib.suppress(LockError):
                held.lease.release()
            with self.lock:
                self.held.pop(held.task_id, None)

    # --- one task ---------------------------------------------------------------------------------
    def _check(self, held: Held) -> None:
        if held.lost.is_set():
            raise LeaseLost("lease expired")
        if self.stop.is_set():
            raise Shutdown("worker stopping")

    def run_task(self, held: Held) -> None:
        q = self.queue
        try:
            task = q.get(held.task_id)
        except UnknownTask:
            q.drop_entry(held.entry_id)
            return
        if task.state in TERMINAL:
            q.drop_entry(held.entry_id)  # a duplicate delivery of a finished task
            return
        if task.state is State.QUEUED:
            if task.cancel_requested:
                self._finish(held, task, State.CANCELLED, Result("cancelled", "cancelled"))
                return

            def mark_running(t: Task) -> None:
                t.state = State.RUNNING
                t.started_at = t.started_at or time.time()

            try:
                task = q.update(task.id, mark_running, allowed=[State.QUEUED])
            except Conflict:
                q.drop_entry(held.entry_id)  # cancelled in between
                return
        else:
            log.info("task %s: recovered while running; resuming", task.id)
        oh = self.openhands()
        try:
            self._attempts(held, task, oh)
        finally:
            oh.close()

    def _attempts(self, held: Held, task: Task, oh: OpenHands) -> None:
        q = self.queue
        last_result: Result | None = None
        while True:
            self._check(held)
            last = task.attempts[-1] if task.attempts else None
            if last is not None and last.finished_at is None:
                attempt = last  # recovered: the attempt a killed worker had started
            else:
                attempt = Attempt(len(task.attempts) + 1, str(uuid.uuid4()), time.time())
                new = attempt

                def add_attempt(t: Task, a: Attempt = new) -> None:
                    t.attempts.append(a)

                task = q.update(task.id, add_attempt, allowed=[State.RUNNING])
            try:
                outcome, detail, result = self._one_attempt(held, task, attempt, oh)
            except OpenHandsUnreachable as exc:
                outcome, detail, result = Outcome.ERROR, str(exc), Result("failed", str(exc))
            except OpenHandsError as exc:
                outcome, detail, result = Outcome.ERROR, str(exc), Result("failed", str(exc))
            last_result = result
            with contextlib.suppress(OpenHandsError):
                oh.delete(attempt.conversation_id)  # frees the sandbox, whatever happened

            def close_attempt(
                t: Task, o: Outcome = outcome, d: str | None = detail, n: int = attempt.number
            ) -> None:
                for a in t.attempts:
                    if a.number == n:
                        a.finished_at, a.outcome, a.detail = time.time(), o.value, d

            task = q.update(task.id, close_attempt, allowed=[State.RUNNING])
            verdict = decide(task, outcome, detail, error_backoff_s=self.config.error_backoff_s)
            log.info("task %s attempt %d: %s -> %s", task.id, attempt.number, outcome, verdict)
            if verdict.decision is Decision.RETRY:

                def note_retry(t: Task, o: Outcome = outcome) -> None:
                    if o is Outcome.ERROR:
                        t.errors_retried += 1

                task = q.update(task.id, note_retry, allowed=[State.RUNNING], count="retried")
                if self.stop.wait(verdict.backoff_s):
                    raise Shutdown("worker stopping")
                continue
            final = {
                Decision.SUCCEED: State.SUCCEEDED,
                Decision.FAIL: State.FAILED,
                Decision.CANCEL: State.CANCELLED,
            }[verdict.decision]
            result = last_result or Result(final.value)
            result.status = final.value
            result.reason = verdict.reason
            self._finish(held, task, final, result)
            return

    def _one_attempt(
        self, held: Held, task: Task, attempt: Attempt, oh: OpenHands
    ) -> tuple[Outcome, str | None, Result]:
        cfg = self.config
        deadline = attempt.started_at + scaled_timeout(task.timeout_s, cfg.timeout_multiplier)
        conv_id = attempt.conversation_id
        existing = oh.conversation(conv_id)
        begun: str | None = None
        if existing is None:
            begun = attempt.start_task_id  # recorded when the start request answered
            if begun is None:  # killed between the request and that record
                found = oh.start_task_for(conv_id)
                begun = str(found["id"]) if found else None
        if begun is not None:
            # A start a killed worker had made: follow it rather than start a second one.
            log.info("task %s: resuming start task %s", task.id, begun)
            outcome = self._wait_started(held, task, begun, deadline, oh)
            if outcome is not None:
                return outcome
        elif existing is None:
            previous = [a for a in task.attempts if a.outcome == Outcome.ACCEPT_FAILED]
            prompt = task.prompt
            if previous and task.result:
                prompt = retry_prompt(task, task.result.accept_output, task.result.accept_exit_code)
            repository = task.repo if task.repo_is_url else None
            if not task.repo_is_url:
                prompt = (
                    f"The repository to work on is at {sandbox_path(cfg, task.repo)}; work "
                    f"there.\n\n{prompt}"
                )
            start = oh.start(
                conversation_id=conv_id,
                prompt=prompt,
                repository=repository,
                branch=task.branch,
                title=f"aw-task {task.id} #{attempt.number}",
                llm_model=task.model,
            )
            start_id = str(start.get("id"))

            def record(t: Task, n: int = attempt.number, s: str = start_id) -> None:
                for a in t.attempts:
                    if a.number == n:
                        a.start_task_id = s

            task = self.queue.update(task.id, record, allowed=[State.RUNNING])
            if self.metrics:
                self.metrics.started.observe(max(0.0, time.time() - task.submitted_at))
            outcome = self._wait_started(held, task, start_id, deadline, oh)
            if outcome is not None:
                return outcome
        # Follow the conversation until it is done, errors, times out or is cancelled.
        while True:
            self._check(held)
            current = self.queue.get(task.id)
            if current.cancel_requested:
                return Outcome.CANCELLED, "cancelled by the operator", Result("cancelled")
            if time.time() > deadline:
                timeout = scaled_timeout(task.timeout_s, cfg.timeout_multiplier)
                return (
                    Outcome.TIMEOUT,
                    f"no end after {timeout:.0f} s ({task.timeout_s:.0f} s x "
                    f"{cfg.timeout_multiplier})",
                    Result("failed", conversation_id=conv_id),
                )
            conv = oh.conversation(conv_id)
            execution = (conv or {}).get("execution_status")
            sandbox = (conv or {}).get("sandbox_status")
            if conv is None or sandbox in DEAD_SANDBOX:
                return (
                    Outcome.ERROR,
                    f"conversation {conv_id}: sandbox {sandbox or 'gone'}",
                    Result("failed", conversation_id=conv_id),
                )
            if execution in DONE_EXECUTION:
                break
            self.stop.wait(cfg.poll_interval_s)
        # The sandbox posts its events to the app by webhook in batches, so the status can be
        # final before the error event or the final message is in (seen against the real 1.11.0
        # app, about 10 s late): read again until it is, for at most event_grace_s.
        wanted = error_detail if execution in ERROR_EXECUTION else final_message
        events = oh.events(conv_id)
        grace_ends = time.monotonic() + cfg.event_grace_s
        while wanted(events) is None and time.monotonic() < grace_ends:
            if self.stop.wait(cfg.poll_interval_s):
                break
            events = oh.events(conv_id)
        result = Result("running", final_message=final_message(events), conversation_id=conv_id)
        if execution in ERROR_EXECUTION:
            detail = error_detail(events) or f"execution_status {execution}"
            result.reason = detail
            return Outcome.ERROR, detail, result
        self._collect_changes(task, oh, conv_id, result)
        if task.accept:
            code, output = self._accept(task)
            result.accept_exit_code, result.accept_output = code, output
            if code != 0:
                self._save_result(task.id, result)
                return Outcome.ACCEPT_FAILED, f"`{task.accept}` exited {code}", result
        return Outcome.FINISHED, None, result

    def _wait_started(
        self, held: Held, task: Task, start_id: str, deadline: float, oh: OpenHands
    ) -> tuple[Outcome, str | None, Result] | None:
        while True:
            self._check(held)
            st = oh.start_task(start_id) or {}
            status = st.get("status")
            if status == "READY":
                return None
            if status == "ERROR":
                self._free_sandbox(oh, st)
                detail = f"start task {start_id}: {st.get('detail') or 'ERROR'}"
                return Outcome.ERROR, detail, Result("failed", detail)
            if self.queue.get(task.id).cancel_requested:
                self._stop_start(held, oh, start_id, st, deadline)
                return Outcome.CANCELLED, "cancelled by the operator", Result("cancelled")
            if time.time() > deadline:
                self._free_sandbox(oh, st)
                return Outcome.TIMEOUT, f"start task {start_id} still {status}", Result("failed")
            self.stop.wait(min(self.config.poll_interval_s, 1.0))

    def _stop_start(
        self, held: Held, oh: OpenHands, start_id: str, st: dict[str, Any], deadline: float
    ) -> None:
        """Cancel during a start: delete its sandbox, which may not be known yet. The start task
        names it only once the sandbox service answers (the real process service waits for the
        agent-server first); the app names a requested conversation's sandbox after its id
        (live_status_app_conversation_service.py `_wait_for_sandbox_start`: conversation_id.hex),
        so that name is deleted until it exists or the start ends."""
        named = str((st.get("request") or {}).get("conversation_id") or "").replace("-", "")
        while True:
            sandbox_id = st.get("sandbox_id") or named
            if sandbox_id:
                try:
                    if oh.delete_sandbox(str(sandbox_id)):
                        return
                except OpenHandsError as exc:
                    log.warning("could not delete sandbox %s: %s", sandbox_id, exc)
            if st.get("status") in ("READY", "ERROR") or time.time() > deadline:
                return  # READY: the conversation's delete that follows frees it
            if self.stop.wait(min(self.config.poll_interval_s, 1.0)):
                return
            st = oh.start_task(start_id) or st

    @staticmethod
    def _free_sandbox(oh: OpenHands, start_task: dict[str, Any]) -> None:
        """A start that did not reach READY leaves its sandbox running: delete it (best effort;
        the next attempt starts a new one either way)."""
        sandbox_id = start_task.get("sandbox_id")
        if not sandbox_id:
            return
        try:
            oh.delete_sandbox(str(sandbox_id))
        except OpenHandsError as exc:
            log.warning("could not delete sandbox %s of a failed start: %s", sandbox_id, exc)

    def _collect_changes(self, task: Task, oh: OpenHands, conv_id: str, result: Result) -> None:
        if task.repo_is_url:
            return
        try:
            result.changed_files = oh.git_changes(conv_id, sandbox_path(self.config, task.repo))
        except OpenHandsError as exc:
            log.warning("task %s: git/changes failed (%s); using local git", task.id, exc)
            status = _git(task.repo, "status", "--porcelain")
            result.changed_files = [
                {"status": line[:2].strip(), "path": line[3:]} for line in status.splitlines()
            ]
        diff = _git(task.repo, "diff", "HEAD")
        result.diff = diff or None

    def _accept(self, task: Task) -> tuple[int, str]:
        assert task.accept
        try:
            done = subprocess.run(
                task.accept,
                shell=True,
                cwd=task.repo,
                capture_output=True,
                text=True,
                timeout=self.config.accept_timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return 124, f"timed out after {self.config.accept_timeout_s:.0f} s"
        return done.returncode, (done.stdout + done.stderr)[-8000:]

    def _save_result(self, task_id: str, result: Result) -> None:
        def put(t: Task) -> None:
            t.result = result

        self.queue.update(task_id, put, allowed=[State.RUNNING])

    def _finish(self, held: Held, task: Task, state: State, result: Result) -> None:
        if state is not State.CANCELLED:
            self._check(held)

        def put(t: Task) -> None:
            t.state = state
            t.finished_at = time.time()
            t.result = result

        counter = {State.SUCCEEDED: "succeeded", State.FAILED: "failed"}.get(state, "cancelled")
        task = self.queue.update(task.id, put, ack_entry=held.entry_id, count=counter)
        if self.metrics and task.started_at and task.finished_at:
            self.metrics.duration.labels(state.value).observe(task.finished_at - task.started_at)
        write_result(self.config.results_dir, task)

    def export_missing_results(self) -> None:
        directory = Path(self.config.results_dir).expanduser()
        for state in TERMINAL:
            for task_id in self.queue.ids_in(state):
                if not (directory / f"{task_id}.json").exists():
                    write_result(self.config.results_dir, self.queue.get(task_id))


def _git(repo: str, *args: str) -> str:
    try:
        done = subprocess.run(
            ["git", "-C", repo, *args], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout if done.returncode == 0 else ""
