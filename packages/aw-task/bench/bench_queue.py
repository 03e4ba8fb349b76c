"""Benchmark: queue overhead per task and throughput of 20 short tasks at N = 1, 2, 3.

Runs a real redis-server (AOF on) and the OpenHands STAND-IN (tests/standin_openhands.py; not
OpenHands: its "agent" sleeps TASK_S and finishes), so the figures are the queue's own cost:
  submit -> start request received by OpenHands  (the first LLM request comes after that, from
                                                  the sandbox: not measurable with a stand-in)
  conversation finished -> result stored in Redis (poll interval + events, diff, delete)
Usage: python bench/bench_queue.py [--tasks 20] [--task-s 1.0] [--poll 0.5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from aw_task.config import Config
from aw_task.model import State, new_task
from aw_task.openhands import OpenHands
from aw_task.store import Queue, connect
from aw_task.worker import Worker
from standin_openhands import StandIn


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=20)
    ap.add_argument("--task-s", type=float, default=1.0)
    ap.add_argument("--poll", type=float, default=0.5)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="aw-bench-"))
    port = 6391
    redis = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(tmp),
            "--appendonly",
            "yes",
            "--save",
            "",
        ],
        stdout=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    repo = tmp / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    print(f"{args.tasks} tasks of {args.task_s} s (stand-in agent), poll {args.poll} s")
    print("N  wall_s  tasks/min  submit->start p50/max  finish->stored p50/max")
    try:
        for n in (1, 2, 3):
            standin = StandIn()
            url = standin.start()
            config = Config(
                redis_url=f"redis://127.0.0.1:{port}/0",
                key_prefix=f"bench{n}",
                stream=f"bench{n}:queue",
                concurrency=n,
                poll_interval_s=args.poll,
                results_dir=str(tmp / f"results{n}"),
                metrics_listen="",
            )
            queue = Queue(connect(config), config)
            t0 = time.time()
            ids = [
                queue.submit(new_task(repo=str(repo), prompt=f"STANDIN:sleep={args.task_s}"))
                for _ in range(args.tasks)
            ]
            Worker(config, queue, lambda u=url: OpenHands(u), consumer="bench").run(max_idle_s=1.0)
            tasks = [queue.get(i) for i in ids]
            assert all(t.state is State.SUCCEEDED for t in tasks)
            wall = max(t.finished_at or 0 for t in tasks) - t0
            starts = sorted(standin.start_times)
            subs = sorted(t.submitted_at for t in tasks)
            # Waiting for a free slot is queueing, not overhead: take the first n.
            overhead = [s - b for s, b in zip(starts[:n], subs[:n], strict=True)]
            stored = [
                (t.finished_at or 0) - (t.attempts[-1].started_at + args.task_s) for t in tasks
            ]
            print(
                f"{n}  {wall:6.1f}  {args.tasks / wall * 60:9.1f}  "
                f"{statistics.median(overhead):.3f}/{max(overhead):.3f} s          "
                f"{statistics.median(stored):.3f}/{max(stored):.3f} s"
            )
            standin.stop()
    finally:
        redis.terminate()
        redis.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
