"""Qdrant: one collection per repository and embedder, named `<base>__<model>_<dim>` so that a
changed embedding model makes a new collection instead of a dimension error. Each point has a
`dense` vector (cosine) and a `bm25` sparse vector (IDF modifier) and the chunk's payload.

`AW_CODE_QDRANT_URL` may be a directory: qdrant-client's embedded ("local") mode, the STAND-IN
for the Qdrant server in tests and benchmarks. It has the same client API (prefetch + RRF fusion
and sparse vectors with the IDF modifier work there, checked with qdrant-client 1.20.0), but no
HTTP API, no snapshots, no API key, and one process at a time holds its directory."""

from __future__ import annotations

import re
import uuid
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from qdrant_client import QdrantClient
from qdrant_client import models as qm

from .config import Settings
from .errors import AwCodeError

COLLECTION_PREFIX = "code_"
_NS = uuid.UUID("6f1b6c3e-5a57-4cf5-9d0c-1f0b9a2a6e11")
HASH_FIELDS = ["path", "content_hash", "file_sha256", "start_line", "end_line", "branch"]


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def collection_name(base: str, model: str, dim: int) -> str:
    """`base__model-slug_dim` (Qdrant allows letters, digits, -, _)."""
    return f"{slug(base).replace('-', '_')}__{slug(model.rsplit('/', maxsplit=1)[-1])}_{dim}"


def point_id(path: str, content_hash: str, ordinal: int) -> str:
    return str(uuid.uuid5(_NS, f"{path}\0{content_hash}\0{ordinal}"))


@dataclass(frozen=True)
class Hit:
    id: str
    score: float
    payload: dict[str, Any]


def connect(settings: Settings) -> QdrantClient:
    """A client for the configured Qdrant; a one-line error when it cannot be used."""
    try:
        if settings.embedded_qdrant:
            client = QdrantClient(path=settings.qdrant_url)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "API key over insecure connection": loopback by design
                client = QdrantClient(
                    url=settings.qdrant_url,
                    api_key=settings.qdrant_api_key,
                    timeout=int(settings.timeout_s),
                    check_compatibility=False,
                )
            client.get_collections()
    except AwCodeError:
        raise
    except Exception as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "already accessed" in msg:
            raise AwCodeError(
                f"the embedded Qdrant directory {settings.qdrant_url} is in use by another aw-code process"
                " (embedded mode allows one). Fix:"
                f" stop it, or use a Qdrant server URL."
            ) from None
        if "401" in msg or "403" in msg or "Unauthorized" in msg or "Forbidden" in msg:
            raise AwCodeError(
                f"Qdrant at {settings.qdrant_url} refused the API key ({msg}). Fix:"
                f" set AW_CODE_QDRANT_API_KEY_FILE to the stack's qdrant_api_key file."
            ) from None
        raise AwCodeError(
            f"Qdrant at {settings.qdrant_url} cannot be used ({msg}). Fix: start Qdrant or set AW_CODE_QDRANT_URL."
        ) from None
    return client


class Store:
    """The operations aw-code needs on one Qdrant."""

    def __init__(self, client: QdrantClient, scroll_page: int | None = None) -> None:
        self.client = client
        # qdrant-client 1.20.0's embedded mode sorts every id of the collection for EACH scroll
        # page (local/local_collection.py, _scroll_by_id): 5 pages of 1,024 cost a 1,000-file
        # no-change re-index ~2 s of its 3 s (bench_speed.py --profile). One page there; the
        # server pages through its own index, 1,024 a request keeps its answers small.
        local = type(getattr(client, "_client", None)).__name__ == "QdrantLocal"
        self.scroll_page = scroll_page or (1_000_000 if local else 1024)

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise AwCodeError(f"Qdrant failed to {what}: {first}") from None

    def code_collections(self) -> list[str]:
        cols = self._call("list collections", self.client.get_collections).collections
        return sorted(c.name for c in cols if "__" in c.name)

    def exists(self, name: str) -> bool:
        return bool(self._call("look up a collection", self.client.collection_exists, name))

    def dense_size(self, name: str) -> int | None:
        info = self._call("read a collection", self.client.get_collection, name)
        vectors = info.config.params.vectors
        if isinstance(vectors, dict) and "dense" in vectors:
            return int(vectors["dense"].size)
        return None

    def ensure(self, name: str, dim: int) -> bool:
        """Create the collection if missing; True when created. Refuses a dimension mismatch."""
        if self.exists(name):
            size = self.dense_size(name)
            if size != dim:
                raise AwCodeError(
                    f"collection {name} holds {size}-dimension vectors, the embedder gives {dim}. "
                    "Fix: use the default collection name (it carries model and dimension) or aw-code clear it first."
                )
            return False
        self._call(
            "create a collection",
            self.client.create_collection,
            name,
            vectors_config={"dense": qm.VectorParams(size=dim, distance=qm.Distance.COSINE)},
            sparse_vectors_config={"bm25": qm.SparseVectorParams(modifier=qm.Modifier.IDF)},
        )
        if type(getattr(self.client, "_client", None)).__name__ != "QdrantLocal":  # embedded: no payload indexes
            self._call(
                "index path",
                self.client.create_payload_index,
                name,
                "path",
                qm.PayloadSchemaType.KEYWORD,
            )
        return True

    def drop(self, name: str) -> bool:
        if not self.exists(name):
            return False
        self._call("delete a collection", self.client.delete_collection, name)
        return True

    def scroll(self, name: str, fields: Sequence[str] = HASH_FIELDS, with_vectors: bool = False) -> Iterator[qm.Record]:
        offset: Any = None
        while True:
            records, offset = self._call(
                "read points",
                self.client.scroll,
                name,
                limit=self.scroll_page,
                offset=offset,
                with_payload=list(fields),
                with_vectors=with_vectors,
            )
            yield from records
            if offset is None:
                return

    def vectors(self, name: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for i in range(0, len(ids), 256):
            for rec in self._call(
                "read vectors",
                self.client.retrieve,
                name,
                ids=list(ids[i : i + 256]),
                with_vectors=True,
                with_payload=False,
            ):
                out[str(rec.id)] = dict(rec.vector) if isinstance(rec.vector, dict) else {}
        return out

    def upsert(self, name: str, points: Sequence[qm.PointStruct], batch: int = 128) -> None:
        for i in range(0, len(points), batch):
            self._call(
                "write points",
                self.client.upsert,
                name,
                points=list(points[i : i + batch]),
                wait=True,
            )

    def delete(self, name: str, ids: Iterable[str]) -> None:
        idl = list(ids)
        for i in range(0, len(idl), 1024):
            self._call(
                "delete points",
                self.client.delete,
                name,
                points_selector=qm.PointIdsList(points=list(idl[i : i + 1024])),
                wait=True,
            )

    def set_payload(self, name: str, point: str, payload: dict[str, Any]) -> None:
        self._call(
            "update payload",
            self.client.set_payload,
            name,
            payload=payload,
            points=[point],
            wait=True,
        )

    def set_payload_all(self, name: str, payload: dict[str, Any]) -> None:
        self._call(
            "update payload",
            self.client.set_payload,
            name,
            payload=payload,
            points=qm.Filter(must=[]),
            wait=True,
        )

    def count(self, name: str) -> int:
        return int(self._call("count points", self.client.count, name, exact=True).count)

    def query(
        self,
        name: str,
        mode: str,
        dense: list[float] | None,
        sparse: tuple[list[int], list[float]] | None,
        limit: int,
    ) -> list[Hit]:
        """mode: dense, bm25 or hybrid (both prefetched, fused by Qdrant's RRF)."""
        sv = qm.SparseVector(indices=sparse[0], values=sparse[1]) if sparse else None
        kwargs: dict[str, Any]
        if mode == "dense":
            kwargs = {"query": dense, "using": "dense"}
        elif mode == "bm25":
            if sv is None or not sv.indices:
                return []
            kwargs = {"query": sv, "using": "bm25"}
        else:
            prefetch = [qm.Prefetch(query=dense, using="dense", limit=max(limit, 50))]
            if sv is not None and sv.indices:
                prefetch.append(qm.Prefetch(query=sv, using="bm25", limit=max(limit, 50)))
            kwargs = {"prefetch": prefetch, "query": qm.FusionQuery(fusion=qm.Fusion.RRF)}
        res = self._call("search", self.client.query_points, name, limit=limit, with_payload=True, **kwargs)
        return [Hit(str(p.id), float(p.score), dict(p.payload or {})) for p in res.points]
