#!/usr/bin/env python3
"""Write each role README's variable block from the role's defaults/main.yml.

The block is the first ```yaml fence under the README's "## Variables" (or "## Role variables")
heading; it becomes defaults/main.yml verbatim, comments included, without the document start
and the file's header comment (up to its first blank line). So the README says what the role
does by construction, and tests/lint/test_argument_specs.py keeps argument_specs equal to both.

  scripts/readme-variables.py            rewrite every role's block
  scripts/readme-variables.py --check    change nothing; list the READMEs that differ, exit 1
  scripts/readme-variables.py ROLE...    only these roles
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(
    r"(^## (?:Role )?[Vv]ariables[^\n]*\n(?:(?!^## ).)*?^```yaml\n)(.*?)(^```)", re.M | re.S
)


NOQA = re.compile(r"\s+# noqa: [\w\[\]\-, ]+$")


def block_for(defaults_text: str) -> str:
    """defaults/main.yml without its document start and its header comment."""
    lines = defaults_text.split("\n")
    if lines and lines[0].strip() == "---":
        lines = lines[1:]
    # The header: the leading comment lines, up to the first blank line.
    index = 0
    while index < len(lines) and lines[index].startswith("#"):
        index += 1
    if index and index < len(lines) and lines[index].strip() == "":
        lines = lines[index + 1 :]
    # A linter's trailing line directive (ansible-lint's noqa for var-naming[no-role-prefix]
    # on the operations' variables) is for the linter, not the reader.
    lines = [NOQA.sub("", line) for line in lines]
    text = "\n".join(lines).strip("\n")
    return text + "\n"


def render(readme: str, defaults_text: str) -> str:
    match = BLOCK.search(readme)
    if not match:
        raise ValueError("no ```yaml block under a '## Variables' or '## Role variables' heading")
    return readme[: match.start(2)] + block_for(defaults_text) + readme[match.end(2) :]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 when a README differs"
    )
    parser.add_argument("roles", nargs="*", help="role names (default: every role)")
    args = parser.parse_args(argv)
    roles = args.roles or sorted(
        p.name for p in (ROOT / "roles").iterdir() if (p / "defaults" / "main.yml").is_file()
    )
    differ = []
    for role in roles:
        readme_path = ROOT / "roles" / role / "README.md"
        readme = readme_path.read_text(encoding="utf-8")
        try:
            new = render(
                readme,
                (ROOT / "roles" / role / "defaults" / "main.yml").read_text(encoding="utf-8"),
            )
        except ValueError as error:
            print(f"roles/{role}/README.md: {error}", file=sys.stderr)
            return 2
        if new != readme:
            differ.append(role)
            if not args.check:
                readme_path.write_text(new, encoding="utf-8")
    for role in differ:
        verb = "differs from" if args.check else "rewritten from"
        print(f"roles/{role}/README.md: {verb} defaults/main.yml")
    if args.check and differ:
        print("Fix: scripts/readme-variables.py " + " ".join(differ), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
