"""Settings: a TOML file (AW_TASK_CONFIG, default ~/.config/aw-task/config.toml), then
environment variables AW_TASK_<NAME> (upper case) over it, then command-line flags."""

from __future__ import annotations

import dataclasses
import os
import tomllib
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    pass


@dataclasses.dataclass
class Config:
    # Redis (the agent stack's, with AOF on). The password is read from a file, never argv.
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_password_file: str = ""
    # The stream the tasks are queued on (redis_exporter --check-single-keys reads its XLEN)
    # and the prefix of every other key (task records, leases, state indexes, counters).
    stream: str = "openhands:queue"
    key_prefix: str = "aw-task"
    group: str = "aw-task-workers"
    # OpenHands V1 app server; the key file holds its SESSION_API_KEY ("" = none set).
    openhands_url: str = "http://127.0.0.1:3000"
    openhands_api_key_file: str = ""
    # OpenHands' sandbox limit (DockerSandboxServiceInjector.max_num_sandboxes, default 5 in
    # openhands-ai 1.11.0; env OH_SANDBOX_MAX_NUM_SANDBOXES, read only together with
    # OH_SANDBOX_KIND=DockerSandboxServiceInjector): beyond it OpenHands pauses the oldest
    # sandbox, so the worker never runs more tasks than this.
    openhands_max_sandboxes: int = 5
    # Repositories: a local --repo under workspace_host_root is given to OpenHands as the same
    # path under workspace_sandbox_root (where SANDBOX_VOLUMES mounts it). Empty: unchanged.
    workspace_host_root: str = ""
    workspace_sandbox_root: str = ""
    # Tasks at once (never more than openhands_max_sandboxes).
    concurrency: int = 2
    # Local-backend multiplier of every task timeout (the brief's 4.0).
    timeout_multiplier: float = 4.0
    # A task whose worker stops renewing its lease for this long is picked up by another.
    visibility_timeout_s: float = 60.0
    poll_interval_s: float = 5.0
    # How long, after a conversation ends, the worker waits for its error (or final message)
    # event to reach the app: the sandbox's agent-server posts events to the app by webhook in
    # batches, 5 events or after flush_delay (30 s by default in agent-server 1.34.0,
    # agent_server/config.py WebhookSpec), so the status can be final before the events are in.
    event_grace_s: float = 40.0
    # Backoff before the one retry of an OpenHands error / a transient HTTP failure.
    error_backoff_s: float = 30.0
    transient_backoff_s: float = 5.0
    # How long the acceptance command may run (seconds, not scaled).
    accept_timeout_s: float = 900.0
    # Every finished task is also written here as ID.json (+ ID.diff). Backups include it.
    results_dir: str = "~/.local/share/aw-task/results"
    # host:port of the worker's /metrics ("" = none).
    metrics_listen: str = "127.0.0.1:9465"

    def redis_password(self) -> str | None:
        return _read_secret(self.redis_password_file, "redis_password_file")

    def openhands_api_key(self) -> str | None:
        return _read_secret(self.openhands_api_key_file, "openhands_api_key_file")

    @property
    def effective_concurrency(self) -> int:
        return max(1, min(self.concurrency, self.openhands_max_sandboxes))

    def validate(self) -> None:
        if self.concurrency < 1:
            raise ConfigError(f"concurrency {self.concurrency!r} must be at least 1")
        if self.openhands_max_sandboxes < 1:
            raise ConfigError(
                f"openhands_max_sandboxes {self.openhands_max_sandboxes!r} must be at least 1"
            )
        if self.timeout_multiplier <= 0:
            raise ConfigError(f"timeout_multiplier {self.timeout_multiplier!r} must be > 0")
        if self.visibility_timeout_s < 3:
            raise ConfigError(
                f"visibility_timeout_s {self.visibility_timeout_s!r} must be at least 3 s"
            )
        if bool(self.workspace_host_root) != bool(self.workspace_sandbox_root):
            raise ConfigError(
                "workspace_host_root and workspace_sandbox_root go together: set both or neither"
            )


def _read_secret(path: str, name: str) -> str | None:
    if not path:
        return None
    try:
        return Path(path).expanduser().read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(
            f"{name} {path!r} cannot be read ({exc.strerror}). Fix: run as the service user "
            "or point it at the secret file"
        ) from exc


def _coerce(field: dataclasses.Field[Any], raw: Any, source: str) -> Any:
    kind = field.type
    try:
        if kind in ("int", int):
            return int(raw)
        if kind in ("float", float):
            return float(raw)
        return str(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}={raw!r} is not a valid {kind}") from exc


def load(path: str | None = None, env: dict[str, str] | None = None) -> Config:
    env = dict(os.environ if env is None else env)
    file = path or env.get("AW_TASK_CONFIG") or "~/.config/aw-task/config.toml"
    values: dict[str, Any] = {}
    fields = {f.name: f for f in dataclasses.fields(Config)}
    cfg_path = Path(file).expanduser()
    if cfg_path.is_file():
        try:
            data = tomllib.loads(cfg_path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{cfg_path}: not valid TOML ({exc})") from exc
        for key, raw in data.items():
            if key not in fields:
                raise ConfigError(f"{cfg_path}: unknown setting {key!r}")
            values[key] = _coerce(fields[key], raw, f"{cfg_path}:{key}")
    elif path:
        raise ConfigError(f"--config {path!r}: no such file")
    for name, field in fields.items():
        env_name = f"AW_TASK_{name.upper()}"
        if env_name in env:
            values[name] = _coerce(field, env[env_name], env_name)
    config = Config(**values)
    config.validate()
    return config
