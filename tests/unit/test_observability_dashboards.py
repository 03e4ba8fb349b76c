"""roles/observability: the dashboards are valid JSON and query only metrics that recorded exporter
outputs (tests/fixtures/exporters, tests/fixtures/vllm) actually contain."""

import json
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "roles/observability/files/dashboards").glob("*.json"))
FIXTURES = sorted((ROOT / "tests/fixtures/exporters").glob("*.txt")) + sorted(
    (ROOT / "tests/fixtures/vllm").glob("metrics-*.txt")
)
# Series Prometheus makes itself for every target, not found in any exporter's output.
PROMETHEUS_SYNTHETIC = {"up"}
_KEYWORDS = {
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "inf",
    "nan",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
}


def promql_metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (no functions, keywords, labels, numbers)."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    s = re.sub(r"\{[^}]*\}", " ", s)
    s = re.sub(r"\[[^\]]*\]", " ", s)
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", s):
        before = s[m.start() - 1] if m.start() else " "
        after = s[m.end() :].lstrip()[:1]
        if before.isdigit() or before == "." or after == "(" or m.group(0) in _KEYWORDS:
            continue
        names.add(m.group(0))
    return names


def fixture_metric_names() -> set[str]:
    names = set()
    for path in FIXTURES:
        for line in path.read_text().splitlines():
            m = re.match(r"([A-Za-z_:][A-Za-z0-9_:]*)[{ ]", line)
            if m and not line.startswith("#"):
                names.add(m.group(1))
    return names


def dashboard_exprs(dashboard: dict) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", []) if "expr" in t]


def test_extractor_finds_metrics_and_skips_the_rest():
    expr = (
        "histogram_quantile(0.99, sum by (le, model_name) (rate("
        'vllm:e2e_request_latency_seconds_bucket{job="vllm"}[5m]))) > 1e3 '
        "or max(vllm:kv_cache_usage_perc or vllm:gpu_cache_usage_perc) "
        "and on(instance) up == 0"
    )
    assert promql_metric_names(expr) == {
        "vllm:e2e_request_latency_seconds_bucket",
        "vllm:kv_cache_usage_perc",
        "vllm:gpu_cache_usage_perc",
        "up",
    }


def test_fixtures_hold_the_exporters_outputs():
    names = fixture_metric_names()
    for expected in (
        "DCGM_FI_DEV_GPU_TEMP",
        "node_filesystem_avail_bytes",
        "redis_key_size",
        "caddy_http_requests_total",
        "vllm:num_requests_waiting",
    ):
        assert expected in names


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_is_valid_and_uses_the_provisioned_datasource(path):
    dashboard = json.loads(path.read_text())
    assert dashboard["uid"] and dashboard["title"] and dashboard["panels"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "aw-prometheus"}
        assert panel["targets"], panel["title"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_queries_only_recorded_metrics(path):
    known = fixture_metric_names() | PROMETHEUS_SYNTHETIC
    exprs = dashboard_exprs(json.loads(path.read_text()))
    used = set().union(*(promql_metric_names(e) for e in exprs))
    assert used, "no metric found in the dashboard's queries"
    assert used <= known, f"not in any recorded exporter output: {sorted(used - known)}"


def test_dashboard_covers_the_issue_panels():
    used = set()
    for path in DASHBOARDS:
        for e in dashboard_exprs(json.loads(path.read_text())):
            used |= promql_metric_names(e)
    assert {
        "DCGM_FI_DEV_GPU_TEMP",
        "DCGM_FI_DEV_POWER_USAGE",
        "DCGM_FI_DEV_FB_USED",
        "vllm:kv_cache_usage_perc",
        "vllm:gpu_cache_usage_perc",
        "vllm:num_requests_running",
        "vllm:num_requests_waiting",
        "vllm:e2e_request_latency_seconds_bucket",
        "vllm:generation_tokens_total",
        "redis_key_size",
        "node_filesystem_avail_bytes",
        "aw_code_index_lag_seconds",
        "aw_code_query_latency_seconds_bucket",
    } <= used
