"""Testinfra checks for roles/tailscale against the STAND-IN tailscale package (see ../standin)."""

import json
import os
import subprocess

import pytest

KEY_FILE = "/etc/agent-workstation/tailscale.authkey"
STATE = "/var/lib/tailscale/standin-state.json"
CALLS = "/var/lib/tailscale/standin-calls.json"
SCENARIO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def state(host):
    return json.loads(host.file(STATE).content_string)


def calls(host):
    return json.loads(host.file(CALLS).content_string)


def converge(extra_vars=None):
    """Re-runs the converge play (an operator's re-run), optionally with extra vars."""
    cmd = [
        "ansible-playbook",
        "-i",
        os.environ["MOLECULE_INVENTORY_FILE"],
        os.path.join(SCENARIO_DIR, "converge.yml"),
    ]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    result = subprocess.run(
        cmd, capture_output=True, text=True, env=os.environ, timeout=300, check=False
    )
    result.output = result.stdout + result.stderr
    return result


@pytest.fixture
def restore_standin(host):
    """Puts the stand-in's state and call log back after a test that changes the node."""
    saved = {path: host.file(path).content_string for path in (STATE, CALLS)}
    yield
    host.run(f"test -f {KEY_FILE}.away && mv {KEY_FILE}.away {KEY_FILE}")
    for path, content in saved.items():
        host.run(f"cat > {path} <<'EOF'\n{content}\nEOF")


def test_standin_package_and_daemon(host):
    assert host.package("tailscale").version == "1.90.0~standin"
    svc = host.service("tailscaled")
    assert svc.is_running and svc.is_enabled


def test_node_is_up_with_wanted_settings(host):
    st = state(host)
    assert st["BackendState"] == "Running"
    prefs = st["Prefs"]
    assert prefs["Hostname"] == "aw-molecule"
    assert prefs["AdvertiseTags"] == ["tag:workstation"]
    assert prefs["CorpDNS"] is True  # MagicDNS accepted
    assert prefs["RunSSH"] is False


def test_up_ran_exactly_once_with_the_key_from_a_file(host):
    # converge + idempotence (and a verify re-run) must not call `up` again.
    ups = [c for c in calls(host) if c["cmd"] == "up"]
    assert len(ups) == 1, calls(host)
    assert f"--auth-key=file:{KEY_FILE}" in ups[0]["argv"]
    assert "--advertise-tags=tag:workstation" in ups[0]["argv"]
    assert "--accept-dns=true" in ups[0]["argv"]
    assert not [c for c in calls(host) if c["cmd"] == "set"]
    assert "tskey" not in json.dumps(calls(host))


def test_caddy_may_fetch_the_certificate(host):
    assert host.file("/etc/default/tailscaled").contains("^TS_PERMIT_CERT_UID=caddy$")
    # The stand-in daemon records its environment at start: the handler restarted it.
    daemon = json.loads(host.file("/var/lib/tailscale/standin-daemon.json").content_string)
    assert daemon["TS_PERMIT_CERT_UID"] == "caddy"


def test_rerun_without_key_file_changes_nothing(host, restore_standin):
    before = calls(host)
    host.run_test(f"mv {KEY_FILE} {KEY_FILE}.away")
    result = converge()
    assert result.returncode == 0, result.output[-3000:]
    assert "changed=0" in result.stdout and "failed=0" in result.stdout
    assert calls(host) == before


def test_changed_tags_run_up_other_settings_run_set(host, restore_standin):
    before = len(calls(host))
    result = converge({"tailscale_tags": ["tag:workstation", "tag:gpu"]})
    assert result.returncode == 0, result.output[-3000:]
    new = calls(host)[before:]
    assert [c["cmd"] for c in new] == ["up"]
    assert "--advertise-tags=tag:workstation,tag:gpu" in new[0]["argv"]
    assert sorted(state(host)["Prefs"]["AdvertiseTags"]) == ["tag:gpu", "tag:workstation"]

    result = converge(
        {"tailscale_tags": ["tag:workstation", "tag:gpu"], "tailscale_hostname": "aw-renamed"}
    )
    assert result.returncode == 0, result.output[-3000:]
    new = calls(host)[before + 1 :]
    assert [c["cmd"] for c in new] == ["set"]
    assert "--hostname=aw-renamed" in new[0]["argv"]
    assert not any(a.startswith("--auth-key") for a in new[0]["argv"])
    assert state(host)["Prefs"]["Hostname"] == "aw-renamed"


def test_missing_key_stops_a_logged_out_node_before_changes(host, restore_standin):
    host.run_test("tailscale logout")
    host.run_test(f"mv {KEY_FILE} {KEY_FILE}.away")
    defaults_before = host.file("/etc/default/tailscaled").content_string
    before = calls(host)
    result = converge({"tailscale_permit_cert_uid": "www-data"})
    assert result.returncode != 0
    text = " ".join(result.output.split())
    assert f"tailscale_authkey_file={KEY_FILE} does not exist" in text
    assert "changed=0" in result.stdout
    assert calls(host) == before
    assert host.file("/etc/default/tailscaled").content_string == defaults_before


def test_bad_tag_is_refused(host):
    before = calls(host)
    result = converge({"tailscale_tags": ["workstation"]})
    assert result.returncode != 0
    assert "tailscale_tags=['workstation']" in result.output
    assert "Fix: every tag looks like tag:name" in " ".join(result.output.split())
    assert calls(host) == before
