"""OpenHands' sandboxes on the sandbox engine (agent_stack_sandbox_engine, issue 11).

roles/agent_stack's templates rendered through ansible-playbook with the contract, the role's
defaults and vars (as tests/unit/test_llm_tier.py does), once with the wiring off (the default:
what main rendered before it, asserted value by value) and once on; and the wiring's refusals of
tasks/preflight_sandbox_engine.yml, run in the check stage's collect mode (the checks that do not
need a host), each shown failing on a planted bad value and passing on the good one.

What is asserted of the "on" rendering comes from openhands-ai 1.11.0's source
(openhands/app_server/sandbox/docker_sandbox_service.py): DockerSandboxServiceInjector has
container_url_pattern (default 'http://localhost:{port}', "Configure via
OH_SANDBOX_CONTAINER_URL_PATTERN"), formatted with .format(port=<host port>); the callback URL is
http://host.docker.internal:<OH_SANDBOX_HOST_PORT>/api/v1/webhooks, and every sandbox gets
extra_hosts {'host.docker.internal': 'host-gateway'} (host-gateway is 10.0.2.2, the host's
loopback, on the sandbox engine: roles/sandbox_engine daemon.json).
"""

from __future__ import annotations

import json
import pathlib

import pytest
import yaml
from playbook_run import STACK_IMAGE_REFS, run_local_playbook

ROOT = pathlib.Path(__file__).resolve().parents[2]
ROLES = ROOT / "roles"
MAIN_SOCKET = "/run/user/1001/docker.sock"
SANDBOX_SOCKET = "/var/lib/aw-sandbox-engine/docker.sock"

PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  vars_files:
    - {roles}/workstation/defaults/main.yml
    - {roles}/agent_stack/defaults/main.yml
    - {roles}/agent_stack/vars/main.yml
  tasks:
    - name: Render
      ansible.builtin.template:
        src: "{roles}/agent_stack/templates/{{{{ item }}}}.j2"
        dest: "{out}/{{{{ item }}}}"
        mode: "0600"
      loop: [compose.yml, docker-socket-proxy.cfg]
    - name: Derived values the tasks read
      ansible.builtin.copy:
        dest: "{out}/facts.json"
        mode: "0600"
        content: "{{{{ {{'openhands_url': agent_stack_openhands_llm_base_url}} | to_json }}}}"
"""

CHECKS = """
- hosts: localhost
  gather_facts: false
  vars_files:
    - {roles}/workstation/defaults/main.yml
    - {roles}/agent_stack/defaults/main.yml
    - {roles}/agent_stack/vars/main.yml
  tasks:
    - name: The wiring's checks, collected
      ansible.builtin.include_tasks: {roles}/agent_stack/tasks/preflight_sandbox_engine.yml
      vars:
        _aw_check_collect: true
    - name: Their results
      ansible.builtin.copy:
        dest: "{out}/checks.json"
        mode: "0600"
        content: >-
          {{{{ {{'socket': __agent_stack_check_31, 'reach': __agent_stack_check_32}} | to_json }}}}
"""


def _playbook(tmp_path: pathlib.Path, text: str, **override) -> None:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "play.yml").write_text(text.format(roles=ROLES, out=tmp_path))
    (tmp_path / "ansible.cfg").write_text("[defaults]\nretry_files_enabled = false\n")
    extra = {
        "_agent_stack_refs": STACK_IMAGE_REFS,
        "_agent_stack_docker_socket": MAIN_SOCKET,
        **override,
    }
    run_local_playbook(tmp_path / "play.yml", extra, tmp_path)


def render(tmp_path: pathlib.Path, **override) -> dict:
    _playbook(tmp_path, PLAYBOOK, **override)
    return {
        "compose": yaml.safe_load((tmp_path / "compose.yml").read_text()),
        "compose_text": (tmp_path / "compose.yml").read_text(),
        "cfg": (tmp_path / "docker-socket-proxy.cfg").read_text(),
        "facts": json.loads((tmp_path / "facts.json").read_text()),
    }


def checks(tmp_path: pathlib.Path, **override) -> dict:
    _playbook(tmp_path, CHECKS, agent_stack_sandbox_engine=True, **override)
    return json.loads((tmp_path / "checks.json").read_text())


@pytest.fixture(scope="module")
def off(tmp_path_factory):
    return render(tmp_path_factory.mktemp("off"))


@pytest.fixture(scope="module")
def on(tmp_path_factory):
    return render(tmp_path_factory.mktemp("on"), workstation_sandbox_engine=True)


def _backend(cfg: str) -> str:
    lines = cfg.splitlines()
    start = lines.index("backend engine")
    servers = [line.split()[-1] for line in lines[start + 1 :] if line.strip().startswith("server")]
    return servers[0]


def test_the_wiring_is_off_by_default_and_off_renders_as_before(off):
    defaults = yaml.safe_load((ROLES / "workstation/defaults/main.yml").read_text())
    assert defaults["workstation_sandbox_engine"] is False
    services = off["compose"]["services"]
    openhands = services["openhands"]
    assert "OH_SANDBOX_CONTAINER_URL_PATTERN" not in openhands["environment"]
    assert openhands["environment"]["DOCKER_HOST"] == "tcp://docker-socket-proxy:2375"
    assert openhands["environment"]["OH_SANDBOX_HOST_PORT"] == "3000"
    assert services["docker-socket-proxy"]["volumes"] == [f"{MAIN_SOCKET}:/var/run/docker.sock"]
    assert _backend(off["cfg"]) == "/var/run/docker.sock"
    assert off["facts"]["openhands_url"] == "http://host.docker.internal:8000/v1"
    assert "aw-sandbox-engine" not in off["compose_text"] + off["cfg"]
    assert "STARTUP" not in off["compose_text"]


def test_on_points_the_proxy_at_the_sandbox_engine_socket_directory(on):
    proxy = on["compose"]["services"]["docker-socket-proxy"]
    # The directory, so that a socket dockerd makes anew at its next start is the one HAProxy
    # opens; and the backend is that socket inside the mount.
    assert proxy["volumes"] == ["/var/lib/aw-sandbox-engine:/var/run/aw-sandbox-engine:ro"]
    assert _backend(on["cfg"]) == "/var/run/aw-sandbox-engine/docker.sock"
    assert MAIN_SOCKET not in on["compose_text"]
    # The app itself still gets no socket: only the proxy's TCP port.
    openhands = on["compose"]["services"]["openhands"]
    assert "volumes" not in openhands or not any("sock" in v for v in openhands["volumes"])
    assert openhands["environment"]["DOCKER_HOST"] == "tcp://docker-socket-proxy:2375"


def test_on_sets_the_sandbox_url_pattern_and_keeps_the_callback_port(on):
    env = on["compose"]["services"]["openhands"]["environment"]
    pattern = env["OH_SANDBOX_CONTAINER_URL_PATTERN"]
    assert pattern == "http://10.0.2.2:{port}"
    # What docker_sandbox_service.py does with it.
    assert pattern.format(port=39123) == "http://10.0.2.2:39123"
    assert env["OH_SANDBOX_KIND"] == "DockerSandboxServiceInjector"
    assert env["OH_SANDBOX_HOST_PORT"] == "3000"


def test_on_writes_an_llm_url_a_sandbox_on_that_engine_reaches(on):
    # host.docker.internal -> host-gateway -> 10.0.2.2 (sandbox engine daemon.json) -> the
    # host's 127.0.0.1, where vLLM is published, on the egress rule's allow-list (port 8000).
    assert on["facts"]["openhands_url"] == "http://host.docker.internal:8000/v1"
    engine_defaults = yaml.safe_load((ROLES / "sandbox_engine/defaults/main.yml").read_text())
    assert "{{ workstation_vllm_port }}" in engine_defaults["sandbox_engine_allowed_ports"]
    assert "{{ workstation_openhands_port }}" in engine_defaults["sandbox_engine_allowed_ports"]
    engine_vars = yaml.safe_load((ROLES / "sandbox_engine/vars/main.yml").read_text())
    assert engine_vars["_sandbox_engine_host_gateway_ip"] == "10.0.2.2"
    assert on["compose"]["services"]["openhands"]["environment"][
        "OH_SANDBOX_CONTAINER_URL_PATTERN"
    ].startswith("http://" + engine_vars["_sandbox_engine_host_gateway_ip"] + ":")


def test_the_socket_default_is_where_the_sandbox_engine_makes_it():
    stack = yaml.safe_load((ROLES / "agent_stack/defaults/main.yml").read_text())
    engine = yaml.safe_load((ROLES / "sandbox_engine/defaults/main.yml").read_text())
    assert stack["agent_stack_sandbox_engine_socket"] == (
        engine["sandbox_engine_api_socket_dir"] + "/docker.sock"
    )
    # ... and that engine grants the service user the socket by default.
    assert engine["sandbox_engine_api_user"] == "{{ workstation_service_user }}"


def test_good_values_pass_the_checks(tmp_path):
    result = checks(tmp_path)
    assert not result["socket"].get("failed"), result
    assert not result["reach"].get("failed"), result


@pytest.mark.parametrize(
    ("key", "override", "expect"),
    [
        (
            "socket",
            {"agent_stack_sandbox_engine_socket": "/run/user/1002/docker.sock"},
            "/run/user/1002",
        ),
        ("socket", {"agent_stack_sandbox_engine_socket": "docker.sock"}, "docker.sock"),
        (
            "socket",
            {"agent_stack_openhands_sandbox_url_pattern": "http://10.0.2.2:8000"},
            "http://10.0.2.2:8000",
        ),
        (
            "reach",
            {
                "workstation_llm_source": "external",
                "workstation_llm_base_url": "https://llm.example.lan:8443",
                "workstation_llm_api_key_file": "/home/agent/llm-key",
            },
            "workstation_llm_source='external'",
        ),
        ("reach", {"agent_stack_vllm_port": 8001}, "agent_stack_vllm_port=8001"),
        ("reach", {"agent_stack_openhands_port": 3001}, "agent_stack_openhands_port=3001"),
        (
            "reach",
            {"agent_stack_openhands_llm_base_url": "http://vllm:8000/v1"},
            "http://vllm:8000/v1",
        ),
    ],
)
def test_bad_values_are_refused_naming_variable_value_and_fix(tmp_path, key, override, expect):
    result = checks(tmp_path, **override)[key]
    assert result.get("failed"), result
    assert expect in result["msg"], result["msg"]
    assert "Fix:" in result["msg"]


def test_the_sandbox_start_time_is_rendered_only_when_set(tmp_path):
    # Names read by openhands-ai 1.11.0's config_from_env(): DockerSandboxServiceInjector
    # startup_grace_seconds, LiveStatusAppConversationServiceInjector sandbox_startup_timeout.
    env = render(tmp_path, agent_stack_openhands_sandbox_startup_seconds=900)["compose"]
    env = env["services"]["openhands"]["environment"]
    assert env["OH_SANDBOX_STARTUP_GRACE_SECONDS"] == "900"
    assert env["OH_APP_CONVERSATION_SANDBOX_STARTUP_TIMEOUT"] == "900"
