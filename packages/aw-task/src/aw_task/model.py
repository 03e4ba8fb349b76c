"""A task, its states and the transitions between them (pure: no Redis, no HTTP)."""

from __future__ import annotations

import dataclasses
import enum
import json
import re
import time
import uuid
from pathlib import Path
from typing import Any


class State(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL = frozenset({State.SUCCEEDED, State.FAILED, State.CANCELLED})

# Who may move a task from one state to another. The worker holding the task's lease makes
# every move out of RUNNING; the CLI makes queued -> cancelled and terminal -> queued (retry).
TRANSITIONS: dict[State, frozenset[State]] = {
    State.QUEUED: frozenset({State.RUNNING, State.CANCELLED}),
    # running -> queued: a worker gives a task back (OpenHands unreachable, shutdown).
    State.RUNNING: frozenset({State.SUCCEEDED, State.FAILED, State.CANCELLED, State.QUEUED}),
    State.SUCCEEDED: frozenset({State.QUEUED}),
    State.FAILED: frozenset({State.QUEUED}),
    State.CANCELLED: frozenset({State.QUEUED}),
}


class TaskError(ValueError):
    """Bad input for a task: the message names the field, the value and the fix."""


class InvalidTransition(RuntimeError):
    pass


def check_transition(old: State, new: State) -> None:
    if new not in TRANSITIONS[old]:
        raise InvalidTransition(f"a task cannot go from {old} to {new}")


_URL = re.compile(r"^(https?://|git@|ssh://)")
_LABEL = re.compile(r"^[A-Za-z0-9_.:/-]{1,64}$")
_MODEL = re.compile(r"^[A-Za-z0-9_.:/@-]{1,200}$")


@dataclasses.dataclass
class Attempt:
    """One run of the task through one OpenHands conversation."""

    number: int
    conversation_id: str
    started_at: float
    finished_at: float | None = None
    outcome: str | None = None  # finished | error | timeout | cancelled | accept_failed
    detail: str | None = None
    # OpenHands' start task of this attempt, recorded as soon as the start request answers.
    start_task_id: str | None = None


@dataclasses.dataclass
class Result:
    status: str  # the task's final state
    reason: str | None = None
    final_message: str | None = None
    changed_files: list[dict[str, str]] = dataclasses.field(default_factory=list)
    diff: str | None = None
    accept_exit_code: int | None = None
    accept_output: str | None = None
    conversation_id: str | None = None


@dataclasses.dataclass
class Task:
    id: str
    repo: str
    prompt: str
    branch: str | None = None
    accept: str | None = None
    timeout_s: float = 1800.0
    retries: int = 1
    labels: list[str] = dataclasses.field(default_factory=list)
    # The LLM for this task's conversations (OpenHands' `llm_model`, e.g. "openai/<served
    # name>"); None: the model in OpenHands' settings.
    model: str | None = None
    state: State = State.QUEUED
    submitted_at: float = dataclasses.field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    attempts: list[Attempt] = dataclasses.field(default_factory=list)
    # Attempts of earlier runs (before an `aw-task retry`).
    history: list[Attempt] = dataclasses.field(default_factory=list)
    errors_retried: int = 0
    cancel_requested: bool = False
    result: Result | None = None

    @property
    def repo_is_url(self) -> bool:
        return bool(_URL.match(self.repo))

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Task:
        data: dict[str, Any] = json.loads(text)
        data["state"] = State(data["state"])
        data["attempts"] = [Attempt(**a) for a in data.get("attempts", [])]
        data["history"] = [Attempt(**a) for a in data.get("history", [])]
        data["result"] = Result(**data["result"]) if data.get("result") else None
        return cls(**data)


def new_task(
    *,
    repo: str,
    prompt: str,
    branch: str | None = None,
    accept: str | None = None,
    timeout_s: float = 1800.0,
    retries: int = 1,
    labels: list[str] | None = None,
    check_path: bool = True,
    model: str | None = None,
) -> Task:
    """Validate the submitted fields and build a queued task (nothing is stored yet)."""
    repo = repo.strip()
    if not repo:
        raise TaskError("--repo is empty. Fix: give a repository path on this machine or a URL")
    if not _URL.match(repo):
        path = Path(repo).expanduser()
        if check_path and not path.is_dir():
            raise TaskError(
                f"--repo {repo!r}: no such directory. Fix: give an existing repository path "
                "(absolute) or a URL with --branch"
            )
        if check_path and not (path / ".git").exists():
            raise TaskError(
                f"--repo {repo!r} is not a git repository (no .git). Fix: `git init` it or give "
                "the repository's top directory"
            )
        repo = str(path.resolve()) if check_path else str(path)
    elif accept:
        raise TaskError(
            f"--accept needs a local --repo (got the URL {repo!r}): the acceptance command runs "
            "on this machine in the repository. Fix: clone it here and pass its path"
        )
    if not prompt.strip():
        raise TaskError("the prompt is empty. Fix: pass --prompt TEXT or --prompt-file FILE")
    if not timeout_s > 0:
        raise TaskError(f"--timeout {timeout_s!r} must be a positive number of seconds")
    if retries < 0 or retries > 10:
        raise TaskError(f"--retries {retries!r} must be between 0 and 10")
    for label in labels or []:
        if not _LABEL.match(label):
            raise TaskError(
                f"--label {label!r}: use 1-64 characters of letters, digits and _ . : / -"
            )
    if model is not None and not _MODEL.match(model):
        raise TaskError(
            f"--model {model!r}: give a LiteLLM model name such as openai/<served name> "
            "(letters, digits and _ . : / - @, at most 200)"
        )
    return Task(
        id=uuid.uuid4().hex[:12],
        repo=repo,
        prompt=prompt,
        branch=branch,
        accept=accept,
        timeout_s=float(timeout_s),
        retries=retries,
        labels=list(labels or []),
        model=model,
    )


def reset_for_retry(task: Task) -> None:
    """`aw-task retry`: queue a finished task again with a fresh budget (history kept)."""
    check_transition(task.state, State.QUEUED)
    task.history.extend(task.attempts)
    task.attempts = []
    task.state = State.QUEUED
    task.errors_retried = 0
    task.cancel_requested = False
    task.started_at = task.finished_at = None
    task.result = None
