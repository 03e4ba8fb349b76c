"""Testinfra checks for roles/observability (Prometheus from Debian's package, for real)."""

import json
import pathlib
import time

import yaml

ROLE = pathlib.Path(__file__).resolve().parents[3]
DEFAULTS = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
# This scenario is a local vLLM host: the SGLang alerts (another engine) and the fleet router's
# (another host) are not rendered here (roles/observability vars, _observability_alert_drop).
ALERT_NAMES = sorted(
    a["name"]
    for a in DEFAULTS["observability_alerts"]
    if not a["name"].startswith(("Sglang", "LlmRouter"))
)
GRAFANA = "/srv/agent-workstation/observability/grafana"
RULES = "/etc/prometheus/rules/agent-workstation.rules.yml"
COMPOSE = "/srv/agent-workstation/compose/observability/compose.yml"


def _yaml(host, path):
    return yaml.safe_load(host.file(path).content_string)


def _api(host, path):
    out = host.check_output("python3 -c %s %s", _GET, "http://127.0.0.1:9090" + path)
    return json.loads(out)


_GET = (
    "import sys,urllib.request;"
    "print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())"
)


def _query(host, promql):
    out = host.check_output(
        "python3 -c %s %s %s",
        "import sys,urllib.request,urllib.parse;"
        "print(urllib.request.urlopen(sys.argv[1] + '?' + urllib.parse.urlencode("
        "{'query': sys.argv[2]}), timeout=10).read().decode())",
        "http://127.0.0.1:9090/api/v1/query",
        promql,
    )
    return json.loads(out)["data"]["result"]


def test_services_run_on_loopback_only(host):
    for unit in ("prometheus", "prometheus-node-exporter", "aw-dcgm-standin"):
        assert host.service(unit).is_running, unit
    assert host.service("prometheus").is_enabled
    assert host.socket("tcp://127.0.0.1:9090").is_listening
    assert host.socket("tcp://127.0.0.1:9100").is_listening
    for port in (9090, 9100):
        assert not host.socket(f"tcp://0.0.0.0:{port}").is_listening
        assert not host.socket(f"tcp://:::{port}").is_listening


def test_prometheus_loaded_the_rendered_config(host):
    config = yaml.safe_load(_api(host, "/api/v1/status/config")["data"]["yaml"])
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    assert jobs == {j["job"] for j in DEFAULTS["observability_scrape_jobs"]}
    assert config["rule_files"] == ["/etc/prometheus/rules/agent-workstation.rules.yml"]


def test_prometheus_loaded_every_alert_and_evaluates_them(host):
    groups = _api(host, "/api/v1/rules")["data"]["groups"]
    rules = {r["name"]: r for g in groups for r in g["rules"]}
    assert sorted(rules) == ALERT_NAMES
    assert all(r["health"] != "err" for r in rules.values()), rules
    # Nothing serves vLLM here: the down/not-ready alert must be pending or firing.
    deadline = time.time() + 90
    while rules["VllmDownOrNotReady"]["state"] == "inactive" and time.time() < deadline:
        time.sleep(5)
        groups = _api(host, "/api/v1/rules")["data"]["groups"]
        rules = {r["name"]: r for g in groups for r in g["rules"]}
    assert rules["VllmDownOrNotReady"]["state"] in ("pending", "firing")
    # The disk alert watches the mount point of the (not yet created) paths.
    assert 'mountpoint=~"/"' in rules["DiskAlmostFull"]["query"]


def test_local_targets_are_scraped(host):
    deadline = time.time() + 90
    up = {}
    while time.time() < deadline:
        up = {r["metric"]["job"]: r["value"][1] for r in _query(host, "up")}
        if up.get("node") == "1" and up.get("dcgm") == "1":
            break
        time.sleep(5)
    assert up.get("node") == "1", up
    assert up.get("dcgm") == "1", up  # the DCGM stand-in (recorded output)
    assert up.get("vllm") == "0", up
    temps = _query(host, "DCGM_FI_DEV_GPU_TEMP")
    assert temps and temps[0]["value"][1] == "48"


def test_grafana_provisioning_is_valid_and_loads_the_same_rules(host):
    prom = _yaml(host, RULES)
    prom_rules = {r["alert"]: r for r in prom["groups"][0]["rules"]}
    alerting = _yaml(host, f"{GRAFANA}/provisioning/alerting/agent-workstation.yml")
    for kind in ("alerting", "datasources", "dashboards"):  # contact points hold secrets
        assert host.file(f"{GRAFANA}/provisioning/{kind}/agent-workstation.yml").mode == 0o600
    graf_rules = {r["title"]: r for r in alerting["groups"][0]["rules"]}
    assert sorted(graf_rules) == ALERT_NAMES
    for name, rule in graf_rules.items():
        assert rule["data"][0]["model"]["expr"] == prom_rules[name]["expr"]
        assert rule["for"] == prom_rules[name]["for"]
        assert rule["labels"] == prom_rules[name]["labels"]
    assert alerting["contactPoints"][0]["receivers"][0]["type"] == "webhook"
    ds = _yaml(host, f"{GRAFANA}/provisioning/datasources/agent-workstation.yml")
    assert ds["datasources"][0]["uid"] == "aw-prometheus"
    dash = json.loads(host.file(f"{GRAFANA}/dashboards/agent-workstation.json").content_string)
    assert dash["uid"] == "aw-overview"
    compose = _yaml(host, COMPOSE)
    grafana = compose["services"]["grafana"]
    env = grafana["environment"]
    assert env["GF_SECURITY_ADMIN_PASSWORD__FILE"] == "/run/secrets/grafana_admin_password"
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert "GF_SECURITY_ADMIN_PASSWORD" not in env
    ports = [p for svc in compose["services"].values() for p in svc.get("ports", [])]
    assert ports and all(p.startswith("127.0.0.1:") for p in ports)


def test_admin_password_secret(host):
    secret = host.file("/srv/agent-workstation/secrets/grafana_admin_password")
    assert secret.is_file
    assert secret.mode == 0o400
    assert secret.user == "agent"
    assert len(secret.content_string.strip()) == 32
    compose = host.file(COMPOSE).content_string
    assert secret.content_string.strip() not in compose
