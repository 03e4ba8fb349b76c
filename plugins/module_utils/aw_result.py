"""How the project's check modules end: one report, then exit or fail on its verdict."""

from __future__ import annotations

from typing import Any


def exit_with_verdict(module: Any, report: dict[str, Any], ok: bool, fail_if_not_ok: bool) -> None:
    """Exit with the report (its `message` becomes `msg`); fail instead when not ok and asked to.

    The report's fields are returned either way, so a failed task still carries the numbers.
    """
    result = dict(report)
    result["msg"] = result.pop("message")
    if not ok and fail_if_not_ok:
        module.fail_json(changed=False, **result)
    module.exit_json(changed=False, **result)
