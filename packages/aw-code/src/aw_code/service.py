"""The long-running side: a set of repositories kept indexed (initial run, then a debounced
watcher), searches over them, status, metrics. Used by `watch` and `serve-mcp`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import watchfiles

from . import files, state
from .config import Settings
from .embed import Embedder, Reranker
from .errors import AwCodeError
from .indexer import IndexResult, clear, index_repository
from .metrics import CHUNKS, FILES, INDEX_LAG, INDEX_RUNS, LAST_DURATION, LAST_SUCCESS, LagClock
from .search import Result, search
from .store import Store, connect

DEBOUNCE_MS = 1500


def _watch_filter(change: watchfiles.Change, path: str) -> bool:
    """Working-tree files and .git/HEAD (a branch switch); not git's other internals."""
    parts = Path(path).parts
    if ".git" in parts:
        return parts[-1] == "HEAD" and parts[-2] == ".git"
    return files.skip_reason("/".join(parts[-6:])) is None


class Service:
    def __init__(
        self,
        settings: Settings,
        store: Store | None = None,
        embedder: Embedder | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self._store = store
        self.embedder = embedder or Embedder(settings)
        self.reranker = Reranker(settings) if settings.rerank_url else None
        self.lock = threading.RLock()
        self.repos: dict[Path, str] = {}  # repository root -> collection
        self.clocks: dict[Path, LagClock] = {}
        self.errors: dict[str, str] = {}
        self.log = log or (lambda _m: None)
        self.stop = threading.Event()

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store(connect(self.settings))
        return self._store

    def index(self, path: str | Path, base: str | None = None) -> IndexResult:
        with self.lock:
            started = time.time()
            repo = files.repo_root(path)
            try:
                res = index_repository(self.settings, self.store, self.embedder, repo, base=base, progress=self.log)
            except AwCodeError as exc:
                self.errors[str(repo)] = str(exc)
                name = self.repos.get(repo, str(repo))
                INDEX_RUNS.labels(collection=name, result="error").inc()
                raise
            self.errors.pop(str(repo), None)
            self.repos[repo] = res.collection
            clock = self.clocks.get(repo)
            if clock is None:
                clock = self.clocks[repo] = LagClock(res.collection)
                INDEX_LAG.labels(collection=res.collection).set_function(clock.lag)
            clock.indexed(started)
            FILES.labels(collection=res.collection).set(res.files)
            CHUNKS.labels(collection=res.collection).set(res.chunks)
            LAST_DURATION.labels(collection=res.collection).set(res.seconds)
            LAST_SUCCESS.labels(collection=res.collection).set(time.time())
            INDEX_RUNS.labels(collection=res.collection, result="ok").inc()
            return res

    def collections_for(self, repository: str | None) -> list[str]:
        if repository:
            for repo, name in self.repos.items():
                if repository in (str(repo), repo.name, name):
                    return [name]
            known = [
                d
                for d in state.load_all(self.settings.state_dir)
                if repository in (d.get("repo"), Path(str(d.get("repo"))).name, d.get("collection"))
            ]
            if known:
                return [str(known[0]["collection"])]
            raise AwCodeError(
                f"repository {repository!r} is not indexed. Fix:"
                " index_codebase it first, or name one of: "
                f"{', '.join(sorted(str(r) for r in self.repos)) or 'none yet'}."
            )
        names = list(self.repos.values()) or [
            str(d["collection"])
            for d in state.load_all(self.settings.state_dir)
            if d.get("model") == self.settings.embed_model
        ]
        if not names:
            raise AwCodeError("nothing is indexed yet. Fix: aw-code index PATH (or the index_codebase tool).")
        return names

    def search(
        self,
        query: str,
        repository: str | None = None,
        k: int = 10,
        mode: str = "hybrid",
        rerank: bool = True,
    ) -> list[Result]:
        if not query.strip():
            raise AwCodeError("the query is empty. Fix: describe the code you are looking for.")
        names = self.collections_for(repository)
        with self.lock if self.settings.embedded_qdrant else _nolock():
            return search(
                self.store, self.embedder, names, query, k=k, mode=mode, reranker=self.reranker if rerank else None
            )

    def clear(self, repository: str) -> list[str]:
        names = self.collections_for(repository)
        with self.lock:
            for n in names:
                clear(self.settings, self.store, n)
            for repo in [r for r, n in self.repos.items() if n in names]:
                del self.repos[repo]
        return names

    def status(self) -> dict[str, Any]:
        out = []
        for d in state.load_all(self.settings.state_dir):
            repo = Path(str(d.get("repo")))
            clock = self.clocks.get(repo)
            out.append(
                {
                    "collection": d.get("collection"),
                    "repo": d.get("repo"),
                    "branch": d.get("branch"),
                    "model": d.get("model"),
                    "dim": d.get("dim"),
                    "files": d.get("files"),
                    "chunks": d.get("chunks"),
                    "last_index_seconds": d.get("last_index_seconds"),
                    "last_index_finished": d.get("last_index_finished"),
                    "watched": repo in self.repos,
                    "index_lag_seconds": round(clock.lag(), 3) if clock else None,
                    "last_error": self.errors.get(str(repo)),
                }
            )
        return {"collections": out, "errors": dict(self.errors)}

    def watch(self, paths: Sequence[str | Path], on_result: Callable[[IndexResult], None] | None = None) -> None:
        """Index each repository, then keep them current until self.stop is set."""
        roots = [files.repo_root(p) for p in paths]
        for root in roots:
            try:
                res = self.index(root)
                if on_result:
                    on_result(res)
            except AwCodeError as exc:
                self.log(f"index of {root} failed: {exc}")
        for changes in watchfiles.watch(
            *roots,
            watch_filter=_watch_filter,
            debounce=DEBOUNCE_MS,
            stop_event=self.stop,
            raise_interrupt=False,
        ):
            now = time.time()
            touched = {r for r in roots for _c, p in changes if Path(p).is_relative_to(r)}
            for root in touched:
                clock = self.clocks.get(root)
                if clock:
                    clock.changed(now)
            for root in sorted(touched):
                try:
                    res = self.index(root)
                    if on_result:
                        on_result(res)
                except AwCodeError as exc:
                    self.log(f"index of {root} failed: {exc}")


class _nolock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *_a: object) -> None:
        return None
