#!/usr/bin/env python3
# Copyright: agent-workstation contributors
# SPDX-License-Identifier: Apache-2.0 (see LICENSE at the repository root)
"""Nightly backup, verify and restore of the agent stack's data (stdlib only).

  aw-backup.py --config FILE backup            take a backup (free-space check first)
  aw-backup.py --config FILE verify NAME       every sha256 against MANIFEST.json, and every
                                               archive read to its end
  aw-backup.py --config FILE restore NAME [--only ITEM ...]
                                               verify, then restore (services stopped by the caller)
  aw-backup.py --config FILE list              backups, newest first (JSON)

What is backed up (each part optional in the config):
  qdrant   every collection through the snapshot API (POST /collections/{c}/snapshots, then
           GET /collections/{c}/snapshots/{name}, then DELETE it on the server); the API key is
           read from a file and sent as the `api-key` header, never on a command line.
  redis    BGSAVE, wait until LASTSAVE moves, then the RDB (and AOF directory) from the data
           directory or named volume.
  volumes  named Docker volumes (OpenHands state, Open WebUI data, Grafana database), read
           through a throwaway container of a helper image that is already present (no pull).
  paths    host directories.
Backups are written to BACKUP_DIR/<UTC timestamp>.partial and renamed when complete, with a
MANIFEST.json holding the sha256 of every file; backups older than keep_days are deleted (the
newest complete one is always kept). Each run writes a status file that doctor.yml reads.

A restore cannot destroy: every archive is checked first (sha256 and read to its end), then
each one is extracted into a new directory next to its target (for a volume: inside the
volume), and only when that extraction finished is it swapped in by rename. The data it
replaces is kept, never deleted: a host path as PATH.pre-restore-<stamp>, a volume's contents
in a new volume VOLUME.pre-restore-<stamp>, a Qdrant collection as a snapshot under
BACKUP_DIR/pre-restore-<stamp>/. A corrupt or truncated archive leaves every target as it was.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gzip
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zlib
from typing import Any

STAMP = "%Y%m%dT%H%M%SZ"


def log(msg: str) -> None:
    print(f"aw-backup: {msg}", flush=True)


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def iso(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class BackupError(RuntimeError):
    """A step failed; the message says which and what to do."""


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ---------------------------------------------------------------- docker helpers
def docker_env(cfg: dict[str, Any]) -> dict[str, str]:
    env = dict(os.environ)
    if cfg.get("docker_host"):
        env["DOCKER_HOST"] = cfg["docker_host"]
    return env


def run(
    cmd: list[str],
    cfg: dict[str, Any],
    stdin: Any = None,
    stdout: Any = subprocess.PIPE,
    extra_env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[Any]:
    env = docker_env(cfg)
    env.update(extra_env or {})
    proc = subprocess.run(
        cmd, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, env=env, check=False
    )
    if proc.returncode != 0:
        err = (
            proc.stderr.decode(errors="replace").strip()
            if isinstance(proc.stderr, bytes)
            else proc.stderr
        )
        raise BackupError(f"{' '.join(cmd[:4])} ... failed ({proc.returncode}): {err}")
    return proc


def helper_cmd(
    cfg: dict[str, Any], volume: str, mount: str, shell: str, interactive: bool = False
) -> list[str]:
    image = cfg.get("helper_image")
    if not image:
        raise BackupError(
            "helper_image is not set: name an image already present on the host"
            " (maintenance_backup_helper_image)"
        )
    cmd = [
        cfg.get("docker", "docker"),
        "run",
        "--rm",
        "--network",
        "none",
        "--user",
        "0",
        "--pull",
        "never",
        "--entrypoint",
        "/bin/sh",
        "-v",
        f"{volume}:{mount}",
    ]
    if interactive:
        cmd.append("-i")
    return [*cmd, image, "-c", shell]


def tar_volume(
    cfg: dict[str, Any], volume: str, dest: str, members: list[str] | None = None
) -> None:
    """Plain tar streamed out of a helper container, gzipped here (the helper needs sh + tar)."""
    what = " ".join(f"'{m}'" for m in members) if members else "."
    shell = f"cd /src && tar -cf - {what}"
    with gzip.open(dest, "wb") as out:
        proc = subprocess.Popen(
            helper_cmd(cfg, volume, "/src:ro", shell),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=docker_env(cfg),
        )
        assert proc.stdout is not None
        shutil.copyfileobj(proc.stdout, out)
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        if proc.wait() != 0:
            raise BackupError(f"reading volume {volume} failed: {err.strip()}")


# The swap, run by /bin/sh inside the helper container (busybox or coreutils: mkdir, tar, cp,
# mv, rm). ROOT is the target volume, OLD an empty new volume for what it held, STAMP names
# the staging directory, MEMBERS (space separated, optional) limits the swap to those names.
# The archive is extracted into ROOT/.aw-restore-STAMP first (same file system, so the swap is
# a rename); until the old contents are copied to OLD, ROOT is not touched. Exit 3: the
# extraction failed, 4: copying the old contents failed; in both cases ROOT is unchanged.
SWAP_SH = r"""
set -u
new="$ROOT/.aw-restore-$STAMP"
rm -rf "$new" && mkdir "$new" || exit 5
if ! tar -C "$new" -xf -; then rm -rf "$new"; echo "the archive did not extract" >&2; exit 3; fi
wanted() {
  [ -z "${MEMBERS:-}" ] && return 0
  for m in $MEMBERS; do [ "$m" = "$1" ] && return 0; done
  return 1
}
list() { find "$1" -mindepth 1 -maxdepth 1; }
list "$ROOT" | while IFS= read -r e; do
  [ "$e" = "$new" ] && continue
  wanted "$(basename "$e")" || continue
  cp -a "$e" "$OLD"/ || { echo "copying $e aside failed" >&2; exit 4; }
done || { rm -rf "$new"; exit 4; }
list "$ROOT" | while IFS= read -r e; do
  [ "$e" = "$new" ] && continue
  if wanted "$(basename "$e")"; then rm -rf "$e" || exit 6; fi
done || exit 6
list "$new" | while IFS= read -r e; do mv "$e" "$ROOT"/ || exit 6; done || exit 6
rmdir "$new"
"""


def untar_volume(
    cfg: dict[str, Any], volume: str, src: str, stamp: str, members: list[str] | None = None
) -> str:
    """Extract next to the data inside the volume, keep the old contents, swap; returns the
    name of the volume that keeps the old contents."""
    keep = f"{volume}.pre-restore-{stamp}"
    docker = cfg.get("docker", "docker")
    run([docker, "volume", "create", keep], cfg)
    cmd = helper_cmd(cfg, volume, "/dst", SWAP_SH, interactive=True)
    # the second volume and the swap's parameters, before the image name
    at = cmd.index(cfg["helper_image"])
    cmd[at:at] = [
        "-v", f"{keep}:/old",
        "-e", "ROOT=/dst", "-e", "OLD=/old", "-e", f"STAMP={stamp}",
        "-e", f"MEMBERS={' '.join(members or [])}",
    ]  # fmt: skip
    with gzip.open(src, "rb") as data:
        # Stream the decompressed tar (a GzipFile's fileno() is the compressed file: never
        # hand it to subprocess as stdin).
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            env=docker_env(cfg),
        )
        assert proc.stdin is not None
        # a helper that stopped reading says why in its exit status
        with contextlib.suppress(BrokenPipeError):
            try:
                shutil.copyfileobj(data, proc.stdin)
            finally:
                proc.stdin.close()
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    code = proc.wait()
    if code in (3, 4, 5):
        subprocess.run(
            [docker, "volume", "rm", keep], env=docker_env(cfg), capture_output=True, check=False
        )
        raise BackupError(
            f"restoring volume {volume} failed before the swap, the volume is unchanged:"
            f" {err.strip()}"
        )
    if code != 0:
        raise BackupError(
            f"restoring volume {volume} failed during the swap ({code}): {err.strip()}; its old"
            f" contents are in volume {keep}, the new ones in .aw-restore-{stamp} inside it"
        )
    return keep


def tar_path(path: str, dest: str, members: list[str] | None = None) -> None:
    with tarfile.open(dest, "w:gz") as archive:
        for member in members or sorted(os.listdir(path)):
            full = os.path.join(path, member)
            if os.path.lexists(full):
                archive.add(full, arcname=member)


def _extract(archive_path: str, dest: str) -> None:
    with tarfile.open(archive_path, "r:gz") as archive:
        if hasattr(tarfile, "tar_filter"):  # Python >= 3.11.4 (and Debian's backports)
            archive.extractall(dest, filter="tar")  # keeps owners/modes, refuses paths outside
        else:  # pragma: no cover - older 3.11 on Debian 12 without the backport
            archive.extractall(dest)


def untar_path(path: str, src: str, stamp: str, members: list[str] | None = None) -> str:
    """Extract into PATH.aw-restore-STAMP (next to PATH: same file system), then swap by
    rename; the replaced data is kept as PATH.pre-restore-STAMP, which is returned."""
    path = path.rstrip("/")
    staging = f"{path}.aw-restore-{stamp}"
    keep = f"{path}.pre-restore-{stamp}"
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging, mode=0o700)
    try:
        _extract(src, staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if os.path.isdir(path):  # the restored directory gets the owner and mode of the old one
        info = os.stat(path)
        os.chown(staging, info.st_uid, info.st_gid)
        os.chmod(staging, info.st_mode & 0o7777)
    if not members:
        if os.path.lexists(path):
            os.rename(path, keep)
        os.rename(staging, path)
        return keep
    os.makedirs(path, exist_ok=True)
    os.makedirs(keep, mode=0o700)
    for name in members:
        if os.path.lexists(os.path.join(path, name)):
            os.rename(os.path.join(path, name), os.path.join(keep, name))
        if os.path.lexists(os.path.join(staging, name)):
            os.rename(os.path.join(staging, name), os.path.join(path, name))
    shutil.rmtree(staging)
    return keep


# ---------------------------------------------------------------- qdrant
class Qdrant:
    def __init__(self, cfg: dict[str, Any]) -> None:
        self.url = cfg["url"].rstrip("/")
        self.timeout = float(cfg.get("timeout", 600))
        self.key = ""
        key_file = cfg.get("api_key_file")
        if key_file:
            with open(key_file, encoding="utf-8") as handle:
                self.key = handle.read().strip()

    def request(
        self, method: str, path: str, body: bytes | None = None, ctype: str | None = None
    ) -> bytes:
        req = urllib.request.Request(self.url + path, data=body, method=method)
        if self.key:
            req.add_header("api-key", self.key)
        if ctype:
            req.add_header("Content-Type", ctype)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return resp.read()
        except urllib.error.HTTPError as exc:
            raise BackupError(
                f"Qdrant {method} {path}: HTTP {exc.code} {exc.read()[:300]!r}"
            ) from exc
        except (TimeoutError, urllib.error.URLError, ConnectionError) as exc:
            raise BackupError(f"Qdrant {method} {path}: {exc}") from exc

    def json(self, method: str, path: str) -> Any:
        payload = json.loads(self.request(method, path) or b"{}")
        if payload.get("status") not in ("ok", None):
            raise BackupError(f"Qdrant {method} {path}: status {payload.get('status')!r}")
        return payload.get("result")

    def collections(self) -> list[str]:
        return sorted(c["name"] for c in self.json("GET", "/collections")["collections"])

    def snapshot(self, collection: str, dest: str) -> dict[str, Any]:
        quoted = urllib.parse.quote(collection, safe="")
        info = self.json("POST", f"/collections/{quoted}/snapshots?wait=true")
        name = urllib.parse.quote(info["name"], safe="")
        req_path = f"/collections/{quoted}/snapshots/{name}"
        req = urllib.request.Request(self.url + req_path, method="GET")
        if self.key:
            req.add_header("api-key", self.key)
        with urllib.request.urlopen(req, timeout=self.timeout) as resp, open(dest, "wb") as out:
            shutil.copyfileobj(resp, out)
        if info.get("checksum") and sha256_file(dest) != info["checksum"]:
            raise BackupError(
                f"Qdrant snapshot {info['name']}: the download does not match the server's checksum"
            )
        self.json("DELETE", req_path)  # do not fill the server's own disk with old snapshots
        return info

    def upload(self, collection: str, src: str) -> None:
        boundary = uuid.uuid4().hex
        with open(src, "rb") as handle:
            data = handle.read()
        body = (
            (
                f"--{boundary}\r\nContent-Disposition: form-data; "
                f'name="snapshot"; filename="{os.path.basename(src)}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            + data
            + f"\r\n--{boundary}--\r\n".encode()
        )
        quoted = urllib.parse.quote(collection, safe="")
        payload = json.loads(
            self.request(
                "POST",
                f"/collections/{quoted}/snapshots/upload?wait=true&priority=snapshot",
                body,
                f"multipart/form-data; boundary={boundary}",
            )
        )
        if payload.get("status") != "ok":
            raise BackupError(f"Qdrant restore of {collection}: {payload}")


# ---------------------------------------------------------------- redis
def redis_cli(cfg: dict[str, Any], red: dict[str, Any], *args: str) -> str:
    extra = {}
    if red.get("password_file"):
        with open(red["password_file"], encoding="utf-8") as handle:
            extra["REDISCLI_AUTH"] = handle.read().strip()  # redis-cli reads it; never argv
    out = run([*red["cli"], *args], cfg, extra_env=extra)
    return out.stdout.decode().strip()


def redis_bgsave(cfg: dict[str, Any], red: dict[str, Any]) -> int:
    before = int(redis_cli(cfg, red, "LASTSAVE") or 0)
    reply = redis_cli(cfg, red, "BGSAVE")
    if "ERR" in reply and "in progress" not in reply:
        raise BackupError(f"Redis BGSAVE: {reply}")
    deadline = time.monotonic() + float(red.get("timeout", 300))
    while time.monotonic() < deadline:
        last = int(redis_cli(cfg, red, "LASTSAVE") or 0)
        info = redis_cli(cfg, red, "INFO", "persistence")
        if last > before and "rdb_bgsave_in_progress:0" in info:
            if "rdb_last_bgsave_status:ok" not in info:
                raise BackupError("Redis BGSAVE failed (rdb_last_bgsave_status); see the Redis log")
            return last
        time.sleep(0.5)
    raise BackupError("Redis BGSAVE did not finish in time (LASTSAVE did not move)")


# ---------------------------------------------------------------- backup
def free_gb(path: str) -> float:
    return shutil.disk_usage(path).free / 1e9


def write_status(cfg: dict[str, Any], status: dict[str, Any]) -> None:
    path = cfg.get("state_file")
    if not path:
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(status, handle, indent=2, sort_keys=True)
    os.replace(tmp, path)


def complete_backups(root: str) -> list[str]:
    names = []
    for name in os.listdir(root) if os.path.isdir(root) else []:
        if name.endswith(".partial") or not os.path.isfile(
            os.path.join(root, name, "MANIFEST.json")
        ):
            continue
        try:
            datetime.datetime.strptime(name, STAMP)
        except ValueError:
            continue
        names.append(name)
    return sorted(names, reverse=True)


def prune_old(cfg: dict[str, Any], root: str, keep_name: str) -> list[str]:
    cutoff = now() - datetime.timedelta(days=float(cfg.get("keep_days", 14)))
    removed = []
    for name in complete_backups(root):
        taken = datetime.datetime.strptime(name, STAMP).replace(tzinfo=datetime.UTC)
        if name != keep_name and taken < cutoff:
            shutil.rmtree(os.path.join(root, name))
            removed.append(name)
    for name in os.listdir(root):  # leftovers of runs that died half-way
        if name.endswith(".partial") and name != f"{keep_name}.partial":
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)
    return removed


def backup(cfg: dict[str, Any]) -> dict[str, Any]:
    root = cfg["backup_dir"]
    os.makedirs(root, mode=0o700, exist_ok=True)
    have = free_gb(root)
    need = float(cfg.get("min_free_gb", 0))
    if have < need:
        raise BackupError(
            f"{root} has {have:.1f} GB free, below min_free_gb {need:g}: free space there"
            " or lower maintenance_backup_min_free_gb"
        )
    started = now()
    name = started.strftime(STAMP)
    work = os.path.join(root, f"{name}.partial")
    os.makedirs(work, mode=0o700)
    try:
        return _backup_into(cfg, root, name, work, started, have)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def _backup_into(  # noqa: PLR0917 - private helper, one call site
    cfg: dict[str, Any], root: str, name: str, work: str, started: datetime.datetime, have: float
) -> dict[str, Any]:
    items: list[dict[str, Any]] = []

    qcfg = cfg.get("qdrant")
    if qcfg:
        client = Qdrant(qcfg)
        os.makedirs(os.path.join(work, "qdrant"))
        for collection in client.collections():
            rel = os.path.join("qdrant", f"{collection}.snapshot")
            info = client.snapshot(collection, os.path.join(work, rel))
            items.append(
                {"kind": "qdrant", "name": collection, "file": rel, "snapshot": info.get("name")}
            )
            log(f"qdrant collection {collection}: snapshot {info.get('name')}")

    red = cfg.get("redis")
    if red:
        lastsave = redis_bgsave(cfg, red)
        rel = os.path.join("redis", "redis-data.tar.gz")
        os.makedirs(os.path.join(work, "redis"))
        members = red.get("files", ["dump.rdb", "appendonlydir"])
        if red.get("volume"):
            present = (
                run(helper_cmd(cfg, red["volume"], "/src:ro", "cd /src && ls -A"), cfg)
                .stdout.decode()
                .split()
            )
            tar_volume(
                cfg, red["volume"], os.path.join(work, rel), [m for m in members if m in present]
            )
        else:
            tar_path(red["path"], os.path.join(work, rel), members)
        items.append({"kind": "redis", "name": "redis", "file": rel, "lastsave": lastsave})
        log(f"redis: BGSAVE at {lastsave} copied")

    for volume in cfg.get("volumes", []):
        rel = os.path.join("volumes", f"{volume}.tar.gz")
        os.makedirs(os.path.join(work, "volumes"), exist_ok=True)
        tar_volume(cfg, volume, os.path.join(work, rel))
        items.append({"kind": "volume", "name": volume, "file": rel})
        log(f"volume {volume} archived")

    for entry in cfg.get("paths", []):
        rel = os.path.join("paths", f"{entry['name']}.tar.gz")
        os.makedirs(os.path.join(work, "paths"), exist_ok=True)
        tar_path(entry["path"], os.path.join(work, rel))
        items.append({"kind": "path", "name": entry["name"], "file": rel, "path": entry["path"]})
        log(f"path {entry['path']} archived")

    for item in items:
        full = os.path.join(work, item["file"])
        item["sha256"] = sha256_file(full)
        item["size"] = os.path.getsize(full)
    manifest = {
        "format": 1,
        "name": name,
        "host": socket.gethostname(),
        "created": iso(started),
        "finished": iso(now()),
        "items": items,
    }
    with open(os.path.join(work, "MANIFEST.json"), "w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=2, sort_keys=True)
    final = os.path.join(root, name)
    os.rename(work, final)
    removed = prune_old(cfg, root, name)
    return {
        "job": "backup",
        "status": "ok",
        "backup": name,
        "path": final,
        "started": iso(started),
        "finished": iso(now()),
        "items": len(items),
        "bytes": sum(i["size"] for i in items),
        "expired": removed,
        "free_gb_before": round(have, 1),
    }


# ---------------------------------------------------------------- verify / restore
def load_manifest(cfg: dict[str, Any], name: str) -> tuple[str, dict[str, Any]]:
    if not name or "/" in name or name.startswith("."):
        raise BackupError(
            f"backup name {name!r} is not a backup directory name; run `aw-backup.py list`"
        )
    path = os.path.join(cfg["backup_dir"], name)
    manifest_path = os.path.join(path, "MANIFEST.json")
    if not os.path.isfile(manifest_path):
        raise BackupError(f"{manifest_path} does not exist: not a complete backup")
    with open(manifest_path, encoding="utf-8") as handle:
        return path, json.load(handle)


def archive_problem(full: str) -> str | None:
    """Read a tar archive (gzip or plain) to its end: every header and every member's data,
    so gzip checks its CRC and length. None when it is whole, else what is wrong."""
    try:
        with tarfile.open(full, "r:*") as archive:
            for member in archive:
                if member.isfile():
                    handle = archive.extractfile(member)
                    if handle is not None:
                        while handle.read(1 << 20):
                            pass
    except (EOFError, tarfile.ReadError) as exc:
        return f"the archive ends early or is not a tar archive (truncated?): {exc}"
    except (OSError, zlib.error, tarfile.TarError) as exc:
        return f"the archive is damaged: {exc}"
    return None


def verify(cfg: dict[str, Any], name: str) -> dict[str, Any]:
    """Every file's sha256 against the manifest, then every archive read to its end."""
    path, manifest = load_manifest(cfg, name)
    bad = []
    for item in manifest["items"]:
        full = os.path.join(path, item["file"])
        if not os.path.isfile(full):
            bad.append(f"{item['file']}: missing")
        elif sha256_file(full) != item["sha256"]:
            bad.append(
                f"{item['file']}: sha256 mismatch (the file changed after the backup wrote it:"
                " corrupt or tampered)"
            )
        else:
            problem = archive_problem(full)
            if problem:
                bad.append(f"{item['file']}: {problem}")
    if bad:
        raise BackupError(
            f"backup {name} cannot be restored, nothing was changed: {'; '.join(bad)}."
            f" Fix: restore another backup (`aw-backup.py list` names them, newest first);"
            f" keep {path} for inspection"
        )
    return {"backup": name, "verified": len(manifest["items"]), "items": manifest["items"]}


def restore(cfg: dict[str, Any], name: str, only: list[str]) -> dict[str, Any]:
    checked = verify(cfg, name)  # every checksum before anything is overwritten
    path, manifest = load_manifest(cfg, name)
    stamp = now().strftime(STAMP)
    done = []
    kept = []
    for item in manifest["items"]:
        key = f"{item['kind']}:{item['name']}"
        if only and item["kind"] not in only and key not in only:
            continue
        src = os.path.join(path, item["file"])
        if item["kind"] == "qdrant":
            if not cfg.get("qdrant"):
                raise BackupError(
                    "the backup holds Qdrant snapshots but the config has no qdrant section"
                )
            client = Qdrant(cfg["qdrant"])
            if item["name"] in client.collections():  # keep what the upload replaces
                aside = os.path.join(cfg["backup_dir"], f"pre-restore-{stamp}", "qdrant")
                os.makedirs(aside, mode=0o700, exist_ok=True)
                client.snapshot(item["name"], os.path.join(aside, f"{item['name']}.snapshot"))
                kept.append(os.path.join(aside, f"{item['name']}.snapshot"))
            client.upload(item["name"], src)
        elif item["kind"] == "redis":
            red = cfg["redis"]
            members = red.get("files", ["dump.rdb", "appendonlydir"])
            if red.get("volume"):
                kept.append(untar_volume(cfg, red["volume"], src, stamp, members=members))
            else:
                kept.append(untar_path(red["path"], src, stamp, members=members))
        elif item["kind"] == "volume":
            kept.append(untar_volume(cfg, item["name"], src, stamp))
        elif item["kind"] == "path":
            kept.append(untar_path(item["path"], src, stamp))
        done.append(key)
        log(f"restored {key}")
    return {
        "job": "restore",
        "status": "ok",
        "backup": name,
        "restored": done,
        "kept": kept,
        "verified": checked["verified"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", required=True, help="JSON config rendered by roles/maintenance")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("backup")
    sub.add_parser("list")
    for cmd in ("verify", "restore"):
        one = sub.add_parser(cmd)
        one.add_argument(
            "name", help="backup directory name (a UTC timestamp such as 20250101T021500Z)"
        )
        if cmd == "restore":
            one.add_argument(
                "--only",
                action="append",
                default=[],
                help="kind (qdrant, redis, volume, path) or kind:name",
            )
    args = parser.parse_args(argv)
    with open(args.config, encoding="utf-8") as handle:  # "#" lines: the ansible_managed header
        cfg = json.loads("".join(ln for ln in handle if not ln.lstrip().startswith("#")))
    os.umask(0o077)
    try:
        if args.command == "backup":
            result = backup(cfg)
            write_status(cfg, result)
        elif args.command == "list":
            result = {"backups": complete_backups(cfg["backup_dir"])}
        elif args.command == "verify":
            result = verify(cfg, args.name)
        else:
            result = restore(cfg, args.name, args.only)
    except (
        BackupError,
        OSError,
        KeyError,
        ValueError,
        EOFError,
        zlib.error,
        tarfile.TarError,
    ) as exc:
        log(f"FAILED: {exc}")
        if args.command == "backup":
            write_status(
                cfg,
                {"job": "backup", "status": "failed", "finished": iso(now()), "error": str(exc)},
            )
        print(json.dumps({"status": "failed", "error": str(exc)}))
        return 1
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
