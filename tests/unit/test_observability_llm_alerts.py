"""roles/observability: the alerts on SGLang (workstation_llm_engine: sglang) and on the fleet
router (job llm_router), rendered through Ansible from the role's defaults with no engine or
host filter, checked and unit-tested by promtool (tests/promtool/llm-engines.test.yml); which of
them a host gets (the other engine's are not rendered, the router's only on the router host);
and that their metric names are SGLang 0.5.17's (tests/contracts/sglang-0.5.17.json, read in its
source) and the real vllm-router 0.1.17's (tests/fixtures/exporters/vllm-router-0.1.17.txt,
recorded here).

Needs promtool (Debian's `prometheus` package); this test installs nothing."""

from __future__ import annotations

import importlib.util
import json
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
TESTS = ROOT / "tests/promtool/llm-engines.test.yml"
CONTRACT = json.loads((ROOT / "tests/contracts/sglang-0.5.17.json").read_text())
ROUTER_FIXTURE = ROOT / "tests/fixtures/exporters/vllm-router-0.1.17.txt"
NEW = ("Sglang", "LlmRouter")

_spec = importlib.util.spec_from_file_location(
    "obs_dash", pathlib.Path(__file__).with_name("test_observability_dashboards.py")
)
obs_dash = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(obs_dash)

PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  vars_files:
    - {role}/../workstation/defaults/main.yml
    - {role}/defaults/main.yml
    - {role}/vars/main.yml
  tasks:
    - name: Render
      ansible.builtin.template:
        src: "{role}/templates/prometheus-rules.yml.j2"
        dest: "{out}/llm-engines.rules.yml"
        mode: "0644"
"""

ROUTER_JOB = [{"job": "llm_router", "targets": ["127.0.0.1:8092"], "metrics_path": "/metrics"}]


def _promtool():
    tool = shutil.which("promtool")
    if tool is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing on CI: apt-get install prometheus")
        pytest.skip("promtool not installed (apt-get install prometheus)")
    return tool


def render(out: pathlib.Path, **extra) -> list[dict]:
    out.mkdir(parents=True, exist_ok=True)
    (out / "render.yml").write_text(PLAYBOOK.format(role=ROLE, out=out))
    (out / "ansible.cfg").write_text("[defaults]\nretry_files_enabled = false\n")
    run_local_playbook(out / "render.yml", {"_observability_disk_mountpoints": ["/"], **extra}, out)
    return yaml.safe_load((out / "llm-engines.rules.yml").read_text())["groups"][0]["rules"]


@pytest.fixture(scope="module")
def every_alert(tmp_path_factory):
    out = tmp_path_factory.mktemp("llm-alerts")
    rules = render(out, _observability_alert_drop=[])
    shutil.copy(TESTS, out)
    return out, rules


def _names(rules):
    return [r["alert"] for r in rules]


@pytest.mark.slow
def test_promtool_checks_and_unit_tests_the_engine_and_router_alerts(every_alert):
    out, rules = every_alert
    assert _names(rules) == [a["name"] for a in DEFAULTS["observability_alerts"]]
    tool = _promtool()
    for args in (
        ["check", "rules", "llm-engines.rules.yml"],
        ["test", "rules", "llm-engines.test.yml"],
    ):
        res = subprocess.run([tool, *args], check=False, cwd=out, capture_output=True, text=True)
        assert res.returncode == 0, res.stdout + res.stderr


def test_every_new_alert_has_a_firing_and_a_quiet_test():
    fires, quiet = set(), set()
    for case in yaml.safe_load(TESTS.read_text())["tests"]:
        for check in case["alert_rule_test"]:
            (fires if check["exp_alerts"] else quiet).add(check["alertname"])
    names = {a["name"] for a in DEFAULTS["observability_alerts"] if a["name"].startswith(NEW)}
    assert len(names) == 8
    assert names <= fires, f"no firing test for {sorted(names - fires)}"
    assert names <= quiet, f"no quiet test for {sorted(names - quiet)}"


def _metric_names(path: pathlib.Path) -> set[str]:
    names = set()
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            names.add(line.split("{", 1)[0].split(" ", 1)[0])
    return names


def test_the_new_alerts_query_sglangs_and_the_routers_real_metric_names():
    sglang = set(CONTRACT["metrics"])
    # A Prometheus histogram is exported as <name>_bucket/_sum/_count.
    sglang |= {f"{m}{s}" for m in CONTRACT["metrics"] for s in ("_bucket", "_sum", "_count")}
    router = _metric_names(ROUTER_FIXTURE)
    assert {"vllm_router_worker_health", "vllm_router_request_errors_total"} <= router
    for alert in DEFAULTS["observability_alerts"]:
        if not alert["name"].startswith(NEW):
            continue
        used = obs_dash.promql_metric_names(alert["expr"]) - obs_dash.PROMETHEUS_SYNTHETIC
        known = sglang if alert["name"].startswith("Sglang") else router
        assert used or "up{job=" in alert["expr"], alert["name"]
        assert used <= known, (alert["name"], sorted(used - known))


def test_the_name_check_fails_on_a_name_sglang_does_not_export():
    # The planted bad input: vLLM's KV-cache gauge under SGLang's prefix.
    used = obs_dash.promql_metric_names("max(sglang:kv_cache_usage_perc) >= 0.9")
    assert not used <= set(CONTRACT["metrics"])


@pytest.mark.slow
@pytest.mark.parametrize(
    ("extra", "present", "absent"),
    [
        ({}, ["VllmKvCacheAlmostFull", "VllmDownOrNotReady"], ["Sglang", "LlmRouter"]),
        (
            {"workstation_llm_engine": "sglang"},
            ["SglangKvCacheAlmostFull", "SglangQueueDepthHigh", "SglangDownOrNotReady"],
            ["Vllm", "LlmRouter"],
        ),
        (
            {"_observability_router_job": ROUTER_JOB},
            ["LlmRouterDown", "LlmRouterWorkerUnhealthy", "VllmDownOrNotReady"],
            ["Sglang"],
        ),
        (
            {"workstation_llm_source": "external", "workstation_llm_engine": "sglang"},
            ["GpuXidError"],
            ["Vllm", "Sglang", "LlmRouter"],
        ),
    ],
    ids=["vllm-local", "sglang-local", "router-host", "external-unscraped"],
)
def test_each_host_gets_its_engines_and_its_routers_alerts(tmp_path, extra, present, absent):
    names = _names(render(tmp_path, **extra))
    for name in present:
        assert name in names, (name, names)
    for prefix in absent:
        assert not [n for n in names if n.startswith(prefix)], (prefix, names)
