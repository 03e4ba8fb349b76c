# Copyright: agent-workstation contributors
# SPDX-License-Identifier: Apache-2.0 (see LICENSE at the repository root)
"""Pure parsers for what the host roles read before they change anything.

- ``apt-cache policy`` / ``apt-cache madison`` (run with ``LC_ALL=C``): which versions of a
  package the configured sources really offer, and from where;
- Debian version comparison (the algorithm of dpkg's ``verrevcmp``, deb-version(7)); the unit
  tests check it against the real ``dpkg --compare-versions``;
- the driver version to pin for a branch: an exact version or a glob the repository does not
  offer stops with the versions it does offer;
- ``dkms status`` (dkms 2.x and 3.x line formats) and ``mokutil --sb-state``;

Every function here is typed and side-effect free; the modules do the I/O.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field

# --------------------------------------------------------------------------------------------
# Debian version comparison (deb-version(7); dpkg lib/dpkg/version.c verrevcmp)


class AptInputError(ValueError):
    """Text that cannot be what the tool prints."""


def _order(char: str) -> int:
    if char == "~":
        return -1
    if char.isdigit():
        return 0
    if char.isalpha():
        return ord(char)
    return ord(char) + 256


def _verrevcmp(a: str, b: str) -> int:
    i = j = 0
    while i < len(a) or j < len(b):
        first_diff = 0
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _order(a[i]) if i < len(a) else 0
            bc = _order(b[j]) if j < len(b) else 0
            if ac != bc:
                return ac - bc
            i += 1
            j += 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        while i < len(a) and a[i].isdigit() and j < len(b) and b[j].isdigit():
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if first_diff:
            return first_diff
    return 0


def _split(version: str) -> tuple[int, str, str]:
    text = version.strip()
    if not text or " " in text:
        raise AptInputError(f"{version!r} is not a Debian package version")
    epoch = 0
    if ":" in text:
        head, text = text.split(":", 1)
        if not head.isdigit():
            raise AptInputError(f"{version!r} has a non-numeric epoch")
        epoch = int(head)
    upstream, _, revision = text.rpartition("-")
    if not upstream:
        upstream, revision = revision, ""
    return epoch, upstream, revision


def compare_versions(a: str, b: str) -> int:
    """<0, 0, >0 as dpkg orders the two versions (epoch, upstream, revision)."""
    ea, ua, ra = _split(a)
    eb, ub, rb = _split(b)
    if ea != eb:
        return ea - eb
    return _verrevcmp(ua, ub) or _verrevcmp(ra, rb)


def sort_versions(versions: list[str]) -> list[str]:
    """Highest first, without duplicates."""
    out: list[str] = []
    for version in versions:
        if version in out:
            continue
        pos = 0
        while pos < len(out) and compare_versions(out[pos], version) > 0:
            pos += 1
        out.insert(pos, version)
    return out


# --------------------------------------------------------------------------------------------
# apt-cache policy / madison


@dataclass
class Offer:
    """One version of a package and the sources (with priorities) that carry it."""

    version: str
    sources: list[str] = field(default_factory=list)
    priorities: list[int] = field(default_factory=list)
    installed: bool = False


@dataclass
class Policy:
    """What ``apt-cache policy PKG`` says about one package."""

    package: str
    installed: str | None
    candidate: str | None
    offers: list[Offer]

    @property
    def versions(self) -> list[str]:
        """Versions a source offers (the dpkg status entry alone is not an offer)."""
        return [
            o.version for o in self.offers if any(s != "/var/lib/dpkg/status" for s in o.sources)
        ]


_POLICY_HEAD = re.compile(r"^(\S+):$")
_POLICY_FIELD = re.compile(r"^  (Installed|Candidate): (\S+)$")
_POLICY_VERSION = re.compile(r"^ (\*\*\*| {3}) (\S+) (-?\d+)$")
_POLICY_SOURCE = re.compile(r"^ {8}(-?\d+) (.+?)\s*$")


def parse_policy(text: str) -> dict[str, Policy]:
    """Parse ``LC_ALL=C apt-cache policy PKG...``: one Policy per package named.

    A package apt does not know prints nothing (apt >= 2.x) or ``N: Unable to locate
    package X``: it is absent from the result. ``Installed: (none)`` / ``Candidate: (none)``
    become None.
    """
    out: dict[str, Policy] = {}
    cur: Policy | None = None
    offer: Offer | None = None
    in_table = False
    for raw in text.splitlines():
        line = raw.rstrip("\n")
        if not line.strip() or line.startswith(("N: ", "W: ", "E: ")):
            continue
        if head := _POLICY_HEAD.match(line):
            if head.group(1) in ("Package files", "Pinned packages"):
                cur = None
                continue
            cur = Policy(head.group(1), None, None, [])
            out[cur.package] = cur
            offer, in_table = None, False
            continue
        if cur is None:
            continue
        if fld := _POLICY_FIELD.match(line):
            value = None if fld.group(2) == "(none)" else fld.group(2)
            if fld.group(1) == "Installed":
                cur.installed = value
            else:
                cur.candidate = value
            continue
        # "  Version table:" (LC_ALL=C; the module forces it) or a translation of it.
        if re.fullmatch(r"  \S[^:]*:", line):
            in_table = True
            continue
        if not in_table:
            continue
        if ver := _POLICY_VERSION.match(line):
            offer = Offer(ver.group(2), installed=ver.group(1) == "***")
            cur.offers.append(offer)
            continue
        if (src := _POLICY_SOURCE.match(line)) and offer is not None:
            offer.priorities.append(int(src.group(1)))
            offer.sources.append(src.group(2))
            continue
        raise AptInputError(f"unexpected line in apt-cache policy output: {line!r}")
    return out


_MADISON = re.compile(r"^\s*(\S+)\s+\|\s+(\S+)\s+\|\s+(.+?)\s*$")


def parse_madison(text: str) -> dict[str, list[Offer]]:
    """Parse ``apt-cache madison PKG...``: package -> offers, in the order apt printed them."""
    out: dict[str, list[Offer]] = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith(("N: ", "W: ", "E: ")):
            continue
        m = _MADISON.match(line)
        if not m:
            raise AptInputError(f"unexpected line in apt-cache madison output: {line!r}")
        name, version, source = m.groups()
        offers = out.setdefault(name, [])
        for offer in offers:
            if offer.version == version:
                offer.sources.append(source)
                break
        else:
            offers.append(Offer(version, [source]))
    return out


# --------------------------------------------------------------------------------------------
# The driver version to pin


class ResolveError(ValueError):
    """The wanted driver version is not on offer; the message lists what is."""


@dataclass
class Resolution:
    version: str
    reason: str
    offered: list[str]


def upstream_version(version: str) -> str:
    """``550.163.01-2`` -> ``550.163.01`` (epoch and Debian revision dropped)."""
    _, upstream, _ = _split(version)
    return upstream


def branch_of(version: str) -> str:
    return upstream_version(version).split(".", 1)[0]


def resolve_driver_version(
    offered: list[str],
    branch: str,
    wanted: str | None,
    installed: str | None = None,
    package: str = "the driver package",
) -> Resolution:
    """The exact package version to pin.

    ``wanted`` is an exact version or a glob (``550.163.01-*``); None means: keep the installed
    version of the branch when one is installed and still on offer, else the newest offered
    version of the branch. A wanted version the sources do not offer raises ResolveError with
    the versions of the branch that are offered (and the other branches, when the branch has
    none).
    """
    if not re.fullmatch(r"\d{3,4}", branch or ""):
        raise ResolveError(f"branch {branch!r} is not three or four digits")
    in_branch = sort_versions([v for v in offered if branch_of(v) == branch])
    others = sorted({branch_of(v) for v in offered if branch_of(v) != branch})

    def _missing(what: str) -> ResolveError:
        have = ", ".join(in_branch) if in_branch else "none"
        other = f"; other branches offered: {', '.join(others)}" if others else ""
        return ResolveError(
            f"{what} is not offered by the configured sources for {package}. "
            f"Versions of branch {branch} on offer: {have}{other}."
        )

    if wanted:
        if "*" in wanted or "?" in wanted:
            matches = [v for v in in_branch if fnmatch.fnmatchcase(v, wanted)]
            if not matches:
                raise _missing(f"no version matching {wanted!r}")
            return Resolution(matches[0], f"newest offered version matching {wanted}", in_branch)
        if wanted not in offered:
            raise _missing(f"version {wanted!r}")
        if branch_of(wanted) != branch:
            raise ResolveError(f"version {wanted!r} is not of branch {branch}")
        return Resolution(wanted, "the pinned version", in_branch)
    if not in_branch:
        raise _missing(f"branch {branch}")
    if installed and installed in in_branch:
        return Resolution(installed, "the installed version (no version pinned)", in_branch)
    return Resolution(
        in_branch[0], "newest offered version of the branch (no version pinned)", in_branch
    )


# --------------------------------------------------------------------------------------------
# dkms status / mokutil --sb-state


@dataclass
class DkmsEntry:
    module: str
    version: str
    kernel: str | None
    arch: str | None
    state: str


# dkms 3.x: "nvidia/550.163.01, 6.12.38+deb13-amd64, x86_64: installed"
#           "nvidia/550.163.01: added"
# dkms 2.x: "nvidia, 535.183.01, 6.1.0-21-amd64, x86_64: installed"
# A state may carry a note: "installed (WARNING! Diff between built and installed module!)".
_DKMS3 = re.compile(r"^([^/,\s]+)/([^,\s:]+)(?:, ([^,\s]+), ([^,\s:]+))?: (\S+)")
_DKMS2 = re.compile(r"^([^/,\s]+), ([^,\s]+)(?:, ([^,\s]+), ([^,\s:]+))?: (\S+)")


def parse_dkms_status(text: str) -> list[DkmsEntry]:
    out: list[DkmsEntry] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("Warning", "Error", "Deprecated")):
            continue
        m = _DKMS3.match(line) or _DKMS2.match(line)
        if not m:
            raise AptInputError(f"unexpected line in dkms status output: {line!r}")
        module, version, kernel, arch, state = m.groups()
        out.append(DkmsEntry(module, version, kernel, arch, state.rstrip(",")))
    return out


def dkms_missing_kernels(
    entries: list[DkmsEntry], module: str, version: str, kernels: list[str]
) -> list[str]:
    """The kernels (of ``kernels``) for which a module matching the regular expression ``module``
    at ``version`` is not installed by dkms. Debian names its module ``nvidia-current``
    (``nvidia-current-open``), NVIDIA's and Ubuntu's packages ``nvidia``."""
    pattern = re.compile(module)
    have = {
        e.kernel
        for e in entries
        if pattern.fullmatch(e.module) and e.version == version and e.state == "installed"
    }
    return [k for k in kernels if k not in have]


def newest_kernel(kernels: list[str]) -> str | None:
    """The highest kernel release of a list such as the entries of /lib/modules."""
    ordered = sort_versions([k for k in kernels if k and k[0].isdigit()])
    return ordered[0] if ordered else None


def parse_sb_state(text: str) -> str:
    """``mokutil --sb-state`` -> "enabled", "disabled" or "unsupported" (no EFI / no SB)."""
    low = text.lower()
    if "secureboot enabled" in low:
        return "enabled"
    if "secureboot disabled" in low:
        return "disabled"
    # mokutil 0.6+: no EFI at all; older mokutil on a BIOS boot: the variable cannot be read.
    if any(
        s in low
        for s in (
            "doesn't support secure boot",
            "efi variables are not supported",
            "failed to read secureboot",
        )
    ):
        return "unsupported"
    if "secureboot unknown" in low:
        return "unknown"
    raise AptInputError(f"unexpected mokutil --sb-state output: {text.strip()!r}")


def parse_test_key(text: str) -> bool:
    """``mokutil --test-key FILE``: True for "... is already enrolled", False for "... is not
    enrolled"."""
    low = text.lower()
    if "is already enrolled" in low:
        return True
    if "is not enrolled" in low:
        return False
    raise AptInputError(f"unexpected mokutil --test-key output: {text.strip()!r}")
