#!/usr/bin/env python3
"""Benchmark (not a test): delay between the vLLM stand-in becoming ready and vllm_ready's
wait_ready() (the code the module runs) reporting ready, for several poll intervals.

Method: the stand-in (tests/standins/vllm_standin.py) runs in a thread of this process on a
free port; it refuses connections for --load-seconds, answers 503 for a varied number of
seconds, then is ready at a known epoch (state.ready_at). wait_ready() polls /health with its
backoff (0.25 s doubling up to poll_interval), then /v1/models and /metrics. The delay is
time.time() when wait_ready returns minus ready_at. Run: python tests/bench/bench_vllm_ready.py
"""

import socket
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "standins"))

sys.path.insert(0, str(ROOT / "collections"))  # the repository as agent_workstation.aw
from ansible_collections.agent_workstation.aw.plugins.module_utils.aw_vllm import wait_ready  # noqa: E402 - after the module_utils path
from vllm_standin import serve  # noqa: E402 - after sys.path names the stand-ins

POLL_INTERVALS = (0.5, 1.0, 2.0, 5.0)
UNHEALTHY = (1.3, 2.1, 3.7, 6.2)  # varied so readiness falls at different points of a poll


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def one_run(poll_interval: float, unhealthy: float) -> float:
    port = free_port()
    stop = threading.Event()
    holder = {}

    def run():
        holder["state"] = serve(
            port, ["qwen-coder"], load_seconds=1.0, unhealthy_seconds=unhealthy, stop=stop
        )

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    result = wait_ready(
        f"http://127.0.0.1:{port}", ["qwen-coder"], timeout=60, poll_interval=poll_interval
    )
    reported = time.time()
    stop.set()
    thread.join(timeout=10)
    assert result["ready"], result
    return reported - holder["state"].ready_at


def main() -> int:
    print("| poll_interval (s) | runs | mean delay (s) | max delay (s) |")
    print("|---|---|---|---|")
    for interval in POLL_INTERVALS:
        delays = [one_run(interval, u) for u in UNHEALTHY]
        print(
            f"| {interval:g} | {len(delays)} | {statistics.mean(delays):.2f} | {max(delays):.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
