"""aw-task: the workstation's queue of OpenHands tasks (Redis Streams, bounded parallelism)."""

__version__ = "0.1.0"
