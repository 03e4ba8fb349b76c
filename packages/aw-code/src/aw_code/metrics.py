"""Prometheus metrics (prometheus-client). Served at /metrics by `aw-code serve-mcp` and
`aw-code watch --metrics-port`."""

from __future__ import annotations

import time

from prometheus_client import Counter, Gauge, Histogram

FILES = Gauge("aw_code_files", "Indexed files", ["collection"])
CHUNKS = Gauge("aw_code_chunks", "Indexed chunks (points)", ["collection"])
INDEX_LAG = Gauge(
    "aw_code_index_lag_seconds",
    "Seconds since the oldest change in the working tree that the index does not hold yet (0 when current)",
    ["collection"],
)
LAST_DURATION = Gauge("aw_code_last_index_duration_seconds", "Duration of the last index run", ["collection"])
LAST_SUCCESS = Gauge(
    "aw_code_last_index_success_timestamp_seconds",
    "Unix time of the last successful index run",
    ["collection"],
)
INDEX_RUNS = Counter("aw_code_index_runs_total", "Index runs by result", ["collection", "result"])
QUERY_LATENCY = Histogram(
    "aw_code_query_latency_seconds",
    "Search latency (embedding, Qdrant, rerank)",
    ["mode"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


class LagClock:
    """Index lag of one collection: set when a change is seen, cleared when a run that started
    after it finishes."""

    def __init__(self, collection: str) -> None:
        self.collection = collection
        self.dirty_since: float | None = None

    def changed(self, when: float | None = None) -> None:
        if self.dirty_since is None:
            self.dirty_since = time.time() if when is None else when

    def indexed(self, started: float) -> None:
        if self.dirty_since is not None and self.dirty_since <= started:
            self.dirty_since = None

    def lag(self, now: float | None = None) -> float:
        if self.dirty_since is None:
            return 0.0
        return max(0.0, (time.time() if now is None else now) - self.dirty_since)

    def publish(self) -> None:
        INDEX_LAG.labels(collection=self.collection).set(self.lag())
