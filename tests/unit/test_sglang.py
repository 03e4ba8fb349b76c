"""workstation_llm_engine: sglang (issue 17): the local tier with SGLang 0.5.17 in place of vLLM.

SGLang cannot run here (no GPU; its CPU build is not on PyPI), so everything below is tested
against its CONTRACT, read in its source at the pinned version (the PyPI wheel sglang==0.5.17)
and recorded in tests/contracts/sglang-0.5.17.json by scripts/sglang-contract.py: every flag the
compose template renders must be in that record, the refusal lists (plugins/filter/aw_sglang.py)
must be subsets of its choices, and vllm_ready's SGLang branch is driven by a stand-in server
that answers as SGLang's source does (one listed model name, any name served, Bearer only).
The compose file is rendered through ansible-playbook for both engines.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import pathlib
import subprocess
import sys
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml
from ansible_collections.agent_workstation.aw.plugins.module_utils import aw_vllm
from playbook_run import STACK_IMAGE_REFS

ROOT = pathlib.Path(__file__).resolve().parents[2]
CONTRACT = json.loads((ROOT / "tests/contracts/sglang-0.5.17.json").read_text())


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


aw_sglang = _load("aw_sglang", ROOT / "plugins/filter/aw_sglang.py")
aw_inventory = _load("aw_inventory", ROOT / "plugins/filter/aw_inventory.py")
tier = _load("llm_tier", pathlib.Path(__file__).with_name("test_llm_tier.py"))

REFS = {**STACK_IMAGE_REFS, "sglang": {**STACK_IMAGE_REFS["vllm"], "ref": "example/sglang:1"}}
SGLANG = {"workstation_llm_engine": "sglang", "_agent_stack_refs": REFS}
NAMES = ["qwen2.5-coder-32b-instruct", "claude-sonnet-4-5"]


# --- the recorded contract ----------------------------------------------------------------------


def test_the_record_is_sglang_0_5_17_read_from_its_wheel():
    assert CONTRACT["version"] == "0.5.17"
    assert CONTRACT["source"]["wheel"].startswith("sglang-0.5.17-")
    assert len(CONTRACT["source"]["wheel_sha256"]) == 64
    # A few facts the stack relies on, and one flag vLLM has and SGLang does not.
    flags = set(CONTRACT["flags"])
    needed = {"--served-model-name", "--api-key", "--config", "--tp-size", "--enable-metrics"}
    assert needed <= flags
    assert "--max-model-len" not in flags and "--enable-auto-tool-choice" not in flags
    assert {"/health", "/v1/models", "/v1/chat/completions", "/v1/messages"} <= set(
        CONTRACT["routes"]
    )
    assert {"sglang:token_usage", "sglang:num_queue_reqs", "sglang:num_running_reqs"} <= set(
        CONTRACT["metrics"]
    )


def test_the_refusal_lists_are_sglangs_own():
    choices = CONTRACT["choices"]
    assert set(aw_sglang.KV_CACHE_DTYPES.values()) <= set(choices["--kv-cache-dtype"])
    assert set(aw_sglang.TOOL_CALL_PARSERS) <= set(choices["--tool-call-parser"])
    assert set(aw_sglang.QUANTIZATIONS) <= set(choices["--quantization"])


def rendered_flags(command: list[str]) -> list[str]:
    return [arg.split("=", 1)[0] for arg in command if arg.startswith("--")]


def unknown_flags(command: list[str]) -> list[str]:
    return [flag for flag in rendered_flags(command) if flag not in CONTRACT["flags"]]


def test_the_flag_check_fails_on_a_flag_sglang_does_not_have():
    # The planted bad input: vLLM's spelling of the context length.
    assert unknown_flags(["--context-length=4096", "--max-model-len=4096"]) == ["--max-model-len"]


def test_the_extraction_script_reproduces_the_record(tmp_path):
    # The record is re-made from the very wheel it names: fetched from PyPI once into the cache
    # (22 MB, ~2 s), its sha256 checked, unpacked here, and read by the committed script.
    cache = pathlib.Path.home() / ".cache" / "agent-workstation" / "sglang"
    wheel = cache / CONTRACT["source"]["wheel"]
    if not wheel.exists():
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
             "--python-version=3.11", "--platform=manylinux_2_34_x86_64",
             "sglang==0.5.17", "-d", str(cache)],
            check=True,
        )  # fmt: skip
    assert hashlib.sha256(wheel.read_bytes()).hexdigest() == CONTRACT["source"]["wheel_sha256"]
    root = tmp_path / "x"
    with zipfile.ZipFile(wheel) as whl:
        whl.extractall(root, members=[n for n in whl.namelist() if n.startswith("sglang/")])
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts/sglang-contract.py"), str(root), f"--wheel={wheel}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert json.loads(out) == CONTRACT


# --- refusals ------------------------------------------------------------------------------------

GOOD = {
    "kv_cache_dtype": "fp8",
    "quantization": None,
    "tensor_parallel_size": 2,
    "tool_call_parser": "hermes",
    "served_model_names": NAMES,
    "extra_args": [],
}


def test_the_seed_profile_passes():
    assert aw_sglang.sglang_problems(GOOD) == []
    assert aw_sglang.kv_cache_dtype("fp8") == "fp8_e4m3"
    assert aw_sglang.kv_cache_dtype("auto") == "auto"


@pytest.mark.parametrize(
    ("override", "expect"),
    [
        ({"kv_cache_dtype": "int8"}, ['kv_cache_dtype="int8"', "no SGLang 0.5.17", "Fix: use one"]),
        ({"quantization": "hqq"}, ['quantization="hqq"', "Fix: use one of awq"]),
        (
            {"tool_call_parser": "qwen2_5_coder"},
            ['tool_call_parser="qwen2_5_coder"', "Fix: use one of", "hermes"],
        ),
        ({"served_model_names": ["qwen:latest"]}, ["['qwen:latest']", "LoRA adapter", "Fix:"]),
        ({"extra_args": ["--enforce-eager"]}, ["['--enforce-eager']", "agent_stack_sglang_extra"]),
        ({"tensor_parallel_size": "two"}, ['tensor_parallel_size="two"', "--tp-size", "Fix:"]),
    ],
)
def test_what_sglang_cannot_serve_is_refused_with_the_fix(override, expect):
    found = aw_sglang.sglang_problems({**GOOD, **override})
    assert len(found) == 1, found
    for part in expect:
        assert part in found[0], (part, found[0])


def test_sglang_is_accepted_for_local_only():
    assert aw_inventory.llm_endpoint_problems({"workstation_llm_engine": "sglang"}) == []
    for source, url in (("external", "http://llm.lan:8000"), ("fleet", "http://10.0.0.1:8090")):
        found = aw_inventory.llm_endpoint_problems(
            {
                "workstation_llm_engine": "sglang",
                "workstation_llm_source": source,
                "workstation_llm_base_url": url,
            }
        )
        assert len(found) == 1, found
        assert f'for workstation_llm_source="local" only, not "{source}"' in found[0]
        assert "Fix: use workstation_llm_engine=vllm" in found[0]


# --- the rendered compose file, both engines -----------------------------------------------------


@pytest.fixture(scope="module")
def sglang(tmp_path_factory):
    return tier.render(
        tmp_path_factory.mktemp("sglang"),
        **SGLANG,
        workstation_llm_served_model_names=NAMES,
        agent_stack_vllm_model_revision="a" * 40,
        agent_stack_vllm_args={
            "max_model_len": 32768,
            "kv_cache_dtype": "fp8",
            "gpu_memory_utilization": 0.9,
            "max_num_seqs": 6,
            "tensor_parallel_size": 2,
            "quantization": "awq_marlin",
        },
    )


@pytest.fixture(scope="module")
def vllm(tmp_path_factory):
    return tier.render(
        tmp_path_factory.mktemp("vllm"),
        workstation_llm_served_model_names=NAMES,
        agent_stack_vllm_model_revision="a" * 40,
    )


def test_sglang_runs_as_the_vllm_service_with_the_same_contract(sglang, vllm):
    svc, old = sglang["compose"]["services"]["vllm"], vllm["compose"]["services"]["vllm"]
    assert svc["image"] == "example/sglang:1" and old["image"] == "example/vllm:1"
    assert svc["ports"] == old["ports"] == ["127.0.0.1:8000:8000"]
    assert svc["secrets"] == old["secrets"] == ["vllm_api_key"]
    assert svc["healthcheck"] == old["healthcheck"]
    assert svc["volumes"] == old["volumes"]
    assert svc["deploy"] == old["deploy"]
    # Every consumer still reads vllm:8000 / 127.0.0.1:8000.
    assert sglang["clients"] == vllm["clients"]
    assert sglang["facts"]["ready_url"] == vllm["facts"]["ready_url"] == "http://127.0.0.1:8000"


def test_sglangs_command_is_rendered_from_the_profile(sglang):
    cmd = sglang["compose"]["services"]["vllm"]["command"]
    assert cmd == [
        "--model-path=Qwen/Qwen2.5-Coder-32B-Instruct-AWQ",
        "--revision=" + "a" * 40,
        "--host=0.0.0.0",
        "--port=8000",
        "--served-model-name=qwen2.5-coder-32b-instruct",
        "--context-length=32768",
        "--kv-cache-dtype=fp8_e4m3",
        "--mem-fraction-static=0.85",
        "--max-running-requests=6",
        "--tp-size=2",
        "--quantization=awq_marlin",
        "--tool-call-parser=hermes",
        "--enable-metrics",
    ]


def test_every_rendered_sglang_flag_exists_in_0_5_17(sglang):
    svc = sglang["compose"]["services"]["vllm"]
    assert unknown_flags(svc["command"]) == []
    # The entry's own flag (--config) too.
    assert "--config /dev/shm/aw-sglang.yaml" in svc["entrypoint"][2]
    assert "--config" in CONTRACT["flags"]


def test_the_key_reaches_sglang_only_through_a_tmpfs_config_file(sglang):
    svc = sglang["compose"]["services"]["vllm"]
    text = sglang["compose_text"]
    assert tier.SECRET not in text
    assert "--api-key" not in " ".join(svc["command"])
    assert not any("KEY" in name for name in svc["environment"])
    shim = svc["entrypoint"][2]
    assert "umask 077" in shim
    assert "/run/secrets/vllm_api_key" in shim and "> /dev/shm/aw-sglang.yaml" in shim
    assert "exec python3 -m sglang.launch_server" in shim


def test_the_shim_writes_a_config_sglang_reads_as_its_key(tmp_path):
    # Run the shim's key lines with a key holding a quote; read the file as SGLang does
    # (yaml.safe_load, server_args_config_parser.py) and check the file mode.
    shim = yaml.safe_load((ROOT / "roles/agent_stack/vars/main.yml").read_text())[
        "_agent_stack_sglang_shim"
    ]
    lines = [line for line in shim.splitlines() if "umask" in line or "aw-sglang.yaml" in line]
    script = "\n".join(lines[:2]).replace("/run/secrets/vllm_api_key", str(tmp_path / "key"))
    script = script.replace("/dev/shm/aw-sglang.yaml", str(tmp_path / "c.yaml"))
    (tmp_path / "key").write_text("ab'cd\n")
    subprocess.run(["/bin/sh", "-c", script], check=True)
    assert yaml.safe_load((tmp_path / "c.yaml").read_text()) == {"api-key": "ab'cd"}
    assert (tmp_path / "c.yaml").stat().st_mode & 0o777 == 0o600


def test_vllm_is_rendered_as_before(vllm):
    cmd = vllm["compose"]["services"]["vllm"]["command"]
    assert cmd[:2] == ["serve", "Qwen/Qwen2.5-Coder-32B-Instruct-AWQ"]
    assert "--served-model-name" in cmd and NAMES[1] in cmd
    assert "--enable-auto-tool-choice" in cmd and "--enable-metrics" not in cmd


def test_the_engines_alerts_follow_the_engine(sglang, vllm):
    on_sglang, on_vllm = tier._alerts(sglang["rules"]), tier._alerts(vllm["rules"])
    assert not any(name.startswith("Vllm") for name in on_sglang)
    assert {"SglangKvCacheAlmostFull", "SglangQueueDepthHigh", "SglangDownOrNotReady"} <= on_sglang
    assert not any(name.startswith("Sglang") for name in on_vllm)
    assert "VllmKvCacheAlmostFull" in on_vllm


# --- vllm_ready against a stand-in that answers as SGLang 0.5.17 does -----------------------------


class _SglangStandIn(BaseHTTPRequestHandler):
    """A stand-in, not SGLang: http_server.py's /health, /v1/models (one name, whatever is
    asked is served), /v1/messages and /metrics shapes, auth.py's Bearer-only check."""

    served = "qwen2.5-coder-32b-instruct"
    key = "k3y"

    def _send(self, code, body, ctype="application/json"):
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self):
        return self.headers.get("Authorization") == f"Bearer {self.key}"

    def do_GET(self):
        if self.path == "/health":
            return self._send(200, "")
        if self.path == "/metrics":
            text = (
                f'sglang:token_usage{{model_name="{self.served}",engine_type="unified"}} 0.25\n'
                f'sglang:num_running_reqs{{model_name="{self.served}"}} 2.0\n'
                f'sglang:num_queue_reqs{{model_name="{self.served}"}} 3.0\n'
            )
            return self._send(200, text, "text/plain")
        if not self._authorized():
            return self._send(401, {"error": "Unauthorized"})
        if self.path == "/v1/models":
            return self._send(200, {"object": "list", "data": [{"id": self.served}]})
        return self._send(404, {})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if not self._authorized():
            return self._send(401, {"error": "Unauthorized"})
        if self.path == "/v1/messages":
            return self._send(
                200,
                {
                    "id": "msg_1",
                    "type": "message",
                    "role": "assistant",
                    "model": body["model"],
                    "content": [{"type": "text", "text": "ok"}],
                    "stop_reason": "max_tokens",
                    "usage": {"input_tokens": 3, "output_tokens": 1},
                },
            )
        return self._send(404, {})

    def log_message(self, *args):
        pass


@pytest.fixture
def standin():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SglangStandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _wait(url, names, engine):
    return aw_vllm.wait_ready(
        url, names, timeout=5, api_key="k3y", check_messages=True, engine=engine
    )


def test_ready_with_sglang_lists_one_name_and_serves_every_alias(standin):
    result = _wait(standin, NAMES, "sglang")
    assert result["ready"], result["msg"]
    assert result["models"] == [NAMES[0]]
    assert set(result["checks"]["messages"]) == set(NAMES)
    assert result["metrics"]["kv_cache_usage"] == 0.25
    assert result["metrics"]["kv_cache_metric"] == "sglang:token_usage"
    assert result["metrics"]["num_requests_waiting"] == 3.0
    assert "not listed: SGLang lists one name" in result["msg"]


def test_the_same_server_fails_the_vllm_check_for_the_unlisted_alias(standin):
    # The control: vLLM lists every alias, so the vllm branch must refuse what SGLang lists.
    result = _wait(standin, NAMES, "vllm")
    assert not result["ready"] and result["problem"] == "missing_models"
    assert result["missing_models"] == [NAMES[1]]


def test_ready_with_sglang_names_the_first_name_when_it_is_not_served(standin):
    result = _wait(standin, ["other-model", *NAMES], "sglang")
    assert result["problem"] == "missing_models"
    assert "SGLang serves one `--served-model-name`" in result["msg"]
    assert "--served-model-name other-model" in result["msg"]
