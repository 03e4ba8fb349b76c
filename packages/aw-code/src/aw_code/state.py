"""Per-collection state (repository, branch, last run, counts) in STATE_DIR/<collection>.json,
written atomically after an index run completes. Qdrant stays the source of truth for hashes."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def path_for(state_dir: Path, collection: str) -> Path:
    return state_dir / f"{collection}.json"


def load(state_dir: Path, collection: str) -> dict[str, Any]:
    try:
        data = json.loads(path_for(state_dir, collection).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def load_all(state_dir: Path) -> list[dict[str, Any]]:
    out = []
    for p in sorted(state_dir.glob("*.json")) if state_dir.is_dir() else []:
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and "collection" in data:
            out.append(data)
    return out


def save(state_dir: Path, collection: str, data: dict[str, Any]) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=state_dir, prefix=".tmp-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=True)
    os.replace(tmp, path_for(state_dir, collection))


def remove(state_dir: Path, collection: str) -> None:
    path_for(state_dir, collection).unlink(missing_ok=True)
