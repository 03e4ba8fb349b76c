"""The fleet tier (workstation_llm_source fleet, issue 17 part 2).

- The inventory check's fleet decisions (plugins/filter/aw_inventory.py fleet_problems), called
  directly and through playbooks/validate.yml's expressions on a three-host inventory;
- the per-user key file parser (aw_user_keys);
- the contract and the templates rendered through ansible-playbook on that inventory (as
  tests/unit/test_llm_tier.py does): every consumer on every host points at the router host's
  door, a worker runs the vllm service published on its fleet address, the router host runs
  none; roles/llm_router's unit and door Caddyfile;
- the upgrade playbooks' play headers: over llm_workers with a fleet, serial 1, no failure
  tolerated; over workstation without one (ansible-playbook --list-hosts).
The local and external tiers' renderings are test_llm_tier.py's, unchanged.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import pytest
import yaml
from playbook_run import STACK_IMAGE_REFS

ROOT = pathlib.Path(__file__).resolve().parents[2]
ROLES = ROOT / "roles"

_spec = importlib.util.spec_from_file_location(
    "aw_inventory", ROOT / "plugins" / "filter" / "aw_inventory.py"
)
aw_inventory = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(aw_inventory)

ROUTER, W0, W1 = "100.64.0.10", "100.64.0.11", "100.64.0.12"
NAMES = ["qwen2.5-coder-32b-instruct", "claude-sonnet-4-5"]
FLEET_KEY = "fleet-key-" + "a" * 40
ALICE = "b" * 64


def fleet(**override):
    base = {
        "source": "fleet",
        "workers": {
            "w0": {"address": W0, "served_model_names": NAMES},
            "w1": {"address": W1, "served_model_names": NAMES},
        },
        "routers": ["r"],
        "router_address": ROUTER,
    }
    base.update(override)
    return aw_inventory.fleet_problems(base)


# --- the inventory check ------------------------------------------------------------------------


def test_a_good_fleet_passes_and_other_tiers_are_not_read():
    assert fleet() == []
    assert aw_inventory.fleet_problems({"source": "local", "workers": {}, "routers": []}) == []
    assert aw_inventory.fleet_problems({"source": "external"}) == []


def test_fleet_is_no_longer_refused_as_not_built_and_sglang_is_refused_with_it():
    values = {"workstation_llm_source": "fleet", "workstation_llm_base_url": "http://x:8090"}
    assert aw_inventory.llm_endpoint_problems(values) == []
    found = aw_inventory.llm_endpoint_problems({**values, "workstation_llm_engine": "sglang"})
    assert len(found) == 1 and 'local" only, not "fleet"' in found[0], found


@pytest.mark.parametrize(
    ("override", "expect"),
    [
        ({"workers": {}}, ["at least one host in group llm_workers", "Fix: list the hosts"]),
        ({"routers": []}, ["exactly one host in group llm_router", "has 0 (none)"]),
        ({"routers": ["r", "s"]}, ["exactly one host in group llm_router", "has 2 (r, s)"]),
        ({"router_address": ""}, ['workstation_llm_fleet_address (host r)=""', "tailscale ip"]),
        (
            {"router_address": "0.0.0.0"},
            ['(host r)="0.0.0.0"', "every-interface", "Fix: write the host's tailnet address"],
        ),
        ({"router_address": "127.0.0.1"}, ['(host r)="127.0.0.1"', "loopback"]),
        ({"router_address": "r.tail.ts.net"}, ["not an IPv4 address", "Fix:"]),
        ({"router_address": "fd7a:115c::1"}, ["not an IPv4 address", "tailscale ip -4"]),
        ({"router_address": "100.64.0.256"}, ["not an IPv4 address"]),
        (
            {"workers": {"w0": {"address": "", "served_model_names": NAMES}}},
            ['workstation_llm_fleet_address (host w0)=""', "host_vars/w0"],
        ),
        (
            {
                "workers": {
                    "w0": {"address": W0, "served_model_names": NAMES},
                    "w1": {"address": W1, "served_model_names": ["other-model"]},
                }
            },
            ["workstation_llm_served_model_names differs", "w0", "w1", "['other-model']", "Fix:"],
        ),
        (
            {"workers": {"w0": {"address": W0, "served_model_names": NAMES, "gpu_count": None}}},
            ["llm_workers host w0 has no GPU facts", "preflight did not run", "Fix:"],
        ),
        (
            {"workers": {"w0": {"address": W0, "served_model_names": NAMES, "gpu_count": -1}}},
            ["llm_workers host w0 has no GPU facts"],
        ),
        (
            {"workers": {"w0": {"address": W0, "served_model_names": NAMES, "gpu_count": "0"}}},
            ["llm_workers host w0 has no working GPU", "Fix: install the driver"],
        ),
    ],
)
def test_each_bad_fleet_is_refused_with_the_variable_the_value_and_the_fix(override, expect):
    found = fleet(**override)
    assert len(found) == 1, found
    for part in expect:
        assert part in found[0], (part, found[0])


def test_a_worker_with_gpus_passes_and_every_problem_is_reported_at_once():
    ok = {"address": W0, "served_model_names": NAMES, "gpu_count": "2"}
    assert fleet(workers={"w0": ok}) == []
    found = fleet(routers=[], workers={"w0": {**ok, "address": "0.0.0.0", "gpu_count": 0}})
    assert len(found) == 3, found


def test_the_filter_takes_the_columns_a_play_builds():
    filters = aw_inventory.FilterModule().filters()
    found = filters["aw_fleet_problems"](
        {
            "source": "fleet",
            "hosts": ["w0", "w1"],
            "addresses": [W0, ""],
            "served": [NAMES, NAMES],
            "gpu_counts": [1, -1],
            "routers": ["r"],
            "router_address": ROUTER,
        }
    )
    assert len(found) == 2, found
    assert "(host w1)" in found[0] and "w1 has no GPU facts" in found[1], found


# --- the per-user key file ------------------------------------------------------------------------


def test_user_keys_are_parsed_and_bad_lines_named_without_the_key():
    text = f"# name key\n\nalice {ALICE}\n  bob   {'c' * 40}  \n"
    out = aw_inventory.user_keys(text)
    assert out == {
        "keys": [{"name": "alice", "key": ALICE}, {"name": "bob", "key": "c" * 40}],
        "problems": [],
    }
    short, star = "d" * 20, "e" * 31 + "*"
    bad = aw_inventory.user_keys(f"alice {ALICE}\ncarol {short}\ndave {star}\nerin {ALICE}\n")
    assert [k["name"] for k in bad["keys"]] == ["alice"]
    assert [p.split(" ")[1] for p in bad["problems"]] == ["2", "3", "4"], bad["problems"]
    assert "repeats" in bad["problems"][2]
    for problem in bad["problems"]:
        assert short not in problem and star not in problem and ALICE not in problem


# --- rendered on a three-host fleet inventory --------------------------------------------------

INVENTORY = {
    "workstation": {"hosts": {"r": {}, "w0": {}, "w1": {}}},
    "llm_router": {"hosts": {"r": {"workstation_llm_fleet_address": ROUTER}}},
    "llm_workers": {
        "hosts": {
            "w0": {"workstation_llm_fleet_address": W0},
            "w1": {"workstation_llm_fleet_address": W1},
        }
    },
    "all": {"vars": {"ansible_connection": "local", "workstation_llm_source": "fleet"}},
}

PLAYBOOK = """
- hosts: workstation
  gather_facts: false
  vars_files:
    - {roles}/agent_stack/vars/main.yml
    - {roles}/observability/vars/main.yml
    - {roles}/llm_router/vars/main.yml
  tasks:
    - name: Render the stack
      ansible.builtin.template:
        src: "{roles}/{{{{ item.src }}}}"
        dest: "{out}/{{{{ inventory_hostname }}}}-{{{{ item.dest }}}}"
        mode: "0600"
      loop:
        - {{src: agent_stack/templates/compose.yml.j2, dest: compose.yml}}
        - {{src: agent_stack/templates/clients.env.j2, dest: clients.env}}
        - {{src: observability/templates/prometheus/prometheus.yml.j2, dest: prometheus.yml}}
    - name: Render the router's files on the router host
      ansible.builtin.template:
        src: "{roles}/llm_router/templates/{{{{ item }}}}.j2"
        dest: "{out}/{{{{ inventory_hostname }}}}-{{{{ item }}}}"
        mode: "0600"
      loop: [aw-llm-router.service, aw-llm-router-door.service, door.caddyfile]
      when: inventory_hostname in groups['llm_router']
    - name: Derived values
      ansible.builtin.copy:
        dest: "{out}/{{{{ inventory_hostname }}}}-facts.json"
        mode: "0600"
        content: "{{{{ {{'base_url': workstation_llm_base_url,
                       'container_url': workstation_llm_container_url,
                       'serves_here': workstation_llm_serves_here | bool,
                       'ready_url': _agent_stack_llm_host_url,
                       'key_file': _agent_stack_llm_key_file,
                       'openhands_url': agent_stack_openhands_llm_base_url,
                       'secret_names': _agent_stack_secret_names,
                       'upgrade_url': upgrade_vllm_url}} | to_json }}}}"
"""


def _with_defaults(inventory: dict, *roles: str) -> dict:
    """INVENTORY with the roles' defaults as group `all` vars: below the host vars, as role
    defaults are on a real run (a play's vars_files would override the inventory)."""
    out = json.loads(json.dumps(inventory))
    merged: dict = {}
    for role in roles:
        merged.update(yaml.safe_load((ROLES / role / "defaults/main.yml").read_text()))
    out.setdefault("all", {}).setdefault("vars", {})
    out["all"]["vars"] = {**merged, **out["all"]["vars"]}
    return out


def _run(cmd: list[str], cwd: pathlib.Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_CONFIG=str(cwd / "ansible.cfg"))
    return subprocess.run(cmd, check=False, cwd=cwd, env=env, capture_output=True, text=True)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("fleet")
    (out / "render.yml").write_text(PLAYBOOK.format(roles=ROLES, out=out))
    (out / "ansible.cfg").write_text(
        f"[defaults]\nretry_files_enabled = false\ncollections_path = {ROOT / 'collections'}\n"
    )
    inventory = out / "hosts.yml"
    inventory.write_text(
        yaml.safe_dump(
            _with_defaults(INVENTORY, "workstation", "agent_stack", "observability", "llm_router")
        )
    )
    extra = {
        "_agent_stack_refs": STACK_IMAGE_REFS,
        "_agent_stack_secret": {"vllm_api_key": FLEET_KEY},
        "_agent_stack_docker_socket": "/run/user/1001/docker.sock",
        "_observability_disk_mountpoints": ["/"],
        "_llm_router_fleet_key": FLEET_KEY,
        "_llm_router_user_keys": [{"name": "alice", "key": ALICE}],
        "ansible_python_interpreter": sys.executable,
    }
    res = _run(
        [str(pathlib.Path(sys.executable).with_name("ansible-playbook")), "-i", str(inventory),
         str(out / "render.yml"), "-e", json.dumps(extra)],
        out,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]

    def read(name):
        return (out / name).read_text()

    hosts = {}
    for host in ("r", "w0", "w1"):
        hosts[host] = {
            "compose": yaml.safe_load(read(f"{host}-compose.yml")),
            "clients": dict(
                line.split("=", 1)
                for line in read(f"{host}-clients.env").splitlines()
                if line and not line.startswith("#")
            ),
            "facts": json.loads(read(f"{host}-facts.json")),
            "prometheus": yaml.safe_load(read(f"{host}-prometheus.yml")),
        }
    hosts["r"]["unit"] = read("r-aw-llm-router.service")
    hosts["r"]["door_unit"] = read("r-aw-llm-router-door.service")
    hosts["r"]["door"] = read("r-door.caddyfile")
    return hosts


DOOR = f"http://{ROUTER}:8090"


def test_every_consumer_on_every_host_uses_the_router_door(rendered):
    for host, out in rendered.items():
        facts = out["facts"]
        assert facts["base_url"] == DOOR and facts["container_url"] == DOOR, (host, facts)
        assert facts["ready_url"] == DOOR and facts["openhands_url"] == DOOR + "/v1", host
        assert out["clients"]["ANTHROPIC_BASE_URL"] == DOOR, host
        assert out["clients"]["OPENAI_BASE_URL"] == DOOR + "/v1", host
        webui = out["compose"]["services"]["open-webui"]["environment"]
        assert webui["OPENAI_API_BASE_URL"] == DOOR + "/v1", host
        # The key is the user's fleet key file on every host, a secret, never generated.
        assert facts["key_file"] == "/srv/agent-workstation/secrets/vllm_api_key", host
        assert "vllm_api_key" not in facts["secret_names"], host
        assert out["compose"]["secrets"]["vllm_api_key"]["file"] == facts["key_file"], host


def test_workers_run_vllm_on_their_fleet_address_and_the_router_host_none(rendered):
    assert rendered["r"]["facts"]["serves_here"] is False
    assert "vllm" not in rendered["r"]["compose"]["services"]
    for host, address in (("w0", W0), ("w1", W1)):
        assert rendered[host]["facts"]["serves_here"] is True
        vllm = rendered[host]["compose"]["services"]["vllm"]
        assert vllm["ports"] == [f"{address}:8000:8000"], vllm["ports"]
        assert "vllm_api_key" in vllm["secrets"]
        assert not any(p.startswith("0.0.0.0") for p in vllm["ports"])


def test_the_router_unit_reaches_both_workers_from_loopback_without_a_key(rendered):
    unit = rendered["r"]["unit"]
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    argv = exec_start.split()
    assert argv[argv.index("--host") + 1] == "127.0.0.1"
    assert argv[argv.index("--port") + 1] == "8091"
    assert argv[argv.index("--policy") + 1] == "cache_aware"
    # vllm-router 0.1.17 checks worker health every 60 s unless told (router_args.py): 10 here.
    assert argv[argv.index("--health-check-interval-secs") + 1] == "10"
    assert argv[argv.index("--worker-urls") + 1 :] == [f"http://{W0}:8000", f"http://{W1}:8000"]
    assert "--api-key" not in argv and FLEET_KEY not in unit
    assert "LoadCredential=worker_key:/srv/agent-workstation/secrets/vllm_api_key" in unit
    assert "/opt/agent-workstation/llm-router/bin/aw-llm-router" in exec_start


def test_the_door_checks_both_key_headers_and_sends_only_the_fleet_key_on(rendered):
    door = rendered["r"]["door"]
    assert f"http://{ROUTER}:8090 {{" in door and f"bind {ROUTER}" in door
    bearer = door.split("@bearer {", 1)[1].split("}", 1)[0].split()
    assert bearer == [
        *("header", "Authorization", '"Bearer', f'{FLEET_KEY}"'),
        *("header", "Authorization", '"Bearer', f'{ALICE}"'),
    ], bearer
    x_api_key = door.split("@x_api_key {", 1)[1].split("}", 1)[0].split()
    assert x_api_key == [
        "header",
        "X-Api-Key",
        f'"{FLEET_KEY}"',
        "header",
        "X-Api-Key",
        f'"{ALICE}"',
    ]
    assert f'header_up Authorization "Bearer {FLEET_KEY}"' in door
    assert "header_up -X-Api-Key" in door and "reverse_proxy 127.0.0.1:8091" in door
    assert "admin off" in door and "log" not in door.split("{", 1)[1].replace("login", "")
    assert "--config /etc/agent-workstation/llm-router/door.caddyfile" in rendered["r"]["door_unit"]


# --- the inventory check, run by ansible-playbook on the fleet inventory -------------------------

CHECK = """
- hosts: workstation
  gather_facts: false
  tasks:
    - name: Fleet problems as validate.yml computes them
      ansible.builtin.copy:
        dest: "{out}/{{{{ inventory_hostname }}}}-problems.json"
        mode: "0600"
        content: "{{{{ _aw_fleet | agent_workstation.aw.aw_fleet_problems | to_json }}}}"
      vars:
{vars}
"""


def _validate_vars() -> str:
    play = yaml.safe_load((ROOT / "playbooks/validate.yml").read_text())[0]
    task = next(t for t in play["tasks"] if t["name"] == "Check the inventory's variables")
    keep = {k: v for k, v in task["vars"].items() if k.startswith("_aw_fleet")}
    return "\n".join("        " + line for line in yaml.safe_dump(keep, width=1000).splitlines())


def _check(tmp_path, inventory) -> dict:
    (tmp_path / "check.yml").write_text(
        CHECK.format(roles=ROLES, out=tmp_path, vars=_validate_vars())
    )
    (tmp_path / "ansible.cfg").write_text(
        f"[defaults]\nretry_files_enabled = false\ncollections_path = {ROOT / 'collections'}\n"
    )
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(_with_defaults(inventory, "workstation")))
    res = _run(
        [str(pathlib.Path(sys.executable).with_name("ansible-playbook")), "-i",
         str(tmp_path / "hosts.yml"), str(tmp_path / "check.yml"),
         "-e", "ansible_python_interpreter=" + sys.executable],
        tmp_path,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    return json.loads((tmp_path / "r-problems.json").read_text())


def test_validate_passes_the_fleet_inventory(tmp_path):
    assert _check(tmp_path, INVENTORY) == []


def test_validate_refuses_two_routers_and_a_worker_without_an_address(tmp_path):
    inventory = json.loads(json.dumps(INVENTORY))
    inventory["llm_router"]["hosts"]["w1"] = {}
    del inventory["llm_workers"]["hosts"]["w0"]["workstation_llm_fleet_address"]
    found = _check(tmp_path, inventory)
    assert len(found) == 2, found
    assert "has 2 (r, w1)" in found[0] and "(host w0)" in found[1], found


def test_validate_refuses_mismatched_served_names(tmp_path):
    inventory = json.loads(json.dumps(INVENTORY))
    inventory["llm_workers"]["hosts"]["w1"]["workstation_llm_served_model_names"] = ["other"]
    found = _check(tmp_path, inventory)
    assert len(found) == 1 and "differs between llm_workers w0" in found[0], found


def test_the_fleet_check_reads_each_workers_preflight_facts():
    play = yaml.safe_load((ROOT / "playbooks/fleet-check.yml").read_text())[0]
    expr = play["tasks"][0]["vars"]["__aw_fleet_problems"]
    assert "preflight_report" in expr and "'gpu_counts'" in expr and "aw_model_profile" in expr
    site = [
        p["ansible.builtin.import_playbook"]
        for p in yaml.safe_load((ROOT / "site.yml").read_text())
    ]
    assert site.index("playbooks/fleet-check.yml") == site.index("playbooks/preflight.yml") + 1
    assert site.index("playbooks/llm_router.yml") < site.index("playbooks/stack.yml")
    assert site.index("playbooks/llm_router.yml") > site.index("playbooks/check.yml")


# --- the rolling upgrades ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["upgrade-vllm", "upgrade-driver", "upgrade-model"])
def test_upgrades_roll_one_worker_at_a_time_and_stop_at_the_first_failure(name, tmp_path):
    play = yaml.safe_load((ROOT / f"playbooks/{name}.yml").read_text())[0]
    prefix = name.replace("-", "_")
    assert play["serial"] == f"{{{{ {prefix}_serial | default(1) }}}}"
    assert play["max_fail_percentage"] == f"{{{{ {prefix}_max_fail_percentage | default(0) }}}}"
    maintenance = yaml.safe_load(
        (ROOT / "inventories/workstation/group_vars/all/maintenance.yml").read_text()
    )
    assert maintenance[f"{prefix}_serial"] == 1
    assert maintenance[f"{prefix}_max_fail_percentage"] == 0
    # The hosts: llm_workers with a fleet inventory, workstation without one.
    (tmp_path / "fleet.yml").write_text(yaml.safe_dump(INVENTORY))
    (tmp_path / "one.yml").write_text(yaml.safe_dump({"workstation": {"hosts": {"solo": {}}}}))
    (tmp_path / "ansible.cfg").write_text(
        f"[defaults]\nretry_files_enabled = false\nroles_path = {ROLES}\n"
        f"collections_path = {ROOT / 'collections'}\n"
    )
    for inventory, expect in (("fleet.yml", ["w0", "w1"]), ("one.yml", ["solo"])):
        res = _run(
            [str(pathlib.Path(sys.executable).with_name("ansible-playbook")), "-i",
             str(tmp_path / inventory), str(ROOT / f"playbooks/{name}.yml"), "--list-hosts"],
            tmp_path,
        )  # fmt: skip
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
        listed = [line.strip() for line in res.stdout.splitlines() if line.startswith("      ")]
        assert sorted(listed) == expect, res.stdout


def _scrape(prometheus: dict) -> dict[str, list[str]]:
    return {
        job["job_name"]: [t for sc in job["static_configs"] for t in sc["targets"]]
        for job in prometheus["scrape_configs"]
    }


def test_prometheus_scrapes_each_workers_own_vllm_and_the_routers_metrics(rendered):
    """A worker scrapes its vLLM where it is published (its fleet address, not 127.0.0.1, where
    nothing listens), so the vLLM alerts keep their data; the router host, which serves no model,
    has no vLLM job and scrapes the router's own metrics instead."""
    for host, address in (("w0", W0), ("w1", W1)):
        jobs = _scrape(rendered[host]["prometheus"])
        assert jobs["vllm"] == [f"{address}:8000"], (host, jobs)
        assert jobs["vllm_health"] == [f"{address}:8000"], (host, jobs)
        assert "llm_router" not in jobs, host
        assert jobs["node"] == ["127.0.0.1:9100"], host
    router = _scrape(rendered["r"]["prometheus"])
    assert "vllm" not in router and "vllm_health" not in router, router
    assert router["llm_router"] == ["127.0.0.1:29000"], router
    unit = rendered["r"]["unit"]
    assert "--prometheus-host 127.0.0.1 --prometheus-port 29000" in unit


def test_each_host_checks_the_vllm_it_has_after_an_upgrade_or_in_doctor(rendered):
    """upgrade_vllm_url: a worker's own vLLM (a roll verifies the host it just upgraded), the
    router's door on the host that serves no model (doctor reads it there)."""
    assert rendered["w0"]["facts"]["upgrade_url"] == f"http://{W0}:8000"
    assert rendered["w1"]["facts"]["upgrade_url"] == f"http://{W1}:8000"
    assert rendered["r"]["facts"]["upgrade_url"] == DOOR
