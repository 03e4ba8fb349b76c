"""plugins/filter/aw_packages.py against real dpkg-query output and recorded lines."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins" / "filter"))
from aw_packages import missing_packages

FORMAT = "-f=${db:Status-Abbrev} ${Package}\n"

# Recorded from Debian 13 (dpkg 1.22): installed, removed with its config kept ("rc"), an
# architecture-qualified multi-arch package, and one half-configured.
RECORDED = [
    "ii  nftables",
    "rc  chrony",
    "ii  libc6:amd64",
    "iF  caddy",
]


@pytest.mark.parametrize(
    ("names", "missing"),
    [
        (["nftables"], []),
        (["nftables", "chrony"], ["chrony"]),  # removed, config kept: not installed
        (["libc6"], []),
        (["libc6:amd64"], []),
        (["caddy"], ["caddy"]),  # half-configured: apt must finish it
        (["iproute2"], ["iproute2"]),  # never heard of
        (["nftables=1.1.3-1"], ["nftables=1.1.3-1"]),  # a version: apt checks it
    ],
)
def test_recorded_lines(names, missing):
    assert missing_packages(RECORDED, names) == missing


def test_a_string_is_read_as_lines():
    assert missing_packages("ii  nftables\nrc  chrony\n", ["chrony", "nftables"]) == ["chrony"]


@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="no dpkg on this machine")
def test_real_dpkg_query_output():
    # dpkg itself is installed on every Debian system; the other name exists nowhere.
    names = ["dpkg", "aw-no-such-package"]
    proc = subprocess.run(
        ["dpkg-query", "-W", FORMAT, *names], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 1  # one name unknown: dpkg-query says so on stderr
    assert missing_packages(proc.stdout.splitlines(), names) == ["aw-no-such-package"]
