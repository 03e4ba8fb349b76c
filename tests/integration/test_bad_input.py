"""One row per bad input, each through the entry point a user runs: site.yml in --check mode on
this machine, with the fake nvidia-smi replaying the recorded RTX 4090 capture (as
test_preflight.py does), the row's inventory override given as an extra-vars file.

Each row asserts: a non-zero exit; one line of the final report names the variable, the value
and the fix; no Python traceback; nothing changed (recap changed=0, the host play never
started). Rows that do not interfere are run in one ansible-playbook call (the check stage
reports every problem at once; a row only passes when its own line is there); `depends` names
variables a row relies on keeping their baseline value, so no two rows that touch each other
share a run. A baseline run shows that the override below passes the check stage on its own,
so each row's refusal is that row's doing.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")
FAKE = ROOT / "tests" / "fakes" / "nvidia-smi"
XML = ROOT / "tests" / "fixtures" / "nvidia-smi" / "rtx-4090-570-v12.handmade.xml"

pytestmark = pytest.mark.slow

# What makes this machine (no GPU, no Tailscale, maybe Debian 12, a small VM) pass the check
# stage: the recorded 4090 (driver 570), unpinned images allowed, no Tailscale, the Debian 12
# limits of rootless Docker accepted, host floors of 1 GiB.
BASELINE: dict[str, Any] = {
    "preflight_nvidia_smi": str(FAKE),
    "preflight_expected_driver_branch": "570",
    "agent_stack_allow_unpinned": True,
    "workstation_tailscale_enabled": False,
    "docker_rootless_disable_host_loopback": True,
    "docker_rootless_compose": False,
    "preflight_min_free_disk_gib": 1,
    "preflight_min_ram_gib": 1,
}


@dataclass
class Row:
    id: str
    override: dict[str, Any]
    expect: list[str]
    stage: str = "check"  # "check": the check stage's report; "inventory": validate.yml's
    depends: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)  # must not appear anywhere (secrets)


def site(name, upstream, port):
    return [{"name": name, "upstream": upstream, "port": port}]


ROWS = [
    # --- strings where booleans are meant, lists as strings, numbers with units (inventory check)
    Row(
        "bool-string-false",
        {"workstation_tailscale_enabled": "false"},
        ['workstation_tailscale_enabled="false"', "not a boolean", "write false without quotes"],
        "inventory",
    ),
    Row(
        "bool-string-no",
        {"agent_stack_clients_enabled": "no"},
        ['agent_stack_clients_enabled="no"', "write false without quotes"],
        "inventory",
    ),
    Row(
        "bool-string-yes",
        {"caddy_metrics_enabled": "yes"},
        ['caddy_metrics_enabled="yes"', "write true without quotes"],
        "inventory",
    ),
    Row(
        "bool-string-off",
        {"firewall_allow_ping": "off"},
        ['firewall_allow_ping="off"', "write false without quotes"],
        "inventory",
    ),
    Row(
        "bool-string-true",
        {"observability_loki_enabled": "true"},
        ['observability_loki_enabled="true"', "write true without quotes"],
        "inventory",
    ),
    Row(
        "list-comma-clients",
        {"workstation_clients": "openhands,open_webui"},
        ['workstation_clients="openhands,open_webui"', "not a list", "[openhands, open_webui]"],
        "inventory",
    ),
    Row(
        "list-comma-ports",
        {"firewall_allowed_tcp_ports": "443,8443"},
        ['firewall_allowed_tcp_ports="443,8443"', "not a list", "[443, 8443]"],
        "inventory",
    ),
    Row(
        "list-comma-packages",
        {"base_extra_packages": "vim,htop"},
        ['base_extra_packages="vim,htop"', "[vim, htop]"],
        "inventory",
    ),
    Row(
        "list-string-vllm-args",
        {"agent_stack_vllm_extra_args": "--enable-prefix-caching"},
        [
            'agent_stack_vllm_extra_args="--enable-prefix-caching"',
            "not a list",
            "Fix: write a YAML list",
        ],
        "inventory",
    ),
    Row(
        "units-context",
        {"preflight_max_model_len": "32k"},
        ['preflight_max_model_len="32k"', "not a plain number", "Fix: write the number alone"],
        "inventory",
    ),
    Row(
        "units-gpu-memory",
        {"preflight_min_gpu_memory_mib": "24GB"},
        ['preflight_min_gpu_memory_mib="24GB"', "not a plain number", "Fix:"],
        "inventory",
    ),
    Row(
        "units-free-space",
        {"maintenance_backup_min_free_gb": "10GB"},
        ['maintenance_backup_min_free_gb="10GB"', "not a plain number", "Fix:"],
        "inventory",
    ),
    Row(
        "units-psu",
        {"preflight_psu_watts": "1000W"},
        ['preflight_psu_watts="1000W"', "not a plain number", "Fix:"],
        "inventory",
    ),
    Row(
        "units-max-seqs",
        {"preflight_max_num_seqs": "4x"},
        ['preflight_max_num_seqs="4x"', "not a plain number", "Fix:"],
        "inventory",
    ),
    # --- ports: range, and used twice across the whole site
    Row(
        "port-above-range",
        {"agent_stack_vllm_port": 70000},
        ["agent_stack_vllm_port=70000", "outside 1-65535", "Fix: use a free port"],
    ),
    Row(
        "port-zero",
        {"agent_stack_qdrant_port": 0},
        ["agent_stack_qdrant_port=0", "outside 1-65535", "Fix:"],
    ),
    Row(
        "port-listen-above-range",
        {"observability_prometheus_listen": "127.0.0.1:99999"},
        ['observability_prometheus_listen="127.0.0.1:99999"', "outside 1-65535", "Fix:"],
    ),
    Row(
        "port-dup-queue-metrics-vllm",
        {"agent_queue_metrics_listen": "127.0.0.1:8000"},
        [
            "port 8000 is used by",
            "agent_queue_metrics_listen",
            "agent_stack_vllm_port",
            "Fix: give each",
        ],
        depends=["agent_stack_vllm_port"],
    ),
    Row(
        "port-dup-grafana-openhands",
        {"observability_grafana_listen": "127.0.0.1:3000"},
        [
            "port 3000 is used by",
            "observability_grafana_listen",
            "agent_stack_openhands_port",
            "Fix:",
        ],
        depends=["agent_stack_openhands_port"],
    ),
    Row(
        "port-dup-caddy-metrics-prometheus",
        {"caddy_metrics_listen": "127.0.0.1:9090"},
        ["port 9090 is used by", "caddy_metrics_listen", "observability_prometheus_listen", "Fix:"],
        depends=["observability_prometheus_listen"],
    ),
    Row(
        "port-dup-ssh-caddy",
        {"firewall_ssh_port": 443},
        ["port 443 is used by", "caddy_sites[open_webui].port", "firewall_ssh_port", "Fix:"],
        depends=["caddy_sites"],
    ),
    Row(
        "port-dup-redis-qdrant",
        {"agent_stack_redis_port": 6333},
        ["port 6333 is used by", "agent_stack_qdrant_port", "agent_stack_redis_port", "Fix:"],
        depends=["agent_stack_qdrant_port", "agent_queue_redis_port"],
    ),
    Row(
        "listen-as-url",
        {"agent_queue_metrics_listen": "http://127.0.0.1:9465"},
        [
            'agent_queue_metrics_listen="http://127.0.0.1:9465"',
            "is not HOST:PORT",
            "Fix: write HOST:PORT",
        ],
    ),
    Row(
        "listen-public",
        {"observability_node_exporter_listen": "0.0.0.0:9100"},
        [
            "observability_node_exporter_listen is 0.0.0.0:9100",
            "Fix: set observability_node_exporter_listen",
        ],
    ),
    Row(
        "firewall-port-range",
        {"firewall_allowed_tcp_ports": [70000]},
        ["firewall_allowed_tcp_ports contains '70000'", "between 1 and 65535"],
    ),
    # roles/sandbox_engine, checked only where it runs (workstation_sandbox_engine: true)
    Row(
        "sandbox-engine-user-is-the-service-user",
        {"workstation_sandbox_engine": True, "sandbox_engine_user": "agent"},
        ["sandbox_engine_user='agent'", "Set sandbox_engine_user to a new name"],
    ),
    Row(
        "sandbox-engine-port-out-of-range",
        {"workstation_sandbox_engine": True, "sandbox_engine_allowed_ports": [70000]},
        ["sandbox_engine_allowed_ports contains '70000'", "between 1 and 65535"],
    ),
    # --- a Caddy site that would publish a private service
    Row(
        "caddy-exposes-vllm",
        {"caddy_sites": site("models", "127.0.0.1:8000", 9443)},
        ['caddy_sites[models].upstream="127.0.0.1:8000"', "vLLM", "Fix: remove the site"],
        depends=["agent_stack_vllm_port"],
    ),
    Row(
        "caddy-exposes-redis",
        {"caddy_sites": site("queue", "127.0.0.1:6379", 9444)},
        ['caddy_sites[queue].upstream="127.0.0.1:6379"', "Redis", "Fix: remove the site"],
        depends=["agent_stack_redis_port"],
    ),
    Row(
        "caddy-exposes-qdrant",
        {"caddy_sites": site("vectors", "localhost:6333", 9445)},
        ['caddy_sites[vectors].upstream="localhost:6333"', "Qdrant", "Fix: remove the site"],
        depends=["agent_stack_qdrant_port"],
    ),
    # --- context length against the floor and the model's maximum positions
    Row(
        "context-zero",
        {"preflight_max_model_len": 0},
        ["preflight_max_model_len=0", "must be positive", "Fix:"],
        stage="inventory",
    ),
    Row(
        "context-negative",
        {"preflight_max_model_len": -4096},
        ["preflight_max_model_len=-4096", "must be positive", "Fix:"],
        stage="inventory",
    ),
    Row(
        "context-above-positions",
        {"preflight_max_model_len": 1000000},
        [
            "preflight_max_model_len=1000000",
            "max_position_embeddings 262144",
            "Fix: use at most 262144",
        ],
    ),
    Row(
        "context-below-floor",
        {"preflight_max_model_len": 8192},
        ["preflight_max_model_len=8192", "below preflight_min_model_len 16384", "Fix:"],
        depends=["preflight_min_model_len"],
    ),
    Row(
        "context-floor-zero",
        {"preflight_min_model_len": 0},
        ["preflight_min_model_len=0", "positive", "Fix:"],
        stage="inventory",
    ),
    Row(
        "max-seqs-zero",
        {"preflight_max_num_seqs": 0},
        ["preflight_max_num_seqs=0", "from 1 to 1024", "Fix:"],
        stage="inventory",
    ),
    Row(
        "gpu-share-percent",
        {"preflight_gpu_memory_utilization": 92},
        ["preflight_gpu_memory_utilization=92", "(0, 1]", "Fix: write a fraction such as 0.92"],
        stage="inventory",
    ),
    Row(
        "tensor-parallel-too-many",
        {"preflight_tensor_parallel_size": 4},
        ["preflight_tensor_parallel_size=4", "GPUs found (1)", "Fix:"],
    ),
    Row(
        "gpu-index-not-present",
        {"preflight_gpu_index": 3},
        ["preflight_gpu_index) is 3", "0: NVIDIA GeForce RTX 4090 (24564 MiB)", "Fix:"],
    ),
    Row(
        "gpu-index-negative",
        {"preflight_gpu_index": -1},
        ["preflight_gpu_index) is -1", "counts from 0", "Fix:"],
    ),
    Row(
        "gpu-index-not-a-number",
        {"preflight_gpu_index": "first"},
        ["preflight_gpu_index", "first"],
        stage="inventory",
    ),
    Row(
        "openhands-no-sandboxes",
        {"agent_stack_openhands_max_sandboxes": 0},
        ["agent_stack_openhands_max_sandboxes is 0", "1 or more", "Fix:"],
    ),
    Row(
        "psu-too-small",
        {"preflight_psu_watts": 100},
        ["preflight_psu_watts=100", "from 200 to 3000", "Fix:"],
        stage="inventory",
    ),
    Row(
        "temperature-absurd",
        {"preflight_max_temperature_c": 150},
        ["preflight_max_temperature_c=150", "from 30 to 110", "Fix:"],
        stage="inventory",
    ),
    # --- retention and durations
    Row(
        "retention-zero",
        {"observability_prometheus_retention": "0d"},
        [
            'observability_prometheus_retention="0d"',
            "not a positive duration",
            "Fix: write a number with a unit",
        ],
    ),
    Row(
        "retention-negative",
        {"observability_loki_retention": "-5d"},
        ['observability_loki_retention="-5d"', "not a positive duration", "Fix:"],
    ),
    Row(
        "retention-bare-number",
        {"observability_prometheus_retention": 30},
        ["observability_prometheus_retention=30", "not a positive duration", "Fix:"],
    ),
    Row(
        "scrape-interval-bare",
        {"observability_prometheus_scrape_interval": "15"},
        ['observability_prometheus_scrape_interval="15"', "not a positive duration", "Fix:"],
    ),
    Row(
        "backup-keep-zero",
        {"maintenance_backup_keep_days": 0},
        ["maintenance_backup_keep_days=0", "from 1 to 3650", "Fix:"],
    ),
    Row(
        "backup-keep-negative",
        {"maintenance_backup_keep_days": -3},
        ["maintenance_backup_keep_days=-3", "from 1 to 3650", "Fix:"],
    ),
    Row(
        "doctor-free-negative",
        {"doctor_min_free_gb": -1},
        ["doctor_min_free_gb=-1", "from 0 to", "Fix:"],
    ),
    # --- power limit against the GPU's range (the capture's 4090: max 600 W)
    Row(
        "power-above-gpu-max",
        {"nvidia_driver_power_limit_w": 900},
        ["nvidia_driver_power_limit_w=900", "every GPU found accepts", "Fix: set a value from"],
    ),
    Row(
        "power-below-floor",
        {"nvidia_driver_power_limit_w": 20},
        ["nvidia_driver_power_limit_w=20", "outside the range", "Fix:"],
    ),
    # --- calendar specs: cron given instead, or refused by systemd-analyze calendar
    Row(
        "cron-backup",
        {"maintenance_backup_on_calendar": "30 2 * * *"},
        [
            'maintenance_backup_on_calendar="30 2 * * *"',
            "cron syntax",
            'Fix: write the OnCalendar equivalent "*-*-* 02:30:00"',
        ],
    ),
    Row(
        "cron-prune-sunday",
        {"maintenance_prune_on_calendar": "0 4 * * 0"},
        ['maintenance_prune_on_calendar="0 4 * * 0"', "cron syntax", '"Sun *-*-* 04:00:00"'],
    ),
    Row(
        "cron-macro",
        {"maintenance_backup_on_calendar": "@daily"},
        ['maintenance_backup_on_calendar="@daily"', "cron syntax", '"daily"'],
    ),
    Row(
        "calendar-words",
        {"maintenance_prune_on_calendar": "every sunday"},
        [
            'maintenance_prune_on_calendar="every sunday"',
            "refused by `systemd-analyze calendar`",
            "Fix:",
        ],
    ),
    Row(
        "calendar-hour-25",
        {"maintenance_backup_on_calendar": "*-*-* 25:00:00"},
        [
            'maintenance_backup_on_calendar="*-*-* 25:00:00"',
            "refused by `systemd-analyze calendar`",
            "Fix:",
        ],
    ),
    # --- served model names
    Row(
        "served-names-empty",
        {"agent_stack_vllm_served_model_names": []},
        ["agent_stack_vllm_served_model_names=[]", "non-empty", "Fix:"],
    ),
    Row(
        "served-names-duplicate",
        {"agent_stack_vllm_served_model_names": ["qwen3-coder-30b-a3b-instruct"] * 2},
        ["agent_stack_vllm_served_model_names=", "more than once", "Fix: list each name once"],
    ),
    Row(
        "served-name-space",
        {"agent_stack_vllm_served_model_names": ["qwen3-coder-30b-a3b-instruct", "my model"]},
        ['"my model" is not a name every client can send', "Fix: rename it"],
    ),
    Row(
        "served-name-blank",
        {"agent_stack_vllm_served_model_names": ["qwen3-coder-30b-a3b-instruct", ""]},
        ['"" is not a name every client can send', "Fix: rename it"],
    ),
    # --- one service user and one data directory
    Row(
        "user-stack-differs",
        {"agent_stack_user": "other"},
        [
            'agent_stack_user="other"',
            'differs from workstation_service_user "agent"',
            "Fix: set agent_stack_user",
        ],
    ),
    Row(
        "user-docker-differs",
        {"docker_rootless_user": "bob"},
        ['docker_rootless_user="bob"', "differs from workstation_service_user", "Fix:"],
    ),
    Row(
        "user-maintenance-root",
        {"maintenance_user": "root"},
        ['maintenance_user="root"', "differs from workstation_service_user", "Fix:"],
    ),
    Row("user-base-root", {"base_service_user": "root"}, ["base_service_user=root", "not root"]),
    Row(
        "data-dir-stack-differs",
        {"agent_stack_root": "/data/aw"},
        [
            'agent_stack_root="/data/aw"',
            "differs from workstation_data_dir",
            "Fix: set agent_stack_root",
        ],
    ),
    Row(
        "data-dir-observability-differs",
        {"observability_data_dir": "/opt/aw"},
        ['observability_data_dir="/opt/aw"', "differs from workstation_data_dir", "Fix:"],
    ),
    Row(
        "backup-dir-outside",
        {"maintenance_backup_dir": "/var/backups/aw"},
        [
            'maintenance_backup_dir="/var/backups/aw"',
            "outside workstation_data_dir",
            "Fix: put it under it",
        ],
    ),
    Row(
        "queue-port-differs",
        {"agent_queue_redis_port": 6380},
        ["agent_queue_redis_port=6380", "differs from agent_stack_redis_port", "Fix:"],
        depends=["agent_stack_redis_port"],
    ),
    # --- relative paths
    Row(
        "relative-queue-dir",
        {"agent_queue_dir": "queue"},
        ['agent_queue_dir="queue"', "relative path", "Fix: write an absolute path"],
    ),
    Row(
        "relative-base-data-dir",
        {"base_data_dir": "srv/agent"},
        ['base_data_dir="srv/agent"', "relative path", "Fix: write an absolute path"],
    ),
    Row(
        "relative-authkey-file",
        {"tailscale_authkey_file": "tailscale.key"},
        ['tailscale_authkey_file="tailscale.key"', "relative path", "Fix:"],
    ),
    # --- URLs where host names are meant
    Row(
        "hostname-url-caddy",
        {"caddy_hostname": "https://workstation.tail1234.ts.net"},
        [
            'caddy_hostname="https://workstation.tail1234.ts.net"',
            'write "workstation.tail1234.ts.net"',
            "Fix:",
        ],
    ),
    Row(
        "hostname-url-tailnet",
        {"workstation_tailnet_domain": "https://tail1234.ts.net/"},
        ['workstation_tailnet_domain="https://tail1234.ts.net/"', "not a DNS host name", "Fix:"],
    ),
    Row(
        "hostname-port-tailscale",
        {"tailscale_hostname": "workstation:443"},
        ['tailscale_hostname="workstation:443"', 'write "workstation"', "Fix:"],
    ),
    # --- secrets in the wrong place
    Row(
        "secret-api-key-arg",
        {"agent_stack_vllm_extra_args": ["--api-key", "sk-local-123"]},
        ["agent_stack_vllm_extra_args contains --api-key", "Fix: remove it"],
        absent=["sk-local-123"],
    ),
    Row(
        "secret-api-key-equals",
        {"agent_stack_vllm_extra_args": ["--api-key=sk-local-456"]},
        ["agent_stack_vllm_extra_args contains --api-key", "Fix: remove it"],
        absent=["sk-local-456"],
    ),
    Row(
        "planned-arg-in-extra",
        {"agent_stack_vllm_extra_args": ["--max-model-len", "65536"]},
        [
            "agent_stack_vllm_extra_args=",
            "--max-model-len",
            "Fix: remove it and set preflight_max_model_len",
        ],
    ),
    Row(
        "basic-auth-plain-password",
        {"caddy_basic_auth_users": [{"name": "alice", "password": "hunter2-plain"}]},
        [
            "caddy_basic_auth_users[0] has a plain `password`",
            "Fix: replace it with password_hash",
        ],
        absent=["hunter2-plain"],
        stage="inventory",
    ),
    Row(
        "basic-auth-hash-not-bcrypt",
        {"caddy_basic_auth_users": [{"name": "bob", "password_hash": "hunter3-plain"}]},
        ["caddy_basic_auth_users: entries bob", "bcrypt", "Fix: run `caddy hash-password`"],
        absent=["hunter3-plain"],
    ),
    # --- host facts below their floors
    Row(
        "disk-below-floor",
        {"preflight_min_free_disk_gib": 1000000},
        ["preflight_min_free_disk_gib=1000000", "GiB free", "Fix: free space"],
    ),
    Row(
        "ram-below-floor",
        {"preflight_min_ram_gib": 4096},
        ["preflight_min_ram_gib=4096", "GiB of RAM", "Fix: add memory"],
    ),
    # --- other roles' own checks, now reported with the rest
    Row(
        "queue-concurrency-zero",
        {"agent_queue_concurrency": 0},
        ["agent_queue_concurrency=0", "Fix:"],
    ),
    Row(
        "ssh-source-hostname",
        {"firewall_ssh_sources": ["myhost.lan"]},
        ["firewall_ssh_sources contains 'myhost.lan'", "Use entries like 192.168.1.0/24"],
    ),
    Row(
        "tls-files-missing",
        {"caddy_tls_mode": "files"},
        [
            "caddy_tls_mode=files",
            "mode files needs both caddy_tls_cert_file and caddy_tls_key_file",
        ],
    ),
    Row(
        "alert-duration-bad",
        {
            "observability_alerts": [
                {
                    "name": "X",
                    "expr": "up == 0",
                    "threshold": None,
                    "for": "five minutes",
                    "severity": "warning",
                    "summary": "x",
                }
            ]
        },
        ["observability_alerts entry X is invalid", "five minutes", "a duration such as 5m"],
    ),
    # --- the LLM tier (workstation_llm_source, issue 17): what is not built, external's URL, fleet
    Row(
        "llm-source-unknown",
        {"workstation_llm_source": "cloud"},
        ['workstation_llm_source="cloud"', "not a source", "Fix: write local"],
        "inventory",
    ),
    # fleet on the shipped one-host inventory: no llm_workers (and no llm_router) group. The
    # inventory-shaped refusals (two routers, an address, GPU facts, served names) are
    # tests/unit/test_llm_fleet.py's, through validate.yml's expressions on a fleet inventory.
    Row(
        "llm-fleet-without-workers",
        {"workstation_llm_source": "fleet"},
        [
            'workstation_llm_source="fleet" needs at least one host in group llm_workers',
            "Fix: list the hosts that run vLLM under llm_workers",
        ],
        "inventory",
    ),
    # sglang itself is built (tests/integration/test_sglang_bad_input.py); with another source
    # than local it is refused.
    Row(
        "llm-engine-sglang-not-local",
        {
            "workstation_llm_engine": "sglang",
            "workstation_llm_source": "external",
            "workstation_llm_base_url": "http://llm.example.lan:8000",
        },
        ['workstation_llm_engine="sglang"', 'local" only, not "external"', "Fix: use"],
        "inventory",
    ),
    Row(
        "llm-external-without-url",
        {"workstation_llm_source": "external"},
        ['workstation_llm_base_url=""', "not set", "Fix: set it"],
        "inventory",
        depends=["workstation_llm_base_url"],
    ),
    Row(
        "llm-external-url-malformed",
        {"workstation_llm_source": "external", "workstation_llm_base_url": "llm.lan:8000"},
        ['workstation_llm_base_url="llm.lan:8000"', "not an http(s)://host[:port] URL", "Fix:"],
        "inventory",
    ),
    Row(
        "llm-external-url-with-v1",
        {
            "workstation_llm_source": "external",
            "workstation_llm_base_url": "http://llm.lan:8000/v1",
        },
        [
            'workstation_llm_base_url="http://llm.lan:8000/v1"',
            "ends in /v1",
            "http://llm.lan:8000.",
        ],
        "inventory",
    ),
]


def _batches(rows: list[Row]) -> list[list[Row]]:
    batches: list[tuple[set[str], list[Row]]] = []
    for row in rows:
        touched = set(row.override) | set(row.depends)
        for keys, members in batches:
            if members[0].stage == row.stage and not keys & touched:
                keys.update(touched)
                members.append(row)
                break
        else:
            batches.append((set(touched), [row]))
    return [members for _, members in batches]


BATCHES = _batches(ROWS)
BATCH_OF = {row.id: index for index, batch in enumerate(BATCHES) for row in batch}


def _env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="false")
    env["ANSIBLE_CACHE_PLUGIN_CONNECTION"] = str(tmp / "facts")
    env["FAKE_NVIDIA_SMI_XML"] = str(XML)
    return env


def _run(tmp: Path, playbook: str, override: dict[str, Any]) -> subprocess.CompletedProcess:
    base = tmp / "baseline.yml"
    base.write_text(yaml.safe_dump(BASELINE))
    extra = tmp / "override.yml"
    extra.write_text(yaml.safe_dump(override))
    return subprocess.run(
        [
            PLAYBOOK,
            playbook,
            "-i",
            "inventories/workstation",
            "--check",
            "-e",
            f"@{base}",
            "-e",
            f"@{extra}",
        ],
        cwd=ROOT,
        env=_env(tmp),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="module")
def batch_run(tmp_path_factory):
    runs: dict[int, subprocess.CompletedProcess] = {}

    def get(index: int) -> subprocess.CompletedProcess:
        if index not in runs:
            tmp = tmp_path_factory.mktemp(f"batch{index}")
            override: dict[str, Any] = {}
            for row in BATCHES[index]:
                override.update(row.override)
            runs[index] = _run(tmp, "site.yml", override)
        return runs[index]

    return get


def _report_lines(stdout: str) -> list[str]:
    """The msg of the last failed task (the report a person reads last), one item per line."""
    fatals = re.findall(r"^fatal: \[[^\]]+\]: FAILED! => (\{.*\})$", stdout, flags=re.MULTILINE)
    assert fatals, stdout[-3000:]
    msg = json.loads(fatals[-1]).get("msg")
    return [str(m) for m in msg] if isinstance(msg, list) else str(msg).splitlines()


def _recap(stdout: str) -> dict[str, int]:
    match = re.search(r"localhost\s+:\s+(ok=.*)", stdout)
    assert match, stdout[-2000:]
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match.group(1))}


def test_the_table_is_big_enough_and_every_row_is_alone_with_its_variables():
    assert len(ROWS) >= 60
    assert len({row.id for row in ROWS}) == len(ROWS)
    for batch in BATCHES:
        keys = [k for row in batch for k in row.override]
        assert len(keys) == len(set(keys))


def _up_to_check(tmp_path):
    """A playbook of the three stages before the host (the full site would go on to change
    this machine)."""
    playbook = tmp_path / "up-to-check.yml"
    playbook.write_text(
        yaml.safe_dump(
            [
                {"ansible.builtin.import_playbook": str(ROOT / "playbooks" / "validate.yml")},
                {
                    "ansible.builtin.import_playbook": str(ROOT / "playbooks" / "preflight.yml"),
                    "vars": {"_aw_check_stage_follows": True},
                },
                {"ansible.builtin.import_playbook": str(ROOT / "playbooks" / "check.yml")},
            ]
        )
    )
    return str(playbook)


def test_the_baseline_passes_the_check_stage(tmp_path):
    run = _run(tmp_path, _up_to_check(tmp_path), {})
    assert run.returncode == 0, run.stdout[-4000:]
    assert "CHECK: all checks passed." in run.stdout
    assert _recap(run.stdout)["changed"] == 0


def test_external_passes_the_check_stage_without_a_gpu(tmp_path):
    # workstation_llm_source external on a machine with no nvidia-smi at all: the preflight's
    # GPU, PSU, VRAM and CUDA problems refuse nothing, the inventory check accepts the URL.
    run = _run(
        tmp_path,
        _up_to_check(tmp_path),
        {
            "workstation_llm_source": "external",
            "workstation_llm_base_url": "http://llm.example.lan:8000",
            "preflight_nvidia_smi": str(tmp_path / "no-nvidia-smi"),
            "preflight_sysfs_pci_path": str(tmp_path / "no-pci"),
        },
    )
    assert run.returncode == 0, run.stdout[-4000:]
    assert "CHECK: all checks passed." in run.stdout
    assert "none readable" in run.stdout  # the preflight did find no GPU
    assert _recap(run.stdout)["changed"] == 0


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_bad_input_is_refused_before_anything_changes(row, batch_run):
    run = batch_run(BATCH_OF[row.id])
    output = run.stdout + run.stderr
    assert run.returncode != 0, run.stdout[-3000:]
    assert "Traceback (most recent call last)" not in output
    assert "Unexpected Exception" not in output
    recap = _recap(run.stdout)
    assert recap["changed"] == 0, recap
    # The host play never started: nothing was installed, created or written.
    assert "PLAY [Prepare the host]" not in run.stdout
    lines = _report_lines(run.stdout)
    if row.stage == "inventory":
        assert lines[0].startswith("The inventory has"), lines[:2]
    else:
        assert lines[0].startswith("RESULT: "), lines[:2]
    matching = [line for line in lines if all(part in line for part in row.expect)]
    assert matching, f"no report line has all of {row.expect}:\n" + "\n".join(lines)
    for secret in row.absent:
        assert secret not in output
