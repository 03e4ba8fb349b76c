"""AW_CODE_TRUNCATE_TOKENS: vLLM's `truncate_prompt_tokens` is sent on openai embeddings and jina
rerank requests only when set (vLLM 0.32 answers 400 for an input over --max-model-len without
it; seen on the CPU build with all-MiniLM-L6-v2 at 256 tokens). The server side is a stand-in
(httpx.MockTransport) that records the request bodies."""

from __future__ import annotations

import json

import httpx
import pytest

from aw_code.config import from_env
from aw_code.embed import Embedder, Reranker
from aw_code.errors import AwCodeError

BASE = {
    "AW_CODE_EMBED_URL": "http://embed.invalid/v1",
    "AW_CODE_EMBED_API": "openai",
    "AW_CODE_RERANK_URL": "http://rerank.invalid",
    "AW_CODE_RERANK_API": "jina",
}


def _client(bodies: list[dict[str, object]]) -> httpx.Client:
    def handle(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        bodies.append(body)
        if request.url.path.endswith("/rerank"):
            docs = body["documents"]
            return httpx.Response(
                200, json={"results": [{"index": i, "relevance_score": 1.0 - i} for i in range(len(docs))]}
            )
        data = [{"index": i, "embedding": [1.0, 0.0]} for i in range(len(body["input"]))]
        return httpx.Response(200, json={"data": data})

    return httpx.Client(transport=httpx.MockTransport(handle))


@pytest.mark.parametrize(("value", "sent"), [("256", 256), ("0", None)])
def test_truncate_prompt_tokens_sent_only_when_set(value: str, sent: int | None) -> None:
    settings = from_env({**BASE, "AW_CODE_TRUNCATE_TOKENS": value})
    bodies: list[dict[str, object]] = []
    Embedder(settings, _client(bodies)).embed_documents(["a", "b"])
    assert Reranker(settings, _client(bodies)).scores("q", ["x", "y"]) == [1.0, 0.0]
    assert [b.get("truncate_prompt_tokens") for b in bodies] == [sent, sent]


def test_bad_truncate_value_names_the_variable() -> None:
    with pytest.raises(AwCodeError, match="AW_CODE_TRUNCATE_TOKENS='-1'"):
        from_env({**BASE, "AW_CODE_TRUNCATE_TOKENS": "-1"})
