"""Change detection against qdrant-client's embedded mode (STAND-IN for the Qdrant server) with the
in-process stand-in embedder: only changed chunks are embedded; deleted and renamed files lose
their points; a renamed file reuses vectors; a no-change run embeds nothing; bad input changes
nothing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from aw_code.cli import main
from aw_code.config import Settings
from aw_code.embed import Embedder
from aw_code.errors import AwCodeError
from aw_code.indexer import index_repository
from aw_code.search import search
from aw_code.store import Store

from .conftest import CountingTransport, git


def paths(store: Store, name: str) -> set[str]:
    return {str((r.payload or {})["path"]) for r in store.scroll(name)}


def test_full_then_incremental(
    settings: Settings,
    store: Store,
    fake_embedder: Embedder,
    transport: CountingTransport,
    repo: Path,
) -> None:
    first = index_repository(settings, store, fake_embedder, repo)
    assert first.collection.endswith("__stand-in-hash_64")
    assert paths(store, first.collection) == {
        "calc.py",
        "util.go",
        ".gitignore",
    }  # vendored and ignored skipped
    assert first.added == first.chunks == store.count(first.collection)

    transport.texts.clear()
    again = index_repository(settings, store, fake_embedder, repo)
    assert (again.added, again.removed, again.embedded, again.files_changed) == (0, 0, 0, 0)
    assert again.unchanged == first.chunks
    assert transport.texts == []

    (repo / "calc.py").write_text(
        "def add(a, b):\n    return a + b\n\n\nclass Box:\n    def area(self, w, h):\n        return w * h * 2\n"
    )
    third = index_repository(settings, store, fake_embedder, repo)
    assert third.files_changed == 1 and third.embedded == 1 and third.removed == 1
    assert len(transport.texts) == 1 and "w * h * 2" in transport.texts[0]

    transport.texts.clear()
    git(repo, "mv", "util.go", "strings.go")
    fourth = index_repository(settings, store, fake_embedder, repo)
    assert "util.go" not in paths(store, first.collection) and "strings.go" in paths(store, first.collection)
    assert fourth.embedded == 0 and fourth.reused == fourth.added > 0
    (repo / "calc.py").unlink()
    fifth = index_repository(settings, store, fake_embedder, repo)
    assert "calc.py" not in paths(store, first.collection) and fifth.removed > 0

    hits = search(store, fake_embedder, [first.collection], "Reverse string", k=3, mode="bm25")
    assert hits[0].path == "strings.go" and hits[0].symbol == "Reverse"


def test_lines_moved_updates_payload_without_embedding(
    settings: Settings,
    store: Store,
    fake_embedder: Embedder,
    transport: CountingTransport,
    repo: Path,
) -> None:
    r1 = index_repository(settings, store, fake_embedder, repo)
    transport.texts.clear()
    (repo / "calc.py").write_text("import os\n\n\n" + (repo / "calc.py").read_text())
    r2 = index_repository(settings, store, fake_embedder, repo)
    assert r2.updated == 2 and transport.texts == ["search_document: import os\n"]
    add = [
        r
        for r in store.scroll(r1.collection)
        if (r.payload or {}).get("path") == "calc.py" and (r.payload or {}).get("start_line") == 4
    ]
    assert len(add) == 1


def test_branch_switch(settings: Settings, store: Store, fake_embedder: Embedder, repo: Path) -> None:
    r1 = index_repository(settings, store, fake_embedder, repo)
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "new.py").write_text("def feature_flag():\n    return True\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "f")
    index_repository(settings, store, fake_embedder, repo)
    assert {(r.payload or {}).get("branch") for r in store.scroll(r1.collection)} == {"feature"}
    git(repo, "checkout", "-q", "main")
    index_repository(settings, store, fake_embedder, repo)
    assert "new.py" not in paths(store, r1.collection)
    assert {(r.payload or {}).get("branch") for r in store.scroll(r1.collection)} == {"main"}


def test_unreachable_embedder_writes_nothing(settings: Settings, store: Store, repo: Path) -> None:
    dead = Embedder(settings)  # http://embed.invalid: does not resolve
    with pytest.raises(AwCodeError, match="does not answer"):
        index_repository(settings, store, dead, repo)
    assert store.code_collections() == []


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = {
        "AW_CODE_QDRANT_URL": str(tmp_path / "q"),
        "AW_CODE_STATE_DIR": str(tmp_path / "s"),
        "AW_CODE_EMBED_URL": "http://127.0.0.1:9/v1",
        "AW_CODE_EMBED_API": "openai",
    }
    os.environ.update(env)
    try:
        assert main(["index", str(tmp_path)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "is not inside a git repository" in err[0]
        assert main(["index", str(tmp_path / "nope")]) == 2
        assert "is not a directory" in capsys.readouterr().err
        os.environ["AW_CODE_EMBED_API"] = "grpc"
        assert main(["status", "--json"]) == 2
        assert "AW_CODE_EMBED_API='grpc'" in capsys.readouterr().err
        os.environ["AW_CODE_EMBED_API"] = "openai"
        assert main(["status", "--json"]) == 0
        assert json.loads(capsys.readouterr().out) == {"collections": [], "errors": {}}
    finally:
        for k in env:
            os.environ.pop(k, None)


def test_dimension_mismatch(settings: Settings, store: Store, fake_embedder: Embedder, repo: Path) -> None:
    r = index_repository(settings, store, fake_embedder, repo)
    with pytest.raises(AwCodeError, match="holds 64-dimension vectors, the embedder gives 32"):
        store.ensure(r.collection, 32)
