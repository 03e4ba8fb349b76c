"""The vLLM serve command of a model profile (plugins/module_utils/aw_profile.py), over the real
catalogue (playbooks/vars/models.yml) planned by aw_vram on one 24 GB card, and the command
roles/agent_stack/templates/compose.yml.j2 renders (its argument order, written out below)."""

from pathlib import Path

import pytest
import yaml
from ansible_collections.agent_workstation.aw.plugins.module_utils.aw_profile import (
    ProfileCommandError,
    command_diff,
    flag_value,
    profile_of,
    serve_command,
    served_names,
)
from ansible_collections.agent_workstation.aw.plugins.module_utils.aw_vram import plan_site

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = yaml.safe_load((ROOT / "playbooks" / "vars" / "models.yml").read_text())
PROFILES = CATALOGUE["aw_model_profiles"]
CLIENTS = CATALOGUE["aw_model_clients"]


def settings(name, mib=24564, count=1):
    return plan_site(PROFILES, CLIENTS, ["open_webui"], name, mib, count)["settings"]


def template_command(s, extra=()):
    """What compose.yml.j2 renders for these settings, in its order."""
    a = s["vllm_args"]
    cmd = [
        "serve",
        s["model"],
        f"--revision={s['revision']}",
        f"--tokenizer-revision={s['revision']}",
        "--host=0.0.0.0",
        "--port=8000",
        "--served-model-name",
        *s["served_model_names"],
        f"--max-model-len={a['max_model_len']}",
        f"--kv-cache-dtype={a['kv_cache_dtype']}",
        f"--gpu-memory-utilization={float(a['gpu_memory_utilization'])}",
        f"--max-num-seqs={a['max_num_seqs']}",
    ]
    if int(a.get("tensor_parallel_size") or 1) > 1:
        cmd.append(f"--tensor-parallel-size={a['tensor_parallel_size']}")
    if a.get("quantization"):
        cmd.append(f"--quantization={a['quantization']}")
    cmd += [
        "--enable-prefix-caching",
        "--enable-auto-tool-choice",
        f"--tool-call-parser={s['tool_call_parser']}",
        *extra,
    ]
    return cmd


PAIRS = [(a, b) for a in PROFILES for b in PROFILES]


@pytest.mark.parametrize(("old", "new"), PAIRS)
def test_switch_gives_the_command_the_template_renders(old, new):
    before = template_command(settings(old), extra=["--enable-log-requests"])
    after = serve_command(before, settings(new))
    assert after == template_command(settings(new), extra=["--enable-log-requests"])


@pytest.mark.parametrize("name", list(PROFILES))
def test_same_profile_is_no_change(name):
    cmd = template_command(settings(name))
    assert serve_command(cmd, settings(name)) == cmd


def test_two_gpus_add_tensor_parallel_and_back():
    one = template_command(settings("qwen3-coder-30b-a3b-instruct-awq"))
    two = serve_command(one, settings("qwen3-coder-30b-a3b-instruct-fp8", 24564, 2))
    assert "--tensor-parallel-size=2" in two
    back = serve_command(two, settings("qwen3-coder-30b-a3b-instruct-awq"))
    assert back == one


def test_bare_flags_and_their_values_are_replaced():
    cmd = [
        "serve",
        "m",
        "--revision",
        "a" * 40,
        "--served-model-name",
        "x",
        "y",
        "--tool-call-parser",
        "hermes",
        "--port",
        "8000",
    ]
    new = serve_command(cmd, settings("qwen3-coder-30b-a3b-instruct-awq"))
    assert served_names(new) == ["qwen3-coder-30b-a3b-instruct"]
    assert flag_value(new, "--tool-call-parser") == "qwen3_coder"
    assert "hermes" not in new and "x" not in new and "--port" in new and "8000" in new


def test_served_names_and_profile_of_the_running_command():
    cmd = template_command(settings("qwen2.5-coder-32b-instruct-awq"))
    assert served_names(cmd) == ["qwen2.5-coder-32b-instruct"]
    assert profile_of(cmd, PROFILES) == "qwen2.5-coder-32b-instruct-awq"
    assert profile_of(["serve", "other/model", "--revision=" + "0" * 40], PROFILES) is None
    assert served_names(["serve", "org/m"]) == ["org/m"]


def test_diff_names_the_changed_arguments():
    old = template_command(settings("qwen2.5-coder-32b-instruct-awq"))
    new = template_command(settings("qwen3-coder-30b-a3b-instruct-awq"))
    diff = command_diff(old, new)
    assert "--tool-call-parser=hermes" in diff["removed"]
    assert "--tool-call-parser=qwen3_coder" in diff["added"]
    assert "--enable-prefix-caching" not in diff["added"] + diff["removed"]


@pytest.mark.parametrize("cmd", [[], ["serve"], ["serve", "--port=1"], ["python3", "x.py"]])
def test_not_a_serve_command_is_refused(cmd):
    with pytest.raises(ProfileCommandError, match="serve MODEL"):
        serve_command(cmd, settings("qwen3-coder-30b-a3b-instruct-awq"))
