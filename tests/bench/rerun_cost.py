#!/usr/bin/env python3
"""Benchmark: what a no-op re-run of each role costs, read from Molecule's idempotence step.

The idempotence step of every scenario is a second converge that must change nothing: exactly
the re-run an operator does for years. This reads the scenario logs that scripts/test.sh keeps
(.cache/test-logs/molecule-*.log) and prints, per scenario, the tasks that ran (ok=), the
changes (must be 0) and the play's wall time from the profile_tasks callback, plus the sum.

    python3 tests/bench/rerun_cost.py [LOG_DIR]

Not a test: the figures depend on the machine (record them in the README with its description).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ANSI = re.compile(r"\x1b\[[0-9;]*m")
RECAP = re.compile(r"^\S+\s+:\s+ok=(\d+)\s+changed=(\d+)")
ELAPSED = re.compile(r"\(\d+:\d+:\d+\.\d+\)\s+(\d+):(\d+):(\d+\.\d+)\s*$")


def idempotence_cost(text: str) -> tuple[int, int, float] | None:
    """(tasks ok, changed, seconds) of the idempotence step in one Molecule log, or None."""
    lines = [ANSI.sub("", line).replace("│", " ").strip() for line in text.splitlines()]
    try:
        start = next(i for i, line in enumerate(lines) if "idempotence: Executing" in line)
        end = next(i for i in range(start, len(lines)) if "idempotence: Executed" in lines[i])
    except StopIteration:
        return None
    ok = changed = 0
    seconds = 0.0
    for line in lines[start:end]:
        recap = RECAP.match(line)
        if recap and not line.startswith("localhost"):
            ok, changed = int(recap.group(1)), int(recap.group(2))
        elapsed = ELAPSED.search(line)
        if elapsed:
            hours, minutes, secs = elapsed.groups()
            seconds = int(hours) * 3600 + int(minutes) * 60 + float(secs)
    return ok, changed, seconds


def main(argv: list[str]) -> int:
    log_dir = Path(argv[1] if len(argv) > 1 else ".cache/test-logs")
    rows = []
    for log in sorted(log_dir.glob("molecule-*.log")):
        cost = idempotence_cost(log.read_text(encoding="utf-8", errors="replace"))
        if cost:
            rows.append((log.stem.removeprefix("molecule-"), *cost))
    if not rows:
        print(f"no idempotence step found in {log_dir}/molecule-*.log", file=sys.stderr)
        return 1
    print(f"{'scenario':40} {'tasks':>6} {'changed':>8} {'seconds':>8}")
    for name, ok, changed, seconds in rows:
        print(f"{name:40} {ok:6d} {changed:8d} {seconds:8.1f}")
    print(
        f"{'total':40} {sum(r[1] for r in rows):6d} {sum(r[2] for r in rows):8d} "
        f"{sum(r[3] for r in rows):8.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
