"""The recorded capture tests/fixtures/exporters/aw-task-0.1.0.txt (which the dashboard test
checks the Agent queue dashboard against) holds exactly the metric families the worker exports."""

from __future__ import annotations

from pathlib import Path

from aw_task.config import Config
from aw_task.metrics import Metrics
from aw_task.store import Queue
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

CAPTURE = Path(__file__).resolve().parents[3] / "tests/fixtures/exporters/aw-task-0.1.0.txt"


def test_capture_matches_the_exported_families(config: Config, queue: Queue) -> None:
    live = generate_latest(Metrics(queue, 2).registry).decode()
    names = _families(live)
    recorded = _families(CAPTURE.read_text())
    assert names ^ recorded == set(), names ^ recorded


def _families(text: str) -> set[str]:
    # A labeled histogram's `_created` samples parse as a family of their own once observed.
    return {f.name for f in text_string_to_metric_families(text) if not f.name.endswith("_created")}
