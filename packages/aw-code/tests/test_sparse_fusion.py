"""The code tokenizer, BM25 vectors, RRF and the token budget."""

from __future__ import annotations

from aw_code import sparse
from aw_code.search import Result, rrf, trim_to_budget


def test_tokens_split_identifiers() -> None:
    toks = sparse.tokens("parseHTTPResponse get_user_id x")
    assert "parsehttpresponse" in toks and {"parse", "http", "response"} <= set(toks)
    assert {"get_user_id", "get", "user", "id"} <= set(toks)
    assert "x" not in toks


def test_bm25_saturates_and_is_sorted() -> None:
    idx, vals = sparse.document_vector("cache cache cache cache other")
    assert idx == sorted(idx)
    weights = dict(zip(idx, vals, strict=True))
    assert weights[sparse.term_id("cache")] > weights[sparse.term_id("other")]
    assert weights[sparse.term_id("cache")] < 4 * weights[sparse.term_id("other")]
    qi, qv = sparse.query_vector("cache cache lookup")
    assert len(qi) == 2 and set(qv) == {1.0}


def test_rrf_prefers_items_ranked_well_in_both() -> None:
    scores = rrf([["a", "b", "c"], ["b", "c", "a"]])
    assert max(scores, key=lambda k: scores[k]) == "b"
    assert abs(scores["b"] - (1 / 62 + 1 / 61)) < 1e-12


def test_trim_to_budget() -> None:
    r = [Result("c", f"f{i}.py", 1, 50, "", 1.0, "x = 1\n" * 50) for i in range(5)]
    out = trim_to_budget(r, 200)  # 800 characters
    assert 1 <= len(out) < 5
    assert sum(len(x.text) for x in out) <= 800
    assert out[-1].end_line - out[-1].start_line + 1 == out[-1].text.count("\n")
