#!/usr/bin/env python3
# Copyright: agent-workstation contributors
# SPDX-License-Identifier: Apache-2.0 (see LICENSE at the repository root)
"""Reranker adapter: the Jina/Cohere-style ``/v1/rerank`` that Open WebUI calls, in front of TEI.

Open WebUI 0.12.4's external reranker (``open_webui/retrieval/models/external.py``) posts
``{"model", "query", "documents": [str], "top_n"}`` and reads ``results[].index`` and
``results[].relevance_score``. Text Embeddings Inference 1.9.3's ``/rerank``
(``router/src/http/types.rs``: ``RerankRequest``/``Rank``) takes ``{"query", "texts"}`` and
answers ``[{"index", "score"}]``. Without this adapter Open WebUI gets 422 and silently keeps
the documents unranked. Standard library only: it runs in the Open WebUI image (python3).

Usage: rerank_adapter.py --listen 0.0.0.0:8080 --upstream http://tei-rerank:80
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class BadRequest(ValueError):
    pass


def to_tei(body: Any) -> tuple[dict[str, Any], int | None, bool]:
    """A Jina/Cohere rerank body -> (TEI /rerank body, top_n, return_documents)."""
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    query = body.get("query")
    documents = body.get("documents")
    if not isinstance(query, str) or not query:
        raise BadRequest("'query' must be a non-empty string")
    if not isinstance(documents, list) or not documents:
        raise BadRequest("'documents' must be a non-empty list")
    texts: list[str] = []
    for i, doc in enumerate(documents):
        text = doc.get("text") if isinstance(doc, dict) else doc
        if not isinstance(text, str):
            raise BadRequest(f"documents[{i}] must be a string or an object with 'text'")
        texts.append(text)
    top_n = body.get("top_n")
    if top_n is not None and (not isinstance(top_n, int) or isinstance(top_n, bool) or top_n < 1):
        raise BadRequest("'top_n' must be a positive integer")
    tei = {"query": query, "texts": texts, "truncate": True, "raw_scores": False}
    return tei, top_n, bool(body.get("return_documents", False))


def from_tei(
    ranks: Any, texts: list[str], model: str, top_n: int | None, return_documents: bool
) -> dict[str, Any]:
    """TEI's [{index, score}] -> {model, results: [{index, relevance_score[, document]}]}."""
    if not isinstance(ranks, list):
        raise ValueError(f"TEI answered {type(ranks).__name__}, not a list of ranks")
    results: list[dict[str, Any]] = []
    for rank in ranks:
        if not isinstance(rank, dict) or not isinstance(rank.get("index"), int):
            raise ValueError(f"TEI rank without an index: {rank!r}"[:200])
        index = rank["index"]
        if not 0 <= index < len(texts) or not isinstance(rank.get("score"), (int, float)):
            raise ValueError(f"TEI rank out of range or without a score: {rank!r}"[:200])
        item: dict[str, Any] = {"index": index, "relevance_score": float(rank["score"])}
        if return_documents:
            item["document"] = {"text": texts[index]}
        results.append(item)
    results.sort(key=lambda r: r["relevance_score"], reverse=True)
    if top_n is not None:
        results = results[:top_n]
    return {"model": model, "results": results}


def post_json(url: str, body: Any, timeout: float = 60.0) -> tuple[int, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return reply.status, json.loads(reply.read() or b"null")
    except urllib.error.HTTPError as exc:
        raw = exc.read().decode("utf-8", "replace")
        try:
            return exc.code, json.loads(raw)
        except ValueError:
            return exc.code, {"error": raw[:300]}


def make_handler(upstream: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def reply(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path != "/health":
                self.reply(404, {"error": "not found"})
                return
            try:
                with urllib.request.urlopen(f"{upstream}/health", timeout=5) as reply:
                    self.reply(200 if reply.status == 200 else 503, {"upstream": reply.status})
            except (urllib.error.URLError, OSError) as exc:
                self.reply(503, {"upstream": str(exc)})

        def do_POST(self) -> None:
            if self.path not in ("/v1/rerank", "/rerank"):
                self.reply(404, {"error": "not found"})
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                tei, top_n, return_documents = to_tei(body)
            except (ValueError, BadRequest) as exc:
                self.reply(400, {"error": str(exc)})
                return
            try:
                status, ranks = post_json(f"{upstream}/rerank", tei)
            except (urllib.error.URLError, OSError) as exc:
                self.reply(502, {"error": f"TEI at {upstream} unreachable: {exc}"})
                return
            if status != 200:
                self.reply(502, {"error": f"TEI answered {status}: {ranks}"})
                return
            try:
                self.reply(
                    200,
                    from_tei(
                        ranks, tei["texts"], str(body.get("model", "")), top_n, return_documents
                    ),
                )
            except ValueError as exc:
                self.reply(502, {"error": str(exc)})

        def log_message(self, format: str, *args: Any) -> None:
            sys.stderr.write("rerank-adapter: " + (format % args) + "\n")

    return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="0.0.0.0:8080")
    parser.add_argument("--upstream", required=True, help="TEI base URL, e.g. http://tei-rerank:80")
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    server = ThreadingHTTPServer(
        (host or "0.0.0.0", int(port)), make_handler(args.upstream.rstrip("/"))
    )
    server.serve_forever()


if __name__ == "__main__":
    main()
