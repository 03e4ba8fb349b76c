"""The modules run by Ansible (ansible localhost -m ...), nvidia-smi faked, vLLM stood in."""

import json
import time

import pytest
from conftest import FIXTURES, run_module

pytestmark = pytest.mark.slow
SMI = FIXTURES / "nvidia-smi"


def test_nvidia_gpu_reads_a_4090_capture():
    rc, res = run_module(
        "nvidia_gpu",
        {"min_memory_mib": 22000, "expected_driver_version": "570"},
        FAKE_NVIDIA_SMI_XML=SMI / "rtx-4090-570-v12.handmade.xml",
    )
    assert rc == 0, res
    assert res["count"] == 1 and res["driver_version"] == "570.133.07"
    assert res["gpus"][0]["power_limit_w"] == 450.0
    assert res["problem"] is None


@pytest.mark.parametrize(
    ("env", "problem", "needle"),
    [
        ({"FAKE_NVIDIA_SMI_FAIL": "driver_not_loaded"}, "driver_not_loaded", "kernel module"),
        ({"FAKE_NVIDIA_SMI_FAIL": "mismatch"}, "driver_library_mismatch", "Reboot"),
        ({"FAKE_NVIDIA_SMI_XML": SMI / "truncated.handmade.xml"}, "bad_xml", "XML"),
        ({"FAKE_NVIDIA_SMI_XML": SMI / "rtx-3080-536-v12.xml"}, "check_failed", "10240 MiB"),
    ],
)
def test_nvidia_gpu_failures_are_readable(env, problem, needle):
    rc, res = run_module("nvidia_gpu", {"min_memory_mib": 22000}, **env)
    assert rc != 0
    assert res["problem"] == problem
    assert needle in res["msg"]
    assert "Traceback" not in json.dumps(res)


def test_nvidia_gpu_missing_binary_collects_without_failing():
    rc, res = run_module(
        "nvidia_gpu", {"nvidia_smi": "nvidia-smi-not-installed", "fail_on_problem": False}
    )
    assert rc == 0
    assert res["problem"] == "nvidia_smi_missing"
    assert "not found on PATH" in res["problems"][0]


def test_psu_budget_fails_an_850w_psu():
    rc, res = run_module(
        "psu_budget",
        {"psu_watts": 850, "gpu_power_limits_w": [450], "cpu_tdp_w": 170, "other_w": 100},
    )
    assert rc != 0
    assert res["ok"] is False and res["peak_w"] == 900.0
    assert "Fix:" in res["msg"]


def test_vram_plan_reads_the_config_file_and_returns_vllm_args():
    rc, res = run_module(
        "vram_plan",
        {
            "model_config": str(FIXTURES / "models" / "qwen2.5-coder-32b-instruct-awq.config.json"),
            "weights_bytes": 18 * 1024**3,
            "max_model_len": 24576,
            "kv_cache_dtype": "fp8",
            "gpu_memory_mib": 24564,
            "gpu_memory_utilization": 0.92,
            "fail_on_overflow": False,
        },
    )
    assert rc == 0
    assert res["fits"] is False
    assert res["kv_bytes_per_token"] == 131072
    assert res["vllm_args"]["max_model_len"] == res["max_model_len_fit"] == 21040


def test_cuda_compat_from_image_env():
    rc, res = run_module(
        "cuda_compat",
        {
            "driver_version": "550.163.01",
            "image_env": ["CUDA_VERSION=12.8.1", "NVIDIA_REQUIRE_CUDA=cuda>=12.8 brand=tesla"],
        },
    )
    assert rc != 0
    assert res["compatible"] is False and res["min_branch"] == "570"


def test_vllm_ready_waits_through_refused_and_503(standin, tmp_path):
    url, status = standin(
        "--load-seconds",
        "10",
        "--unhealthy-seconds",
        "5",
        "--served-model-name",
        "qwen-coder",
        "--served-model-name",
        "claude",
        "--api-key",
        "s3cret-key",
        "--metrics-file",
        str(FIXTURES / "vllm" / "metrics-v0.6-llama31-8b.txt"),
    )
    key_file = tmp_path / "key"
    key_file.write_text("s3cret-key\n")
    rc, res = run_module(
        "vllm_ready",
        {
            "url": url,
            "expected_models": ["qwen-coder", "claude"],
            "timeout": 30,
            "poll_interval": 0.5,
            "check_completion": True,
            "check_messages": True,
            "api_key_file": str(key_file),
        },
    )
    returned_at = time.time()
    assert rc == 0, res
    # The stand-in refuses for 10 s, then answers 503 for 5 s. The module started no later than
    # (return time - its own elapsed time); it must have started before the stand-in was ready,
    # so it really waited through the refusals and 503s. Measured against the stand-in's own
    # clock (its status file), not against a guess of how long Ansible takes to start.
    ready_at = json.loads(status.read_text())["ready_at"]
    assert res["ready"] is True
    assert returned_at - res["elapsed_s"] < ready_at, (returned_at, res["elapsed_s"], ready_at)
    assert res["health_polls"] >= 3
    assert res["models"] == ["qwen-coder", "claude"]
    assert res["checks"]["messages"]["claude"]["ok"] is True
    assert res["metrics"]["kv_cache_metric"] == "vllm:gpu_cache_usage_perc"
    assert "s3cret-key" not in json.dumps(res)


def test_vllm_ready_names_the_missing_alias(standin):
    url, _ = standin(
        "--served-model-name",
        "qwen-coder",
        "--metrics-file",
        str(FIXTURES / "vllm" / "metrics-v0.22-qwen3-excerpt.txt"),
    )
    rc, res = run_module(
        "vllm_ready",
        {
            "url": url,
            "expected_models": ["qwen-coder", "claude"],
            "timeout": 10,
            "poll_interval": 0.2,
        },
    )
    assert rc != 0
    assert res["problem"] == "missing_models" and res["missing_models"] == ["claude"]
    assert "--served-model-name qwen-coder claude" in res["msg"]


def test_vllm_ready_never_ready_times_out(standin):
    url, _ = standin("--never-ready")
    rc, res = run_module("vllm_ready", {"url": url, "timeout": 2, "poll_interval": 0.5})
    assert rc != 0
    assert res["problem"] == "timeout_unhealthy"
    assert 2 <= res["elapsed_s"] < 4


def _fake_sysfs(root, devices):
    for slot, vendor, pci_class in devices:
        (root / slot).mkdir(parents=True)
        (root / slot / "vendor").write_text(vendor + "\n")
        (root / slot / "class").write_text(pci_class + "\n")
    return root


def test_nvidia_gpu_tells_a_gpu_without_driver_from_no_gpu(tmp_path):
    # A sysfs tree laid out like the kernel's: an RTX 4090's VGA and HDMI-audio functions and
    # an Intel host bridge. The driver is not installed, so nvidia-smi is missing.
    sysfs = _fake_sysfs(
        tmp_path / "devices",
        [
            ("0000:00:00.0", "0x8086", "0x060000"),
            ("0000:01:00.0", "0x10de", "0x030000"),
            ("0000:01:00.1", "0x10de", "0x040300"),
        ],
    )
    args = {"nvidia_smi": "nvidia-smi-not-installed", "fail_on_problem": False}
    rc, res = run_module("nvidia_gpu", {**args, "sysfs_pci_path": str(sysfs)})
    assert rc == 0
    assert res["problem"] == "nvidia_smi_missing"
    assert res["pci_gpus"] == [{"slot": "0000:01:00.0", "class": "0x030000"}]

    rc, res = run_module("nvidia_gpu", {**args, "sysfs_pci_path": str(tmp_path / "absent")})
    assert rc == 0
    assert res["pci_gpus"] == []
