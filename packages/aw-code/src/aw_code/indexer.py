"""Full and incremental indexing of one repository.

A run reads every indexable file and its SHA-256 (cheap), compares with the hashes stored in the
collection's payloads, and chunks only files whose hash changed. Only chunks whose content hash
is new are embedded; a chunk whose content already exists elsewhere in the collection (a renamed
or moved file) reuses that point's vectors. Every embedding is computed before the first write,
so an unreachable embedder or a bad answer changes nothing; writes go new-points-first, then
payload updates, then deletions, so an interrupted run leaves extra points, never missing ones,
and the next run converges."""

from __future__ import annotations

import hashlib
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qdrant_client import models as qm

from . import files, sparse, state
from .chunker import Chunk, chunk_file
from .config import Settings
from .embed import Embedder
from .errors import AwCodeError
from .store import COLLECTION_PREFIX, Store, collection_name, point_id

Progress = Callable[[str], None]


def stderr_progress(msg: str) -> None:
    print(f"aw-code: {msg}", file=sys.stderr, flush=True)


def default_base(repo: Path) -> str:
    """`code_<dir name>_<6 hex of the absolute path>`: two clones of one project do not collide."""
    digest = hashlib.sha1(str(repo).encode(), usedforsecurity=False).hexdigest()[:6]
    return f"{COLLECTION_PREFIX}{repo.name}_{digest}"


def resolve_collection(settings: Settings, repo: Path, base: str | None, dim: int) -> str:
    return collection_name(base or default_base(repo), settings.embed_model, dim)


@dataclass
class IndexResult:
    collection: str
    files: int = 0
    chunks: int = 0
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    embedded: int = 0
    reused: int = 0
    files_changed: int = 0
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "collection": self.collection,
            "files": self.files,
            "chunks": self.chunks,
            "added": self.added,
            "updated": self.updated,
            "removed": self.removed,
            "unchanged": self.unchanged,
            "embedded": self.embedded,
            "reused": self.reused,
            "files_changed": self.files_changed,
            "seconds": round(self.seconds, 3),
        }


def _dim(settings: Settings, embedder: Embedder, repo: Path, base: str | None) -> int:
    """The embedder's dimension, from the last run's state when the model is the same."""
    for data in state.load_all(settings.state_dir):
        if (
            data.get("repo") == str(repo)
            and data.get("model") == settings.embed_model
            and data.get("base") == (base or default_base(repo))
        ):
            return int(data["dim"])
    return embedder.dim


def index_repository(
    settings: Settings,
    store: Store,
    embedder: Embedder,
    path: str | Path,
    *,
    base: str | None = None,
    progress: Progress | None = None,
) -> IndexResult:
    say = progress or (lambda _m: None)
    t0 = time.perf_counter()
    repo = files.repo_root(path)
    branch = files.branch_of(repo)
    paths = files.list_paths(repo)
    sources = {}
    for p in paths:
        src = files.read_source(repo, p, settings.max_file_bytes)
        if src is not None:
            sources[p] = src
    say(f"{repo}: {len(sources)} indexable files of {len(paths)} listed (branch {branch or '-'})")
    dim = _dim(settings, embedder, repo, base)
    name = resolve_collection(settings, repo, base, dim)
    result = IndexResult(collection=name, files=len(sources))

    existing: dict[str, list[qm.Record]] = defaultdict(list)
    by_hash: dict[str, str] = {}
    stale_branch = False
    if store.exists(name):
        size = store.dense_size(name)
        if size != dim:
            store.ensure(name, dim)  # raises the dimension-mismatch message
        for rec in store.scroll(name):
            pl = rec.payload or {}
            existing[str(pl.get("path"))].append(rec)
            by_hash.setdefault(str(pl.get("content_hash")), str(rec.id))
            stale_branch = stale_branch or pl.get("branch") != branch

    new_chunks: list[tuple[str, Chunk, files.SourceFile]] = []
    payload_updates: list[tuple[str, dict[str, Any]]] = []
    deletions: list[str] = []
    for p, src in sources.items():
        recs = existing.get(p, [])
        if recs and all((r.payload or {}).get("file_sha256") == src.sha256 for r in recs):
            result.unchanged += len(recs)
            continue
        result.files_changed += 1
        chunks = chunk_file(p, src.language, src.text, settings.max_chunk_chars)
        seen: dict[str, int] = defaultdict(int)
        want: dict[str, Chunk] = {}
        for c in chunks:
            h = c.content_hash
            want[point_id(p, h, seen[h])] = c
            seen[h] += 1
        have = {str(r.id): r for r in recs}
        for pid, c in want.items():
            old = have.get(pid)
            if old is None:
                new_chunks.append((pid, c, src))
                continue
            pl = old.payload or {}
            if (pl.get("start_line"), pl.get("end_line")) == (c.start_line, c.end_line):
                result.unchanged += 1
            else:
                result.updated += 1
            payload_updates.append(
                (
                    pid,
                    {
                        "start_line": c.start_line,
                        "end_line": c.end_line,
                        "file_sha256": src.sha256,
                        "git_blob": src.git_blob,
                        "branch": branch,
                    },
                )
            )
        deletions.extend(pid for pid in have if pid not in want)
    for p, recs in existing.items():
        if p not in sources:
            deletions.extend(str(r.id) for r in recs)

    # Vectors: reuse by content hash, embed the rest. All before the first write.
    reuse_from = {pid: by_hash[c.content_hash] for pid, c, _ in new_chunks if c.content_hash in by_hash}
    reused_vectors = store.vectors(name, sorted(set(reuse_from.values()))) if reuse_from else {}
    to_embed = [(pid, c) for pid, c, _ in new_chunks if reuse_from.get(pid) not in reused_vectors]
    dense: dict[str, list[float]] = {}
    if to_embed:
        say(f"embedding {len(to_embed)} chunks ({len(reuse_from)} reused by content hash)")
        step = max(settings.batch_size * 8, 1)
        for i in range(0, len(to_embed), step):
            part = to_embed[i : i + step]
            for (pid, _c), emb in zip(part, embedder.embed_documents([c.embed_text() for _, c in part]), strict=True):
                dense[pid] = emb
            say(f"embedded {min(i + step, len(to_embed))}/{len(to_embed)}")
        if dense and len(next(iter(dense.values()))) != dim:
            got = len(next(iter(dense.values())))
            raise AwCodeError(
                f"the embedder now returns {got}-dimension vectors, the collection {name} holds {dim}. Fix:"
                " run aw-code index again (a new collection is made for the new model)"
                " or set AW_CODE_EMBED_MODEL to the model really served."
            )
    points = []
    for pid, c, src in new_chunks:
        vec: Any = dense.get(pid) or reused_vectors[reuse_from[pid]].get("dense")
        idx, vals = sparse.document_vector(f"{c.path}\n{c.symbol}\n{c.text}")
        points.append(
            qm.PointStruct(
                id=pid,
                vector={"dense": vec, "bm25": qm.SparseVector(indices=idx, values=vals)},
                payload={
                    "path": c.path,
                    "language": c.language,
                    "symbol": c.symbol,
                    "start_line": c.start_line,
                    "end_line": c.end_line,
                    "content_hash": c.content_hash,
                    "file_sha256": src.sha256,
                    "git_blob": src.git_blob,
                    "branch": branch,
                    "repo": str(repo),
                    "text": c.text,
                },
            )
        )
    result.added = len(points)
    result.embedded = len(dense)
    result.reused = len(points) - len(dense)
    result.removed = len(deletions)

    if store.ensure(name, dim):
        say(f"created collection {name}")
    if points:
        store.upsert(name, points)
    if payload_updates:
        store._call(
            "update payloads",
            store.client.batch_update_points,
            name,
            update_operations=[
                qm.SetPayloadOperation(set_payload=qm.SetPayload(payload=pl, points=[pid]))
                for pid, pl in payload_updates
            ],
            wait=True,
        )
    if deletions:
        store.delete(name, deletions)
    if stale_branch:
        store.set_payload_all(name, {"branch": branch})
    result.chunks = result.unchanged + result.updated + result.added
    result.seconds = time.perf_counter() - t0
    state.save(
        settings.state_dir,
        name,
        {
            "collection": name,
            "repo": str(repo),
            "base": base or default_base(repo),
            "branch": branch,
            "model": settings.embed_model,
            "dim": dim,
            "files": result.files,
            "chunks": result.chunks,
            "last_index_seconds": round(result.seconds, 3),
            "last_index_finished": time.time(),
            "last_result": result.as_json(),
        },
    )
    return result


def clear(settings: Settings, store: Store, collection: str) -> bool:
    dropped = store.drop(collection)
    state.remove(settings.state_dir, collection)
    return dropped
