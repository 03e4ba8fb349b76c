"""aw-task: submit, list, show, cancel and retry queued OpenHands tasks; run the worker."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any

from prometheus_client import start_http_server

from .config import Config, ConfigError, load
from .metrics import Metrics
from .model import TERMINAL, State, Task, TaskError, new_task, reset_for_retry
from .openhands import OpenHands
from .store import Queue, QueueError, connect
from .worker import Worker

EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_UNKNOWN = 4


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="aw-task", description=__doc__)
    p.add_argument("--config", help="TOML settings file (default ~/.config/aw-task/config.toml)")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("submit", help="queue a task; prints its id")
    s.add_argument("--repo", required=True, help="repository path on this machine, or a URL")
    s.add_argument("--branch", help="branch (for a URL repository)")
    prompt = s.add_mutually_exclusive_group(required=True)
    prompt.add_argument("--prompt", help="the instruction")
    prompt.add_argument("--prompt-file", help="file holding the instruction")
    s.add_argument("--accept", help="acceptance command, run in the repository afterwards")
    s.add_argument(
        "--timeout", type=float, default=1800.0, help="seconds (x timeout_multiplier, default 4.0)"
    )
    s.add_argument("--retries", type=int, default=1, help="acceptance retries (default 1)")
    s.add_argument("--label", action="append", default=[], help="a label (repeatable)")
    s.add_argument(
        "--model", help="LLM for this task, e.g. openai/<served name> (default: OpenHands' own)"
    )

    ls = sub.add_parser("list", help="list the tasks")
    ls.add_argument("--json", action="store_true")
    ls.add_argument("--state", choices=[s.value for s in State])

    sh = sub.add_parser("show", help="show one task")
    sh.add_argument("id")
    sh.add_argument("--json", action="store_true")

    c = sub.add_parser("cancel", help="cancel a queued or running task")
    c.add_argument("id")
    r = sub.add_parser("retry", help="queue a finished, failed or cancelled task again")
    r.add_argument("id")

    w = sub.add_parser("worker", help="run the worker (the systemd user service runs this)")
    w.add_argument("--concurrency", type=int, help="tasks at once (overrides the config)")
    w.add_argument(
        "--exit-when-idle",
        type=float,
        help=(
            "stop after this many seconds with nothing queued, running or pending in the group "
            "(drains the queue, a dead worker's tasks included)"
        ),
    )
    return p


def _summary(task: Task) -> dict[str, Any]:
    return {
        "id": task.id,
        "state": task.state.value,
        "repo": task.repo,
        "labels": task.labels,
        "attempts": len(task.attempts),
        "submitted_at": task.submitted_at,
        "finished_at": task.finished_at,
        "reason": task.result.reason if task.result else None,
    }


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        config = load(args.config)
        if args.command == "worker":
            return _worker(config, args)
        queue = Queue(connect(config), config)
        return _command(config, queue, args)
    except ConfigError as exc:
        print(f"aw-task: configuration: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except TaskError as exc:
        print(f"aw-task: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except QueueError as exc:
        code = EXIT_UNKNOWN if "no task with id" in str(exc) else EXIT_UNREACHABLE
        if "this needs it to be" in str(exc):
            code = EXIT_USAGE
        print(f"aw-task: {exc}", file=sys.stderr)
        return code


def _command(config: Config, queue: Queue, args: argparse.Namespace) -> int:
    if args.command == "submit":
        if args.prompt_file:
            try:
                prompt = Path(args.prompt_file).read_text(encoding="utf-8")
            except OSError as exc:
                raise TaskError(f"--prompt-file {args.prompt_file!r}: {exc.strerror}") from exc
        else:
            prompt = args.prompt
        task = new_task(
            repo=args.repo,
            prompt=prompt,
            branch=args.branch,
            accept=args.accept,
            timeout_s=args.timeout,
            retries=args.retries,
            labels=args.label,
            model=args.model,
        )
        queue.submit(task)
        oh = OpenHands(config.openhands_url, api_key=config.openhands_api_key())
        if not oh.alive():
            print(
                f"aw-task: warning: OpenHands at {config.openhands_url} is unreachable; the "
                "task is queued and runs when it answers",
                file=sys.stderr,
            )
        oh.close()
        print(task.id)
        return 0
    if args.command == "list":
        tasks = [t for t in queue.all() if not args.state or t.state.value == args.state]
        if args.json:
            print(json.dumps([_summary(t) for t in tasks], indent=2))
        else:
            for t in tasks:
                when = time.strftime("%Y-%m-%d %H:%M", time.localtime(t.submitted_at))
                print(f"{t.id}  {t.state.value:<9}  {when}  {t.repo}")
        return 0
    if args.command == "show":
        task = queue.get(args.id)
        if args.json:
            print(json.dumps(dataclasses.asdict(task), indent=2, default=str))
        else:
            for key, value in _summary(task).items():
                print(f"{key:>13}: {value}")
            if task.result and task.result.final_message:
                print(f"final message: {task.result.final_message}")
        return 0
    if args.command == "cancel":
        return _cancel(queue, args.id)
    if args.command == "retry":
        queue.update(args.id, reset_for_retry, allowed=TERMINAL)
        print(f"{args.id} queued again")
        return 0
    raise AssertionError(args.command)


def _cancel(queue: Queue, task_id: str) -> int:
    task = queue.get(task_id)
    if task.state is State.QUEUED:

        def cancel(t: Task) -> None:
            t.state = State.CANCELLED
            t.cancel_requested = True
            t.finished_at = time.time()

        queue.update(task_id, cancel, allowed=[State.QUEUED], count="cancelled")
        # Its stream entry goes too (a worker that already holds it sees the state and acks).
        for entry_id in queue.entries_for(task_id):
            queue.r.xdel(queue.stream, entry_id)
        print(f"{task_id} cancelled")
        return 0
    if task.state is State.RUNNING:

        def request(t: Task) -> None:
            t.cancel_requested = True

        queue.update(task_id, request, allowed=[State.RUNNING])
        print(f"{task_id} cancelling: the worker stops its conversation and deletes its sandbox")
        return 0
    print(f"aw-task: task {task_id} is already {task.state.value}", file=sys.stderr)
    return EXIT_USAGE


def _worker(config: Config, args: argparse.Namespace) -> int:
    if args.concurrency:
        config.concurrency = args.concurrency
        config.validate()
    queue = Queue(connect(config), config)
    metrics = Metrics(queue, config.effective_concurrency)
    if config.metrics_listen:
        host, _, port = config.metrics_listen.rpartition(":")
        start_http_server(int(port), addr=host or "127.0.0.1", registry=metrics.registry)

    def factory() -> OpenHands:
        return OpenHands(
            config.openhands_url,
            api_key=config.openhands_api_key(),
            transient_backoff_s=config.transient_backoff_s,
        )

    worker = Worker(config, queue, factory, metrics)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop.set())
    signal.signal(signal.SIGINT, lambda *_: worker.stop.set())
    worker.run(max_idle_s=args.exit_when_idle)
    return 0
