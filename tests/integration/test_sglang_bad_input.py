"""workstation_llm_engine: sglang through the entry point a user runs (site.yml --check on this
machine, as tests/integration/test_bad_input.py does, with its baseline and helpers): the
inventory with sglang passes the check stage, and what SGLang 0.5.17 cannot serve is refused
there before anything changes, one report line naming the variable, the value and the fix.
(sglang with another source than local is a row of test_bad_input.py: the inventory stage.)
"""

from __future__ import annotations

import pytest
from test_bad_input import Row, _recap, _report_lines, _run, _up_to_check

pytestmark = pytest.mark.slow

SGLANG = {"workstation_llm_engine": "sglang"}

ROWS = [
    Row(
        "sglang-tool-call-parser-unknown",
        {**SGLANG, "agent_stack_vllm_tool_call_parser": "qwen2_5_coder"},
        ['agent_stack_vllm_tool_call_parser="qwen2_5_coder"', "SGLang 0.5.17", "Fix: use one of"],
    ),
    Row(
        "sglang-with-vllm-extra-args",
        {**SGLANG, "agent_stack_vllm_extra_args": ["--enforce-eager"]},
        ["agent_stack_vllm_extra_args=['--enforce-eager']", "Fix: move them"],
    ),
]


def test_sglang_passes_the_check_stage(tmp_path):
    run = _run(tmp_path, _up_to_check(tmp_path), SGLANG)
    assert run.returncode == 0, run.stdout[-4000:]
    assert "CHECK: all checks passed." in run.stdout
    assert _recap(run.stdout)["changed"] == 0


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_what_sglang_cannot_serve_is_refused_before_anything_changes(row, tmp_path):
    run = _run(tmp_path, "site.yml", row.override)
    output = run.stdout + run.stderr
    assert run.returncode != 0, run.stdout[-3000:]
    assert "Traceback (most recent call last)" not in output
    assert _recap(run.stdout)["changed"] == 0
    assert "PLAY [Prepare the host]" not in run.stdout
    lines = _report_lines(run.stdout)
    assert lines[0].startswith("RESULT: "), lines[:2]
    matching = [line for line in lines if all(part in line for part in row.expect)]
    assert matching, f"no report line has all of {row.expect}:\n" + "\n".join(lines)


def test_upgrade_vllm_refuses_an_sglang_host_before_anything_changes(tmp_path):
    # As tests/integration/test_operations_bad_input.py runs the operations (its helper).
    from test_operations_bad_input import (
        GOOD_DIGEST,
        test_operation_refuses_before_anything_changes,
    )

    test_operation_refuses_before_anything_changes(
        tmp_path,
        (
            "upgrade-vllm-sglang-host",
            "upgrade-vllm.yml",
            {**SGLANG, "vllm_new_image": GOOD_DIGEST},
            ['workstation_llm_engine="sglang"', "not built for SGLang", "Fix: change the sglang"],
            "Refuse an SGLang host",
        ),
    )


def test_upgrade_model_refuses_an_sglang_host_before_anything_changes(tmp_path):
    from test_operations_bad_input import test_operation_refuses_before_anything_changes

    test_operation_refuses_before_anything_changes(
        tmp_path,
        (
            "upgrade-model-sglang-host",
            "upgrade-model.yml",
            SGLANG,
            ['workstation_llm_engine="sglang"', "not built for SGLang", "Nothing was changed"],
            "Refuse an SGLang host",
        ),
    )
