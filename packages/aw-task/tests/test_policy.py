"""Unit tests of the state machine, the retry/backoff decisions, timeout scaling, config."""

from __future__ import annotations

from pathlib import Path

import pytest
from aw_task.config import ConfigError, load
from aw_task.model import (
    Attempt,
    InvalidTransition,
    State,
    TaskError,
    check_transition,
    new_task,
    reset_for_retry,
)
from aw_task.policy import Decision, Outcome, decide, retry_prompt, scaled_timeout


def task_with(attempts: list[str], retries: int = 1, errors_retried: int = 0):  # type: ignore[no-untyped-def]
    t = new_task(repo="/nowhere", prompt="do it", retries=retries, check_path=False)
    t.attempts = [Attempt(i + 1, f"c{i}", 0.0, 1.0, o) for i, o in enumerate(attempts)]
    t.errors_retried = errors_retried
    return t


@pytest.mark.parametrize(
    ("old", "new", "ok"),
    [
        (State.QUEUED, State.RUNNING, True),
        (State.QUEUED, State.CANCELLED, True),
        (State.QUEUED, State.SUCCEEDED, False),
        (State.RUNNING, State.SUCCEEDED, True),
        (State.RUNNING, State.QUEUED, True),
        (State.SUCCEEDED, State.RUNNING, False),
        (State.FAILED, State.QUEUED, True),
        (State.CANCELLED, State.FAILED, False),
    ],
)
def test_transitions(old: State, new: State, ok: bool) -> None:
    if ok:
        check_transition(old, new)
    else:
        with pytest.raises(InvalidTransition):
            check_transition(old, new)


def test_timeout_scales_with_the_local_multiplier() -> None:
    assert scaled_timeout(600, 4.0) == 2400
    assert scaled_timeout(600, 1.0) == 600
    with pytest.raises(ValueError, match="multiplier"):
        scaled_timeout(600, 0)


def test_finished_succeeds_and_cancel_wins() -> None:
    assert decide(task_with(["finished"]), Outcome.FINISHED, None, error_backoff_s=1).decision is (
        Decision.SUCCEED
    )
    t = task_with(["finished"])
    t.cancel_requested = True
    assert decide(t, Outcome.FINISHED, None, error_backoff_s=1).decision is Decision.CANCEL


def test_an_error_is_retried_once_with_backoff_then_fails_with_the_reason() -> None:
    first = decide(task_with(["error"], retries=0), Outcome.ERROR, "boom", error_backoff_s=30)
    assert first.decision is Decision.RETRY and first.backoff_s == 30
    second = decide(
        task_with(["error", "error"], retries=5, errors_retried=1),
        Outcome.ERROR,
        "boom again",
        error_backoff_s=30,
    )
    assert second.decision is Decision.FAIL
    assert second.reason is not None and "boom again" in second.reason


def test_a_timeout_fails_without_retry() -> None:
    v = decide(task_with(["timeout"], retries=3), Outcome.TIMEOUT, "no end", error_backoff_s=1)
    assert v.decision is Decision.FAIL and v.reason == "timeout: no end"


@pytest.mark.parametrize(
    ("attempts", "retries", "decision"),
    [
        (["accept_failed"], 0, Decision.FAIL),
        (["accept_failed"], 1, Decision.RETRY),
        (["accept_failed", "accept_failed"], 1, Decision.FAIL),
        (["accept_failed", "accept_failed"], 2, Decision.RETRY),
        (["error", "accept_failed"], 1, Decision.RETRY),
    ],
)
def test_acceptance_retries_up_to_the_budget(
    attempts: list[str], retries: int, decision: Decision
) -> None:
    t = task_with(attempts, retries=retries)
    assert decide(t, Outcome.ACCEPT_FAILED, "exit 1", error_backoff_s=1).decision is decision


def test_retry_prompt_carries_the_failure() -> None:
    t = new_task(repo="/r", prompt="fix it", accept="make test", check_path=False)
    text = retry_prompt(t, "x" * 10000 + "FAILED test_a", 2)
    assert text.startswith("fix it")
    assert "`make test`" in text and "exit code 2" in text and "FAILED test_a" in text
    assert len(text) < 5000


def test_new_task_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(TaskError, match="--repo '/no/such': no such directory"):
        new_task(repo="/no/such", prompt="p")
    with pytest.raises(TaskError, match="not a git repository"):
        new_task(repo=str(tmp_path), prompt="p")
    with pytest.raises(TaskError, match="--accept needs a local --repo"):
        new_task(repo="https://example.org/r.git", prompt="p", accept="make")
    with pytest.raises(TaskError, match="prompt is empty"):
        new_task(repo="https://example.org/r.git", prompt="  ")
    with pytest.raises(TaskError, match="--timeout"):
        new_task(repo="https://example.org/r.git", prompt="p", timeout_s=0)
    with pytest.raises(TaskError, match="--label"):
        new_task(repo="https://example.org/r.git", prompt="p", labels=["bad label"])


def test_retry_resets_the_budget_and_keeps_history() -> None:
    t = task_with(["error", "error"], errors_retried=1)
    t.state = State.FAILED
    reset_for_retry(t)
    assert t.state is State.QUEUED and t.attempts == [] and len(t.history) == 2
    assert t.errors_retried == 0


def test_config_file_then_environment(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text('concurrency = 3\nopenhands_url = "http://oh:3000"\n')
    c = load(str(f), env={"AW_TASK_CONCURRENCY": "4", "AW_TASK_OPENHANDS_MAX_SANDBOXES": "3"})
    assert c.concurrency == 4 and c.openhands_url == "http://oh:3000"
    assert c.effective_concurrency == 3  # never more than OpenHands' sandbox limit
    with pytest.raises(ConfigError, match="AW_TASK_CONCURRENCY='two'"):
        load(str(f), env={"AW_TASK_CONCURRENCY": "two"})
    f.write_text("concurency = 3\n")
    with pytest.raises(ConfigError, match="unknown setting 'concurency'"):
        load(str(f), env={})
    with pytest.raises(ConfigError, match="no such file"):
        load(str(tmp_path / "missing.toml"), env={})
