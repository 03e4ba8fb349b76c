"""Filters that check an inventory against the variables this project knows.

`aw_inventory_problems` is what the first play of site.yml runs: it takes the variables a host
was given, the option specs of every role (their meta/argument_specs.yml) and of the playbooks,
and returns one readable line per problem: an unknown variable (with the likely intended name),
a removed one (with its replacement), or a value of the wrong type or outside its choices.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

DOCUMENTATION = """
name: aw_inventory_problems
short_description: List what is wrong with the project's variables in an inventory.
description:
  - Checks every variable whose name starts with a known prefix against the option specs.
positional: _input, specs, removed, prefixes
options:
  _input:
    description: The variables a host was given (for example C(hostvars[inventory_hostname])).
    type: dict
    required: true
  specs:
    description: Option specs, name to spec, as in meta/argument_specs.yml.
    type: dict
    required: true
  removed:
    description: Removed variable names, each mapped to what replaces it.
    type: dict
  prefixes:
    description: Name prefixes this project owns; other variables are not checked.
    type: list
    elements: str
"""

_SPEC_KEYS = ("type", "elements", "choices", "options", "no_log")


def _clean_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Keep what checks a value's shape; drop required/default, which roles own."""
    clean = {key: spec[key] for key in _SPEC_KEYS if key in spec}
    if isinstance(clean.get("options"), Mapping):
        clean["options"] = {k: _clean_spec(v) for k, v in clean["options"].items()}
    return clean


def _plain(value: Any) -> Any:
    """Plain dicts, lists and scalars of a (possibly lazily templated) Ansible value.

    ArgumentSpecValidator deep-copies what it validates; deep-copying ansible-core 2.19's lazy
    containers drags their whole templating context along (seconds per role in the play).
    """
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return value


def merge_specs(documents: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Merge the `main` entry points of argument_specs documents (or plain option maps)."""
    merged: dict[str, dict[str, Any]] = {}
    for document in documents:
        if not isinstance(document, Mapping):
            raise AnsibleFilterError(f"an argument spec is not a mapping: {document!r}")
        if "argument_specs" in document:
            options = document["argument_specs"].get("main", {}).get("options", {}) or {}
        else:
            options = document
        for name, spec in options.items():
            merged[name] = dict(spec or {})
    return merged


_TRUE = {"yes", "true", "on", "1", "y"}
_FALSE = {"no", "false", "off", "0", "n"}


def shape_problem(name: str, value: Any, spec: Mapping[str, Any]) -> str | None:
    """What the argument-spec validator would silently convert but the roles read differently.

    ansible-core's check_type_bool turns the string "no" into False, yet a template or `when:`
    reading the variable sees a non-empty string, which is true; check_type_list splits a string
    at commas; check_type_int refuses "32k" without saying what to write instead.
    """
    kind = spec.get("type")
    if kind == "list" and isinstance(value, list):
        plain = [
            i for i, item in enumerate(value) if isinstance(item, Mapping) and "password" in item
        ]
        if plain:
            return (
                f"{name}[{plain[0]}] has a plain `password` (value not shown): a secret does "
                "not belong in"
                " the inventory. Fix: replace it with password_hash, the output of `caddy "
                "hash-password`."
            )
    if not isinstance(value, str):
        return None
    if kind == "bool":
        meant = (
            "true"
            if value.strip().lower() in _TRUE
            else "false"
            if value.strip().lower() in _FALSE
            else None
        )
        fix = f"write {meant} without quotes" if meant else "write true or false without quotes"
        return (
            f'{name}="{value}" is a string, not a boolean: in a template or `when:` any non-empty '
            f"string is true. Fix: {fix}."
        )
    if kind == "list":
        parts = [part.strip() for part in value.split(",")]
        return (
            f'{name}="{value}" is a string, not a list. Fix: write a YAML list, '
            f"[{', '.join(parts)}]."
        )
    if kind in ("int", "float"):
        try:
            float(value)
        except ValueError:
            digits = "".join(ch for ch in value if ch.isdigit() or ch == ".") or "a number"
            return (
                f'{name}="{value}" is not a plain number (units such as "32k" or "10GB" are not '
                "read). "
                f"Fix: write the number alone, in the unit the variable's name or README gives "
                f"(for example {digits} with the unit converted)."
            )
    return None


def inventory_problems(
    variables: Mapping[str, Any],
    specs: Mapping[str, Mapping[str, Any]],
    removed: Mapping[str, str] | None = None,
    prefixes: Iterable[str] = (),
) -> list[str]:
    """Return one human-readable line per problem with the project's variables."""
    removed = dict(removed or {})
    prefixes = tuple(prefixes)
    problems: list[str] = []
    provided: dict[str, Any] = {}
    for name in sorted(variables):
        if name in removed:
            problems.append(f"{name} was removed: {removed[name]}")
            continue
        if not name.startswith(prefixes):
            continue
        if name not in specs:
            guess = difflib.get_close_matches(name, list(specs), n=1, cutoff=0.75)
            hint = f" Did you mean {guess[0]}?" if guess else ""
            problems.append(f"{name} is not a variable of this project.{hint}")
            continue
        value = _plain(variables[name])
        shape = shape_problem(name, value, specs[name])
        if shape:
            problems.append(shape)
            continue
        provided[name] = value
    if provided:
        spec = {name: _clean_spec(specs[name]) for name in provided}
        result = ArgumentSpecValidator(spec).validate(provided)
        for error in result.error_messages:
            problems.append(f"{error}")
    return problems


_LLM_URL = re.compile(
    r"^https?://(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(?P<port>[0-9]{1,5}))?/?$"
)


def llm_endpoint_problems(values: Mapping[str, Any]) -> list[str]:
    """The LLM tier (issue 17): the engine (sglang only with local), and external's URL.

    The fleet tier's groups and addresses are fleet_problems' (it needs the inventory's groups).

    Reads workstation_llm_source, workstation_llm_engine and workstation_llm_base_url. The
    argument spec has no `choices` for the two: the workstation role's own argument validation
    runs before the inventory check and would stop it without its report.
    """
    source = values.get("workstation_llm_source", "local")
    engine = values.get("workstation_llm_engine", "vllm")
    url = values.get("workstation_llm_base_url", "")
    problems: list[str] = []
    if source not in ("local", "external", "fleet"):
        problems.append(
            f'workstation_llm_source="{source}" is not a source this project knows. Fix: write '
            "local (this machine's GPU, the default), external (a server you run; set "
            "workstation_llm_base_url) or fleet (the hosts of group llm_workers behind the "
            "router of group llm_router)."
        )
    if engine not in ("vllm", "sglang"):
        problems.append(
            f'workstation_llm_engine="{engine}" is not an engine this project knows. Fix: write '
            "vllm (the default) or sglang (the local tier only)."
        )
    if engine == "sglang" and source != "local":
        problems.append(
            f'workstation_llm_engine="sglang" is built for workstation_llm_source="local" only, '
            f'not "{source}" (the fleet workers and the router are tested with vLLM; an external '
            "server is whatever you run). Fix: use workstation_llm_engine=vllm with this source, "
            "or workstation_llm_source=local."
        )
    if source != "external":
        return problems
    text = url if isinstance(url, str) else ""
    if not text.strip():
        problems.append(
            'workstation_llm_base_url="" is not set, and workstation_llm_source="external" '
            "needs it. Fix: set it to the server's http(s)://host[:port], without /v1."
        )
        return problems
    stripped = text.rstrip("/")
    if stripped.endswith("/v1"):
        problems.append(
            f'workstation_llm_base_url="{text}" ends in /v1; the roles add /v1 themselves. '
            f"Fix: write {stripped[: -len('/v1')]}."
        )
        return problems
    match = _LLM_URL.match(text)
    if not match or (match.group("port") and not 0 < int(match.group("port")) < 65536):
        problems.append(
            f'workstation_llm_base_url="{text}" is not an http(s)://host[:port] URL. Fix: write '
            "for example http://llm.lan:8000 (scheme, host, optional port, no path)."
        )
        return problems
    host = match.group("host").lower()
    if host == "localhost" or host.startswith("127.") or host in ("[::1]", "0.0.0.0"):
        problems.append(
            f'workstation_llm_base_url="{text}" is a loopback address: inside the stack\'s '
            "containers that is the container itself. Fix: use the server's LAN or tailnet "
            "name or address."
        )
    return problems


def _address_problem(host: str, address: Any) -> str | None:
    text = address.strip() if isinstance(address, str) else ""
    name = f"workstation_llm_fleet_address (host {host})"
    if not text:
        return (
            f'{name}="" is not set; a fleet member listens there. Fix: set it in host_vars/{host} '
            "to the host's tailnet address (`tailscale ip -4`, e.g. 100.64.0.11)."
        )
    if text in ("0.0.0.0", "::", "[::]") or text == "localhost" or text.startswith("127."):
        return (
            f'{name}="{text}" is a loopback or every-interface address: the router cannot reach '
            "loopback, and 0.0.0.0 would publish vLLM on every network. Fix: write the host's "
            "tailnet address (`tailscale ip -4`)."
        )
    if not re.fullmatch(r"(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}", text):
        return (
            f'{name}="{text}" is not an IPv4 address (Docker publishes a port on an address, not '
            "a name; the URLs are built as http://<address>:<port>). Fix: write the host's "
            "tailnet IPv4 address (`tailscale ip -4`)."
        )
    return None


def fleet_problems(fleet: Mapping[str, Any]) -> list[str]:
    """The fleet tier (issue 17 part 2): the inventory's groups and each member's values.

    FLEET: {source, workers: {host: {address, served_model_names[, gpu_count]}},
    routers: [host], router_address}. `gpu_count` is given only after the preflight ran
    (playbooks/fleet-check.yml): None there means that worker has no preflight_report (it was
    not in the play or did not answer). Nothing is checked unless source is fleet.
    """
    if fleet.get("source") != "fleet":
        return []
    problems: list[str] = []
    workers = fleet.get("workers") or {}
    routers = list(fleet.get("routers") or [])
    if not workers:
        problems.append(
            'workstation_llm_source="fleet" needs at least one host in group llm_workers, and '
            "it has none. Fix: list the hosts that run vLLM under llm_workers in the inventory "
            "(hosts.yml), or use local."
        )
    if len(routers) != 1:
        listed = ", ".join(routers) if routers else "none"
        problems.append(
            f'workstation_llm_source="fleet" needs exactly one host in group llm_router, and it '
            f"has {len(routers)} ({listed}). Fix: list one host under llm_router in the "
            "inventory (hosts.yml); it runs the router every consumer uses."
        )
    else:
        problem = _address_problem(routers[0], fleet.get("router_address"))
        if problem:
            problems.append(problem)
    first_host, first_names = None, None
    for host in sorted(workers):
        worker = workers[host] or {}
        problem = _address_problem(host, worker.get("address"))
        if problem:
            problems.append(problem)
        if "gpu_count" in worker:
            count = worker["gpu_count"]
            if count is None or int(count) < 0:
                problems.append(
                    f"llm_workers host {host} has no GPU facts (preflight_report): the preflight "
                    "did not run there. Fix: run site.yml over every host of llm_workers (no "
                    "--limit that leaves one out) and make sure each one answers."
                )
            elif int(count) < 1:
                problems.append(
                    f"llm_workers host {host} has no working GPU (preflight_report.gpu.count=0). "
                    "Fix: install the driver there (the host stage does; reboot when it says "
                    "so) or take the host out of llm_workers."
                )
        names = list(worker.get("served_model_names") or [])
        if first_names is None:
            first_host, first_names = host, names
        elif names != first_names:
            problems.append(
                f"workstation_llm_served_model_names differs between llm_workers {first_host} "
                f"({first_names}) and {host} ({names}); the router sends any request to any "
                "worker. Fix: give every worker the same model profile "
                "(preflight_model_profile) or the same workstation_llm_served_model_names."
            )
    return problems


def _fleet_filter(fleet):
    """FLEET as a play can build it: parallel lists per worker (hosts, addresses, served[,
    gpu_counts]) beside source, routers and router_address."""
    if not isinstance(fleet, Mapping):
        raise AnsibleFilterError("aw_fleet_problems expects the fleet as a mapping")
    fleet = _plain(fleet)
    hosts = list(fleet.get("hosts") or [])
    columns = {"address": "addresses", "served_model_names": "served", "gpu_count": "gpu_counts"}
    workers: dict[str, dict[str, Any]] = {host: {} for host in hosts}
    for key, column in columns.items():
        if column not in fleet:
            continue
        values = list(fleet[column] or [])
        if len(values) != len(hosts):
            raise AnsibleFilterError(
                f"aw_fleet_problems: {column} has {len(values)} entries for {len(hosts)} hosts"
            )
        for host, value in zip(hosts, values, strict=True):
            workers[host][key] = value
    return fleet_problems({**fleet, "workers": workers})


_KEY_LINE = re.compile(r"^\s*(?P<name>[A-Za-z0-9._@-]+)\s+(?P<key>[A-Za-z0-9._-]{32,})\s*$")


def user_keys(text: str) -> dict[str, Any]:
    """Parse llm_router_user_keys_file: one `name key` per line, # comments and blank lines.

    Returns {"keys": [{"name", "key"}], "problems": [...]}: a problem names the line number and
    what is wrong, never the key. A key is 32+ of A-Z a-z 0-9 . _ - (Caddy's header matcher
    reads `*` as a wildcard, so it must not appear), and names and keys are unique.
    """
    keys: list[dict[str, str]] = []
    problems: list[str] = []
    names: set[str] = set()
    values: set[str] = set()
    for number, line in enumerate(str(text).splitlines(), start=1):
        if not line.strip() or line.strip().startswith("#"):
            continue
        match = _KEY_LINE.match(line)
        if not match:
            problems.append(
                f"line {number} is not `name key` with a key of 32 or more of A-Z a-z 0-9 . _ - "
                "(value not shown). Fix: make the key with `openssl rand -hex 32`."
            )
            continue
        name, key = match.group("name"), match.group("key")
        if name in names or key in values:
            problems.append(
                f"line {number} repeats a name or a key (value not shown). Fix: one line per user."
            )
            continue
        names.add(name)
        values.add(key)
        keys.append({"name": name, "key": key})
    return {"keys": keys, "problems": problems}


def _user_keys_filter(text):
    return user_keys("" if text is None else str(text))


def _llm_filter(values):
    if not isinstance(values, Mapping):
        raise AnsibleFilterError("aw_llm_endpoint_problems expects the variables as a mapping")
    return llm_endpoint_problems({key: _plain(value) for key, value in values.items()})


def _problems_filter(variables, specs, removed=None, prefixes=()):
    if not isinstance(variables, Mapping):
        raise AnsibleFilterError("aw_inventory_problems expects the host's variables as a mapping")
    # Only names with a known prefix are read, so unrelated variables are never templated.
    return inventory_problems(variables, merge_specs([specs]), removed, prefixes)


def _merge_filter(documents):
    return merge_specs(documents)


def role_specs(roles_path: str) -> dict[str, Any]:
    """Read every role's meta/argument_specs.yml under roles_path (on the controller).

    Returns {"roles": [role names], "options": {merged options}}.
    """
    import yaml  # noqa: PLC0415  (only the controller needs it, and only here)

    root = Path(roles_path)
    if not root.is_dir():
        raise AnsibleFilterError(f"aw_role_specs: {roles_path} is not a directory")
    roles: list[str] = []
    documents: list[Mapping[str, Any]] = []
    for spec_file in sorted(root.glob("*/meta/argument_specs.yml")):
        roles.append(spec_file.parent.parent.name)
        with spec_file.open(encoding="utf-8") as handle:
            documents.append(yaml.safe_load(handle) or {})
    return {"roles": roles, "options": merge_specs(documents)}


class FilterModule:
    """The project's inventory filters."""

    def filters(self):
        return {
            "aw_inventory_problems": _problems_filter,
            "aw_merge_specs": _merge_filter,
            "aw_llm_endpoint_problems": _llm_filter,
            "aw_fleet_problems": _fleet_filter,
            "aw_user_keys": _user_keys_filter,
            "aw_role_specs": role_specs,
        }
