"""roles/maintenance/files/aw-backup.py: verify and restore cannot destroy (real files, real tar).

Every case backs up a real directory with the script's own backup(), damages the backup the
way a disk or an interrupted copy would, and checks the target byte for byte before and after.
The volume swap (SWAP_SH, run by /bin/sh in the helper container) runs here under the local
/bin/sh and GNU tar against plain directories; the Molecule scenario runs it in busybox.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
_SPEC = importlib.util.spec_from_file_location(
    "aw_backup", ROOT / "roles" / "maintenance" / "files" / "aw-backup.py"
)
assert _SPEC and _SPEC.loader
awb = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(awb)


def tree_digest(path: Path) -> str:
    """sha256 over every relative name, mode and content under path."""
    digest = hashlib.sha256()
    for item in sorted(path.rglob("*")):
        digest.update(str(item.relative_to(path)).encode())
        digest.update(oct(item.lstat().st_mode).encode())
        if item.is_file():
            digest.update(item.read_bytes())
    return digest.hexdigest()


@pytest.fixture
def site(tmp_path: Path) -> dict[str, Any]:
    data = tmp_path / "srv" / "state"
    (data / "sub").mkdir(parents=True)
    for i in range(30):
        (data / f"file-{i}.json").write_text(f"state {i}\n" * 200)
    (data / "sub" / "deep.txt").write_text("deep\n")
    data.chmod(0o750)
    cfg = {
        "backup_dir": str(tmp_path / "backups"),
        "min_free_gb": 0,
        "keep_days": 7,
        "paths": [{"name": "state", "path": str(data)}],
    }
    result = awb.backup(cfg)
    # the data changes after the backup: a restore must bring back the backed-up version
    (data / "file-0.json").write_text("changed after the backup\n")
    (data / "new-after-backup.txt").write_text("new\n")
    return {"cfg": cfg, "data": data, "name": result["backup"], "path": Path(result["path"])}


def _archive(site: dict[str, Any]) -> Path:
    return site["path"] / "paths" / "state.tar.gz"


def _reseal(site: dict[str, Any]) -> None:
    """Write the damaged archive's sha256 into the manifest (a backup truncated while written)."""
    manifest_path = site["path"] / "MANIFEST.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["items"][0]["sha256"] = awb.sha256_file(str(_archive(site)))
    manifest_path.write_text(json.dumps(manifest))


def _leftovers(site: dict[str, Any]) -> list[str]:
    return sorted(p.name for p in site["data"].parent.iterdir() if p.name != "state")


def test_restore_swaps_in_the_backup_and_keeps_the_old_copy(site: dict[str, Any]) -> None:
    before = tree_digest(site["data"])
    out = awb.restore(site["cfg"], site["name"], [])
    assert out["restored"] == ["path:state"]
    data = site["data"]
    assert (data / "file-0.json").read_text() == "state 0\n" * 200
    assert not (data / "new-after-backup.txt").exists()
    assert (data.stat().st_mode & 0o777) == 0o750
    kept = Path(out["kept"][0])
    assert kept.name.startswith("state.pre-restore-")
    assert tree_digest(kept) == before  # nothing is lost
    assert _leftovers(site) == [kept.name]  # no staging directory left behind


def test_a_corrupt_archive_is_refused_and_changes_nothing(site: dict[str, Any]) -> None:
    with _archive(site).open("r+b") as handle:
        handle.seek(200)
        handle.write(b"XXXX")
    before = tree_digest(site["data"])
    with pytest.raises(awb.BackupError) as caught:
        awb.restore(site["cfg"], site["name"], [])
    msg = str(caught.value)
    assert "paths/state.tar.gz: sha256 mismatch" in msg
    assert "nothing was changed" in msg and "restore another backup" in msg
    assert tree_digest(site["data"]) == before
    assert _leftovers(site) == []


def test_a_truncated_archive_with_a_matching_checksum_is_refused(site: dict[str, Any]) -> None:
    archive = _archive(site)
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    _reseal(site)
    before = tree_digest(site["data"])
    with pytest.raises(awb.BackupError) as caught:
        awb.restore(site["cfg"], site["name"], [])
    msg = str(caught.value)
    assert "paths/state.tar.gz: the archive ends early" in msg
    assert "nothing was changed" in msg
    assert tree_digest(site["data"]) == before
    assert _leftovers(site) == []


def test_a_missing_archive_is_named(site: dict[str, Any]) -> None:
    _archive(site).unlink()
    with pytest.raises(awb.BackupError, match=r"paths/state\.tar\.gz: missing"):
        awb.verify(site["cfg"], site["name"])


def test_the_command_line_reports_without_a_traceback(
    site: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = _archive(site)
    archive.write_bytes(archive.read_bytes()[:100])
    _reseal(site)
    config = tmp_path / "backup.json"
    config.write_text("# managed\n" + json.dumps(site["cfg"]))
    before = tree_digest(site["data"])
    assert awb.main(["--config", str(config), "restore", site["name"]]) == 1
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err
    last = json.loads(out.out.strip().splitlines()[-1])
    assert last["status"] == "failed" and "state.tar.gz" in last["error"]
    assert tree_digest(site["data"]) == before


def test_plain_tar_snapshots_are_read_to_the_end(tmp_path: Path) -> None:
    snap = tmp_path / "memory.snapshot"
    payload = b"x" * 50_000
    with tarfile.open(snap, "w") as archive:
        info = tarfile.TarInfo("segments/0.dat")
        info.size = len(payload)
        archive.addfile(info, io.BytesIO(payload))
    assert awb.archive_problem(str(snap)) is None
    snap.write_bytes(snap.read_bytes()[:20_000])
    assert "ends early" in (awb.archive_problem(str(snap)) or "")


def test_redis_members_are_swapped_and_the_rest_left_alone(tmp_path: Path) -> None:
    red = tmp_path / "redis"
    (red / "appendonlydir").mkdir(parents=True)
    (red / "dump.rdb").write_bytes(b"old rdb")
    (red / "appendonlydir" / "a.aof").write_bytes(b"old aof")
    (red / "redis.conf.local").write_text("not restored\n")
    src = tmp_path / "redis-data.tar.gz"
    staging = tmp_path / "src"
    (staging / "appendonlydir").mkdir(parents=True)
    (staging / "dump.rdb").write_bytes(b"new rdb")
    (staging / "appendonlydir" / "a.aof").write_bytes(b"new aof")
    awb.tar_path(str(staging), str(src), ["dump.rdb", "appendonlydir"])
    kept = Path(awb.untar_path(str(red), str(src), "S", ["dump.rdb", "appendonlydir"]))
    assert (red / "dump.rdb").read_bytes() == b"new rdb"
    assert (red / "appendonlydir" / "a.aof").read_bytes() == b"new aof"
    assert (red / "redis.conf.local").read_text() == "not restored\n"
    assert (kept / "dump.rdb").read_bytes() == b"old rdb"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "redis",
        "redis-data.tar.gz",
        "redis.pre-restore-S",
        "src",
    ]


def _tar_bytes(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        for name, payload in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
    return out.getvalue()


def _swap(
    root: Path, old: Path, data: bytes, members: str = ""
) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "ROOT": str(root), "OLD": str(old), "STAMP": "T", "MEMBERS": members}
    return subprocess.run(
        ["/bin/sh", "-c", awb.SWAP_SH], input=data, env=env, capture_output=True, check=False
    )


@pytest.fixture
def volume(tmp_path: Path) -> tuple[Path, Path]:
    root, old = tmp_path / "vol", tmp_path / "old"
    (root / "uploads").mkdir(parents=True)
    (root / "uploads" / "doc.txt").write_text("old doc\n")
    (root / ".hidden").write_text("old hidden\n")
    old.mkdir()
    return root, old


def test_volume_swap_keeps_the_old_contents(volume: tuple[Path, Path]) -> None:
    root, old = volume
    before = tree_digest(root)
    proc = _swap(root, old, _tar_bytes({"./uploads/doc.txt": b"restored\n", "./db": b"db"}))
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in root.iterdir()) == ["db", "uploads"]
    assert (root / "uploads" / "doc.txt").read_text() == "restored\n"
    assert tree_digest(old) == before


def test_volume_swap_of_a_truncated_stream_leaves_the_volume(volume: tuple[Path, Path]) -> None:
    root, old = volume
    before = tree_digest(root)
    whole = _tar_bytes({"./big": b"y" * 40_000})
    proc = _swap(root, old, whole[:10_000])
    assert proc.returncode == 3, proc.stderr
    assert b"did not extract" in proc.stderr
    assert tree_digest(root) == before
    assert list(old.iterdir()) == []


def test_volume_swap_of_members_only(volume: tuple[Path, Path]) -> None:
    root, old = volume
    proc = _swap(root, old, _tar_bytes({"uploads/doc.txt": b"restored\n"}), members="uploads")
    assert proc.returncode == 0, proc.stderr
    assert (root / ".hidden").read_text() == "old hidden\n"
    assert (root / "uploads" / "doc.txt").read_text() == "restored\n"
    assert sorted(p.name for p in old.iterdir()) == ["uploads"]
