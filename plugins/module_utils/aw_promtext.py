# Copyright: agent-workstation contributors
# SPDX-License-Identifier: Apache-2.0 (see LICENSE at the repository root)
"""A small parser for the Prometheus text exposition format (no I/O)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?P<labels>\{.*\})?\s+(?P<rest>.+)$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


@dataclass
class Sample:
    name: str
    value: float
    labels: dict[str, str] = field(default_factory=dict)


def _unescape(value: str) -> str:
    return value.replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")


def _value(text: str) -> float:
    token = text.split(maxsplit=1)[0]
    lowered = token.lower()
    if lowered in ("+inf", "inf"):
        return math.inf
    if lowered == "-inf":
        return -math.inf
    if lowered == "nan":
        return math.nan
    return float(token)


def parse(text: str) -> list[Sample]:
    """Every sample line; comments, blank and malformed lines are skipped."""
    samples: list[Sample] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if not match:
            continue
        labels: dict[str, str] = {}
        if match.group("labels"):
            body = match.group("labels")[1:-1]
            labels = {k: _unescape(v) for k, v in _LABEL.findall(body)}
        try:
            value = _value(match.group("rest"))
        except ValueError:
            continue
        samples.append(Sample(match.group("name"), value, labels))
    return samples


def values(samples: list[Sample], name: str) -> list[float]:
    return [s.value for s in samples if s.name == name]
