"""Chunking of real code in several languages (tree-sitter grammars from PyPI)."""

from __future__ import annotations

from pathlib import Path

import pytest

import aw_code
from aw_code.chunker import chunk_file

PY = '''import os


@decorator
def top(x):
    """Doc."""
    return x


class Outer:
    attr = 1

    def method(self):
        return self.attr

    async def other(self):
        pass
'''
TS = """export function greet(name: string): string {
  return `hi ${name}`;
}

export class Greeter {
  constructor(private name: string) {}
  greet(): string { return this.name; }
}

interface Shape { area(): number }
"""
GO = """package main

import "fmt"

type Point struct { X, Y int }

func (p Point) Norm() int {
\treturn p.X*p.X + p.Y*p.Y
}

func main() {
\tfmt.Println(Point{1, 2}.Norm())
}
"""
RUST = """use std::fmt;

pub struct Stack<T> { items: Vec<T> }

impl<T> Stack<T> {
    pub fn push(&mut self, item: T) { self.items.push(item); }
}

fn helper() -> u32 { 42 }
"""
BASH = """#!/usr/bin/env bash
set -e
say() {
  echo "$1"
}
say hi
"""


def symbols(path: str, lang: str, text: str) -> list[tuple[str, int, int]]:
    return [(c.symbol, c.start_line, c.end_line) for c in chunk_file(path, lang, text)]


def test_python_functions_classes_decorators() -> None:
    got = symbols("m.py", "python", PY)
    assert ("top", 4, 7) in got  # the decorator belongs to the function
    assert ("Outer", 10, 17) in got  # small class: one chunk
    assert ("", 1, 1) in got  # the import, outside every definition


def test_large_class_splits_into_methods_with_enclosing_name() -> None:
    body = "\n".join(f"        x{i} = {i}" for i in range(60))
    text = f"class Big:\n    '''Big.'''\n\n    def one(self):\n{body}\n\n    def two(self):\n        return 2\n"
    chunks = chunk_file("big.py", "python", text, max_chars=400)
    syms = {c.symbol for c in chunks}
    assert {"Big", "Big.one", "Big.two"} <= syms
    two = next(c for c in chunks if c.symbol == "Big.two")
    assert text.splitlines()[two.start_line - 1].strip() == "def two(self):"
    assert all(len(c.text) <= 400 + 60 for c in chunks)


def test_typescript_go_rust_bash() -> None:
    assert {"greet", "Greeter", "Shape"} <= {s for s, _, _ in symbols("a.ts", "typescript", TS)}
    go = symbols("m.go", "go", GO)
    assert {"Point", "Norm", "main"} <= {s for s, _, _ in go}
    assert ("Norm", 7, 9) in go
    assert {"Stack", "helper"} <= {s for s, _, _ in symbols("s.rs", "rust", RUST)}
    assert ("say", 3, 5) in symbols("x.sh", "bash", BASH)


def test_line_windows_without_grammar() -> None:
    text = "".join(f"line {i}\n" for i in range(100))
    chunks = chunk_file("notes.txt", "text", text)
    assert chunks[0].start_line == 1
    assert chunks[-1].end_line == 100
    assert all(c.symbol == "" for c in chunks)
    covered = {n for c in chunks for n in range(c.start_line, c.end_line + 1)}
    assert covered == set(range(1, 101))


def test_every_line_of_real_code_is_covered() -> None:
    """On this package's own source: every non-blank line lands in some chunk."""
    src = Path(aw_code.__file__).with_name("indexer.py").read_text()
    chunks = chunk_file("indexer.py", "python", src)
    covered = {n for c in chunks for n in range(c.start_line, c.end_line + 1)}
    lines = src.splitlines()
    missing = [i + 1 for i, line in enumerate(lines) if line.strip() and i + 1 not in covered]
    assert missing == []
    assert "index_repository" in {c.symbol for c in chunks}


@pytest.mark.parametrize("lang", ["python", "typescript", "go", "rust", "bash"])
def test_broken_code_still_chunks(lang: str) -> None:
    chunks = chunk_file("x", lang, "def (( {{ broken\n  more text\n")
    assert chunks and chunks[0].start_line == 1
