"""The recorded capture tests/fixtures/exporters/aw-code-0.1.0.txt (which the Code index
dashboard and the alerts are checked against) holds exactly the metric families aw-code exports
after an index run and a search (embeddings from the stand-in embedder of conftest.py)."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from aw_code.config import Settings
from aw_code.embed import Embedder
from aw_code.service import Service
from aw_code.store import Store

CAPTURE = Path(__file__).resolve().parents[3] / "tests/fixtures/exporters/aw-code-0.1.0.txt"


def _families(text: str) -> set[str]:
    # A labeled histogram's `_created` samples parse as a family of their own once observed.
    return {
        f.name
        for f in text_string_to_metric_families(text)
        if f.name.startswith("aw_code_") and not f.name.endswith("_created")
    }


def test_capture_matches_the_exported_families(
    settings: Settings, store: Store, fake_embedder: Embedder, repo: Path
) -> None:
    svc = Service(settings, store=store, embedder=fake_embedder)
    svc.index(repo)
    svc.search("area of a box", str(repo), k=2, rerank=False)
    live = generate_latest(REGISTRY).decode()
    assert 'aw_code_chunks{collection="' in live
    names = _families(live)
    recorded = _families(CAPTURE.read_text())
    assert names and names ^ recorded == set(), names ^ recorded
