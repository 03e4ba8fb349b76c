"""Which files of a repository are indexed: `git ls-files` (tracked plus untracked-not-ignored,
so .gitignore is respected), minus vendored, generated, binary and huge files."""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .errors import AwCodeError

LANGUAGES: dict[str, str] = {
    ".py": "python",
    ".pyi": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascript",
    ".ts": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".tsx": "tsx",
    ".go": "go",
    ".rs": "rust",
    ".sh": "bash",
    ".bash": "bash",
    # No grammar wheel is pinned for these: line windows.
    ".c": "c",
    ".h": "c",
    ".cc": "cpp",
    ".cpp": "cpp",
    ".hpp": "cpp",
    ".java": "java",
    ".rb": "ruby",
    ".php": "php",
    ".cs": "csharp",
    ".kt": "kotlin",
    ".swift": "swift",
    ".md": "markdown",
    ".rst": "rst",
    ".txt": "text",
    ".yml": "yaml",
    ".yaml": "yaml",
    ".toml": "toml",
    ".json": "json",
    ".ini": "ini",
    ".cfg": "ini",
    ".j2": "jinja",
    ".html": "html",
    ".css": "css",
    ".sql": "sql",
    ".tf": "hcl",
    ".proto": "proto",
}
NAMED_FILES = {"Makefile": "make", "Dockerfile": "dockerfile", "Containerfile": "dockerfile"}

# Vendored or generated trees and files: skipped by rule wherever they are.
VENDORED_DIRS = frozenset(
    {
        "node_modules",
        "vendor",
        "third_party",
        "third-party",
        "dist",
        "build",
        ".venv",
        "venv",
        "__pycache__",
        ".tox",
        ".mypy_cache",
        "site-packages",
        "bower_components",
        "target",
    }
)
SKIPPED_NAMES = frozenset(
    {
        "package-lock.json",
        "yarn.lock",
        "pnpm-lock.yaml",
        "Cargo.lock",
        "poetry.lock",
        "uv.lock",
        "go.sum",
        "Pipfile.lock",
        "composer.lock",
        "Gemfile.lock",
    }
)
SKIPPED_SUFFIXES = (
    ".min.js",
    ".min.css",
    ".map",
    ".png",
    ".jpg",
    ".jpeg",
    ".gif",
    ".ico",
    ".pdf",
    ".zip",
    ".gz",
    ".tgz",
    ".xz",
    ".bz2",
    ".whl",
    ".so",
    ".dylib",
    ".dll",
    ".exe",
    ".bin",
    ".o",
    ".a",
    ".pyc",
    ".class",
    ".jar",
    ".woff",
    ".woff2",
    ".ttf",
    ".otf",
    ".mp3",
    ".mp4",
    ".svg",
    ".lock",
    ".db",
    ".sqlite",
    ".parquet",
    ".npy",
    ".pt",
    ".safetensors",
    ".onnx",
)


@dataclass(frozen=True)
class SourceFile:
    """One indexable file: its repository-relative path, language and content."""

    path: str
    language: str
    text: str
    sha256: str
    git_blob: str


def language_of(path: str) -> str:
    """Language label from the file name ('text' when unknown)."""
    p = PurePosixPath(path)
    if p.name in NAMED_FILES:
        return NAMED_FILES[p.name]
    return LANGUAGES.get(p.suffix.lower(), "text")


def skip_reason(path: str) -> str | None:
    """Why a path is skipped by rule (vendored, lock file, binary suffix), or None."""
    p = PurePosixPath(path)
    if any(part in VENDORED_DIRS for part in p.parts[:-1]):
        return "vendored"
    if p.name in SKIPPED_NAMES:
        return "lock file"
    if p.name.lower().endswith(SKIPPED_SUFFIXES):
        return "binary or generated"
    return None


def git_blob_id(data: bytes) -> str:
    """The id git gives this content as a blob (`git hash-object`)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def _git(repo: Path, *args: str) -> str:
    try:
        out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=True, timeout=60)
    except FileNotFoundError:
        raise AwCodeError("git is not installed. Fix: sudo apt-get install git") from None
    except subprocess.CalledProcessError as exc:
        msg = exc.stderr.decode(errors="replace").strip().splitlines()
        raise AwCodeError(f"git {' '.join(args)} failed in {repo}: {msg[-1] if msg else exc.returncode}") from None
    return out.stdout.decode("utf-8", errors="surrogateescape")


def repo_root(path: str | Path) -> Path:
    """The top of the git work tree containing ``path``; a clear error when there is none."""
    p = Path(path).expanduser()
    if not p.is_dir():
        raise AwCodeError(f"{str(path)!r} is not a directory. Fix: give the path of a git repository's work tree.")
    try:
        top = subprocess.run(
            ["git", "-C", str(p), "rev-parse", "--show-toplevel"],
            capture_output=True,
            check=True,
            timeout=30,
        )
    except FileNotFoundError:
        raise AwCodeError("git is not installed. Fix: sudo apt-get install git") from None
    except subprocess.CalledProcessError:
        raise AwCodeError(
            f"{str(path)!r} is not inside a git repository. Fix:"
            f" give a repository's work tree (git init, or clone it first)."
        ) from None
    return Path(top.stdout.decode().strip()).resolve()


def branch_of(repo: Path) -> str:
    """Current branch name ('HEAD' when detached, '' in an empty repository)."""
    try:
        return _git(repo, "rev-parse", "--abbrev-ref", "HEAD").strip()
    except AwCodeError:
        return ""


def list_paths(repo: Path) -> list[str]:
    """Tracked and untracked-but-not-ignored paths (relative, sorted, unique)."""
    out = _git(repo, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    return sorted({p for p in out.split("\0") if p})


def read_source(repo: Path, path: str, max_bytes: int) -> SourceFile | None:
    """The file if it is indexable (exists, regular, not huge, not binary, UTF-8), else None."""
    if skip_reason(path):
        return None
    full = repo / path
    try:
        if full.is_symlink() or not full.is_file() or full.stat().st_size > max_bytes:
            return None
        data = full.read_bytes()
    except OSError:
        return None
    if b"\0" in data[:8192]:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not text.strip():
        return None
    return SourceFile(path, language_of(path), text, hashlib.sha256(data).hexdigest(), git_blob_id(data))
