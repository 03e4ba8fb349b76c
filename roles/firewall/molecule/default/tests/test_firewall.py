"""Testinfra checks for roles/firewall, against the real nftables in the container's netns.

The stand-in services are python3's http.server (prepare.yml: 0.0.0.0:443; the fixture below:
0.0.0.0:8080). Reachability is tested from the test host over the Docker bridge.
"""

import json
import os
import re
import socket
import subprocess

import pytest

TABLE = "agent_workstation"
HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def extra_listener(host):
    """A service that wrongly listens on 0.0.0.0:8080 (not an allowed port)."""
    if host.run("systemctl is-active --quiet aw-test-http-8080").rc != 0:
        host.run_test("systemctl reset-failed aw-test-http-8080")
        cmd = host.run(
            "systemd-run --unit aw-test-http-8080"
            " python3 -m http.server 8080 --bind 0.0.0.0 --directory /srv"
        )
        assert cmd.rc == 0, cmd.stderr
    for _ in range(50):
        if host.socket("tcp://0.0.0.0:8080").is_listening:
            break
        host.run("sleep 0.2")
    assert host.socket("tcp://0.0.0.0:8080").is_listening
    return 8080


def container_ip(host):
    return host.run("hostname -I").stdout.split()[0]


def ruleset(host):
    cmd = host.run("nft -j list table inet %s", TABLE)
    assert cmd.rc == 0, cmd.stderr
    return json.loads(cmd.stdout)["nftables"]


def input_rules(host):
    return [
        item["rule"]
        for item in ruleset(host)
        if "rule" in item and item["rule"]["chain"] == "input"
    ]


def dports(rule):
    """TCP destination ports an accept rule matches (a number or a set)."""
    ports = set()
    if not any("accept" in expr for expr in rule["expr"]):
        return ports
    for expr in rule["expr"]:
        match = expr.get("match", {})
        left = match.get("left", {}).get("payload", {})
        if left.get("protocol") == "tcp" and left.get("field") == "dport":
            right = match["right"]
            values = right["set"] if isinstance(right, dict) else [right]
            ports.update(v for v in values if isinstance(v, int))
    return ports


def test_input_chain_drops_by_default(host):
    chains = [item["chain"] for item in ruleset(host) if "chain" in item]
    assert [(c["name"], c["hook"], c["policy"]) for c in chains] == [("input", "input", "drop")]


def test_only_ssh_and_443_are_open(host):
    opened = set()
    for rule in input_rules(host):
        opened |= dports(rule)
    assert opened == {22, 443}


def test_ssh_is_limited_to_the_sources(host):
    text = host.run("nft list table inet %s", TABLE).stdout
    assert "ip saddr @ssh_sources_v4 tcp dport 22 accept" in text
    assert "ip6 saddr @ssh_sources_v6 tcp dport 22 accept" in text
    assert "192.0.2.0/24" in text and "2001:db8::/32" in text


def test_tailnet_is_trusted_without_the_tailnet_only_policy(host):
    text = host.run("nft list table inet %s", TABLE).stdout
    assert 'iifname "tailscale0" accept' in text


def test_boot_config(host):
    conf = host.file("/etc/nftables.conf").content_string
    assert "flush ruleset" not in [
        line.strip() for line in conf.splitlines() if not line.startswith("#")
    ]
    assert 'include "/etc/nftables.d/*.nft"' in conf
    assert host.service("nftables").is_enabled
    assert host.run("nft -c -f /etc/nftables.conf").rc == 0


def test_reload_keeps_other_tables(host):
    """A reload replaces only this table: a table of someone else (Docker's) survives."""
    before = len(input_rules(host))
    assert host.run("nft add table ip aw_test_other").rc == 0
    try:
        assert host.run("nft -f /etc/nftables.d/agent-workstation.nft").rc == 0
        assert host.run("nft list table ip aw_test_other").rc == 0
        assert len(input_rules(host)) == before  # replaced, not appended
    finally:
        host.run("nft delete table ip aw_test_other")


def test_443_accepted_from_the_network(host):
    with socket.create_connection((container_ip(host), 443), timeout=5):
        pass


def test_other_port_dropped_from_the_network(host, extra_listener):
    # The service answers locally...
    local = "import urllib.request as u; u.urlopen('http://127.0.0.1:8080/', timeout=5)"
    assert host.run("python3 -c %s", local).rc == 0
    # ...but from the network the SYN is dropped: a timeout, not a refusal.
    with pytest.raises(socket.timeout):
        socket.create_connection((container_ip(host), extra_listener), timeout=3)


@pytest.fixture(scope="module")
def udp_listener(host):
    """A service that wrongly binds UDP 0.0.0.0:9999."""
    if host.run("systemctl is-active --quiet aw-test-udp-9999").rc != 0:
        host.run_test("systemctl reset-failed aw-test-udp-9999")
        code = (
            "import socket,time; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM);"
            " s.bind(('0.0.0.0', 9999)); time.sleep(3600)"
        )
        cmd = host.run("systemd-run --unit aw-test-udp-9999 python3 -c %s", code)
        assert cmd.rc == 0, cmd.stderr
    for _ in range(50):
        if "0.0.0.0:9999" in host.run("ss -Hulnp").stdout:
            break
        host.run("sleep 0.2")
    assert "0.0.0.0:9999" in host.run("ss -Hulnp").stdout
    return 9999


def test_bindings_check_rejects_the_public_listener(host, extra_listener, udp_listener):
    inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    env = dict(
        os.environ,
        ANSIBLE_ROLES_PATH=os.path.join(os.environ["AW_ROOT"], "roles"),
        ANSIBLE_FORCE_COLOR="false",
    )
    run = subprocess.run(
        ["ansible-playbook", "-i", inventory, os.path.join(HERE, "check_bindings.yml")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    out = run.stdout + run.stderr
    assert run.returncode != 0, out
    assert re.search(r"allowed:.*python3\s+on\s+tcp\s+0\.0\.0\.0:8080[.;]", out), out
    # ss -u: a UDP socket bound to every address is reported too
    assert re.search(r"python3\s+on\s+udp\s+0\.0\.0\.0:9999[.;]", out), out
    # the allowed stand-in (python3:443) is not reported
    assert not re.search(r"python3\s+on\s+tcp\s+0\.0\.0\.0:443\b", out), out


def _udp_ports(rule, field):
    for expr in rule["expr"]:
        left = expr.get("match", {}).get("left", {}).get("payload", {})
        if left.get("protocol") == "udp" and left.get("field") == field:
            return expr["match"]["right"]
    return None


def test_dhcpv6_replies_accepted_from_link_local(host):
    # read back from the kernel's loaded ruleset (nft -j), not from the file
    rules = [
        r
        for r in input_rules(host)
        if _udp_ports(r, "sport") == 547
        and _udp_ports(r, "dport") == 546
        and any("accept" in e for e in r["expr"])
    ]
    assert len(rules) == 1, input_rules(host)
    saddr = [
        e["match"]["right"]
        for e in rules[0]["expr"]
        if e.get("match", {}).get("left", {}).get("payload", {}).get("field") == "saddr"
    ]
    assert saddr == [{"prefix": {"addr": "fe80::", "len": 10}}]


def test_only_dhcpv6_replies_among_udp(host):
    # No other UDP port is opened by that rule: the only UDP accept is 547 -> 546.
    udp = [r for r in input_rules(host) if _udp_ports(r, "dport") is not None]
    assert [_udp_ports(r, "dport") for r in udp] == [546]


def _iifname(rule):
    for expr in rule["expr"]:
        match = expr.get("match", {})
        if match.get("left", {}).get("meta", {}).get("key") == "iifname":
            return match["right"]
    return None


def _converge(extra_vars):
    env = dict(
        os.environ,
        ANSIBLE_ROLES_PATH=os.path.join(os.environ["AW_ROOT"], "roles"),
        ANSIBLE_FORCE_COLOR="false",
        MOLECULE_PROJECT_DIRECTORY=os.path.join(os.environ["AW_ROOT"], "roles", "firewall"),
    )
    return subprocess.run(
        [
            "ansible-playbook",
            "-i",
            os.environ["MOLECULE_INVENTORY_FILE"],
            os.path.join(os.environ["AW_ROOT"], ".config", "molecule", "converge.yml"),
            "-e",
            # the test listeners of this module stay up: the bindings check is tested above
            json.dumps({"firewall_check_bindings": False, **extra_vars}),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def test_tailnet_only_admits_the_site_ports_on_tailscale0_only(host):
    """Tailscale on: the loaded ruleset admits Caddy's ports (and SSH) on tailscale0 only.
    The acceptance on tailscale0 is asserted on the loaded rules (this container has no
    tailnet); the drop of 443 arriving on eth0 is a real connection attempt."""
    policy = {
        "firewall_tailnet_only": True,
        "firewall_trusted_interfaces": [],
        "firewall_allowed_tcp_ports": [],
    }
    try:
        run = _converge(policy)
        assert run.returncode == 0, run.stdout[-3000:]
        rules = input_rules(host)
        tailnet = [r for r in rules if _iifname(r) == "tailscale0"]
        assert len(tailnet) == 1
        assert dports(tailnet[0]) == {22, 443, 3443, 8443}
        assert not any(_iifname(r) == "tailscale0" and not dports(r) for r in rules)
        elsewhere = set()
        for rule in rules:
            if _iifname(rule) is None:
                elsewhere |= dports(rule)
        assert elsewhere == {22}  # SSH from firewall_ssh_sources only
        with pytest.raises(socket.timeout):
            socket.create_connection((container_ip(host), 443), timeout=3)

        refused = _converge({**policy, "firewall_trusted_interfaces": ["tailscale0"]})
        out = " ".join((refused.stdout + refused.stderr).split())
        assert refused.returncode != 0
        assert "firewall_tailnet_only is true (Tailscale on)" in out, out[-3000:]
        assert "that would admit every port on it" in out
    finally:
        run = _converge({})
    assert run.returncode == 0, run.stdout[-3000:]
    with socket.create_connection((container_ip(host), 443), timeout=5):
        pass
