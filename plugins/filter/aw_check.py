"""The check stage's cross-role checks (playbooks/check.yml), as pure functions.

`aw_site_problems` takes the project's variables (already templated: the values the roles would
read) and what the check play read from the host (the GPUs, free disk, RAM, `systemd-analyze
calendar` answers, Caddy's resolved sites) and returns one line per problem, each naming the
variable, its value and the fix. Nothing here reads the host or the network.

`aw_check_failures` turns the results the roles' own preflight checks registered while the check
stage ran them in collect mode (`_aw_check_collect`) into the same kind of lines.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

DOCUMENTATION = """
name: aw_site_problems
short_description: List what a careful operator would never mean in the project's variables.
description:
  - Ports, context length, retention, power limits, calendar specs, served model names, paths,
    host names, secrets in the wrong place, one service user and one data directory everywhere,
    host floors. One line per problem, each naming the variable, the value and the fix.
positional: _input, context
options:
  _input:
    description: Variable name to value (templated), for the project's prefixes.
    type: dict
    required: true
  context:
    description: What the check play read (gpus, caddy_sites, calendars, disk, ram, profiles...).
    type: dict
    required: true
"""

# Listeners on this machine: variable -> how to read the port from its value.
_PORT_VARS = (
    "agent_stack_vllm_port",
    "agent_stack_openhands_port",
    "agent_stack_openwebui_port",
    "agent_stack_qdrant_port",
    "agent_stack_tei_embed_port",
    "agent_stack_tei_rerank_port",
    "agent_stack_redis_port",
    "firewall_ssh_port",
    "code_index_port",
)
# Port variables where 0 means "no listener" (code_index_metrics_port: no metrics endpoint).
_OPTIONAL_PORT_VARS = ("code_index_metrics_port",)
_LISTEN_VARS = (
    "observability_prometheus_listen",
    "observability_node_exporter_listen",
    "observability_grafana_listen",
    "observability_dcgm_listen",
    "observability_redis_exporter_listen",
    "caddy_metrics_listen",
    "agent_queue_metrics_listen",
)
# Loki listens only when it is enabled.
_OPTIONAL_LISTEN_VARS = {"observability_loki_listen": "observability_loki_enabled"}

# Services that must never sit behind Caddy (no authentication of their own that the project
# relies on, or one meant only for local clients): the port variable -> what it is.
_PRIVATE_SERVICES = {
    "agent_stack_vllm_port": "vLLM (the model API, one shared key)",
    "agent_stack_qdrant_port": "Qdrant (the vector store)",
    "agent_stack_redis_port": "Redis (the agent queue)",
    "agent_stack_tei_embed_port": "TEI embeddings",
    "agent_stack_tei_rerank_port": "TEI reranker",
}

# Variables that must name the service user workstation_service_user names.
_USER_VARS = (
    "base_service_user",
    "docker_rootless_user",
    "nvidia_container_toolkit_user",
    "agent_stack_user",
    "agent_queue_user",
    "code_index_user",
    "observability_service_user",
    "maintenance_user",
)
# Variables that must equal workstation_data_dir, and those that must lie under it.
_DATA_DIR_VARS = ("base_data_dir", "agent_stack_root", "observability_data_dir")
_UNDER_DATA_DIR_VARS = (
    "agent_queue_dir",
    "agent_queue_results_dir",
    "code_index_dir",
    "maintenance_backup_dir",
    "observability_compose_dir",
    "observability_grafana_dir",
    "observability_secrets_dir",
)

# Host names (not URLs, not HOST:PORT).
_HOSTNAME_VARS = ("caddy_hostname", "workstation_tailnet_domain", "tailscale_hostname")
_HOSTNAME_RE = re.compile(
    r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)

# Retention and duration variables (Prometheus/Loki duration syntax), each must be > 0.
_DURATION_VARS = (
    "observability_prometheus_retention",
    "observability_prometheus_scrape_interval",
    "observability_loki_retention",
)
_DURATION_RE = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")

# Calendar variables (systemd OnCalendar=).
CALENDAR_VARS = ("maintenance_prune_on_calendar", "maintenance_backup_on_calendar")

# Paths a user may give relative on purpose (the controller's working directory).
_RELATIVE_OK = {"doctor_json_path"}

# vLLM's served model name: what a client can send in JSON, an HTTP header-free URL path
# (/v1/models), a shell variable (clients.env) and one argv item of --served-model-name
# (nargs="+": a space would split it). vLLM 0.32 itself accepts any string.
_MODEL_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}$")

# Arguments whose value is a secret and must come from a file, never the command line.
_SECRET_ARGS = ("--api-key", "--hf-token", "--ssl-keyfile-password")
# Arguments the VRAM plan owns (set the preflight_* variable instead).
_PLANNED_ARGS = {
    "--max-model-len": "preflight_max_model_len",
    "--gpu-memory-utilization": "preflight_gpu_memory_utilization",
    "--max-num-seqs": "preflight_max_num_seqs",
    "--kv-cache-dtype": "preflight_kv_cache_dtype",
    "--tensor-parallel-size": "preflight_tensor_parallel_size",
    "--served-model-name": "agent_stack_vllm_served_model_names",
}

_CRON_FIELD = r"[0-9*/,\-A-Za-z?]+"
_CRON_RE = re.compile(rf"^\s*{_CRON_FIELD}(\s+{_CRON_FIELD}){{4}}\s*$")
_CRON_MACROS = {
    "@hourly": "hourly",
    "@daily": "daily",
    "@midnight": "daily",
    "@weekly": "weekly",
    "@monthly": "monthly",
    "@yearly": "yearly",
    "@annually": "yearly",
}
_DOW = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def show(value: Any) -> str:
    """A value as the user would write it in YAML (strings quoted, so "32k" stays visible)."""
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return repr(value)


def _line(name: str, value: Any, problem: str, fix: str) -> str:
    return f"{name}={show(value)}: {problem} Fix: {fix}"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _as_int(value: Any) -> int | None:
    """An int, or a string of digits; None for anything else (bool, '32k', 1.5)."""
    if _is_int(value):
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):
        return int(value)
    return None


def _port_of(value: Any) -> int | None:
    """The port of HOST:PORT (IPv6 in brackets); None for a URL or anything else."""
    if isinstance(value, str):
        match = re.fullmatch(r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\]):([0-9]+)", value.strip())
        return int(match.group(1)) if match else None
    return None


def cron_to_oncalendar(spec: str) -> str | None:
    """The systemd OnCalendar equivalent of a five-field cron line (or @macro); None if not cron.

    systemd.time(7): "DayOfWeek Year-Month-Day Hour:Minute:Second", lists with ",", ranges
    with "..", repetitions with "/". Cron's "0-5" becomes "0..5" and "*/15" becomes "0/15".
    """
    text = spec.strip()
    if text in _CRON_MACROS:
        return _CRON_MACROS[text]
    if not _CRON_RE.match(text) or not re.search(r"[0-9*]", text.split()[0]):
        return None
    minute, hour, dom, month, dow = text.split()

    def conv(field: str, start: str = "0") -> str:
        if field in ("*", "?"):
            return "*"
        field = re.sub(r"^\*/", f"{start}/", field)
        return re.sub(r"(?<=[0-9])-(?=[0-9])", "..", field)

    def conv_dow(field: str) -> str:
        if field in ("*", "?"):
            return ""
        parts = []
        for item in field.split(","):
            if re.fullmatch(r"[0-7]-[0-7]", item):
                low, high = item.split("-")
                parts.append(f"{_DOW[int(low)]}..{_DOW[int(high)]}")
            elif re.fullmatch(r"[0-7]", item):
                parts.append(_DOW[int(item)])
            else:
                parts.append(item.capitalize()[:3])
        return ",".join(parts) + " "

    def two(field: str) -> str:
        return field.zfill(2) if field.isdigit() else field

    return (
        f"{conv_dow(dow)}*-{conv(month, '1')}-{conv(dom, '1')} "
        f"{two(conv(hour))}:{two(conv(minute))}:00"
    )


def calendar_problems(
    values: Mapping[str, Any], answers: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    """OnCalendar values: cron given instead, or refused by `systemd-analyze calendar`."""
    problems = []
    for name in CALENDAR_VARS:
        if name not in values:
            continue
        value = values[name]
        if not isinstance(value, str) or not value.strip():
            problems.append(
                _line(
                    name,
                    value,
                    "is not a systemd OnCalendar value.",
                    'write one such as "*-*-* 02:30:00".',
                )
            )
            continue
        equivalent = cron_to_oncalendar(value)
        if equivalent is not None:
            problems.append(
                _line(
                    name,
                    value,
                    "is cron syntax; systemd timers take OnCalendar values (systemd.time(7)).",
                    f'write the OnCalendar equivalent "{equivalent}" (check it with '
                    f"`systemd-analyze calendar '{equivalent}'`).",
                )
            )
            continue
        answer = answers.get(name) or {}
        if answer.get("rc") not in (None, 0):
            reason = (answer.get("stderr") or "").strip().splitlines()
            problems.append(
                _line(
                    name,
                    value,
                    "is refused by `systemd-analyze calendar`"
                    + (f" ({reason[-1]})." if reason else "."),
                    'write a systemd OnCalendar value such as "*-*-* 02:30:00" or "Sun *-*-* '
                    '04:30:00".',
                )
            )
    return problems


def port_problems(values: Mapping[str, Any], caddy_sites: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every TCP port this machine listens on: 1-65535, and each used once across the site."""
    problems: list[str] = []
    owners: dict[int, list[str]] = {}

    def take(name: str, value: Any, port: int | None, how: str) -> None:
        if port is None:
            problems.append(
                _line(name, value, f"is not {how}.", f"write {how}, e.g. {_example(name)}.")
            )
            return
        if not 1 <= port <= 65535:
            problems.append(
                _line(
                    name,
                    value,
                    f"port {port} is outside 1-65535.",
                    "use a free port between 1024 and 65535.",
                )
            )
            return
        owners.setdefault(port, []).append(name)

    for name in _PORT_VARS:
        if name in values:
            take(name, values[name], _as_int(values[name]), "a port number")
    for name in _OPTIONAL_PORT_VARS:
        if name in values and _as_int(values[name]) != 0:
            take(name, values[name], _as_int(values[name]), "a port number (0 = none)")
    listen = list(_LISTEN_VARS) + [
        n for n, flag in _OPTIONAL_LISTEN_VARS.items() if values.get(flag)
    ]
    for name in listen:
        if name in values:
            take(name, values[name], _port_of(values[name]), "HOST:PORT")
    for site in caddy_sites or []:
        label = f"caddy_sites[{site.get('name')}].port"
        take(label, site.get("port"), _as_int(site.get("port")), "a port number")
    for port, names in sorted(owners.items()):
        # Caddy serves several sites on one port (distinct paths); its own preflight checks those.
        distinct = sorted(set(names))
        if len(distinct) > 1 and not all(n.startswith("caddy_sites[") for n in distinct):
            problems.append(
                f"port {port} is used by {', '.join(distinct)}: two services cannot listen on "
                "one port. "
                f"Fix: give each its own port (the others are free of {port})."
            )
    return problems


def _example(name: str) -> str:
    return '"127.0.0.1:9465"' if name.endswith("_listen") else "8000"


def caddy_upstream_problems(
    values: Mapping[str, Any], caddy_sites: Iterable[Mapping[str, Any]]
) -> list[str]:
    """A Caddy site must not publish vLLM, Qdrant, Redis or TEI to the network."""
    private = {}
    for name, what in _PRIVATE_SERVICES.items():
        port = _as_int(values.get(name))
        if port is not None:
            private[port] = (name, what)
    problems = []
    for site in caddy_sites or []:
        upstream = str(site.get("upstream", ""))
        match = re.fullmatch(r"(127\.[0-9.]+|localhost|\[::1\]|0\.0\.0\.0):([0-9]+)", upstream)
        if match and int(match.group(2)) in private:
            var, what = private[int(match.group(2))]
            problems.append(
                _line(
                    f"caddy_sites[{site.get('name')}].upstream",
                    upstream,
                    f"is {what} ({var}); behind Caddy it would be reachable from the network.",
                    "remove the site; local clients reach it on 127.0.0.1, remote ones through "
                    "SSH.",
                )
            )
    return problems


def basic_auth_problems(users: Any) -> list[str]:
    """Plain passwords in caddy_basic_auth_users (the value itself is never printed)."""
    problems = []
    if not isinstance(users, list):
        return problems
    for index, user in enumerate(users):
        if isinstance(user, Mapping) and "password" in user:
            problems.append(
                f"caddy_basic_auth_users[{index}] ({user.get('name', '?')}) has a plain `password` "
                "(value not shown): a secret does not belong in the inventory. Fix: replace it "
                "with "
                "password_hash, the output of `caddy hash-password`."
            )
    return problems


def vllm_args_problems(extra: Any) -> list[str]:
    problems = []
    if not isinstance(extra, list):
        return problems
    for item in extra:
        text = str(item)
        flag = text.split("=", 1)[0]
        if flag in _SECRET_ARGS:
            problems.append(
                f"agent_stack_vllm_extra_args contains {flag} (value not shown): a secret on the "
                "command line is readable by every process (ps, /proc, docker inspect). Fix: "
                "remove "
                "it; the role passes vLLM's key from the file secret vllm_api_key."
            )
        elif flag in _PLANNED_ARGS:
            problems.append(
                _line(
                    "agent_stack_vllm_extra_args",
                    extra,
                    f"sets {flag}, which the VRAM plan owns (a second value would contradict it).",
                    f"remove it and set {_PLANNED_ARGS[flag]} instead.",
                )
            )
    return problems


def served_name_problems(names: Any) -> list[str]:
    var = "agent_stack_vllm_served_model_names"
    if not isinstance(names, list) or not names:
        return [
            _line(
                var,
                names,
                "must be a non-empty list of names.",
                "list at least one name, e.g. [qwen3-coder].",
            )
        ]
    problems = []
    for name in names:
        if not isinstance(name, str) or not _MODEL_NAME_RE.match(name):
            problems.append(
                _line(
                    var,
                    names,
                    f"{show(name)} is not a name every client can send (letters, digits and . _ "
                    ": / @ + -,"
                    " starting with a letter or digit, at most 128; no spaces or quotes).",
                    "rename it, e.g. qwen3-coder-30b.",
                )
            )
    seen = [n for n in names if isinstance(n, str)]
    dupes = sorted({n for n in seen if seen.count(n) > 1})
    if dupes:
        problems.append(
            _line(var, names, f"lists {', '.join(dupes)} more than once.", "list each name once.")
        )
    return problems


def model_problems(values: Mapping[str, Any], context: Mapping[str, Any]) -> list[str]:
    """Context length against the floor and the model's maximum positions; the plan's inputs."""
    problems = []
    wanted = values.get("preflight_max_model_len")
    profile_name = context.get("profile_name")
    profiles = context.get("profiles") or {}
    profile = profiles.get(profile_name) or {}
    arch = profile.get("architecture") or profile.get("config") or {}
    positions = arch.get("max_position_embeddings")
    floor = _as_int(values.get("preflight_min_model_len"))
    if "preflight_max_model_len" in values and wanted is not None:
        length = wanted if _is_int(wanted) else None
        if length is None:
            problems.append(
                _line(
                    "preflight_max_model_len",
                    wanted,
                    "is not a number of tokens.",
                    "write a plain integer such as 32768 (not 32k), or null for the profile's "
                    "default.",
                )
            )
        elif length <= 0:
            pass  # plan_input_problems (the inventory check) refuses it before the preflight
        elif positions and length > int(positions):
            problems.append(
                _line(
                    "preflight_max_model_len",
                    wanted,
                    f"exceeds {profile_name}'s max_position_embeddings {positions}.",
                    f"use at most {positions}, or null.",
                )
            )
        elif floor is not None and length < floor:
            problems.append(
                _line(
                    "preflight_max_model_len",
                    wanted,
                    f"is below preflight_min_model_len {floor}.",
                    f"use at least {floor}, or lower preflight_min_model_len.",
                )
            )
    return problems


# Whole numbers the roles read, with the range a careful operator means.
_RANGES = {
    "agent_queue_concurrency": (1, 64, "tasks at once, e.g. 2"),
    "maintenance_backup_keep_days": (1, 3650, "days, e.g. 14"),
    "doctor_min_free_gb": (0, 1048576, "GB, e.g. 50"),
    "doctor_backup_max_age_hours": (1, 8760, "hours, e.g. 36"),
    "caddy_access_log_roll_keep": (1, 1000, "files, e.g. 3"),
    "caddy_access_log_roll_size_mb": (1, 10240, "MB, e.g. 10"),
}


def range_problems(
    values: Mapping[str, Any], ranges: Mapping[str, tuple[int, int, str]]
) -> list[str]:
    problems = []
    for name, (low, high, unit) in ranges.items():
        if name not in values:
            continue
        number = values[name]
        if not _is_int(number) or not low <= number <= high:
            problems.append(
                _line(
                    name,
                    number,
                    f"must be a whole number from {low} to {high}.",
                    f"write {unit}, as a plain number.",
                )
            )
    return problems


def plan_input_problems(values: Mapping[str, Any]) -> list[str]:
    """The model plan's and the PSU budget's inputs, before the preflight hands them to its
    modules (vram_plan fails without naming the variable on a zero or negative size)."""
    if not isinstance(values, Mapping):
        raise AnsibleFilterError("aw_plan_input_problems expects the variables as a mapping")
    problems = []
    floor = _as_int(values.get("preflight_min_model_len"))
    wanted = values.get("preflight_max_model_len")
    if _is_int(wanted) and wanted <= 0:
        problems.append(
            _line(
                "preflight_max_model_len",
                wanted,
                "must be positive (0 would silently mean the profile's default).",
                "write the context length in tokens, e.g. 32768, or null.",
            )
        )
    if "preflight_min_model_len" in values and (floor is None or floor <= 0):
        problems.append(
            _line(
                "preflight_min_model_len",
                values["preflight_min_model_len"],
                "must be a positive token count.",
                "keep 16384 (the default) or another positive integer.",
            )
        )
    ranges = {
        "preflight_max_num_seqs": (1, 1024, "sequences at once, e.g. 4"),
        "preflight_min_gpu_count": (1, 16, "GPUs, e.g. 1"),
        "preflight_min_gpu_memory_mib": (1024, 1048576, "MiB, e.g. 22000"),
        "preflight_max_temperature_c": (30, 110, "degrees Celsius, e.g. 85"),
        "preflight_psu_watts": (200, 3000, "watts the PSU is rated for, e.g. 1000"),
        "preflight_cpu_tdp_w": (1, 1000, "watts, e.g. 170"),
        "preflight_other_w": (0, 2000, "watts, e.g. 100"),
        "preflight_vram_overhead_mib": (0, 65536, "MiB, e.g. 1536"),
    }
    problems += range_problems(values, ranges)
    util = values.get("preflight_gpu_memory_utilization")
    if "preflight_gpu_memory_utilization" in values and not (
        isinstance(util, (int, float)) and not isinstance(util, bool) and 0 < util <= 1
    ):
        problems.append(
            _line(
                "preflight_gpu_memory_utilization",
                util,
                "is a share of GPU memory, in (0, 1].",
                'write a fraction such as 0.92 (not 92 or "92%").',
            )
        )
    tp = values.get("preflight_tensor_parallel_size")
    if (
        tp is not None
        and "preflight_tensor_parallel_size" in values
        and (not _is_int(tp) or tp < 1)
    ):
        problems.append(
            _line(
                "preflight_tensor_parallel_size",
                tp,
                "must be a whole number of GPUs, at least 1.",
                "write null (every GPU) or a count of GPUs.",
            )
        )
    memory = values.get("preflight_gpu_memory_mib")
    if (
        memory is not None
        and "preflight_gpu_memory_mib" in values
        and (not _is_int(memory) or memory <= 0)
    ):
        problems.append(
            _line(
                "preflight_gpu_memory_mib",
                memory,
                "is not a GPU memory size in MiB.",
                'write null (detect it) or a plain number of MiB such as 24564 (not "24GB").',
            )
        )
    return problems


def power_problems(values: Mapping[str, Any], gpus: Iterable[Mapping[str, Any]]) -> list[str]:
    """nvidia_driver_power_limit_w within every GPU's range (nvidia-smi's min/max power limit)."""
    name = "nvidia_driver_power_limit_w"
    if name not in values or values[name] is None:
        return []
    limit = values[name]
    if not _is_int(limit):
        return [
            _line(
                name,
                limit,
                "is not a number of watts.",
                "write a plain number such as 350, or null.",
            )
        ]
    highs = [g.get("power_max_limit_w") for g in gpus or [] if g.get("power_max_limit_w")]
    lows = [g.get("power_min_limit_w") for g in gpus or [] if g.get("power_min_limit_w")]
    high = min(highs) if highs else 1500
    low = max(lows) if lows else 50
    if not low <= limit <= high:
        where = "every GPU found accepts" if highs else "a board power limit can be"
        return [
            _line(
                name,
                limit,
                f"is outside the range {where} ({low:g}-{high:g} W).",
                f"set a value from {low:g} to {high:g}, or null to keep the default.",
            )
        ]
    return []


def shape_problems(values: Mapping[str, Any], specs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Relative paths, URLs where host names are meant, durations, and loopback listeners."""
    problems = []
    for name, value in sorted(values.items()):
        spec = specs.get(name) or {}
        relative = isinstance(value, str) and bool(value) and not value.startswith("/")
        if spec.get("type") == "path" and name not in _RELATIVE_OK and relative:
            problems.append(
                _line(
                    name,
                    value,
                    "is a relative path; it would be resolved against whatever directory"
                    " the task runs in.",
                    "write an absolute path starting with /.",
                )
            )
    for name in (
        *_UNDER_DATA_DIR_VARS,
        "tailscale_authkey_file",
        "caddy_tls_cert_file",
        "caddy_tls_key_file",
    ):
        value = values.get(name)
        if (
            isinstance(value, str)
            and value
            and not value.startswith("/")
            and (specs.get(name) or {}).get("type") != "path"
        ):
            problems.append(
                _line(name, value, "is a relative path.", "write an absolute path starting with /.")
            )
    for name in _HOSTNAME_VARS:
        value = values.get(name)
        if name not in values or (value == "" and name == "tailscale_hostname"):
            continue
        if not isinstance(value, str) or not _HOSTNAME_RE.match(value):
            hint = ""
            if isinstance(value, str) and ("://" in value or "/" in value or ":" in value):
                host = re.sub(r"^[a-z]+://", "", value).split("/")[0].split(":")[0]
                hint = f' (a URL or HOST:PORT, where a host name is meant: write "{host}")'
            problems.append(
                _line(
                    name,
                    value,
                    f"is not a DNS host name{hint}.",
                    "write the bare name, e.g. workstation.tail1234.ts.net.",
                )
            )
    for name in _DURATION_VARS:
        if name not in values:
            continue
        value = values[name]
        text = str(value) if isinstance(value, str) else ""
        if not _DURATION_RE.match(text) or not re.search(r"[1-9]", text):
            problems.append(
                _line(
                    name,
                    value,
                    "is not a positive duration (0 or a bare number keeps nothing or is refused).",
                    'write a number with a unit: ms, s, m, h, d, w or y, e.g. "30d".',
                )
            )
    return problems


def consistency_problems(values: Mapping[str, Any]) -> list[str]:
    """One service user and one data directory across the roles."""
    problems = []
    user = values.get("workstation_service_user")
    if user is not None:
        for name in _USER_VARS:
            if name in values and values[name] != user:
                problems.append(
                    _line(
                        name,
                        values[name],
                        f"differs from workstation_service_user {show(user)}; the roles"
                        " would create one user and run the stack as another.",
                        f'set {name}: "{{{{ workstation_service_user }}}}" (or change both).',
                    )
                )
    data = values.get("workstation_data_dir")
    if isinstance(data, str) and data:
        root = data.rstrip("/")
        for name in _DATA_DIR_VARS:
            if name in values and str(values[name]).rstrip("/") != root:
                problems.append(
                    _line(
                        name,
                        values[name],
                        f"differs from workstation_data_dir {show(data)}; the data would"
                        " be split over two trees (and backups would miss one).",
                        f'set {name}: "{{{{ workstation_data_dir }}}}".',
                    )
                )
        for name in _UNDER_DATA_DIR_VARS:
            value = values.get(name)
            if (
                isinstance(value, str)
                and value.startswith("/")
                and not value.startswith(root + "/")
            ):
                problems.append(
                    _line(
                        name,
                        value,
                        f"is outside workstation_data_dir {show(data)}.",
                        "put it under it, e.g. "
                        f'"{{{{ workstation_data_dir }}}}/{value.rstrip("/").rsplit("/", 1)[-1]}".',
                    )
                )
    for client, stack in (
        ("agent_queue_redis_port", "agent_stack_redis_port"),
        ("agent_queue_openhands_port", "agent_stack_openhands_port"),
    ):
        if (
            client in values
            and stack in values
            and _as_int(values[client]) != _as_int(values[stack])
        ):
            problems.append(
                _line(
                    client,
                    values[client],
                    f"differs from {stack} {show(values[stack])}: the worker would"
                    " call a port nothing listens on.",
                    f'set {client}: "{{{{ {stack} }}}}".',
                )
            )
    return problems


def host_problems(
    values: Mapping[str, Any], context: Mapping[str, Any]
) -> tuple[list[str], list[str]]:
    """Free disk and RAM against their floors: (problems, warnings), by preflight_host_floors."""
    lines = []
    disk = context.get("disk") or {}
    min_disk = values.get("preflight_min_free_disk_gib")
    if disk.get("free_bytes") is not None and _is_int(min_disk):
        free = int(disk["free_bytes"]) / 2**30
        if free < min_disk:
            lines.append(
                f"preflight_min_free_disk_gib={min_disk}: {disk.get('path')} has {free:.1f} GiB "
                "free (model "
                "weights, the Hugging Face cache and the images need it). Fix: free space or "
                "add a disk there,"
                " or lower preflight_min_free_disk_gib knowingly."
            )
    min_ram = values.get("preflight_min_ram_gib")
    if context.get("ram_bytes") is not None and _is_int(min_ram):
        ram = int(context["ram_bytes"]) / 2**30
        if ram < min_ram:
            lines.append(
                f"preflight_min_ram_gib={min_ram}: this machine has {ram:.1f} GiB of RAM (vLLM, "
                "OpenHands, "
                "TEI and the sandboxes share it). Fix: add memory, or lower "
                "preflight_min_ram_gib knowingly."
            )
    for name in ("preflight_min_free_disk_gib", "preflight_min_ram_gib"):
        if name in values and (not _is_int(values[name]) or values[name] < 0):
            lines.append(
                _line(
                    name,
                    values[name],
                    "is not a number of GiB.",
                    "write a plain number such as 64.",
                )
            )
    if values.get("preflight_host_floors", "stop") == "warn":
        return [], lines
    return lines, []


def site_problems(values: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, list[str]]:
    """Every cross-role problem: {'problems': [...], 'warnings': [...]}."""
    if not isinstance(values, Mapping) or not isinstance(context, Mapping):
        raise AnsibleFilterError("aw_site_problems expects (variables mapping, context mapping)")
    sites = context.get("caddy_sites") or []
    problems: list[str] = []
    problems += consistency_problems(values)
    problems += port_problems(values, sites)
    problems += caddy_upstream_problems(values, sites)
    problems += basic_auth_problems(values.get("caddy_basic_auth_users"))
    problems += vllm_args_problems(values.get("agent_stack_vllm_extra_args"))
    if "agent_stack_vllm_served_model_names" in values:
        problems += served_name_problems(values["agent_stack_vllm_served_model_names"])
    problems += model_problems(values, context)
    problems += range_problems(values, _RANGES)
    gpus = context.get("gpus") or []
    tp = values.get("preflight_tensor_parallel_size")
    if _is_int(tp) and gpus and tp > len(gpus):
        problems.append(
            _line(
                "preflight_tensor_parallel_size",
                tp,
                f"is more than the GPUs found ({len(gpus)}).",
                f"write null (every GPU) or at most {len(gpus)}.",
            )
        )
    problems += power_problems(values, context.get("gpus") or [])
    problems += shape_problems(values, context.get("specs") or {})
    problems += calendar_problems(values, context.get("calendars") or {})
    host, warnings = host_problems(values, context)
    problems += host
    return {"problems": problems, "warnings": warnings}


def check_failures(registered: Mapping[str, Any]) -> list[str]:
    """The messages of the role checks that failed while the check stage collected them."""
    lines: list[str] = []

    def take(result: Any) -> None:
        if not isinstance(result, Mapping):
            return
        if result.get("results"):
            for item in result["results"]:
                take(item)
            return
        if result.get("failed") and result.get("msg"):
            msg = result["msg"]
            text = " ".join(str(m) for m in msg) if isinstance(msg, list) else str(msg)
            lines.append(re.sub(r"\s+", " ", text).strip())

    for name in sorted(registered):
        take(registered[name])
    return lines


class FilterModule:
    """The check stage's filters."""

    def filters(self):
        return {
            "aw_site_problems": site_problems,
            "aw_check_failures": check_failures,
            "aw_plan_input_problems": plan_input_problems,
            "aw_cron_to_oncalendar": cron_to_oncalendar,
        }
