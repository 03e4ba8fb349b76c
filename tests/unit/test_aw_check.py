"""The check stage's pure checks (plugins/filter/aw_check.py) and the inventory check's shape
refusals (plugins/filter/aw_inventory.py), table-driven, no Ansible run."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins" / "filter"))

import aw_check
import aw_inventory

GOOD = {
    "workstation_service_user": "agent",
    "workstation_data_dir": "/srv/agent-workstation",
    "base_service_user": "agent",
    "agent_stack_user": "agent",
    "base_data_dir": "/srv/agent-workstation",
    "agent_stack_root": "/srv/agent-workstation/",
    "agent_queue_dir": "/srv/agent-workstation/queue",
    "agent_stack_vllm_port": 8000,
    "agent_stack_openhands_port": 3000,
    "agent_stack_redis_port": 6379,
    "agent_stack_qdrant_port": 6333,
    "agent_queue_redis_port": 6379,
    "observability_prometheus_listen": "127.0.0.1:9090",
    "caddy_metrics_listen": "127.0.0.1:2019",
    "firewall_ssh_port": 22,
    "agent_stack_vllm_served_model_names": ["qwen3-coder", "claude-sonnet-4-5"],
    "agent_stack_vllm_extra_args": ["--enable-prefix-caching"],
    "preflight_max_model_len": None,
    "preflight_min_model_len": 16384,
    "observability_prometheus_retention": "30d",
    "maintenance_backup_on_calendar": "*-*-* 02:30:00",
    "caddy_hostname": "workstation.tail1234.ts.net",
    "nvidia_driver_power_limit_w": 350,
    "preflight_min_free_disk_gib": 64,
    "preflight_min_ram_gib": 32,
}
CONTEXT = {
    "caddy_sites": [
        {"name": "open_webui", "port": 443, "upstream": "127.0.0.1:3001"},
        {"name": "openhands", "port": 8443, "upstream": "127.0.0.1:3000"},
    ],
    "gpus": [{"power_max_limit_w": 600.0}],
    "profile_name": "p",
    "profiles": {"p": {"architecture": {"max_position_embeddings": 262144}}},
    "disk": {"path": "/srv", "free_bytes": 500 * 2**30},
    "ram_bytes": 64 * 2**30,
    "calendars": {"maintenance_backup_on_calendar": {"rc": 0, "stderr": ""}},
    "specs": {"base_data_dir": {"type": "path"}},
}


def problems(**override):
    values = dict(GOOD)
    context = dict(CONTEXT)
    for key, value in override.items():
        if key.startswith("ctx_"):
            context[key[4:]] = value
        else:
            values[key] = value
    return aw_check.site_problems(values, context)["problems"]


def test_the_good_values_pass():
    assert problems() == []


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (
            {"agent_stack_vllm_port": 70000},
            "agent_stack_vllm_port=70000: port 70000 is outside 1-65535",
        ),
        ({"agent_stack_vllm_port": "8k"}, 'agent_stack_vllm_port="8k": is not a port number'),
        ({"caddy_metrics_listen": "127.0.0.1:9090"}, "port 9090 is used by caddy_metrics_listen"),
        (
            {"firewall_ssh_port": 443},
            "port 443 is used by caddy_sites[open_webui].port, firewall_ssh_port",
        ),
        ({"caddy_metrics_listen": "http://127.0.0.1:2019"}, "is not HOST:PORT"),
        (
            {"ctx_caddy_sites": [{"name": "m", "port": 9443, "upstream": "127.0.0.1:8000"}]},
            'caddy_sites[m].upstream="127.0.0.1:8000": is vLLM',
        ),
        (
            {"ctx_caddy_sites": [{"name": "q", "port": 9443, "upstream": "localhost:6379"}]},
            "is Redis",
        ),
        (
            {"caddy_basic_auth_users": [{"name": "a", "password": "s3cret"}]},
            "has a plain `password`",
        ),
        ({"agent_stack_vllm_extra_args": ["--api-key", "s3cret"]}, "contains --api-key"),
        (
            {"agent_stack_vllm_extra_args": ["--max-num-seqs=8"]},
            "set preflight_max_num_seqs instead",
        ),
        ({"agent_stack_vllm_served_model_names": []}, "must be a non-empty list"),
        ({"agent_stack_vllm_served_model_names": ["a", "a"]}, "lists a more than once"),
        ({"agent_stack_vllm_served_model_names": ["my model"]}, '"my model" is not a name'),
        ({"agent_stack_vllm_served_model_names": ["-x"]}, '"-x" is not a name'),
        ({"preflight_max_model_len": 300000}, "exceeds p's max_position_embeddings 262144"),
        ({"preflight_max_model_len": 4096}, "below preflight_min_model_len 16384"),
        ({"preflight_max_model_len": "32k"}, "is not a number of tokens"),
        ({"observability_prometheus_retention": "0d"}, "not a positive duration"),
        ({"observability_prometheus_retention": "30"}, "not a positive duration"),
        ({"maintenance_backup_on_calendar": "30 2 * * *"}, '"*-*-* 02:30:00"'),
        (
            {
                "ctx_calendars": {
                    "maintenance_backup_on_calendar": {"rc": 1, "stderr": "Failed to parse"}
                }
            },
            "refused by `systemd-analyze calendar` (Failed to parse)",
        ),
        (
            {"agent_stack_user": "bob"},
            'agent_stack_user="bob": differs from workstation_service_user',
        ),
        ({"agent_stack_root": "/data"}, "differs from workstation_data_dir"),
        ({"agent_queue_dir": "/var/queue"}, "is outside workstation_data_dir"),
        ({"base_data_dir": "srv/x"}, 'base_data_dir="srv/x": is a relative path'),
        ({"agent_queue_redis_port": 6380}, "differs from agent_stack_redis_port"),
        ({"caddy_hostname": "https://w.ts.net/"}, 'write "w.ts.net"'),
        (
            {"nvidia_driver_power_limit_w": 650},
            "outside the range every GPU found accepts (50-600 W)",
        ),
        ({"ctx_disk": {"path": "/srv", "free_bytes": 2**30}}, "/srv has 1.0 GiB free"),
        ({"ctx_ram_bytes": 16 * 2**30}, "16.0 GiB of RAM"),
        ({"maintenance_backup_keep_days": 0}, "from 1 to 3650"),
        ({"preflight_tensor_parallel_size": 2}, "more than the GPUs found (1)"),
    ],
)
def test_each_bad_value_gets_its_line(override, expected):
    found = problems(**override)
    assert any(expected in line for line in found), found
    assert all("Fix:" in line for line in found), found


def test_secrets_are_never_printed():
    found = problems(
        caddy_basic_auth_users=[{"name": "a", "password": "s3cret"}],
        agent_stack_vllm_extra_args=["--api-key=s3cret"],
    )
    assert found
    assert not any("s3cret" in line for line in found)


def test_host_floors_can_warn_instead():
    values = dict(GOOD, preflight_host_floors="warn")
    result = aw_check.site_problems(values, dict(CONTEXT, ram_bytes=2**30))
    assert result["problems"] == []
    assert any("GiB of RAM" in line for line in result["warnings"])


@pytest.mark.parametrize(
    ("cron", "oncalendar"),
    [
        ("30 2 * * *", "*-*-* 02:30:00"),
        ("0 4 * * 0", "Sun *-*-* 04:00:00"),
        ("*/15 * * * *", "*-*-* *:0/15:00"),
        ("0 9 * * 1-5", "Mon..Fri *-*-* 09:00:00"),
        ("0 0 1 */2 *", "*-1/2-1 00:00:00"),
        ("@weekly", "weekly"),
        ("*-*-* 02:30:00", None),
        ("Sun *-*-* 04:30:00", None),
        ("daily", None),
    ],
)
def test_cron_to_oncalendar(cron, oncalendar):
    assert aw_check.cron_to_oncalendar(cron) == oncalendar


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"preflight_max_model_len": 0}, "must be positive"),
        ({"preflight_max_num_seqs": 0}, "from 1 to 1024"),
        ({"preflight_gpu_memory_utilization": 92}, "(0, 1]"),
        ({"preflight_gpu_memory_utilization": True}, "(0, 1]"),
        ({"preflight_tensor_parallel_size": 0}, "at least 1"),
        ({"preflight_min_model_len": -1}, "positive token count"),
    ],
)
def test_plan_inputs(values, expected):
    found = aw_check.plan_input_problems(values)
    assert any(expected in line for line in found), found


def test_plan_inputs_accept_the_shipped_values():
    assert (
        aw_check.plan_input_problems(
            {
                "preflight_max_model_len": None,
                "preflight_max_num_seqs": 4,
                "preflight_gpu_memory_utilization": 0.92,
            }
        )
        == []
    )


def test_check_failures_reads_plain_and_loop_results():
    registered = {
        "__a_check_1": {"failed": True, "msg": "a is  wrong.\nFix: x"},
        "__a_check_2": {"failed": False, "msg": "All assertions passed"},
        "__b_check_1": {
            "failed": True,
            "msg": "One or more items failed",
            "results": [{"failed": True, "msg": "item 1 bad"}, {"failed": False}],
        },
        "__c_check_1": {"skipped": True},
    }
    assert aw_check.check_failures(registered) == ["a is wrong. Fix: x", "item 1 bad"]


SPECS = {
    "x_enabled": {"type": "bool"},
    "x_list": {"type": "list", "elements": "str"},
    "x_len": {"type": "int"},
    "x_users": {"type": "list", "elements": "dict"},
}


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("x_enabled", "false", "write false without quotes"),
        ("x_enabled", "Yes", "write true without quotes"),
        ("x_enabled", "maybe", "write true or false without quotes"),
        ("x_list", "a, b", "[a, b]"),
        ("x_len", "32k", 'x_len="32k" is not a plain number'),
        ("x_users", [{"name": "a", "password": "p"}], "x_users[0] has a plain `password`"),
    ],
)
def test_inventory_shapes(name, value, expected):
    found = aw_inventory.inventory_problems({name: value}, SPECS, {}, ["x_"])
    assert any(expected in line for line in found), found


@pytest.mark.parametrize(
    ("name", "value"),
    [("x_enabled", False), ("x_list", ["a"]), ("x_len", 32768), ("x_len", "32768")],
)
def test_inventory_shapes_accept_real_values(name, value):
    assert aw_inventory.inventory_problems({name: value}, SPECS, {}, ["x_"]) == []


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
@pytest.mark.parametrize(
    "cron", ["30 2 * * *", "0 4 * * 0", "*/15 * * * *", "0 9 * * 1-5", "0 0 1 */2 *", "@daily"]
)
def test_the_suggested_equivalent_is_valid_for_systemd(cron):
    # The real parser (systemd.time(7)) accepts what the message tells the user to write.
    equivalent = aw_check.cron_to_oncalendar(cron)
    run = subprocess.run(
        ["systemd-analyze", "calendar", equivalent], capture_output=True, check=False
    )
    assert run.returncode == 0, run.stderr
