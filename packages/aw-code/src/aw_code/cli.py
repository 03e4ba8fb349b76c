"""aw-code: index, search, watch, status, clear, serve-mcp. Errors are one line on stderr
(exit 2), never a traceback."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from prometheus_client import start_http_server

from . import __version__
from .config import Settings, from_env
from .errors import AwCodeError
from .indexer import IndexResult, stderr_progress
from .mcp_server import serve
from .search import MODES, render, trim_to_budget
from .service import Service
from .store import collection_name


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    g = common.add_argument_group("configuration (flags override the AW_CODE_* environment)")
    g.add_argument(
        "--qdrant-url",
        help="Qdrant URL, or a directory for qdrant-client's embedded mode (AW_CODE_QDRANT_URL)",
    )
    g.add_argument(
        "--qdrant-api-key-file",
        help="file holding the Qdrant API key (AW_CODE_QDRANT_API_KEY_FILE)",
    )
    g.add_argument(
        "--embed-url",
        help="embedding server: OpenAI-compatible /v1 base or TEI base (AW_CODE_EMBED_URL)",
    )
    g.add_argument("--embed-api", choices=["openai", "tei"], help="AW_CODE_EMBED_API")
    g.add_argument("--embed-model", help="model name (also part of the collection name) (AW_CODE_EMBED_MODEL)")
    g.add_argument("--rerank-url", help="reranker base URL (AW_CODE_RERANK_URL; empty: no rerank)")
    g.add_argument("--state-dir", help="where run state is kept (AW_CODE_STATE_DIR)")

    p = argparse.ArgumentParser(prog="aw-code", description="Code retrieval for agent-workstation.")
    p.add_argument("--version", action="version", version=f"aw-code {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    ix = sub.add_parser("index", parents=[common], help="index a repository (incremental)")
    ix.add_argument("path")
    ix.add_argument("--collection", help="collection base name (model and dimension are appended)")
    se = sub.add_parser("search", parents=[common], help="search the index")
    se.add_argument("query")
    se.add_argument("--collection", help="collection (full name or base); default: every indexed repository")
    se.add_argument("--repo", help="repository path instead of --collection")
    se.add_argument("-k", type=int, default=10)
    se.add_argument("--mode", choices=MODES, default="hybrid")
    se.add_argument("--no-rerank", action="store_true")
    se.add_argument(
        "--json",
        action="store_true",
        help="a JSON list of {path, start_line, end_line, symbol, score}",
    )
    se.add_argument("--max-tokens", type=int, default=4000, help="text output budget")
    wa = sub.add_parser("watch", parents=[common], help="index, then keep it current (debounced inotify)")
    wa.add_argument("path", nargs="+")
    wa.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on 127.0.0.1:PORT")
    st = sub.add_parser("status", parents=[common], help="what is indexed")
    st.add_argument("--json", action="store_true")
    cl = sub.add_parser("clear", parents=[common], help="delete a repository's index")
    cl.add_argument("repository", help="path, directory name or collection")
    sm = sub.add_parser("serve-mcp", parents=[common], help="MCP server (streamable HTTP at /mcp) + /metrics")
    sm.add_argument("--host", default="127.0.0.1")
    sm.add_argument("--port", type=int, default=8765)
    sm.add_argument(
        "--watch",
        action="append",
        default=[],
        metavar="PATH",
        help="index and watch this repository (repeatable)",
    )
    sm.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="HOST:PORT",
        help="extra Host header accepted (e.g. host.docker.internal:8765)",
    )
    sm.add_argument(
        "--metrics-port",
        type=int,
        help="also serve Prometheus metrics on 127.0.0.1:PORT (they are at /metrics of the MCP port too)",
    )
    return p


def _settings(a: argparse.Namespace) -> Settings:
    return from_env(
        qdrant_url=a.qdrant_url,
        qdrant_api_key_file=a.qdrant_api_key_file,
        embed_url=a.embed_url,
        embed_api=a.embed_api,
        embed_model=a.embed_model,
        rerank_url=a.rerank_url,
        state_dir=a.state_dir,
    )


def _collection(svc: Service, a: argparse.Namespace) -> str | None:
    """--repo PATH, or --collection as a full name or as the base given to `index --collection`."""
    if a.repo:
        return str(a.repo)
    if not a.collection:
        return None
    if "__" in a.collection:
        return str(a.collection)
    return collection_name(a.collection, svc.settings.embed_model, svc.embedder.dim)


def run(argv: Sequence[str] | None = None) -> int:
    a = _parser().parse_args(argv)
    settings = _settings(a)
    svc = Service(settings, log=stderr_progress)
    if a.command == "index":
        res = svc.index(a.path, a.collection)
        stderr_progress(f"{res.collection}: {res.files} files, {res.chunks} chunks in {res.seconds:.2f} s")
        print(json.dumps(res.as_json()))
    elif a.command == "search":
        target = _collection(svc, a)
        hits = svc.search(a.query, target, a.k, a.mode, rerank=not a.no_rerank)
        if a.json:
            print(json.dumps([h.as_json(with_text=False) for h in hits]))
        else:
            print(render(trim_to_budget(hits, a.max_tokens)))
    elif a.command == "watch":
        if a.metrics_port:
            start_http_server(a.metrics_port, addr="127.0.0.1")

        def done(res: IndexResult) -> None:
            print(json.dumps(res.as_json()), flush=True)

        svc.watch(a.path, done)
    elif a.command == "status":
        data = svc.status()
        if a.json:
            print(json.dumps(data))
        else:
            for c in data["collections"]:
                print(
                    f"{c['collection']}: {c['repo']} ({c['branch']}) {c['files']} files, {c['chunks']} chunks,"
                    f" last run {c['last_index_seconds']} s"
                )
            if not data["collections"]:
                print("nothing indexed")
    elif a.command == "clear":
        print(json.dumps({"cleared": svc.clear(a.repository)}))
    elif a.command == "serve-mcp":
        if a.metrics_port:
            start_http_server(a.metrics_port, addr="127.0.0.1")
        serve(svc, a.host, a.port, a.watch, a.allowed_host)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return run(argv)
    except AwCodeError as exc:
        print(f"aw-code: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
