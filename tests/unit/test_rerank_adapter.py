"""The reranker adapter (roles/agent_stack/files/rerank_adapter.py): Open WebUI's body to TEI's.

Request shape: Open WebUI 0.12.4 open_webui/retrieval/models/external.py (model, query,
documents, top_n; reads results[].index/relevance_score). TEI 1.9.3 router/src/http/types.rs:
RerankRequest {query, texts, truncate, raw_scores, ...}, Rank {index, score}.
"""

import importlib.util
import json
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parents[2] / "roles" / "agent_stack" / "files" / "rerank_adapter.py"
_spec = importlib.util.spec_from_file_location("rerank_adapter", PATH)
assert _spec and _spec.loader
adapter = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(adapter)

OPENWEBUI_BODY = {
    "model": "BAAI/bge-reranker-v2-m3",
    "query": "q",
    "documents": ["a", "b", "c"],
    "top_n": 3,
}


def test_openwebui_body_becomes_tei_body():
    tei, top_n, docs = adapter.to_tei(OPENWEBUI_BODY)
    assert tei == {"query": "q", "texts": ["a", "b", "c"], "truncate": True, "raw_scores": False}
    assert top_n == 3 and docs is False


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "JSON object"),
        ({"documents": ["a"]}, "query"),
        ({"query": "q", "documents": []}, "documents"),
        ({"query": "q", "documents": [1]}, "documents\\[0\\]"),
        ({"query": "q", "documents": ["a"], "top_n": 0}, "top_n"),
        ({"query": "q", "documents": ["a"], "top_n": True}, "top_n"),
    ],
)
def test_bad_bodies(body, message):
    with pytest.raises(adapter.BadRequest, match=message):
        adapter.to_tei(body)


def test_cohere_style_document_objects():
    tei, _, _ = adapter.to_tei({"query": "q", "documents": [{"text": "a"}]})
    assert tei["texts"] == ["a"]


def test_tei_ranks_become_results_sorted_and_cut():
    ranks = [{"index": 2, "score": 0.9}, {"index": 0, "score": 0.5}, {"index": 1, "score": 0.1}]
    out = adapter.from_tei(ranks, ["a", "b", "c"], "m", 2, True)
    assert out == {
        "model": "m",
        "results": [
            {"index": 2, "relevance_score": 0.9, "document": {"text": "c"}},
            {"index": 0, "relevance_score": 0.5, "document": {"text": "a"}},
        ],
    }
    # What Open WebUI then does with it: sort by index, read relevance_score.
    scores = [r["relevance_score"] for r in sorted(out["results"], key=lambda r: r["index"])]
    assert scores == [0.5, 0.9]


@pytest.mark.parametrize(
    "ranks", [{"error": "x"}, [{"index": 5, "score": 1}], [{"score": 1}], [{"index": 0}]]
)
def test_bad_tei_answers(ranks):
    with pytest.raises(ValueError):
        adapter.from_tei(ranks, ["a"], "m", None, False)


def test_end_to_end_against_a_tei_shaped_upstream():
    seen = {}

    class Tei(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen["body"] = body
            if set(body) - {"query", "texts", "truncate", "raw_scores"} or "texts" not in body:
                self.send_response(422)
                self.end_headers()
                return
            data = json.dumps(
                [{"index": i, "score": 1.0 / (i + 1)} for i in range(len(body["texts"]))]
            ).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *a):
            pass

    tei = ThreadingHTTPServer(("127.0.0.1", 0), Tei)
    front = ThreadingHTTPServer(
        ("127.0.0.1", 0), adapter.make_handler(f"http://127.0.0.1:{tei.server_port}")
    )
    for server in (tei, front):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        request = urllib.request.Request(
            f"http://127.0.0.1:{front.server_port}/v1/rerank",
            data=json.dumps(OPENWEBUI_BODY).encode(),
            headers={"Content-Type": "application/json", "Authorization": "Bearer x"},
        )
        with urllib.request.urlopen(request, timeout=5) as reply:
            out = json.loads(reply.read())
    finally:
        tei.shutdown()
        front.shutdown()
    assert seen["body"]["texts"] == ["a", "b", "c"]
    assert [r["index"] for r in out["results"]] == [0, 1, 2]
    assert out["results"][0]["relevance_score"] == 1.0
