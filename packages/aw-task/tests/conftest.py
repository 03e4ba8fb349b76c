"""Fixtures: a real Redis (Debian's redis-server, AOF on, a free port, its own directory) and
the OpenHands stand-in (standin_openhands.py, named as a stand-in)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

sys.path.insert(0, str(Path(__file__).parent))

from aw_task.config import Config
from aw_task.store import Queue, connect
from standin_openhands import StandIn


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail(
            "redis-server is not installed. Fix: sudo apt-get install redis-server "
            "(scripts/test.sh installs it)"
        )
    port = free_port()
    data = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(data),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--requirepass",
            "test-password",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url, password="test-password")
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("redis-server did not start")
    (data / "password").write_text("test-password\n")
    os.chmod(data / "password", 0o600)
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def config(redis_server: str, tmp_path: Path, request: pytest.FixtureRequest) -> Config:
    """A fresh key space per test (its own stream and prefix) on the session's Redis."""
    name = request.node.name.replace("[", "-").replace("]", "")
    password_file = tmp_path / "redis_password"
    password_file.write_text("test-password\n")
    return Config(
        redis_url=redis_server,
        redis_password_file=str(password_file),
        stream=f"test:{name}:queue",
        key_prefix=f"test:{name}",
        group="workers",
        results_dir=str(tmp_path / "results"),
        visibility_timeout_s=3.0,
        poll_interval_s=0.05,
        # Production's 40 s would only slow a test whose events never come; the late-events
        # tests set their own.
        event_grace_s=2.0,
        error_backoff_s=0.1,
        transient_backoff_s=0.1,
        metrics_listen="",
    )


@pytest.fixture
def queue(config: Config) -> Queue:
    q = Queue(connect(config), config)
    q.ensure_group()
    return q


@pytest.fixture
def standin() -> Iterator[StandIn]:
    s = StandIn()
    s.start()
    yield s
    s.stop()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    (path / "README").write_text("hello\n")
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    subprocess.run(["git", "-C", str(path), "add", "."], check=True, env=env)
    subprocess.run(["git", "-C", str(path), "commit", "-qm", "init"], check=True, env=env)
    return path
