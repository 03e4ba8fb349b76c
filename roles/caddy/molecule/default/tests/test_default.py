"""Testinfra checks for roles/caddy: real Caddy 2.6 from Debian, stand-in upstreams."""

import hashlib
import json
import os
import subprocess

import pytest

HOST = "workstation.molecule.test"
PASSWORD = "molecule-test-only-pw"  # test-only; its bcrypt hash is made in prepare.yml
PASSWORD_FILE = "/etc/agent-workstation/caddy/admin-password"  # the generated user's
ADMIN_SOCKET = "/run/caddy/admin.sock"
SCENARIO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def curl(host, port, path="/", password=None, user="admin"):
    """HTTPS request through Caddy (tls internal, so -k); returns (status, headers, body)."""
    auth = f"-u {user}:{password} " if password else ""
    cmd = (
        f"curl -sk --max-time 10 --resolve {HOST}:{port}:127.0.0.1 {auth}"
        f"-D /tmp/h -o /tmp/b -w '%{{http_code}}' https://{HOST}:{port}{path}"
        "; echo; cat /tmp/h; echo '----'; cat /tmp/b"
    )
    out = host.check_output(cmd)
    status, rest = out.split("\n", 1)
    headers, body = rest.split("----", 1)
    return int(status), headers.lower(), body


@pytest.fixture
def admin_pw(host):
    return host.file(PASSWORD_FILE).content_string.strip()


def test_caddy_runs_from_debian(host):
    assert host.package("caddy").is_installed
    assert host.package("caddy").version.startswith("2.6")
    svc = host.service("caddy")
    assert svc.is_running
    assert svc.is_enabled


def test_config_files_are_private(host, admin_pw):
    cfg = host.file("/etc/caddy/Caddyfile")
    assert (cfg.user, cfg.group, cfg.mode) == ("root", "caddy", 0o640)
    assert cfg.content_string.startswith("#")
    assert "Ansible managed" in cfg.content_string
    auth = host.file("/etc/caddy/basic-auth.caddyfile")
    assert (auth.user, auth.group, auth.mode) == ("root", "caddy", 0o640)
    hashed = host.file(PASSWORD_FILE + ".bcrypt").content_string.strip()
    assert hashed.startswith("$2a$14$")
    assert f"admin {hashed}" in auth.content_string  # only the hash reaches Caddy
    for path in ("/etc/caddy/Caddyfile", "/etc/caddy/basic-auth.caddyfile"):
        assert admin_pw not in host.file(path).content_string
    for path in (PASSWORD_FILE, PASSWORD_FILE + ".bcrypt"):
        secret = host.file(path)
        assert (secret.user, secret.group, secret.mode) == ("root", "root", 0o600)
    folder = host.file(os.path.dirname(PASSWORD_FILE))
    assert (folder.user, folder.mode) == ("root", 0o700)
    assert len(admin_pw) >= 32


def test_open_webui_through_caddy_with_headers(host, admin_pw):
    status, headers, body = curl(host, 443, password=admin_pw)
    assert status == 200
    assert "stand-in open_webui" in body
    assert "strict-transport-security: max-age=31536000" in headers
    assert "x-content-type-options: nosniff" in headers
    assert "x-frame-options: sameorigin" in headers
    assert "referrer-policy: strict-origin-when-cross-origin" in headers
    assert "\nserver:" not in headers


@pytest.mark.parametrize(
    ("port", "path", "page"),
    [
        (443, "/", "stand-in open_webui"),
        (8443, "/", "stand-in openhands"),
        (3443, "/", "stand-in grafana"),
        (3443, "/extra/", "stand-in open_webui under /extra"),
    ],
)
def test_every_site_requires_authentication_by_default(host, admin_pw, port, path, page):
    status, headers, body = curl(host, port, path)
    assert status == 401
    assert 'www-authenticate: basic realm="restricted"' in headers
    assert page not in body
    assert curl(host, port, path, password="wrong-password")[0] == 401
    assert curl(host, port, path, password=admin_pw, user="root")[0] == 401
    status, _, body = curl(host, port, path, password=admin_pw)
    assert status == 200 and page in body


def test_sub_path_redirect(host, admin_pw):
    # The sub-path is passed on unchanged (the app must be configured to live under it).
    status, headers, _ = curl(host, 3443, "/extra", password=admin_pw)
    assert status in (301, 302, 308) and "location: /extra/" in headers


def test_only_https_ports_and_the_loopback_metrics_site_listen(host):
    # (ss cannot name Caddy's process in this container: it lacks CAP_SYS_PTRACE.)
    listening = host.check_output("ss -Htln")
    addresses = {line.split()[3] for line in listening.splitlines()}
    standins = {"127.0.0.1:3001", "127.0.0.1:3000", "127.0.0.1:3002"}
    assert addresses - standins == {"127.0.0.1:2019", "*:443", "*:8443", "*:3443"}


def admin(host, path, user="root"):
    """Admin API request over the Unix socket (Caddy 2.6 only accepts an empty Host there)."""
    return host.run(
        f"runuser -u {user} -- curl -s --max-time 10 --unix-socket {ADMIN_SOCKET} "
        f"-H 'Host;' -w '\\n%{{http_code}}' http://localhost{path}"
    )


def test_admin_api_answers_on_the_unix_socket_only(host):
    sock = host.file(ADMIN_SOCKET)
    assert sock.is_socket and sock.user == "caddy"
    rundir = host.file(os.path.dirname(ADMIN_SOCKET))
    assert (rundir.user, rundir.group, rundir.mode) == ("caddy", "caddy", 0o750)
    result = admin(host, "/config/")
    assert result.rc == 0, result.stderr
    body, status = result.stdout.rsplit("\n", 1)
    assert status == "200"
    config = json.loads(body)
    assert config["admin"]["listen"] == f"unix/{ADMIN_SOCKET}"
    listens = [addr for srv in config["apps"]["http"]["servers"].values() for addr in srv["listen"]]
    assert ":443" in listens and "127.0.0.1:2019" in listens
    # Only caddy and root may use the socket: any other local user is refused by the file system.
    assert admin(host, "/config/", user="nobody").rc != 0
    assert admin(host, "/config/", user="caddy").rc == 0


def test_admin_api_is_not_on_tcp(host):
    # The old admin address now serves the metrics site: no config, no /load.
    for path in ("/config/", "/config/apps", "/load", "/id/"):
        out = host.check_output(
            f"curl -s --max-time 10 -w '\\n%{{http_code}}' http://127.0.0.1:2019{path}"
        )
        body, status = out.rsplit("\n", 1)
        assert status == "404", (path, out)
        assert '"apps"' not in body and '"admin"' not in body
    out = host.check_output(
        "curl -s --max-time 10 -o /dev/null -w '%{http_code}' -X POST "
        "-H 'Content-Type: application/json' -d '{}' http://127.0.0.1:2019/load"
    )
    assert out == "404"
    # The POST above did not replace the config: the sites still answer (and still ask).
    assert curl(host, 3443)[0] == 401


def test_metrics_for_prometheus(host):
    curl(host, 3443)
    metrics = host.check_output("curl -s --max-time 10 http://127.0.0.1:2019/metrics")
    assert "caddy_http_requests_total" in metrics


def test_access_log_written(host):
    curl(host, 3443)
    log = host.file("/var/log/caddy/access.log")
    assert log.exists and log.user == "caddy"
    last = json.loads(log.content_string.strip().splitlines()[-1])
    assert last["request"]["host"].startswith(HOST)
    cfg = host.file("/etc/caddy/Caddyfile").content_string
    assert "roll_size 10MiB" in cfg and "roll_keep 3" in cfg


def run_converge(extra_vars):
    """Runs the scenario's converge play again with extra vars (as an operator's re-run would)."""
    return subprocess.run(
        [
            "ansible-playbook",
            "-i",
            os.environ["MOLECULE_INVENTORY_FILE"],
            os.path.join(SCENARIO_DIR, "converge.yml"),
            "-e",
            json.dumps(extra_vars),
        ],
        capture_output=True,
        text=True,
        env=os.environ,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize(
    ("extra_vars", "expected"),
    [
        (
            {"caddy_sites": [{"name": "open_webui"}, {"name": "bogus"}]},
            "caddy_sites: unknown site name(s) bogus. Known apps: grafana, open_webui, openhands",
        ),
        (
            {"caddy_basic_auth_users": [{"name": "eve", "password_hash": "plaintext"}]},
            "caddy_basic_auth_users: entries eve need a name",
        ),
        (
            {"caddy_sites": [{"name": "open_webui"}, {"name": "grafana", "basic_auth": False}]},
            "caddy_sites: grafana set basic_auth: false, but every site requires authentication",
        ),
        (
            {"caddy_auth_password_file": "relative/pw"},
            "caddy_auth_password_file=relative/pw. Fix:",
        ),
        (
            {"caddy_metrics_listen": "0.0.0.0:2019"},
            "caddy_metrics_listen=0.0.0.0:2019: the /metrics site must listen on a loopback",
        ),
        (
            # An inventory from before the admin API moved to a Unix socket.
            {"caddy_admin_address": "127.0.0.1:2019"},
            "caddy_admin_address=127.0.0.1:2019 is no longer used",
        ),
    ],
)
def test_bad_input_stops_before_anything_changes(host, extra_vars, expected):
    before = hashlib.sha256(host.file("/etc/caddy/Caddyfile").content).hexdigest()
    auth_before = host.file("/etc/caddy/basic-auth.caddyfile").content
    result = run_converge(extra_vars)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert expected in " ".join(output.split()), output[-3000:]
    assert "changed=0" in result.stdout
    assert hashlib.sha256(host.file("/etc/caddy/Caddyfile").content).hexdigest() == before
    assert host.file("/etc/caddy/basic-auth.caddyfile").content == auth_before
    assert "plaintext" not in host.file("/etc/caddy/basic-auth.caddyfile").content_string


def caddy_pid(host):
    return host.check_output("systemctl show -P MainPID caddy")


def test_config_change_is_reloaded_through_the_admin_socket(host, admin_pw):
    """A changed Caddyfile reaches the running Caddy by `systemctl reload` (caddy reload over the
    Unix socket), without a restart; then the original configuration is put back the same way."""
    pid = caddy_pid(host)
    since = host.check_output("date '+%Y-%m-%d %H:%M:%S'")
    headers = {
        "Strict-Transport-Security": "max-age=31536000",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "strict-origin-when-cross-origin",
        "X-Frame-Options": "SAMEORIGIN",
        "X-Molecule-Reload": "through-the-socket",
    }
    result = run_converge({"caddy_security_headers": headers})
    assert result.returncode == 0, result.stdout[-3000:]
    assert "RUNNING HANDLER [caddy : Reload caddy]" in result.stdout
    assert "x-molecule-reload: through-the-socket" in curl(host, 3443, password=admin_pw)[1]
    assert caddy_pid(host) == pid  # reloaded, not restarted
    journal = host.check_output(f"journalctl -u caddy --since '{since}' --no-pager -o cat")
    assert "Reloaded caddy.service" in journal or "Reloaded Caddy" in journal, journal[-2000:]
    assert '"uri":"/load"' in journal, journal[-2000:]

    result = run_converge({})
    assert result.returncode == 0, result.stdout[-3000:]
    assert "x-molecule-reload" not in curl(host, 3443, password=admin_pw)[1]
    assert caddy_pid(host) == pid


def test_moving_the_admin_socket_restarts_caddy(host):
    """`caddy reload` would send the new config to the new socket, which the running Caddy does
    not listen on yet: the role restarts Caddy instead (as on an upgrade from the TCP admin)."""
    moved = "/run/caddy-moved/admin.sock"
    pid = caddy_pid(host)
    try:
        result = run_converge({"caddy_admin_socket": moved})
        assert result.returncode == 0, result.stdout[-3000:]
        assert caddy_pid(host) != pid
        assert host.file(moved).is_socket
        assert not host.file(ADMIN_SOCKET).exists
        status = host.check_output(
            f"curl -s --max-time 10 --unix-socket {moved} -H 'Host;' "
            "-o /dev/null -w '%{http_code}' http://localhost/config/"
        )
        assert status == "200"
        assert curl(host, 3443)[0] == 401
    finally:
        result = run_converge({})
    assert result.returncode == 0, result.stdout[-3000:]
    assert host.file(ADMIN_SOCKET).is_socket
    # (systemd leaves the old, now empty directory in /run until the next boot.)
    assert not host.file(moved).exists
    assert admin(host, "/config/").rc == 0


def test_operator_users_replace_the_generated_one_and_it_comes_back_unchanged(host, admin_pw):
    hashed = host.file("/root/molecule-basic-auth.hash").content_string.strip()
    pw_before = host.file(PASSWORD_FILE).content
    try:
        result = run_converge(
            {"caddy_basic_auth_users": [{"name": "molecule", "password_hash": hashed}]}
        )
        assert result.returncode == 0, result.stdout[-3000:]
        assert hashed not in result.stdout  # no_log / diff: false
        assert curl(host, 8443, password=PASSWORD, user="molecule")[0] == 200
        assert curl(host, 8443, password=admin_pw)[0] == 401
    finally:
        result = run_converge({})
    assert result.returncode == 0, result.stdout[-3000:]
    assert f"its password is in {PASSWORD_FILE}" in " ".join(result.stdout.split())
    assert admin_pw not in result.stdout + result.stderr
    # the generated password survives re-runs: same file, same login
    assert host.file(PASSWORD_FILE).content == pw_before
    assert curl(host, 8443, password=admin_pw)[0] == 200


def test_the_opt_out_is_loud_and_lets_a_site_go_without_a_login(host, admin_pw):
    sites = [
        {"name": "open_webui"},
        {"name": "openhands"},
        {"name": "grafana", "basic_auth": False},
    ]
    try:
        result = run_converge({"caddy_auth_required": False, "caddy_sites": sites})
        assert result.returncode == 0, result.stdout[-3000:]
        assert "WARNING: caddy_auth_required is false" in result.stdout
        assert curl(host, 3443)[0] == 200
        assert curl(host, 443)[0] == 200  # no users given: no login anywhere
    finally:
        result = run_converge({})
    assert result.returncode == 0, result.stdout[-3000:]
    assert curl(host, 3443)[0] == 401
    assert curl(host, 3443, password=admin_pw)[0] == 200
