"""Testinfra checks for roles/docker_rootless: a real rootless engine for user `agent`.

The engine, RootlessKit and slirp4netns are Debian's real packages; the only stand-in is the
image: no registry is reachable, so prepare.yml packs busybox-static into a tar that the test
imports (`docker import`) and runs rootless.
"""

import json
import re

import pytest

USER = "agent"


def as_agent(host, command):
    """Run COMMAND in a login shell of the service user (so /etc/profile.d applies)."""
    return host.run("runuser -l %s -c %s", USER, command)


def uid(host):
    return host.user(USER).uid


def test_subordinate_ids(host):
    for name in ("/etc/subuid", "/etc/subgid"):
        lines = [
            line
            for line in host.file(name).content_string.splitlines()
            if line.split(":")[0] in (USER, str(uid(host)))
        ]
        # prepare.yml left only other:100000:65536; the role appends after it
        assert lines == [f"{USER}:165536:65536"], name
        assert "other:100000:65536" in host.file(name).content_string.splitlines()


def test_lingering(host):
    assert host.file(f"/var/lib/systemd/linger/{USER}").exists


def test_user_unit(host):
    unit = host.file(f"/home/{USER}/.config/systemd/user/docker.service")
    assert unit.user == USER
    assert "ExecStart=/usr/share/docker.io/contrib/dockerd-rootless.sh" in unit.content_string
    assert "DOCKERD_ROOTLESS_ROOTLESSKIT_NET=slirp4netns" in unit.content_string
    env = f"XDG_RUNTIME_DIR=/run/user/{uid(host)}"
    for state in ("is-active", "is-enabled"):
        cmd = host.run(
            "runuser -u %s -- env %s systemctl --user %s docker.service", USER, env, state
        )
        assert cmd.rc == 0, cmd.stdout + cmd.stderr


def test_docker_host_for_login_shells_and_user_units(host):
    sock = f"unix:///run/user/{uid(host)}/docker.sock"
    assert as_agent(host, "echo $DOCKER_HOST").stdout.strip() == sock
    envd = host.file(f"/home/{USER}/.config/environment.d/50-docker-rootless.conf")
    assert f"DOCKER_HOST={sock}" in envd.content_string.splitlines()


def test_engine_is_rootless_with_log_caps(host):
    cmd = as_agent(host, "docker info --format '{{json .}}'")
    assert cmd.rc == 0, cmd.stderr
    info = json.loads(cmd.stdout)
    assert any("name=rootless" in opt for opt in info["SecurityOptions"])
    assert info["LoggingDriver"] == "json-file"
    assert "nvidia" in info["Runtimes"]


def test_daemon_json(host):
    daemon = json.loads(host.file(f"/home/{USER}/.config/docker/daemon.json").content_string)
    assert daemon["log-driver"] == "json-file"
    assert daemon["log-opts"] == {"max-size": "10m", "max-file": "3"}
    assert daemon["runtimes"]["nvidia"]["path"] == "nvidia-container-runtime"
    assert daemon["ip"] == "127.0.0.1"
    # host.docker.internal is the host's loopback exactly when that is open (slirp4netns).
    loopback_open = host.file(f"/home/{USER}/.config/systemd/user/docker.service").contains(
        "DISABLE_HOST_LOOPBACK=false"
    )
    assert daemon.get("host-gateway-ip") == ("10.0.2.2" if loopback_open else None), daemon


def test_rootful_engine_is_off(host):
    for unit in ("docker.service", "docker.socket"):
        assert not host.service(unit).is_running, unit
        assert not host.service(unit).is_enabled, unit
    assert not host.socket("unix:///run/docker.sock").is_listening


def test_compose_v2_plugin(host):
    if host.system_info.codename == "bookworm":
        pytest.skip(
            "Debian 12 ships no Compose v2 (the scenario sets docker_rootless_compose false)"
        )
    cmd = as_agent(host, "docker compose version")
    assert cmd.rc == 0, cmd.stderr
    assert re.search(r"version v?2\.", cmd.stdout), cmd.stdout


def test_run_a_container_rootless(host):
    assert as_agent(host, "docker image ls").rc == 0
    imp = as_agent(host, "docker import /opt/aw-test/busybox.tar aw-busybox:test")
    assert imp.rc == 0, imp.stderr
    run = as_agent(host, "docker run --rm aw-busybox:test /bin/busybox id -u")
    assert run.rc == 0, run.stderr
    # uid 0 inside the container is the service user outside it
    assert run.stdout.strip() == "0"
    ps = host.run("ps -o user= -C dockerd")
    assert ps.stdout.split() and set(ps.stdout.split()) == {USER}


def test_containers_reach_the_host_loopback_as_configured(host):
    # A loopback-only server on the instance (a stand-in for Prometheus on 127.0.0.1:9090),
    # fetched from a rootless container through slirp4netns' 10.0.2.2.
    trixie = host.system_info.codename != "bookworm"
    unit = host.file(f"/home/{USER}/.config/systemd/user/docker.service").content_string
    assert (
        f"DOCKERD_ROOTLESS_ROOTLESSKIT_DISABLE_HOST_LOOPBACK={'false' if trixie else 'true'}"
        in unit
    )
    host.run("systemctl stop aw-loopback-probe.service")
    started = host.run(
        "systemd-run --unit aw-loopback-probe --working-directory /etc "
        "python3 -m http.server 18080 --bind 127.0.0.1"
    )
    assert started.rc == 0, started.stderr
    try:
        assert (
            host.run(
                "timeout 20 sh -c 'until ss -Htln | grep -q 127.0.0.1:18080; do sleep 0.5; done'"
            ).rc
            == 0
        )
        assert as_agent(host, "docker image inspect aw-busybox:test").rc == 0
        fetch = as_agent(
            host,
            "docker run --rm aw-busybox:test /bin/busybox wget -q -T 5 -O- http://10.0.2.2:18080/",
        )
        if trixie:
            assert fetch.rc == 0, fetch.stderr
            assert "os-release" in fetch.stdout  # the directory listing of /etc
        else:
            assert fetch.rc != 0, "Debian 12's rootlesskit must keep the host loopback closed"
    finally:
        host.run("systemctl stop aw-loopback-probe.service")


def test_engine_environment_names_the_users_toolkit_config(host):
    # The NVIDIA runtime, started by this dockerd, reads
    # $XDG_CONFIG_HOME/nvidia-container-runtime/config.toml only when XDG_CONFIG_HOME is set.
    pid = host.check_output("pgrep -u %s -x dockerd", USER).split()[0]
    environ = host.check_output("tr '\\0' '\\n' < /proc/%s/environ", pid).splitlines()
    assert f"XDG_CONFIG_HOME=/home/{USER}/.config" in environ, environ
