# Copyright: agent-workstation contributors
# SPDX-License-Identifier: Apache-2.0 (see LICENSE at the repository root)
"""dpkg's view of a package list -> the packages not installed yet.

A no-op ``ansible.builtin.apt`` task with ``update_cache`` is the most expensive part of a
whole-site re-run (tests/bench/bench_site_rerun.py: 20-150 s per role): on Debian its
``cache_valid_time`` reads the mtime of /var/lib/apt/lists, which ``apt-get update`` leaves
unchanged when no index changed, so every run refreshes the lists again. The roles ask dpkg
first (``dpkg-query -W -f='${db:Status-Abbrev} ${Package}\\n' NAME...``, which answers in
milliseconds) and run apt only for a package this filter reports missing.
"""

from __future__ import annotations

import re

_SPEC = re.compile(r"^([a-z0-9][a-z0-9+.-]*)(?::[a-z0-9-]+)?(?:[=<>].*)?$")


def missing_packages(dpkg_lines: list[str] | str, names: list[str]) -> list[str]:
    """The names (as given, version or arch suffix kept) that dpkg does not list as installed.

    ``dpkg_lines``: the stdout lines of ``dpkg-query -W -f='${db:Status-Abbrev} ${Package}\\n'``;
    a package dpkg has never heard of is not in them (dpkg-query says so on stderr, exit 1). A
    name with a version (``pkg=1.2-*``) is reported missing: apt must check the version.
    """
    lines = dpkg_lines.splitlines() if isinstance(dpkg_lines, str) else list(dpkg_lines)
    installed = set()
    for line in lines:
        status, _, package = line.strip().partition(" ")
        if status.startswith("ii") and package:
            installed.add(package.strip().split(":")[0])
    out = []
    for name in names:
        m = _SPEC.match(str(name))
        if m is None or "=" in str(name) or m.group(1) not in installed:
            out.append(name)
    return out


class FilterModule:
    """The project's package filters."""

    def filters(self):
        return {"aw_missing_packages": missing_packages}
