#!/usr/bin/env python3
# Copyright: agent-workstation contributors
# SPDX-License-Identifier: Apache-2.0 (see LICENSE at the repository root)
"""Record what SGLang accepts and exports, read from its source at one version.

SGLang cannot run here (no GPU; no CPU build on PyPI), so the stack's `sglang` service is
tested against this record: the CLI flags of `python -m sglang.launch_server`, the tool-call
parsers, KV-cache dtypes and quantizations it accepts, its HTTP routes and Prometheus metric
names. It reads the source statically (ast and regular expressions, nothing is imported):

  pip download --no-deps sglang==0.5.17 -d /tmp/sgl      # the PyPI wheel holds the source
  python3 -m zipfile -e /tmp/sgl/sglang-0.5.17-*.whl /tmp/sgl/x
  scripts/sglang-contract.py /tmp/sgl/x --wheel /tmp/sgl/sglang-0.5.17-*.whl \
      > tests/contracts/sglang-0.5.17.json

Flags: every field of the ServerArgs dataclass (python/sglang/srt/server_args.py) annotated
`A[T, "help"]` or `A[T, Arg(...)]` becomes `--field-name` (or Arg's cli_name) plus Arg's
aliases, unless Arg(no_cli=True) (srt/arg_groups/arg_utils.py, add_cli_args_from_dataclass);
plus the literal `parser.add_argument("--...")` calls of ServerArgs.add_cli_args.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import pathlib
import re
import sys


def _const_list(node: ast.AST) -> list[str]:
    if isinstance(node, (ast.List, ast.Tuple)):
        return [
            e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)
        ]
    return []


def _arg_meta(annotation: ast.AST) -> dict | None:
    """Arg metadata of an `A[T, ...]` annotation: {} for a bare help string, None for no CLI."""
    if not (
        isinstance(annotation, ast.Subscript)
        and getattr(annotation.value, "id", "") in ("A", "Annotated")
    ):
        return None
    elems = annotation.slice.elts if isinstance(annotation.slice, ast.Tuple) else [annotation.slice]
    for elem in elems[1:]:
        if isinstance(elem, ast.Call) and getattr(elem.func, "id", "") == "Arg":
            meta = {kw.arg: kw.value for kw in elem.keywords}
            if isinstance(meta.get("no_cli"), ast.Constant) and meta["no_cli"].value is True:
                return None
            return meta
        if isinstance(elem, (ast.Constant, ast.JoinedStr, ast.BinOp)) and not isinstance(
            getattr(elem, "value", None), (int, float)
        ):
            return {}
    return None


def server_args(tree: ast.Module) -> tuple[list[str], dict[str, list[str]]]:
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "ServerArgs")
    flags: set[str] = set()
    choices: dict[str, list[str]] = {}
    for node in cls.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            meta = _arg_meta(node.annotation)
            if meta is None:
                continue
            name = node.target.id
            cli = meta["cli_name"].value if "cli_name" in meta else "--" + name.replace("_", "-")
            flags.add(cli)
            flags.update(_const_list(meta["aliases"]) if "aliases" in meta else [])
            if "choices" in meta and _const_list(meta["choices"]):
                choices[cli] = _const_list(meta["choices"])
        if isinstance(node, ast.FunctionDef) and node.name == "add_cli_args":
            for call in ast.walk(node):
                if isinstance(call, ast.Call) and getattr(call.func, "attr", "") == "add_argument":
                    flags.update(
                        a.value
                        for a in call.args
                        if isinstance(a, ast.Constant) and str(a.value).startswith("--")
                    )
    return sorted(flags), choices


def module_list(tree: ast.Module, name: str) -> list[str]:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == name for t in node.targets):
            return _const_list(node.value)
    raise SystemExit(f"{name} not found")


def tool_call_parsers(text: str) -> list[str]:
    block = text[text.index("ToolCallParserEnum") :]
    block = block[: block.index("}")]
    return sorted(re.findall(r'"([A-Za-z0-9_]+)"\s*:', block))


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "root", type=pathlib.Path, help="directory holding the sglang package (the unpacked wheel)"
    )
    ap.add_argument(
        "--wheel",
        type=pathlib.Path,
        help="the wheel it came from (its name and sha256 are recorded)",
    )
    ns = ap.parse_args()
    srt = ns.root / "sglang/srt"
    sa_text = (srt / "server_args.py").read_text()
    sa = ast.parse(sa_text)
    flags, choices = server_args(sa)
    http = (srt / "entrypoints/http_server.py").read_text()
    routes = sorted(
        set(re.findall(r'@app\.(?:get|post|put|delete|api_route)\(\s*"(/[^"]*)"', http))
    )
    metrics = sorted(
        set(
            re.findall(
                r'name="(sglang:[A-Za-z0-9_:]+)"',
                (srt / "observability/metrics_collector.py").read_text(),
            )
        )
    )
    version = None
    if ns.wheel:
        version = re.match(r"sglang-([^-]+)-", ns.wheel.name).group(1)
    record = {
        "what": "SGLang's CLI flags, choices, routes and metric names, read from its source "
        "by scripts/sglang-contract.py",
        "version": version,
        "source": {
            "wheel": ns.wheel.name if ns.wheel else None,
            "wheel_sha256": hashlib.sha256(ns.wheel.read_bytes()).hexdigest() if ns.wheel else None,
            "url": f"https://pypi.org/project/sglang/{version}/" if version else None,
            "files": [
                "sglang/srt/server_args.py",
                "sglang/srt/arg_groups/arg_utils.py",
                "sglang/srt/entrypoints/http_server.py",
                "sglang/srt/observability/metrics_collector.py",
                "sglang/srt/function_call/function_call_parser.py",
            ],
        },
        "flags": flags,
        "choices": {
            "--kv-cache-dtype": choices.get("--kv-cache-dtype", []),
            "--quantization": module_list(sa, "QUANTIZATION_CHOICES"),
            "--tool-call-parser": tool_call_parsers(
                (srt / "function_call/function_call_parser.py").read_text()
            ),
        },
        "routes": routes,
        "metrics": metrics,
    }
    json.dump(record, sys.stdout, indent=1, sort_keys=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
