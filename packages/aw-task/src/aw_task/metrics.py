"""Prometheus metrics of the queue, read from Redis at scrape time (so they match the queue's
real state whichever process changed it), plus the worker's own timings."""

from __future__ import annotations

import time
from collections.abc import Iterator

import redis
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from .model import State
from .store import Queue

DURATION_BUCKETS = (30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, float("inf"))


class QueueCollector(Collector):
    def __init__(self, queue: Queue, slots: int) -> None:
        self.queue = queue
        self.slots = slots

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        up = GaugeMetricFamily("aw_task_redis_up", "1 when the queue's Redis answered")
        try:
            depth = self.queue.count(State.QUEUED)
            running = self.queue.count(State.RUNNING)
            age = self.queue.oldest_waiting_age(time.time())
            stats = self.queue.stats()
        except redis.RedisError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield GaugeMetricFamily("aw_task_queue_depth", "Tasks waiting to run", value=depth)
        yield GaugeMetricFamily("aw_task_running", "Tasks running now", value=running)
        yield GaugeMetricFamily(
            "aw_task_oldest_waiting_age_seconds",
            "Age of the oldest waiting task (0 when none waits)",
            value=age,
        )
        yield GaugeMetricFamily(
            "aw_task_worker_slots", "Tasks this worker runs at once", value=self.slots
        )
        for name, key, text in (
            ("aw_task_finished", "succeeded", "Tasks that finished successfully"),
            ("aw_task_failed", "failed", "Tasks that failed"),
            ("aw_task_cancelled", "cancelled", "Tasks cancelled"),
            ("aw_task_retried", "retried", "Attempts retried (OpenHands error or acceptance)"),
            ("aw_task_submitted", "submitted", "Tasks submitted"),
        ):
            yield CounterMetricFamily(name, text, value=stats.get(key, 0))


class Metrics:
    def __init__(self, queue: Queue, slots: int, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        self.registry.register(QueueCollector(queue, slots))
        self.duration = Histogram(
            "aw_task_duration_seconds",
            "Task run time, from start to its final state",
            ["status"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.started = Histogram(
            "aw_task_start_delay_seconds",
            "Submit to the OpenHands start request of an attempt",
            buckets=(1, 5, 15, 60, 300, 900, 3600, float("inf")),
            registry=self.registry,
        )
