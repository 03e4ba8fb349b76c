# Copyright: agent-workstation contributors
# SPDX-License-Identifier: Apache-2.0 (see LICENSE at the repository root)
"""gpg's colon listing (``gpg --show-keys --with-colons FILE``) -> the primary key fingerprints.

Used by roles/nvidia_driver to check a downloaded repository key before apt trusts it. The
record layout is GnuPG's doc/DETAILS: a ``pub`` record, then its ``fpr`` record (field 10);
``sub`` records (subkeys) have their own ``fpr`` records, which are not primary fingerprints.
"""

from __future__ import annotations


def primary_fingerprints(colons: str) -> list[str]:
    """The fingerprints of the primary keys (``pub`` records) in gpg's colon listing."""
    out: list[str] = []
    after_pub = False
    for line in str(colons).splitlines():
        fields = line.split(":")
        if fields[0] == "pub":
            after_pub = True
        elif fields[0] == "fpr" and after_pub and len(fields) > 9:
            out.append(fields[9].upper())
            after_pub = False
        elif fields[0] in ("sub", "uid", "ssb", "sec"):
            after_pub = fields[0] == "sec"
    return out


class FilterModule:
    """The project's gpg filters."""

    def filters(self):
        return {"aw_gpg_fingerprints": primary_fingerprints}
