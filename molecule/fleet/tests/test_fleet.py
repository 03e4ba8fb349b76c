# Copyright: agent-workstation contributors
# SPDX-License-Identifier: Apache-2.0 (see LICENSE at the repository root)
"""Testinfra checks of the fleet scenario (molecule/fleet/molecule.yml says what is real).

Requests are made FROM the router host (python3's urllib, run there) to the door on its fleet
address, as a client on the tailnet would; each worker's own /metrics says which worker served.
After side_effect.yml: alice's key was rotated by a re-run, and the roll over the workers ran.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import testinfra

testinfra_hosts = ["aw-site-fleet-router"]

DOOR = "http://172.31.250.10:8090"
WORKERS = {"aw-site-fleet-w1": "172.31.250.11", "aw-site-fleet-w2": "172.31.250.12"}
MODEL = "qwen2.5-coder-32b-instruct"
SUCCESS = "vllm:request_success_total"

# Run on the router host: METHOD URL HEADERS-JSON BODIES-JSON -> one JSON line per request.
CLIENT = r"""
import json, sys, urllib.request, urllib.error
from concurrent.futures import ThreadPoolExecutor
method, url = sys.argv[1], sys.argv[2]
headers, bodies = json.loads(sys.argv[3]), json.loads(sys.argv[4])
def one(body):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return {"status": r.status, "body": r.read().decode()}
    except urllib.error.HTTPError as e:
        return {"status": e.code, "body": e.read().decode()}
with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
    for res in pool.map(one, bodies):
        print(json.dumps(res))
"""


def _key(name: str) -> str:
    text = (Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / name).read_text()
    return text.split()[0]


def _worker(name: str):
    inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={inventory}")


def _requests(host, method, path, headers, bodies):
    cmd = host.run(
        "python3 -c "
        + _q(CLIENT)
        + " "
        + " ".join(_q(a) for a in (method, DOOR + path, json.dumps(headers), json.dumps(bodies)))
    )
    assert cmd.rc == 0, cmd.stderr
    return [json.loads(line) for line in cmd.stdout.splitlines() if line.strip()]


def _q(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def _chat(prompt: str) -> dict:
    return {"model": MODEL, "max_tokens": 4, "messages": [{"role": "user", "content": prompt}]}


def _successes(host, address: str) -> float:
    out = host.check_output(f"curl -fsS http://{address}:8000/metrics")
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in out.splitlines()
        if line.startswith(SUCCESS + "{") or line.startswith(SUCCESS + " ")
    )


def test_the_router_and_the_door_run_under_systemd(host):
    for unit in ("aw-llm-router", "aw-llm-router-door"):
        assert host.service(unit).is_running, unit
        assert host.service(unit).is_enabled, unit


def test_only_the_door_listens_beyond_loopback(host):
    listening = host.check_output("ss -ltnH | awk '{print $4}'").split()
    assert "172.31.250.10:8090" in listening, listening
    assert "127.0.0.1:8091" in listening, listening  # the router itself
    assert "127.0.0.1:29000" in listening, listening  # its metrics
    for address in listening:
        port = address.rsplit(":", 1)[1]
        if port in ("8091", "29000"):
            assert address.startswith("127.0.0.1:"), address
        assert not address.startswith(("0.0.0.0:8090", "*:8090", "[::]:8090")), address


def test_each_worker_publishes_vllm_on_its_fleet_address_only(host):
    for name, address in WORKERS.items():
        listening = _worker(name).check_output("ss -ltnH | awk '{print $4}'").split()
        on_8000 = [a for a in listening if a.endswith(":8000")]
        assert on_8000 == [f"{address}:8000"], (name, listening)


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-" + "0" * 40}, {"x-api-key": "wrong-" + "0" * 40}],
    ids=["no-key", "wrong-bearer", "wrong-x-api-key"],
)
def test_the_door_refuses_no_key_and_a_wrong_key(host, headers):
    for path, body in (("/v1/models", None), ("/v1/chat/completions", _chat("hi"))):
        [res] = _requests(host, "GET" if body is None else "POST", path, headers, [body])
        assert res["status"] == 401, (path, res)


def test_the_rotated_out_key_is_refused_and_the_new_one_passes(host):
    old_key = _key("alice_key")
    [old] = _requests(host, "GET", "/v1/models", {"Authorization": "Bearer " + old_key}, [None])
    assert old["status"] == 401, old
    new_key = _key("alice_key_rotated")
    [new] = _requests(host, "GET", "/v1/models", {"Authorization": "Bearer " + new_key}, [None])
    assert new["status"] == 200, new
    assert MODEL in [m["id"] for m in json.loads(new["body"])["data"]], new


def test_concurrent_requests_are_spread_over_both_workers(host):
    # vllm-router 0.1.17 cache_aware: unrelated prompts go to the worker with fewer requests in
    # flight, so eight at once land on both (tests/real/test_fleet.py reads the policy's source).
    before = {n: _successes(_worker(n), a) for n, a in WORKERS.items()}
    bodies = [_chat(f"unrelated prompt {i} {os.urandom(12).hex()}") for i in range(8)]
    results = _requests(
        host, "POST", "/v1/chat/completions",
        {"Authorization": "Bearer " + _key("alice_key_rotated")}, bodies,
    )  # fmt: skip
    assert [r["status"] for r in results] == [200] * 8, results
    rises = {n: _successes(_worker(n), a) - before[n] for n, a in WORKERS.items()}
    assert all(r >= 1 for r in rises.values()), rises
    assert sum(rises.values()) == 8, rises


def test_messages_pass_the_door_with_an_anthropic_client_header(host):
    body = {"model": MODEL, "max_tokens": 4, "messages": [{"role": "user", "content": "hi"}]}
    [res] = _requests(
        host, "POST", "/v1/messages",
        {"x-api-key": _key("alice_key_rotated"), "anthropic-version": "2023-06-01"}, [body],
    )  # fmt: skip
    assert res["status"] == 200, res
    assert json.loads(res["body"])["type"] == "message", res


def _worker_health(host, address: str) -> float | None:
    out = host.check_output("curl -fsS http://127.0.0.1:29000/metrics")
    want = f'vllm_router_worker_health{{worker="http://{address}:8000"}} '
    values = [float(line[len(want) :]) for line in out.splitlines() if line.startswith(want)]
    return values[0] if values else None


# Last in this file (every test takes `host`, so pytest keeps the file's order): it stops a worker.
def test_a_stopped_worker_is_routed_around_once_the_router_sees_it(host):
    # vllm-router 0.1.17 learns a worker is gone from its health checks: a request in the
    # seconds before that can fail (seen: 2 of 6 got 500 "error sending request"), so the
    # check waits until the router's own gauge marks the worker unhealthy, then requires
    # every request to succeed on the other worker.
    dead, alive = list(WORKERS.items())
    assert _worker_health(host, dead[1]) == 1.0, "the router does not see the worker as healthy"
    worker = _worker(dead[0])
    worker.run("systemctl stop aw-fleet-vllm")
    try:
        for _ in range(60):
            if _worker_health(host, dead[1]) == 0.0:
                break
            time.sleep(2)
        assert _worker_health(host, dead[1]) == 0.0, "the router never marked the worker down"
        before = _successes(_worker(alive[0]), alive[1])
        results = []
        for i in range(6):  # one at a time, as users come and go
            results += _requests(
                host, "POST", "/v1/chat/completions",
                {"Authorization": "Bearer " + _key("alice_key_rotated")},
                [_chat(f"after the stop {i}")],
            )  # fmt: skip
        assert [r["status"] for r in results] == [200] * 6, results
        assert _successes(_worker(alive[0]), alive[1]) - before == 6
    finally:
        worker.run("systemctl start aw-fleet-vllm")
