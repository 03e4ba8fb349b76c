"""Testinfra checks for roles/sandbox_engine: a second REAL rootless engine, its egress dropped.

Real: Debian 13's docker.io 26.1, RootlessKit, slirp4netns, nftables, sudo, systemd, both
engines (the service user's from roles/docker_rootless in prepare.yml, the sandbox engine from
the role). Stand-ins, named as such: the image (busybox-static packed by prepare.yml, for the
OpenHands agent-server image: no registry here) and the listeners (python3 -m http.server on
the test ports, for vLLM / the OpenHands app / the code-search server on the host's loopback).
Every network assertion that expects a failure has a control that the same listener answers
(from the host itself, or from a container of the service user's engine, which has no rule).
"""

import json
import time

import pytest

SANDBOX = "agent-sandbox"
MAIN = "agent"
IMAGE = "aw-busybox:test"
ALLOWED = 18080  # sandbox_engine_allowed_ports in molecule.yml
UNLISTED = 18081
OUTSIDE = "192.0.2.10"  # prepare.yml: a non-loopback address of the instance
TABLE = "inet aw_sandbox"
WGET = "/bin/busybox wget -q -T 4 -O-"


def uid(host, user):
    return host.user(user).uid


def docker(host, user, args):
    """Run `docker ARGS` against USER's own rootless engine, as USER."""
    u = uid(host, user)
    return host.run(
        f"runuser -u {user} -- env XDG_RUNTIME_DIR=/run/user/{u} "
        f"DOCKER_HOST=unix:///run/user/{u}/docker.sock docker {args}"
    )


def user_systemctl(host, user, args):
    env = f"XDG_RUNTIME_DIR=/run/user/{uid(host, user)}"
    return host.run(f"runuser -u {user} -- env {env} systemctl --user {args}")


def fetch_from_container(host, user, url, add_host=False):
    extra = "--add-host host.docker.internal:host-gateway " if add_host else ""
    return docker(host, user, f"run --rm {extra}{IMAGE} {WGET} {url}")


def drop_count(host):
    rules = host.check_output(f"nft list table {TABLE}")
    line = next(x for x in rules.splitlines() if "aw-sandbox-drop" in x)
    return int(line.split("packets")[1].split()[0])


def wait_for(host, command, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if host.run(command).rc == 0:
            return True
        time.sleep(1)
    return False


@pytest.fixture(scope="module")
def listeners(host):
    """Stand-in HTTP listeners: 127.0.0.1:ALLOWED, 127.0.0.1:UNLISTED, OUTSIDE:ALLOWED."""
    spots = {
        "aw-l-allowed": ("127.0.0.1", ALLOWED),
        "aw-l-unlisted": ("127.0.0.1", UNLISTED),
        "aw-l-outside": (OUTSIDE, ALLOWED),
    }
    for unit, (address, port) in spots.items():
        host.run(f"systemctl stop {unit}.service")
        www = f"/opt/aw-test/{unit}"
        host.run(f"mkdir -p {www} && echo {unit}-answers > {www}/index.html")
        started = host.run(
            f"systemd-run --unit {unit} python3 -m http.server {port} --bind {address} "
            f"--directory {www}"
        )
        assert started.rc == 0, started.stderr
        assert wait_for(host, f"ss -Htln | grep -q '{address}:{port} '", 20), unit
    yield spots
    for unit in spots:
        host.run(f"systemctl stop {unit}.service")


def test_sandbox_user(host):
    user = host.user(SANDBOX)
    assert user.exists
    assert user.uid >= 1000
    assert user.shell == "/usr/sbin/nologin"
    assert user.uid != host.user(MAIN).uid
    for name in ("/etc/subuid", "/etc/subgid"):
        lines = host.file(name).content_string.splitlines()
        assert any(line.startswith(f"{SANDBOX}:") for line in lines), name
    assert host.file(f"/var/lib/systemd/linger/{SANDBOX}").exists


def test_two_separate_rootless_engines(host):
    for user in (SANDBOX, MAIN):
        assert user_systemctl(host, user, "is-active docker.service").rc == 0, user
        cmd = docker(host, user, "info --format '{{json .}}'")
        assert cmd.rc == 0, cmd.stderr
        info = json.loads(cmd.stdout)
        assert any("name=rootless" in opt for opt in info["SecurityOptions"]), user
    # The inventory's docker_rootless_nvidia_runtime (for the service user's engine) did not
    # leak into the sandbox engine.
    info = json.loads(docker(host, SANDBOX, "info --format '{{json .}}'").stdout)
    assert "nvidia" not in info["Runtimes"]
    owners = set(host.check_output("ps -o user= -C dockerd").split())
    assert owners == {SANDBOX, MAIN}
    # The sandbox engine runs with the host loopback open (slirp4netns, no --disable-host-loopback).
    unit = host.file(f"/home/{SANDBOX}/.config/systemd/user/docker.service").content_string
    assert "DOCKERD_ROOTLESS_ROOTLESSKIT_NET=slirp4netns" in unit
    assert "DOCKERD_ROOTLESS_ROOTLESSKIT_DISABLE_HOST_LOOPBACK=false" in unit


def test_daemon_json_keys_are_valid_for_this_dockerd(host):
    path = f"/home/{SANDBOX}/.config/docker/daemon.json"
    daemon = json.loads(host.file(path).content_string)
    assert daemon["ip"] == "127.0.0.1"
    assert daemon["host-gateway-ip"] == "10.0.2.2"
    ok = host.run(f"dockerd --validate --config-file {path}")
    assert ok.rc == 0, ok.stdout + ok.stderr
    # Control: the same dockerd refuses a key it does not know, so the pass above means something.
    host.run('echo \'{"host-gateway-ipx": "10.0.2.2"}\' > /tmp/aw-bad-daemon.json')
    bad = host.run("dockerd --validate --config-file /tmp/aw-bad-daemon.json")
    assert bad.rc != 0, bad.stdout


def test_host_gateway_is_slirps_host_address(host):
    hosts = docker(
        host,
        SANDBOX,
        f"run --rm --add-host host.docker.internal:host-gateway {IMAGE} "
        "/bin/busybox cat /etc/hosts",
    )
    assert hosts.rc == 0, hosts.stderr
    assert any(
        line.split() == ["10.0.2.2", "host.docker.internal"] for line in hosts.stdout.splitlines()
    ), hosts.stdout


def test_egress_table_is_live_and_guarded(host):
    rules = host.check_output(f"nft list table {TABLE}")
    sid = uid(host, SANDBOX)
    assert f'comment "aw-sandbox-uid-{sid}"' in rules
    assert "aw-sandbox-drop" in rules
    assert f"tcp dport {ALLOWED} accept" in rules
    assert "tcp dport 8000" not in rules  # the scenario's list replaced the role default
    guard = host.file(
        f"/home/{SANDBOX}/.config/systemd/user/docker.service.d/10-aw-egress-guard.conf"
    )
    assert "ExecStartPre=/usr/bin/sudo -n /usr/local/libexec/aw-sandbox-egress-check" in (
        guard.content_string
    )
    # The sandbox user may run the check (and it passes) ...
    check = host.run(f"runuser -u {SANDBOX} -- sudo -n /usr/local/libexec/aw-sandbox-egress-check")
    assert check.rc == 0, check.stderr
    # ... and nothing else as root, not even the check with an argument.
    for cmd in (
        "sudo -n /usr/sbin/nft list ruleset",
        "sudo -n /usr/local/libexec/aw-sandbox-egress-check x",
        "sudo -n /bin/true",
    ):
        assert host.run(f"runuser -u {SANDBOX} -- {cmd}").rc != 0, cmd
    assert host.file("/etc/sudoers.d/aw-sandbox-egress").mode == 0o440


def test_image_copied_from_the_service_users_engine(host):
    fmt = "image inspect --format '{{.Id}}' " + IMAGE
    main = docker(host, MAIN, fmt)
    sandbox = docker(host, SANDBOX, fmt)
    assert main.rc == 0 and sandbox.rc == 0, main.stderr + sandbox.stderr
    assert sandbox.stdout.strip() == main.stdout.strip()


def test_controls_the_host_reaches_every_listener(host, listeners):
    for unit, (address, port) in listeners.items():
        got = host.run(f"{WGET} http://{address}:{port}/")
        assert got.rc == 0 and f"{unit}-answers" in got.stdout, (unit, got.stderr)


def test_controls_the_service_users_engine_reaches_every_listener(host, listeners):
    # Same image, same slirp4netns, no rule for this uid: the listeners answer containers.
    for unit, url in (
        ("aw-l-allowed", f"http://10.0.2.2:{ALLOWED}/"),
        ("aw-l-unlisted", f"http://10.0.2.2:{UNLISTED}/"),
        ("aw-l-outside", f"http://{OUTSIDE}:{ALLOWED}/"),
    ):
        got = fetch_from_container(host, MAIN, url)
        assert got.rc == 0 and f"{unit}-answers" in got.stdout, (unit, got.stderr)


def test_sandbox_reaches_the_allowed_loopback_port(host, listeners):
    by_ip = fetch_from_container(host, SANDBOX, f"http://10.0.2.2:{ALLOWED}/")
    assert by_ip.rc == 0 and "aw-l-allowed-answers" in by_ip.stdout, by_ip.stderr
    by_name = fetch_from_container(
        host, SANDBOX, f"http://host.docker.internal:{ALLOWED}/", add_host=True
    )
    assert by_name.rc == 0 and "aw-l-allowed-answers" in by_name.stdout, by_name.stderr


def test_sandbox_cannot_reach_an_unlisted_loopback_port(host, listeners):
    before = drop_count(host)
    got = fetch_from_container(host, SANDBOX, f"http://10.0.2.2:{UNLISTED}/")
    assert got.rc != 0, got.stdout
    assert "aw-l-unlisted-answers" not in got.stdout
    assert drop_count(host) > before  # the rule dropped it, not something else


def test_sandbox_cannot_reach_a_non_loopback_address(host, listeners):
    before = drop_count(host)
    got = fetch_from_container(host, SANDBOX, f"http://{OUTSIDE}:{ALLOWED}/")
    assert got.rc != 0, got.stdout
    assert "aw-l-outside-answers" not in got.stdout
    assert drop_count(host) > before


def test_the_rule_holds_for_the_sandbox_uid_on_the_host_too(host, listeners):
    ok = host.run(f"runuser -u {SANDBOX} -- {WGET} http://127.0.0.1:{ALLOWED}/")
    assert ok.rc == 0, ok.stderr
    for url in (f"http://127.0.0.1:{UNLISTED}/", f"http://{OUTSIDE}:{ALLOWED}/"):
        assert host.run(f"runuser -u {SANDBOX} -- {WGET} {url}").rc != 0, url


def test_published_ports_bind_loopback_only_and_answer(host):
    docker(host, SANDBOX, "rm -f aw-published")
    run = docker(
        host,
        SANDBOX,
        f"run -d --name aw-published -p 18090:8080 {IMAGE} /bin/busybox sh -c "
        "'mkdir -p /www && echo published-answers > /www/index.html && "
        "exec /bin/busybox httpd -f -p 8080 -h /www'",
    )
    assert run.rc == 0, run.stderr
    try:
        assert wait_for(host, "ss -Htln | grep -q ':18090 '", 20)
        bound = [
            line.split()[3]
            for line in host.check_output("ss -Htln").splitlines()
            if line.split()[3].endswith(":18090")
        ]
        assert bound == ["127.0.0.1:18090"], bound
        port = docker(host, SANDBOX, "port aw-published 8080")
        assert port.stdout.split() == ["127.0.0.1:18090"], port.stdout
        # The reply path: rootlesskit answers as the sandbox uid (ct established is accepted).
        assert wait_for(host, f"{WGET} http://127.0.0.1:18090/ | grep -q published-answers", 20)
        # The OpenHands app's path: a container of the service user's engine reaches the
        # sandbox's published port at 10.0.2.2 (its engine's host-gateway is NOT 10.0.2.2).
        got = fetch_from_container(host, MAIN, "http://10.0.2.2:18090/")
        assert got.rc == 0 and "published-answers" in got.stdout, got.stderr
    finally:
        docker(host, SANDBOX, "rm -f aw-published")


def test_nftables_stop_stops_the_sandbox_engine_and_start_brings_it_back(host):
    assert host.run("systemctl stop nftables.service").rc == 0
    try:
        assert host.run(f"nft list table {TABLE}").rc != 0  # Debian's stop flushed it
        assert user_systemctl(host, SANDBOX, "is-active docker.service").stdout.strip() in (
            "inactive",
            "failed",
        )
    finally:
        assert host.run("systemctl start nftables.service").rc == 0
    assert host.run(f"nft list table {TABLE}").rc == 0
    assert wait_for(
        host,
        f"runuser -u {SANDBOX} -- env XDG_RUNTIME_DIR=/run/user/{uid(host, SANDBOX)} "
        "systemctl --user is-active docker.service",
    )


API = "/var/lib/aw-sandbox-engine/docker.sock"
# STAND-IN for OpenHands' socket proxy and docker-py: the host's docker CLI (and the libraries
# it links) mounted into a busybox container of the service user's engine.
CLI_MOUNTS = (
    "-v /usr/bin/docker:/docker:ro -v /lib:/lib:ro -v /usr/lib:/usr/lib:ro -v /lib64:/lib64:ro"
)


def test_a_container_of_the_service_users_engine_drives_the_sandbox_engine(host):
    # Runs after the nftables test restarted the engine: the socket's ACL came back with it.
    want = docker(host, SANDBOX, "info --format '{{.ID}}'").stdout.strip()
    assert want
    got = docker(
        host,
        MAIN,
        f"run --rm -v {API}:/var/run/docker.sock {CLI_MOUNTS} {IMAGE} "
        "/docker -H unix:///var/run/docker.sock info --format '{{.ID}} {{json .SecurityOptions}}'",
    )
    assert got.rc == 0, got.stderr
    assert got.stdout.split()[0] == want  # the sandbox engine, not the service user's
    assert "name=rootless" in got.stdout
    # Why the second socket: the sandbox user's own socket cannot be mounted by that engine.
    own = docker(
        host,
        MAIN,
        f"run --rm -v /run/user/{uid(host, SANDBOX)}/docker.sock:/s {IMAGE} /bin/busybox true",
    )
    assert own.rc != 0
    # Control: a user without the ACL is refused.
    other = host.run(f"runuser -u nobody -- docker -H unix://{API} version")
    assert other.rc != 0 and "permission denied" in (other.stderr + other.stdout).lower()


def test_without_the_table_the_sandbox_engine_does_not_start(host):
    # Last: it leaves the engine stopped.
    assert host.run(f"nft delete table {TABLE}").rc == 0
    restart = user_systemctl(host, SANDBOX, "restart docker.service")
    assert restart.rc != 0
    time.sleep(3)
    assert user_systemctl(host, SANDBOX, "is-active docker.service").rc != 0
    assert docker(host, SANDBOX, "info").rc != 0
    # The check runs as root through sudo: its message is logged under sudo, not the user's uid.
    journal = host.run("journalctl --no-pager --since '-2min'")
    status = user_systemctl(host, SANDBOX, "status docker.service --no-pager -l")
    assert "table inet aw_sandbox is not loaded" in journal.stdout + status.stdout, (
        journal.stdout[-2000:] + status.stdout
    )
    # Control: with the table back the same unit starts, so the guard was what stopped it.
    assert host.run("nft -f /etc/nftables.d/aw-sandbox.nft").rc == 0
    user_systemctl(host, SANDBOX, "reset-failed docker.service")
    assert user_systemctl(host, SANDBOX, "start docker.service").rc == 0
