"""roles/observability: the alert list renders, through Ansible and the role's own templates, into
a Prometheus rules file that promtool checks and unit-tests (tests/promtool), and into Grafana's
alerting provisioning with the same names and expressions.

Needs promtool (Debian's `prometheus` package); this test installs nothing."""

import importlib.util
import os
import pathlib
import shutil
import subprocess

import pytest
import yaml
from playbook_run import run_local_playbook

ROOT = pathlib.Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles/observability"
DEFAULTS = yaml.safe_load((ROLE / "defaults/main.yml").read_text())
MOUNTS = ["/", "/srv/agent-workstation"]
PROMTOOL_TESTS = ROOT / "tests/promtool/agent-workstation.test.yml"

_spec = importlib.util.spec_from_file_location(
    "obs_dash", pathlib.Path(__file__).with_name("test_observability_dashboards.py")
)
obs_dash = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(obs_dash)

PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  vars_files:
    # The workstation contract first: the role's defaults are written in its terms.
    - {role}/../workstation/defaults/main.yml
    - {role}/defaults/main.yml
    - {role}/vars/main.yml
    - {role}/vars/Debian.yml
  tasks:
    - name: Render
      ansible.builtin.template:
        src: "{role}/templates/{{{{ item.src }}}}"
        dest: "{out}/{{{{ item.dest }}}}"
        mode: "0644"
      loop:
        - {{src: prometheus-rules.yml.j2, dest: agent-workstation.rules.yml}}
        - {{src: grafana-alerting.yml.j2, dest: grafana-alerting.yml}}
        - {{src: grafana/datasources.yml.j2, dest: grafana-datasources.yml}}
        - {{src: grafana/dashboards.yml.j2, dest: grafana-dashboards.yml}}
        - {{src: prometheus/prometheus.yml.j2, dest: prometheus.yml}}
        - {{src: compose/compose.yml.j2, dest: compose.yml}}
        - {{src: loki/loki.yml.j2, dest: loki.yml}}
"""


def _promtool():
    tool = shutil.which("promtool")
    if tool is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing on CI: apt-get install prometheus")
        pytest.skip("promtool not installed (apt-get install prometheus)")
    return tool


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("observability")
    playbook = out / "render.yml"
    playbook.write_text(PLAYBOOK.format(role=ROLE, out=out))
    extra = {
        "_observability_disk_mountpoints": MOUNTS,
        "_observability_prometheus_rules_file": str(out / "agent-workstation.rules.yml"),
        "observability_loki_enabled": True,
        "observability_redis_password_file": "/srv/agent-workstation/secrets/redis_password",
        "observability_contact_points": [
            {"name": "ops", "type": "email", "settings": {"addresses": "ops@example.org"}}
        ],
    }
    (out / "ansible.cfg").write_text("[defaults]\nretry_files_enabled = false\n")
    run_local_playbook(playbook, extra, out)
    shutil.copy(ROOT / "tests/promtool/agent-workstation.test.yml", out)
    return out


@pytest.mark.slow
def test_promtool_checks_the_rules_and_config(rendered):
    tool = _promtool()
    for args in (
        ["check", "rules", "agent-workstation.rules.yml"],
        ["check", "config", "prometheus.yml"],
    ):
        res = subprocess.run(
            [tool, *args], check=False, cwd=rendered, capture_output=True, text=True
        )
        assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.slow
def test_promtool_unit_tests_fire_and_stay_quiet(rendered):
    tool = _promtool()
    res = subprocess.run(
        [tool, "test", "rules", "agent-workstation.test.yml"],
        check=False,
        cwd=rendered,
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stdout + res.stderr


# Rendered on other hosts only (another engine, the fleet's router host): their promtool tests
# are tests/promtool/llm-engines.test.yml (tests/unit/test_observability_llm_alerts.py).
ELSEWHERE = ("Sglang", "LlmRouter")
LOCAL_VLLM = [
    a["name"] for a in DEFAULTS["observability_alerts"] if not a["name"].startswith(ELSEWHERE)
]


def test_every_alert_has_a_firing_and_a_quiet_test():
    tests = [
        case
        for path in (PROMTOOL_TESTS, ROOT / "tests/promtool/llm-engines.test.yml")
        for case in yaml.safe_load(path.read_text())["tests"]
    ]
    fires, quiet = set(), set()
    for case in tests:
        for check in case["alert_rule_test"]:
            (fires if check["exp_alerts"] else quiet).add(check["alertname"])
    names = {a["name"] for a in DEFAULTS["observability_alerts"]}
    assert names <= fires, f"no firing test for {sorted(names - fires)}"
    assert names <= quiet, f"no quiet test for {sorted(names - quiet)}"


def test_kv_cache_alert_is_tested_with_both_vllm_generations():
    text = PROMTOOL_TESTS.read_text()
    assert "series: 'vllm:kv_cache_usage_perc{" in text
    assert "series: 'vllm:gpu_cache_usage_perc{" in text


@pytest.mark.slow
def test_grafana_loads_the_same_rules_as_prometheus(rendered):
    prom = yaml.safe_load((rendered / "agent-workstation.rules.yml").read_text())
    prom_rules = {r["alert"]: r for g in prom["groups"] for r in g["rules"]}
    graf = yaml.safe_load((rendered / "grafana-alerting.yml").read_text())
    graf_rules = {r["title"]: r for g in graf["groups"] for r in g["rules"]}
    assert list(graf_rules) == LOCAL_VLLM
    assert set(graf_rules) == set(prom_rules)
    for name, rule in graf_rules.items():
        query = next(d for d in rule["data"] if d["refId"] == "A")
        assert query["model"]["expr"] == prom_rules[name]["expr"]
        assert query["datasourceUid"] == "aw-prometheus"
        assert rule["condition"] == "C"
        assert rule["for"] == prom_rules[name]["for"]
        assert rule["labels"] == prom_rules[name]["labels"]
        assert rule["annotations"]["summary"] == prom_rules[name]["annotations"]["summary"]
        assert len(rule["uid"]) <= 40
    assert len({r["uid"] for r in graf_rules.values()}) == len(graf_rules)
    assert graf["contactPoints"][0]["receivers"][0]["type"] == "email"
    assert graf["policies"][0]["receiver"] == "agent-workstation"


@pytest.mark.slow
def test_thresholds_and_mount_points_are_substituted(rendered):
    prom = yaml.safe_load((rendered / "agent-workstation.rules.yml").read_text())
    for rule in prom["groups"][0]["rules"]:
        assert "{threshold}" not in rule["expr"] and "{mountpoints}" not in rule["expr"]
    disk = next(r for r in prom["groups"][0]["rules"] if r["alert"] == "DiskAlmostFull")
    assert 'mountpoint=~"/|/srv/agent-workstation"' in disk["expr"]


@pytest.mark.slow
def test_rendered_rules_query_only_recorded_metrics(rendered):
    known = obs_dash.fixture_metric_names() | obs_dash.PROMETHEUS_SYNTHETIC
    prom = yaml.safe_load((rendered / "agent-workstation.rules.yml").read_text())
    exprs = [r["expr"] for r in prom["groups"][0]["rules"]]
    used = set().union(*(obs_dash.promql_metric_names(e) for e in exprs))
    assert {"vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"} <= used
    assert used <= known, f"not in any recorded exporter output: {sorted(used - known)}"


@pytest.mark.slow
def test_provisioning_and_compose_are_valid_yaml(rendered):
    ds = yaml.safe_load((rendered / "grafana-datasources.yml").read_text())
    assert [d["uid"] for d in ds["datasources"]] == ["aw-prometheus", "aw-loki"]
    provider = yaml.safe_load((rendered / "grafana-dashboards.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    compose = yaml.safe_load((rendered / "compose.yml").read_text())
    for name, svc in compose["services"].items():
        assert svc["logging"]["driver"] == "json-file", name
        assert all(p.startswith("127.0.0.1:") for p in svc.get("ports", [])), name
        assert not any("PASSWORD=" in str(e) for e in svc.get("environment", {})), name
    env = compose["services"]["grafana"]["environment"]
    assert env["GF_SECURITY_ADMIN_PASSWORD__FILE"] == "/run/secrets/grafana_admin_password"
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert compose["secrets"]["grafana_admin_password"]["file"].endswith("/grafana_admin_password")
    assert "/var/lib/docker/containers:ro" in " ".join(compose["services"]["alloy"]["volumes"])
    exporter = compose["services"]["redis-exporter"]
    assert "--redis.password-file=/run/secrets/redis_exporter_passwords" in exporter["command"]
    assert exporter["secrets"] == ["redis_exporter_passwords"]
    assert yaml.safe_load((rendered / "loki.yml").read_text())["auth_enabled"] is False
