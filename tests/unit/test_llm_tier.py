"""The LLM tier (workstation_llm_source, issue 17 part 1): local and external.

The inventory check's refusals (plugins/filter/aw_inventory.py llm_endpoint_problems), and the
role templates rendered through ansible-playbook with the contract, the roles' defaults and
vars (as tests/unit/test_observability_alerts.py does): with external the compose file has no
vllm service and every consumer reads workstation_llm_base_url (the key only as a secret
file); with local the rendering is what it was (vllm:8000, 127.0.0.1).
"""

from __future__ import annotations

import importlib.util
import json
import pathlib

import pytest
import yaml
from playbook_run import STACK_IMAGE_REFS, run_local_playbook

ROOT = pathlib.Path(__file__).resolve().parents[2]
ROLES = ROOT / "roles"

_spec = importlib.util.spec_from_file_location(
    "aw_inventory", ROOT / "plugins" / "filter" / "aw_inventory.py"
)
aw_inventory = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(aw_inventory)

EXTERNAL_URL = "https://llm.example.lan:8443"
EXTERNAL_KEY_FILE = "/home/agent/llm-key"
SECRET = "s3cr3t-external-key-value"


def problems(**values):
    return aw_inventory.llm_endpoint_problems(values)


# --- the inventory check ------------------------------------------------------------------------


def test_local_and_a_good_external_url_pass():
    assert problems(workstation_llm_source="local", workstation_llm_base_url="") == []
    for url in (
        "http://llm.lan:8000",
        "https://llm.example.lan",
        "http://10.0.0.5:8000/",
        "http://[fd7a::1]:8000",
    ):
        assert problems(workstation_llm_source="external", workstation_llm_base_url=url) == [], url


@pytest.mark.parametrize(
    ("values", "expect"),
    [
        (
            {"workstation_llm_source": "external", "workstation_llm_base_url": ""},
            ['workstation_llm_base_url=""', "not set", "http(s)://host[:port]"],
        ),
        (
            {
                "workstation_llm_source": "external",
                "workstation_llm_base_url": "http://llm:8000/v1",
            },
            [
                'workstation_llm_base_url="http://llm:8000/v1"',
                "ends in /v1",
                "write http://llm:8000",
            ],
        ),
        (
            {"workstation_llm_source": "external", "workstation_llm_base_url": "llm.lan:8000"},
            ['workstation_llm_base_url="llm.lan:8000"', "not an http(s)://host[:port]", "Fix:"],
        ),
        (
            {"workstation_llm_source": "external", "workstation_llm_base_url": "http://llm:99999"},
            ['workstation_llm_base_url="http://llm:99999"', "not an http(s)"],
        ),
        (
            {"workstation_llm_source": "external", "workstation_llm_base_url": "http://h/x/y"},
            ['workstation_llm_base_url="http://h/x/y"', "no path"],
        ),
        (
            {
                "workstation_llm_source": "external",
                "workstation_llm_base_url": "http://127.0.0.1:8000",
            },
            ["loopback", "Fix: use the server's LAN"],
        ),
        (
            {
                "workstation_llm_engine": "sglang",
                "workstation_llm_source": "external",
                "workstation_llm_base_url": "http://llm.lan:8000",
            },
            ['workstation_llm_engine="sglang"', 'local" only, not "external"', "Fix: use"],
        ),
    ],
)
def test_bad_tier_values_are_refused_with_the_fix(values, expect):
    found = problems(**values)
    assert len(found) == 1, found
    for part in expect:
        assert part in found[0], (part, found[0])


def test_an_unknown_source_or_engine_is_refused_with_the_values_to_write():
    found = problems(workstation_llm_source="cloud")
    assert len(found) == 1, found
    assert 'workstation_llm_source="cloud"' in found[0] and "Fix: write local" in found[0]
    found = problems(workstation_llm_engine="tgi")
    assert len(found) == 1, found
    assert 'workstation_llm_engine="tgi"' in found[0] and "Fix: write vllm" in found[0]


def test_the_argument_spec_has_no_choices_that_would_stop_the_check_early():
    spec = yaml.safe_load((ROLES / "workstation/meta/argument_specs.yml").read_text())
    options = spec["argument_specs"]["main"]["options"]
    assert "choices" not in options["workstation_llm_source"]
    assert "choices" not in options["workstation_llm_engine"]


# --- the templates ------------------------------------------------------------------------------

PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  vars_files:
    - {roles}/workstation/defaults/main.yml
    - {roles}/agent_stack/defaults/main.yml
    - {roles}/agent_stack/vars/main.yml
    - {roles}/observability/defaults/main.yml
    - {roles}/observability/vars/main.yml
  tasks:
    - name: Render
      ansible.builtin.template:
        src: "{roles}/{{{{ item.src }}}}"
        dest: "{out}/{{{{ item.dest }}}}"
        mode: "0600"
      loop:
        - {{src: agent_stack/templates/compose.yml.j2, dest: compose.yml}}
        - {{src: agent_stack/templates/clients.env.j2, dest: clients.env}}
        - {{src: observability/templates/prometheus/prometheus.yml.j2, dest: prometheus.yml}}
        - {{src: observability/templates/prometheus-rules.yml.j2, dest: rules.yml}}
    - name: Derived values the tasks read
      ansible.builtin.copy:
        dest: "{out}/facts.json"
        mode: "0600"
        content: "{{{{ {{'ready_url': _agent_stack_llm_host_url,
                       'key_file': _agent_stack_llm_key_file,
                       'openhands_url': agent_stack_openhands_llm_base_url,
                       'secret_names': _agent_stack_secret_names}} | to_json }}}}"
"""


def render(tmp_path: pathlib.Path, **override) -> dict:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "render.yml").write_text(PLAYBOOK.format(roles=ROLES, out=tmp_path))
    (tmp_path / "ansible.cfg").write_text("[defaults]\nretry_files_enabled = false\n")
    extra = {
        "_agent_stack_refs": STACK_IMAGE_REFS,
        "_agent_stack_secret": {"vllm_api_key": SECRET},
        "_agent_stack_docker_socket": "/run/user/1001/docker.sock",
        "_observability_disk_mountpoints": ["/"],
        **override,
    }
    run_local_playbook(tmp_path / "render.yml", extra, tmp_path)
    return {
        "compose": yaml.safe_load((tmp_path / "compose.yml").read_text()),
        "compose_text": (tmp_path / "compose.yml").read_text(),
        "clients": dict(
            line.split("=", 1)
            for line in (tmp_path / "clients.env").read_text().splitlines()
            if line and not line.startswith("#")
        ),
        "prometheus": yaml.safe_load((tmp_path / "prometheus.yml").read_text()),
        "rules": yaml.safe_load((tmp_path / "rules.yml").read_text()),
        "facts": json.loads((tmp_path / "facts.json").read_text()),
    }


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    return render(tmp_path_factory.mktemp("local"))


@pytest.fixture(scope="module")
def external(tmp_path_factory):
    return render(
        tmp_path_factory.mktemp("external"),
        workstation_llm_source="external",
        workstation_llm_base_url=EXTERNAL_URL,
        workstation_llm_api_key_file=EXTERNAL_KEY_FILE,
    )


def _jobs(prometheus):
    return {job["job_name"]: job for job in prometheus["scrape_configs"]}


def _alerts(rules):
    return {rule["alert"] for rule in rules["groups"][0]["rules"]}


def test_local_renders_as_before(local):
    services = local["compose"]["services"]
    assert "vllm" in services
    webui = services["open-webui"]
    assert webui["environment"]["OPENAI_API_BASE_URL"] == "http://vllm:8000/v1"
    assert local["compose"]["secrets"]["vllm_api_key"]["file"] == (
        "/srv/agent-workstation/secrets/vllm_api_key"
    )
    assert local["clients"]["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:8000"
    assert local["clients"]["OPENAI_BASE_URL"] == "http://127.0.0.1:8000/v1"
    jobs = _jobs(local["prometheus"])
    assert jobs["vllm"]["static_configs"][0]["targets"] == ["127.0.0.1:8000"]
    assert "scheme" not in jobs["vllm"]
    assert "VllmDownOrNotReady" in _alerts(local["rules"])
    assert local["facts"]["ready_url"] == "http://127.0.0.1:8000"
    assert local["facts"]["key_file"] == "/srv/agent-workstation/secrets/vllm_api_key"
    assert local["facts"]["openhands_url"] == "http://host.docker.internal:8000/v1"
    assert "vllm_api_key" in local["facts"]["secret_names"]


def test_external_has_no_vllm_service_and_every_consumer_reads_the_url(external):
    compose = external["compose"]
    assert "vllm" not in compose["services"]
    for name, service in compose["services"].items():
        assert "vllm" not in (service.get("depends_on") or {}), name
    webui = compose["services"]["open-webui"]
    assert webui["environment"]["OPENAI_API_BASE_URL"] == EXTERNAL_URL + "/v1"
    assert "http://vllm:8000" not in external["compose_text"]
    assert external["clients"]["ANTHROPIC_BASE_URL"] == EXTERNAL_URL
    assert external["clients"]["OPENAI_BASE_URL"] == EXTERNAL_URL + "/v1"
    assert external["facts"]["ready_url"] == EXTERNAL_URL
    assert external["facts"]["openhands_url"] == EXTERNAL_URL + "/v1"


def test_external_key_is_the_users_file_and_only_a_secret(external):
    compose = external["compose"]
    assert compose["secrets"]["vllm_api_key"]["file"] == EXTERNAL_KEY_FILE
    assert external["facts"]["key_file"] == EXTERNAL_KEY_FILE
    # Not generated (the user's file is the key), and never a container environment value.
    assert "vllm_api_key" not in external["facts"]["secret_names"]
    assert SECRET not in external["compose_text"]
    for name, service in compose["services"].items():
        assert SECRET not in json.dumps(service.get("environment") or {}), name
    assert "vllm_api_key" in compose["services"]["open-webui"]["secrets"]


def test_external_prometheus_drops_the_vllm_jobs_and_alerts_by_default(external):
    jobs = _jobs(external["prometheus"])
    assert "vllm" not in jobs and "vllm_health" not in jobs
    assert "node" in jobs
    assert not {a for a in _alerts(external["rules"]) if a.startswith("Vllm")}


def test_external_prometheus_scrapes_the_server_when_asked(tmp_path):
    out = render(
        tmp_path,
        workstation_llm_source="external",
        workstation_llm_base_url=EXTERNAL_URL,
        workstation_llm_external_metrics=True,
    )
    jobs = _jobs(out["prometheus"])
    for name in ("vllm", "vllm_health"):
        assert jobs[name]["scheme"] == "https"
        assert jobs[name]["static_configs"][0]["targets"] == ["llm.example.lan:8443"]
    assert "VllmDownOrNotReady" in _alerts(out["rules"])


def test_every_tier_problem_is_reported_at_once():
    found = problems(workstation_llm_source="cloud", workstation_llm_engine="sglang")
    assert len(found) == 2, found
