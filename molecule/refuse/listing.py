"""A listing of everything a site run could change, and the comparison of two listings.

  listing: run INSIDE the instance with its own python3, this file given on stdin, so that
           taking the listing writes nothing there:
             docker exec -i NAME python3 - < listing.py > before.txt
  compare: on the controller:  python3 listing.py compare before.txt after.txt
           prints every changed path (`+` added, `-` removed, `~` changed) with its old and new
           line, and exits 1 when the listings differ, 0 when they are identical.

A line is: path, type and mode, owner, size, modification time (ns), and the SHA-256 of a
regular file's content or a symbolic link's target. A directory's modification time changes
when an entry is added, removed or renamed in it, so a file created and deleted again shows.
"""

import hashlib
import os
import stat
import sys

ROOTS = ["/etc", "/usr", "/opt", "/srv", "/home", "/var/lib"]

# Paths left out because they change by themselves while the instance idles. None is needed in
# the Debian 13 base image once boot has finished (converge.yml waits for
# `systemctl is-system-running --wait` first): listings of an idle instance taken 3, 4 and 19
# minutes after boot (the last after systemd-tmpfiles-clean.timer had fired) were identical.
# During boot /etc/.updated, /etc/ld.so.cache and /etc/mtab still change (systemd-update-done,
# ldconfig.service, systemd-tmpfiles), which is why converge waits.
# /var/lib/systemd/random-seed is not written in a container (systemd-random-seed.service has
# ConditionVirtualization=!container); the apt-daily and dpkg-db-backup timers are hours away
# from a fresh boot (their stamps would go to /var/lib/systemd/timers).
EXCLUDE: set[str] = set()


def describe(path: str) -> str:
    st = os.lstat(path)
    kind = stat.S_IFMT(st.st_mode)
    head = f"{path}\t{stat.filemode(st.st_mode)}\t{st.st_uid}:{st.st_gid}"
    if kind == stat.S_IFREG:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return f"{head}\t{st.st_size}\t{st.st_mtime_ns}\t{digest.hexdigest()}"
    if kind == stat.S_IFLNK:
        return f"{head}\t-\t{st.st_mtime_ns}\t-> {os.readlink(path)}"
    return f"{head}\t-\t{st.st_mtime_ns}\t-"


def listing() -> list[str]:
    out = []
    for root in ROOTS:
        if not os.path.lexists(root):
            out.append(f"{root}\tabsent")
            continue
        out.append(describe(root))
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if os.path.join(dirpath, d) not in EXCLUDE]
            for name in dirnames + filenames:
                path = os.path.join(dirpath, name)
                if path not in EXCLUDE:
                    out.append(describe(path))
    return sorted(out)


def _by_path(text: str) -> dict[str, str]:
    return {line.split("\t", 1)[0]: line for line in text.splitlines() if line}


def compare(before_file: str, after_file: str) -> int:
    with open(before_file, encoding="utf-8") as handle:
        before = _by_path(handle.read())
    with open(after_file, encoding="utf-8") as handle:
        after = _by_path(handle.read())
    if not before or not after:
        print(f"empty listing: {before_file} has {len(before)} entries, {after_file} {len(after)}")
        return 2
    changed = 0
    for path in sorted(before.keys() | after.keys()):
        old, new = before.get(path), after.get(path)
        if old == new:
            continue
        changed += 1
        mark = "+" if old is None else "-" if new is None else "~"
        print(f"{mark} {path}")
        if old is not None:
            print(f"    before: {old}")
        if new is not None:
            print(f"    after:  {new}")
    print(f"{changed} changed of {len(before)} entries before, {len(after)} after")
    return 1 if changed else 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["compare"] and len(argv) == 3:
        return compare(argv[1], argv[2])
    if argv:
        print("usage: python3 - < listing.py  |  listing.py compare BEFORE AFTER", file=sys.stderr)
        return 2
    sys.stdout.write("\n".join(listing()) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
