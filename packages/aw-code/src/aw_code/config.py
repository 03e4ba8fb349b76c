"""Configuration from flags or environment variables (AW_CODE_*)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import AwCodeError

EMBED_APIS = ("openai", "tei")
RERANK_APIS = ("tei", "jina")


@dataclass(frozen=True)
class Settings:
    """Everything a command needs; built by :func:`from_env` (flags override)."""

    qdrant_url: str = "http://127.0.0.1:6333"
    qdrant_api_key: str | None = field(default=None, repr=False)
    embed_url: str = "http://127.0.0.1:8081"
    embed_api: str = "tei"
    embed_model: str = "nomic-ai/nomic-embed-text-v1.5"
    embed_input_type: bool = False
    query_prefix: str = "search_query: "
    doc_prefix: str = "search_document: "
    rerank_url: str | None = None
    rerank_api: str = "tei"
    rerank_model: str = ""
    state_dir: Path = Path.home() / ".local/state/aw-code"
    max_file_bytes: int = 1_000_000
    max_chunk_chars: int = 1500
    batch_size: int = 32
    truncate_tokens: int = 0  # >0: vLLM's truncate_prompt_tokens on embeddings and /rerank
    timeout_s: float = 60.0

    @property
    def embedded_qdrant(self) -> bool:
        """True when qdrant_url is a directory: qdrant-client's embedded (local) mode."""
        return not re.match(r"^https?://", self.qdrant_url)


def _bool(name: str, value: str) -> bool:
    low = value.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("", "0", "false", "no", "off"):
        return False
    raise AwCodeError(f"{name}={value!r} is not a boolean. Fix: set it to true or false.")


def _read_key(path: str) -> str:
    try:
        key = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise AwCodeError(
            f"AW_CODE_QDRANT_API_KEY_FILE={path!r} cannot be read ({exc.strerror}). "
            "Fix: point it at the Qdrant API key file (the agent stack's secrets/qdrant_api_key)."
        ) from None
    if not key:
        raise AwCodeError(f"AW_CODE_QDRANT_API_KEY_FILE={path!r} is empty. Fix: write the key into it.")
    return key


def from_env(env: dict[str, str] | None = None, **overrides: str | None) -> Settings:
    """Build Settings from ``env`` (default os.environ); non-None ``overrides`` win."""
    src = dict(os.environ if env is None else env)
    for key, value in overrides.items():
        if value is not None:
            src["AW_CODE_" + key.upper()] = value
    d = Settings()

    def get(name: str, default: str) -> str:
        return src.get("AW_CODE_" + name, default)

    embed_api = get("EMBED_API", d.embed_api)
    if embed_api not in EMBED_APIS:
        raise AwCodeError(
            f"AW_CODE_EMBED_API={embed_api!r} is not one of {', '.join(EMBED_APIS)}. Fix: use openai or tei."
        )
    rerank_api = get("RERANK_API", d.rerank_api)
    if rerank_api not in RERANK_APIS:
        raise AwCodeError(
            f"AW_CODE_RERANK_API={rerank_api!r} is not one of {', '.join(RERANK_APIS)}. Fix: use tei or jina."
        )
    qdrant_url = get("QDRANT_URL", d.qdrant_url)
    if not qdrant_url:
        raise AwCodeError(
            "AW_CODE_QDRANT_URL is empty. Fix: an http(s) URL of Qdrant, or a directory for embedded mode."
        )
    embed_url = get("EMBED_URL", d.embed_url)
    if not re.match(r"^https?://[^/]+", embed_url):
        raise AwCodeError(
            f"AW_CODE_EMBED_URL={embed_url!r} is not an http(s) URL. Fix:"
            f" e.g. http://127.0.0.1:8081 (TEI) or http://127.0.0.1:8000/v1 (OpenAI-compatible)."
        )
    rerank_url = get("RERANK_URL", "") or None
    if rerank_url and not re.match(r"^https?://[^/]+", rerank_url):
        raise AwCodeError(
            f"AW_CODE_RERANK_URL={rerank_url!r} is not an http(s) URL. Fix:"
            f" e.g. http://127.0.0.1:8082, or leave it empty."
        )
    key_file = get("QDRANT_API_KEY_FILE", "")
    ints: dict[str, int] = {}
    for name, default in (
        ("MAX_FILE_BYTES", d.max_file_bytes),
        ("MAX_CHUNK_CHARS", d.max_chunk_chars),
        ("BATCH_SIZE", d.batch_size),
    ):
        raw = get(name, str(default))
        if not raw.isdigit() or int(raw) < 1:
            raise AwCodeError(f"AW_CODE_{name}={raw!r} is not a positive integer. Fix: e.g. {default}.")
        ints[name] = int(raw)
    raw = get("TRUNCATE_TOKENS", "0")
    if not raw.isdigit():
        raise AwCodeError(f"AW_CODE_TRUNCATE_TOKENS={raw!r} is not a whole number. Fix: e.g. 256, or 0 (off).")
    return Settings(
        qdrant_url=qdrant_url,
        qdrant_api_key=_read_key(key_file) if key_file else None,
        embed_url=embed_url.rstrip("/"),
        embed_api=embed_api,
        embed_model=get("EMBED_MODEL", d.embed_model),
        embed_input_type=_bool("AW_CODE_EMBED_INPUT_TYPE", get("EMBED_INPUT_TYPE", "false")),
        query_prefix=get("QUERY_PREFIX", d.query_prefix),
        doc_prefix=get("DOC_PREFIX", d.doc_prefix),
        rerank_url=rerank_url.rstrip("/") if rerank_url else None,
        rerank_api=rerank_api,
        rerank_model=get("RERANK_MODEL", d.rerank_model),
        state_dir=Path(get("STATE_DIR", str(d.state_dir))),
        max_file_bytes=ints["MAX_FILE_BYTES"],
        max_chunk_chars=ints["MAX_CHUNK_CHARS"],
        batch_size=ints["BATCH_SIZE"],
        truncate_tokens=int(raw),
    )
