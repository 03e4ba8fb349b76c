"""Timeouts and retry decisions (pure functions, unit tested without Redis or OpenHands).

- Timeouts are written for a cloud model and scale with the local-backend multiplier (the
  design brief's 4.0: a local 32B model is about four times slower than a hosted one).
- An OpenHands error (a conversation that ends in `error` or `stuck`, a start task in ERROR, a
  sandbox in ERROR or MISSING, a transient HTTP failure that outlived its one retry) is retried
  once after a backoff, whatever the task's budget; a second error fails the task with it.
- A failing acceptance command is retried with its output in the prompt, up to the task's
  retry budget; then the task fails with the command's exit code.
- A timeout fails the task (a retry would cost as long again on the same GPU).
"""

from __future__ import annotations

import dataclasses
import enum

from .model import Task

MAX_ERROR_RETRIES = 1
ACCEPT_OUTPUT_LIMIT = 4000


class Outcome(enum.StrEnum):
    FINISHED = "finished"
    ERROR = "error"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    ACCEPT_FAILED = "accept_failed"


class Decision(enum.StrEnum):
    SUCCEED = "succeed"
    RETRY = "retry"
    FAIL = "fail"
    CANCEL = "cancel"


@dataclasses.dataclass(frozen=True)
class Verdict:
    decision: Decision
    reason: str | None = None
    backoff_s: float = 0.0


def scaled_timeout(timeout_s: float, multiplier: float) -> float:
    """The wall-clock budget of one attempt on the local backend."""
    if multiplier <= 0:
        raise ValueError(f"timeout multiplier {multiplier!r} must be positive")
    return timeout_s * multiplier


def accept_retries_used(task: Task) -> int:
    return sum(1 for a in task.attempts if a.outcome == Outcome.ACCEPT_FAILED)


def decide(task: Task, outcome: Outcome, detail: str | None, *, error_backoff_s: float) -> Verdict:
    """What to do after an attempt ended with `outcome` (the attempt is already recorded)."""
    if outcome is Outcome.CANCELLED or task.cancel_requested:
        return Verdict(Decision.CANCEL, "cancelled by the operator")
    if outcome is Outcome.FINISHED:
        return Verdict(Decision.SUCCEED)
    if outcome is Outcome.TIMEOUT:
        return Verdict(Decision.FAIL, f"timeout: {detail}")
    if outcome is Outcome.ERROR:
        if task.errors_retried < MAX_ERROR_RETRIES:
            return Verdict(
                Decision.RETRY,
                f"OpenHands error, retrying once: {detail}",
                backoff_s=error_backoff_s * (2**task.errors_retried),
            )
        return Verdict(Decision.FAIL, f"OpenHands error (after one retry): {detail}")
    # ACCEPT_FAILED: the attempt just recorded is counted in accept_retries_used.
    if accept_retries_used(task) <= task.retries:
        return Verdict(Decision.RETRY, f"acceptance command failed, retrying: {detail}")
    return Verdict(Decision.FAIL, f"acceptance command failed: {detail}")


def retry_prompt(task: Task, accept_output: str | None, exit_code: int | None) -> str:
    """The prompt of an acceptance retry: the instruction plus the failure to fix."""
    output = (accept_output or "")[-ACCEPT_OUTPUT_LIMIT:]
    return (
        f"{task.prompt}\n\n"
        f"A previous attempt did not pass the acceptance command `{task.accept}` "
        f"(exit code {exit_code}). Its output (last {ACCEPT_OUTPUT_LIMIT} characters):\n"
        f"```\n{output}\n```\n"
        "Fix the problem so that the acceptance command passes."
    )
