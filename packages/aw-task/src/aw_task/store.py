"""The queue in Redis: a stream with a consumer group, one record per task, a lease per task.

Keys (prefix `aw-task` by default; the stream name is the one redis_exporter watches):
- `openhands:queue`           stream; one entry {task: ID} per queued run. XREADGROUP hands
                              it to one worker; it stays in the group's pending-entries list
                              (PEL) until XACK. An entry whose worker died (no XCLAIM renewal
                              for the visibility timeout) is taken over with XAUTOCLAIM.
                              Entries are XDELeted when the task ends, so XLEN is the number
                              of tasks waiting or running.
- `aw-task:task:ID`           hash {doc: task JSON, state}; changed only by compare-and-set
                              (WATCH/MULTI), so a CLI cancel and a worker never overwrite
                              each other.
- `aw-task:state:STATE`       sorted set of ids by time (queue depth, oldest waiting age).
- `aw-task:lease:ID`          redis-py Lock (SET NX PX + token): at most one worker runs a
                              task at a time, even when two hold its stream entry.
- `aw-task:stats`             hash of counters (succeeded, failed, cancelled, retried).
Redis runs with appendonly yes (roles/agent_stack/templates/redis.conf.j2), so a queued task
survives a Redis restart too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, cast

import redis
from redis.lock import Lock

from .config import Config
from .model import State, Task, check_transition


class QueueError(RuntimeError):
    """A queue operation failed; the message says what to do."""


class UnknownTask(QueueError):
    pass


class Conflict(QueueError):
    """The task was not in a state that allows the change."""


def connect(config: Config) -> redis.Redis:
    client = redis.Redis.from_url(
        config.redis_url,
        password=config.redis_password() or None,
        decode_responses=True,
        socket_connect_timeout=5,
        socket_timeout=30,
        health_check_interval=30,
    )
    try:
        client.ping()
    except redis.AuthenticationError as exc:
        raise QueueError(
            f"Redis at {config.redis_url} refused the password ({exc}). Fix: set "
            "redis_password_file (AW_TASK_REDIS_PASSWORD_FILE) to the stack's redis_password"
        ) from exc
    except redis.ConnectionError as exc:
        raise QueueError(
            f"Redis at {config.redis_url} is unreachable ({exc}). Fix: start the agent stack "
            "(./scripts/site.sh --tags stack) or set redis_url (AW_TASK_REDIS_URL)"
        ) from exc
    return client


class Queue:
    def __init__(self, client: redis.Redis, config: Config) -> None:
        self.r = client
        self.config = config
        self.stream = config.stream
        self.group = config.group
        self.p = config.key_prefix

    # --- keys -------------------------------------------------------------------------------
    def task_key(self, task_id: str) -> str:
        return f"{self.p}:task:{task_id}"

    def state_key(self, state: State) -> str:
        return f"{self.p}:state:{state}"

    def lease_key(self, task_id: str) -> str:
        return f"{self.p}:lease:{task_id}"

    @property
    def stats_key(self) -> str:
        return f"{self.p}:stats"

    # --- set-up -----------------------------------------------------------------------------
    def ensure_group(self) -> None:
        try:
            # id 0: entries added before the group existed are delivered too.
            self.r.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    # --- reading ----------------------------------------------------------------------------
    def get(self, task_id: str) -> Task:
        doc = cast("str | None", self.r.hget(self.task_key(task_id), "doc"))
        if doc is None:
            raise UnknownTask(f"no task with id {task_id!r}. Fix: `aw-task list` shows the ids")
        return Task.from_json(doc)

    def all(self) -> list[Task]:
        ids: list[str] = []
        for state in State:
            ids.extend(cast("list[str]", self.r.zrange(self.state_key(state), 0, -1)))
        tasks = [self.get(i) for i in ids]
        return sorted(tasks, key=lambda t: t.submitted_at)

    def count(self, state: State) -> int:
        return int(self.r.zcard(self.state_key(state)))

    def oldest_waiting_age(self, now: float | None = None) -> float:
        first = cast(
            "list[tuple[str, float]]",
            self.r.zrange(self.state_key(State.QUEUED), 0, 0, withscores=True),
        )
        if not first:
            return 0.0
        return max(0.0, (now or time.time()) - first[0][1])

    def stats(self) -> dict[str, int]:
        raw = cast("dict[str, str]", self.r.hgetall(self.stats_key))
        return {k: int(v) for k, v in raw.items()}

    # --- writing ----------------------------------------------------------------------------
    def submit(self, task: Task) -> str:
        self.ensure_group()
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(self.task_key(task.id), mapping={"doc": task.to_json(), "state": task.state})
        pipe.zadd(self.state_key(State.QUEUED), {task.id: task.submitted_at})
        pipe.xadd(self.stream, {"task": task.id})
        pipe.hincrby(self.stats_key, "submitted", 1)
        pipe.execute()
        return task.id

    def update(
        self,
        task_id: str,
        change: Callable[[Task], None],
        *,
        allowed: Iterable[State] | None = None,
        ack_entry: str | None = None,
        count: str | None = None,
    ) -> Task:
        """Compare-and-set: apply `change` to the stored task unless another writer got there
        first (WATCH retries); refuse when the task is not in one of the `allowed` states."""
        key = self.task_key(task_id)
        allowed_set = set(allowed) if allowed is not None else None
        while True:
            with self.r.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(key)  # type: ignore[no-untyped-call]
                    doc = cast("str | None", pipe.hget(key, "doc"))
                    if doc is None:
                        raise UnknownTask(
                            f"no task with id {task_id!r}. Fix: `aw-task list` shows the ids"
                        )
                    task = Task.from_json(doc)
                    old = task.state
                    if allowed_set is not None and old not in allowed_set:
                        raise Conflict(
                            f"task {task_id} is {old}; this needs it to be "
                            + " or ".join(sorted(allowed_set))
                        )
                    change(task)
                    if task.state != old:
                        check_transition(old, task.state)
                    pipe.multi()
                    pipe.hset(key, mapping={"doc": task.to_json(), "state": task.state})
                    if task.state != old:
                        pipe.zrem(self.state_key(old), task_id)
                        pipe.zadd(self.state_key(task.state), {task_id: _state_time(task)})
                    if task.state is State.QUEUED and old is not State.QUEUED:
                        pipe.xadd(self.stream, {"task": task_id})
                    if ack_entry:
                        pipe.xack(self.stream, self.group, ack_entry)
                        pipe.xdel(self.stream, ack_entry)
                    if count:
                        pipe.hincrby(self.stats_key, count, 1)
                    pipe.execute()
                    return task
                except redis.WatchError:
                    continue

    # --- the consumer side ------------------------------------------------------------------
    def read_new(self, consumer: str, count: int, block_ms: int) -> list[tuple[str, str]]:
        if count <= 0:
            return []
        reply = cast(
            "list[Any] | None",
            self.r.xreadgroup(
                self.group, consumer, {self.stream: ">"}, count=count, block=block_ms
            ),
        )
        return _entries(reply[0][1] if reply else [])

    def claim_stale(self, consumer: str, count: int) -> list[tuple[str, str]]:
        """Entries whose worker stopped renewing them for the visibility timeout."""
        if count <= 0:
            return []
        reply: list[Any] = self.r.xautoclaim(
            self.stream,
            self.group,
            consumer,
            min_idle_time=int(self.config.visibility_timeout_s * 1000),
            start_id="0-0",
            count=count,
        )
        return _entries(reply[1])

    def renew(self, consumer: str, entry_ids: list[str]) -> None:
        """Reset the idle time of entries this worker is running (XCLAIM ... JUSTID)."""
        if entry_ids:
            ids: list[str | bytes | int | memoryview[int]] = list(entry_ids)
            self.r.xclaim(self.stream, self.group, consumer, 0, ids, justid=True)

    def read_own(self, consumer: str) -> list[tuple[str, str]]:
        """This consumer's pending entries (XREADGROUP id 0): what it held before a restart."""
        reply = cast(
            "list[Any] | None",
            self.r.xreadgroup(self.group, consumer, {self.stream: "0"}, count=100),
        )
        return _entries(reply[0][1] if reply else [])

    def pending_count(self) -> int:
        """Entries delivered to some consumer and not yet finished (the group's PEL), including
        those of a worker that died: they become claimable after the visibility timeout."""
        try:
            summary: dict[str, Any] = self.r.xpending(self.stream, self.group)
        except redis.ResponseError:
            return 0
        return int(summary.get("pending", 0))

    def entries_for(self, task_id: str) -> list[str]:
        raw = cast("list[Any]", self.r.xrange(self.stream, "-", "+"))
        return [entry_id for entry_id, task in _entries(raw) if task == task_id]

    def ids_in(self, state: State) -> list[str]:
        return cast("list[str]", self.r.zrange(self.state_key(state), 0, -1))

    def drop_entry(self, entry_id: str) -> None:
        pipe = self.r.pipeline(transaction=True)
        pipe.xack(self.stream, self.group, entry_id)
        pipe.xdel(self.stream, entry_id)
        pipe.execute()

    def lease(self, task_id: str) -> Lock:
        return self.r.lock(  # type: ignore[no-any-return]
            self.lease_key(task_id),
            timeout=self.config.visibility_timeout_s,
            blocking=False,
            thread_local=False,
        )

    def forget_idle_consumers(self, older_than_s: float = 86400.0) -> None:
        try:
            consumers: list[dict[str, Any]] = self.r.xinfo_consumers(self.stream, self.group)
        except redis.ResponseError:
            return
        for c in consumers:
            if int(c.get("pending", 0)) == 0 and int(c.get("idle", 0)) > older_than_s * 1000:
                self.r.xgroup_delconsumer(self.stream, self.group, c["name"])


def _state_time(task: Task) -> float:
    if task.state is State.QUEUED:
        return task.submitted_at
    if task.state is State.RUNNING:
        return task.started_at or time.time()
    return task.finished_at or time.time()


def _entries(raw: list[Any]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for item in raw:
        if not item:
            continue
        entry_id, fields = item[0], item[1]
        if fields and "task" in fields:
            out.append((entry_id, fields["task"]))
    return out
