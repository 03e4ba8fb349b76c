"""Syntax-aware chunks: functions, classes, methods (with their enclosing names and line ranges)
from tree-sitter; line windows for languages without a pinned grammar and for the code between
definitions."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache

import tree_sitter
import tree_sitter_bash
import tree_sitter_go
import tree_sitter_javascript
import tree_sitter_python
import tree_sitter_rust
import tree_sitter_typescript

_GRAMMARS: dict[str, Callable[[], object]] = {
    "python": tree_sitter_python.language,
    "javascript": tree_sitter_javascript.language,
    "typescript": tree_sitter_typescript.language_typescript,
    "tsx": tree_sitter_typescript.language_tsx,
    "go": tree_sitter_go.language,
    "rust": tree_sitter_rust.language,
    "bash": tree_sitter_bash.language,
}

# Node types that make a chunk of their own, by language.
_JS_DEFS = frozenset(
    {
        "function_declaration",
        "generator_function_declaration",
        "class_declaration",
        "method_definition",
        "abstract_class_declaration",
        "interface_declaration",
        "type_alias_declaration",
        "enum_declaration",
        "module",
    }
)
DEFINITIONS: dict[str, frozenset[str]] = {
    "python": frozenset({"function_definition", "class_definition"}),
    "javascript": _JS_DEFS,
    "typescript": _JS_DEFS,
    "tsx": _JS_DEFS,
    "go": frozenset({"function_declaration", "method_declaration", "type_declaration"}),
    "rust": frozenset(
        {
            "function_item",
            "impl_item",
            "struct_item",
            "enum_item",
            "trait_item",
            "mod_item",
            "macro_definition",
        }
    ),
    "bash": frozenset({"function_definition"}),
}
# Wrappers whose span (decorators, `export`) belongs to the definition inside them.
_WRAPPERS = frozenset({"decorated_definition", "export_statement"})

WINDOW_LINES = 40
WINDOW_OVERLAP = 5


@dataclass(frozen=True)
class Chunk:
    """A piece of a file. Lines are 1-based and inclusive."""

    path: str
    language: str
    symbol: str
    start_line: int
    end_line: int
    text: str

    @property
    def content_hash(self) -> str:
        """Hash of what is embedded (symbol and code, not the path: a renamed file's chunks keep it)."""
        return hashlib.sha256(f"{self.language}\0{self.symbol}\0{self.text}".encode()).hexdigest()

    def embed_text(self) -> str:
        """The text given to the embedding model (without the model's prefix)."""
        head = f"{self.symbol}\n" if self.symbol else ""
        return head + self.text


def has_grammar(language: str) -> bool:
    return language in _GRAMMARS


@cache
def _parser(language: str) -> tree_sitter.Parser:
    return tree_sitter.Parser(tree_sitter.Language(_GRAMMARS[language]()))


def _name(node: tree_sitter.Node) -> str:
    """The definition's own name ('' when it has none)."""
    for field in ("name", "type"):
        child = node.child_by_field_name(field)
        if child is not None and child.text is not None and node.type != "type_declaration":
            return child.text.decode(errors="replace")
    if node.type == "type_declaration":  # go: type_spec children carry the names
        for child in node.named_children:
            n = child.child_by_field_name("name")
            if n is not None and n.text is not None:
                return n.text.decode(errors="replace")
    return ""


def _windows(lines: list[str], first: int, last: int, max_chars: int) -> Iterator[tuple[int, int]]:
    """Line windows (0-based inclusive) over lines[first..last], each at most WINDOW_LINES lines
    and about max_chars characters, overlapping by WINDOW_OVERLAP lines."""
    start = first
    while start <= last:
        end = start
        size = len(lines[start])
        while end < last and end - start + 1 < WINDOW_LINES and size + len(lines[end + 1]) <= max_chars:
            end += 1
            size += len(lines[end])
        yield start, end
        if end >= last:
            return
        start = max(end + 1 - WINDOW_OVERLAP, start + 1)


def chunk_file(path: str, language: str, text: str, max_chars: int = 1500) -> list[Chunk]:
    """Chunks of one file, in line order."""
    lines = text.splitlines(keepends=True)
    if not lines:
        return []
    spans: list[tuple[int, int, str]] = []  # 0-based inclusive rows, symbol
    if has_grammar(language):
        tree = _parser(language).parse(text.encode("utf-8"))
        _collect(tree.root_node, defs=DEFINITIONS[language], scope=[], spans=spans, lines=lines, max_chars=max_chars)
    covered = [False] * len(lines)
    for s, e, _ in spans:
        for i in range(s, e + 1):
            covered[i] = True
    # The code outside every definition (imports, module-level statements, whole files of
    # languages without a grammar) in line windows.
    i = 0
    while i < len(lines):
        if covered[i] or not lines[i].strip():
            i += 1
            continue
        j = i
        while j + 1 < len(lines) and not covered[j + 1]:
            j += 1
        while j > i and not lines[j].strip():
            j -= 1
        spans.extend((s, e, "") for s, e in _windows(lines, i, j, max_chars))
        i = j + 1
    spans.sort()
    out = []
    for s, e, sym in spans:
        body = "".join(lines[s : e + 1])
        if body.strip():
            out.append(Chunk(path, language, sym, s + 1, e + 1, body))
    return out


def _collect(
    node: tree_sitter.Node,
    *,
    defs: frozenset[str],
    scope: list[str],
    spans: list[tuple[int, int, str]],
    lines: list[str],
    max_chars: int,
) -> None:
    for child in node.named_children:
        target = child
        if child.type in _WRAPPERS:
            inner = [c for c in child.named_children if c.type in defs]
            if len(inner) == 1:
                target = inner[0]
        if target.type not in defs:
            _collect(child, defs=defs, scope=scope, spans=spans, lines=lines, max_chars=max_chars)
            continue
        name = _name(target)
        symbol = ".".join([*scope, name]) if name else ".".join(scope)
        s, e = child.start_point.row, child.end_point.row
        if child.end_point.column == 0 and e > s:
            e -= 1
        size = sum(len(x) for x in lines[s : e + 1])
        if size <= max_chars:
            spans.append((s, e, symbol))
            continue
        # Too big: its inner definitions become chunks of their own, and the rest of it (the
        # signature, docstring, attributes, long bodies) goes into windows under its name.
        before = len(spans)
        _collect(
            target, defs=defs, scope=[*scope, name] if name else scope, spans=spans, lines=lines, max_chars=max_chars
        )
        inner_rows: set[int] = set()
        for cs, ce, _ in spans[before:]:
            inner_rows.update(range(cs, ce + 1))
        row = s
        while row <= e:
            if row in inner_rows or not lines[row].strip():
                row += 1
                continue
            end = row
            while end + 1 <= e and end + 1 not in inner_rows:
                end += 1
            spans.extend((ws, we, symbol) for ws, we in _windows(lines, row, end, max_chars))
            row = end + 1
