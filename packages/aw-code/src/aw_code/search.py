"""Search: the query embedded with the query prefix, dense and BM25 results fused by Qdrant's RRF,
optionally reranked by the cross-encoder, trimmed to a token budget."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from . import sparse
from .embed import Embedder, Reranker
from .metrics import QUERY_LATENCY
from .store import Hit, Store

MODES = ("hybrid", "dense", "bm25")
CHARS_PER_TOKEN = 4  # a rough budget for code; the reader's tokenizer is not known here


@dataclass(frozen=True)
class Result:
    collection: str
    path: str
    start_line: int
    end_line: int
    symbol: str
    score: float
    text: str

    def as_json(self, with_text: bool = True) -> dict[str, object]:
        out: dict[str, object] = {
            "path": self.path,
            "start_line": self.start_line,
            "end_line": self.end_line,
            "symbol": self.symbol,
            "score": round(self.score, 6),
            "collection": self.collection,
        }
        if with_text:
            out["snippet"] = self.text
        return out


def rrf(rankings: Sequence[Sequence[str]], k: int = 60) -> dict[str, float]:
    """Reciprocal rank fusion (the formula Qdrant's Fusion.RRF uses: sum of 1 / (k + rank))."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, key in enumerate(ranking, start=1):
            scores[key] = scores.get(key, 0.0) + 1.0 / (k + rank)
    return scores


def search(
    store: Store,
    embedder: Embedder,
    collections: Sequence[str],
    query: str,
    *,
    k: int = 10,
    mode: str = "hybrid",
    reranker: Reranker | None = None,
    rerank_depth: int = 30,
) -> list[Result]:
    """Top-k results over one or more collections (several are merged by RRF of their rankings)."""
    t0 = time.perf_counter()
    dense = embedder.embed_queries([query])[0] if mode != "bm25" else None
    sv = sparse.query_vector(query) if mode != "dense" else None
    depth = max(k, rerank_depth) if reranker else k
    per: list[list[tuple[str, Hit]]] = []
    for name in collections:
        per.append([(name, h) for h in store.query(name, mode, dense, sv, depth)])
    if len(per) == 1:
        merged = per[0]
    else:
        keyed = {f"{n}/{h.id}": (n, h) for lst in per for n, h in lst}
        fused = rrf([[f"{n}/{h.id}" for n, h in lst] for lst in per])
        merged = [keyed[key] for key in sorted(fused, key=lambda x: -fused[x])]
    results = [
        Result(
            n,
            str(h.payload.get("path", "")),
            int(h.payload.get("start_line", 0)),
            int(h.payload.get("end_line", 0)),
            str(h.payload.get("symbol", "")),
            h.score,
            str(h.payload.get("text", "")),
        )
        for n, h in merged
    ]
    if reranker and results:
        scores = reranker.scores(query, [f"{r.path}\n{r.symbol}\n{r.text}" for r in results])
        order = sorted(range(len(results)), key=lambda i: -scores[i])
        results = [
            Result(
                results[i].collection,
                results[i].path,
                results[i].start_line,
                results[i].end_line,
                results[i].symbol,
                scores[i],
                results[i].text,
            )
            for i in order
        ]
    QUERY_LATENCY.labels(mode=mode + ("+rerank" if reranker else "")).observe(time.perf_counter() - t0)
    return results[:k]


def trim_to_budget(results: Sequence[Result], max_tokens: int) -> list[Result]:
    """Keep results in order while they fit about max_tokens; the last one is cut at a line."""
    budget = max_tokens * CHARS_PER_TOKEN
    out: list[Result] = []
    for r in results:
        head = len(r.path) + 24
        if budget - head <= 0:
            break
        if len(r.text) + head <= budget:
            out.append(r)
            budget -= len(r.text) + head
            continue
        lines, used = [], 0
        for line in r.text.splitlines(keepends=True):
            if used + len(line) > budget - head:
                break
            lines.append(line)
            used += len(line)
        if lines:
            out.append(
                Result(
                    r.collection,
                    r.path,
                    r.start_line,
                    r.start_line + len(lines) - 1,
                    r.symbol,
                    r.score,
                    "".join(lines),
                )
            )
        break
    return out


def render(results: Sequence[Result]) -> str:
    """path:start-end (symbol) followed by the snippet, for agents."""
    blocks = []
    for r in results:
        sym = f" ({r.symbol})" if r.symbol else ""
        blocks.append(f"{r.path}:{r.start_line}-{r.end_line}{sym}\n{r.text.rstrip()}")
    return "\n\n".join(blocks) if blocks else "no results"
