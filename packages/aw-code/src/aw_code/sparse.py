"""BM25-style sparse vectors for code. Tokens are identifiers split at camelCase, snake_case,
digits and punctuation (the whole identifier is kept too). Documents carry BM25's saturated term
frequency; queries carry 1 per term; Qdrant's IDF modifier (`modifier: idf` on the sparse vector)
supplies the inverse document frequency at query time, from the collection's own statistics.
The same construction as fastembed's Bm25 (k1 1.2, b 0.75, a fixed average length), with a
tokenizer made for code instead of a natural-language stemmer."""

from __future__ import annotations

import re
import zlib
from collections import Counter

K1 = 1.2
B = 0.75
AVG_LEN = 256.0

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9]+")
_PARTS = re.compile(r"[A-Z]+(?=[A-Z][a-z0-9])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "if",
        "in",
        "is",
        "it",
        "of",
        "on",
        "or",
        "the",
        "this",
        "that",
        "to",
        "with",
        "self",
        "none",
        "true",
        "false",
        "return",
        "def",
        "class",
        "import",
    ]
)


def tokens(text: str) -> list[str]:
    """Lower-case terms: each identifier, then its camelCase/snake_case parts."""
    out: list[str] = []
    for word in _WORD.findall(text):
        low = word.lower()
        parts = [p.lower() for p in _PARTS.findall(word)]
        if len(low) > 1 and low not in STOPWORDS:
            out.append(low)
        if len(parts) > 1 or (parts and parts[0] != low):
            out.extend(p for p in parts if len(p) > 1 and p not in STOPWORDS)
    return out


def term_id(term: str) -> int:
    """A stable 31-bit index for a term (CRC-32; collisions only merge rare terms)."""
    return zlib.crc32(term.encode()) & 0x7FFFFFFF


def _merge(weights: dict[int, float]) -> tuple[list[int], list[float]]:
    idx = sorted(weights)
    return idx, [weights[i] for i in idx]


def document_vector(text: str) -> tuple[list[int], list[float]]:
    """(indices, values) of a document: BM25 term-frequency saturation per term."""
    counts = Counter(tokens(text))
    length = sum(counts.values())
    norm = K1 * (1 - B + B * length / AVG_LEN)
    weights: dict[int, float] = {}
    for term, tf in counts.items():
        i = term_id(term)
        weights[i] = weights.get(i, 0.0) + tf * (K1 + 1) / (tf + norm)
    return _merge(weights)


def query_vector(text: str) -> tuple[list[int], list[float]]:
    """(indices, values) of a query: 1 per distinct term (IDF comes from Qdrant)."""
    return _merge({term_id(t): 1.0 for t in set(tokens(text))})
