"""Speed figures of issue 15 on a 1,000-file repository: initial index, no-change re-index (goal
<= 3 s), re-index after one file changes (goal <= 2 s end to end) and query latency p50/p95.

The repository is GENERATED (1,000 Python files of a few small functions each, distinct
contents) so its size is exact; it is not real code, only a load of the right size. The
embedder is a named STAND-IN by default: hashed-token vectors answered in-process through the
OpenAI /v1/embeddings contract (httpx.MockTransport, as in packages/aw-code/tests/conftest.py),
because the real embedders take tens of minutes for ~4,000 chunks on this 2-core machine. The
no-change pass embeds nothing, so the stand-in does not flatter it; the one-file change embeds
its few chunks with the stand-in (add the real embedder's per-chunk time, measured by
bench_csn.py). Qdrant is qdrant-client's embedded mode (the STAND-IN for the server).
`--real` uses the AW_CODE_* embedder instead.

    .venv/bin/python packages/aw-code/bench/bench_speed.py [--files 1000] [--json]"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import httpx

from aw_code.config import from_env
from aw_code.embed import Embedder
from aw_code.service import Service

DIM = 64
WORDS = ["parse", "render", "load", "store", "fetch", "merge", "split", "count", "index", "match", "build", "check"]


def _stand_in(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    data = []
    for i, text in enumerate(body["input"]):
        vec = [0.0] * DIM
        for tok in text.split():
            vec[zlib.crc32(tok.encode()) % DIM] += 1.0
        vec[0] += 0.001
        data.append({"object": "embedding", "index": i, "embedding": vec})
    return httpx.Response(200, json={"object": "list", "data": data})


def make_repo(dest: Path, n: int) -> Path:
    for i in range(n):
        a, b = WORDS[i % len(WORDS)], WORDS[(i // len(WORDS)) % len(WORDS)]
        body = [f'"""Module {i}: {a} and {b} helpers."""\n\n']
        for j in range(4):
            body.append(
                f"def {a}_{b}_{i}_{j}(items, limit={j + 1}):\n"
                f"    out = []\n"
                f"    for item in items[:limit * {i % 7 + 1}]:\n"
                f"        if item % {j + 2} == {i % 3}:\n"
                f"            out.append(item * {i})\n"
                f"    return out\n\n\n"
            )
        sub = dest / f"pkg{i // 100:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"mod_{i:04d}.py").write_text("".join(body), encoding="utf-8")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"]):
        subprocess.run(["git", "-C", str(dest), *args], check=True, capture_output=True)
    return dest


def _pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p * (len(s) - 1)))]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--files", type=int, default=1000)
    p.add_argument("--queries", type=int, default=40)
    p.add_argument("--real", action="store_true", help="use the AW_CODE_* embedder, not the stand-in")
    p.add_argument("--profile", action="store_true", help="cProfile the re-index passes (stderr)")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {"AW_CODE_QDRANT_URL": f"{tmp}/qdrant", "AW_CODE_STATE_DIR": f"{tmp}/state"}
        if not a.real:
            env |= {
                "AW_CODE_EMBED_URL": "http://stand-in.invalid/v1",
                "AW_CODE_EMBED_API": "openai",
                "AW_CODE_EMBED_MODEL": "stand-in-hash",
            }
        os.environ.update(env)
        settings = from_env()
        embedder = None if a.real else Embedder(settings, httpx.Client(transport=httpx.MockTransport(_stand_in)))
        svc = Service(settings, embedder=embedder)
        repo = make_repo(Path(tmp) / "repo", a.files)
        first = svc.index(repo)
        prof = cProfile.Profile() if a.profile else None
        t0 = time.perf_counter()
        if prof:
            prof.enable()
        again = svc.index(repo)
        noop = time.perf_counter() - t0
        if prof:
            prof.disable()
            pstats.Stats(prof, stream=sys.stderr).sort_stats("cumulative").print_stats(25)
        target = repo / "pkg05" / "mod_0500.py"
        target.write_text(target.read_text() + "\n\ndef added_helper(x):\n    return x + 1\n", encoding="utf-8")
        t0 = time.perf_counter()
        one = svc.index(repo)
        one_s = time.perf_counter() - t0
        lat: dict[str, list[float]] = {"bm25": [], "dense": [], "hybrid": []}
        for i in range(a.queries):
            q = f"{WORDS[i % len(WORDS)]} items with limit {i}"
            for mode, times in lat.items():
                t0 = time.perf_counter()
                svc.search(q, str(repo), k=10, mode=mode, rerank=False)
                times.append(time.perf_counter() - t0)
        figures: dict[str, object] = {
            "embedder": settings.embed_model + ("" if a.real else " (in-process STAND-IN)"),
            "files": first.files,
            "chunks": first.chunks,
            "initial_index_s": round(first.seconds, 2),
            "initial_files_per_s": round(first.files / first.seconds, 1),
            "initial_chunks_per_s": round(first.chunks / first.seconds, 1),
            "noop_reindex_s": round(noop, 3),
            "noop_embedded": again.as_json()["embedded"],
            "one_file_change_s": round(one_s, 3),
            "one_file_change": {k: one.as_json()[k] for k in ("added", "removed", "embedded", "files_changed")},
            **{
                f"query_{m}_ms": {"p50": round(_pct(v, 0.5) * 1000, 1), "p95": round(_pct(v, 0.95) * 1000, 1)}
                for m, v in lat.items()
            },
            "load_average": [round(x, 1) for x in os.getloadavg()],
        }
    print(json.dumps(figures) if a.json else "\n".join(f"{k}: {v}" for k, v in figures.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
