"""roles/maintenance: units, timers, rendered configuration."""

import json


def test_timers_enabled_and_scheduled(host):
    for unit in ("aw-prune.timer", "aw-backup.timer"):
        assert host.service(unit).is_enabled
        assert host.service(unit).is_running
    listed = host.check_output("systemctl list-timers --all --no-legend aw-*")
    assert "aw-prune.service" in listed and "aw-backup.service" in listed


def test_units_are_valid_and_run_as_the_service_user(host):
    for unit in ("aw-prune", "aw-backup"):
        text = host.file(f"/etc/systemd/system/{unit}.service").content_string
        assert "User=agent" in text
        assert "DOCKER_HOST=unix:///run/user/" in text
    out = host.run(
        "cd /etc/systemd/system && systemd-analyze verify $PWD/aw-prune.timer $PWD/aw-backup.timer"
    )
    assert out.rc == 0, out.stderr


def test_pinned_list_comes_from_the_images(host):
    pins = [
        line
        for line in host.file(
            "/etc/agent-workstation/maintenance/pinned-images.txt"
        ).content_string.splitlines()
        if line and not line.startswith("#")
    ]
    assert pins == [
        "redis:7.4-bookworm",
        "vllm/vllm-openai@sha256:0000000000000000000000000000000000000000000000000000000000000001",
    ]


def test_backup_config_and_dirs(host):
    raw = host.file("/etc/agent-workstation/maintenance/backup.json").content_string
    cfg = json.loads("".join(line for line in raw.splitlines(True) if not line.startswith("#")))
    assert cfg["keep_days"] == 14 and cfg["min_free_gb"] == 20.0
    assert cfg["qdrant"]["api_key_file"] == "/srv/agent-workstation/secrets/qdrant_api_key"
    backups = host.file("/srv/agent-workstation/backups")
    assert backups.is_directory and backups.user == "agent" and backups.mode == 0o700


def test_scripts_run_outside_ansible(host):
    out = host.run("python3 /usr/local/libexec/agent-workstation/aw-backup.py --help")
    assert out.rc == 0 and "verify" in out.stdout
    out = host.run("python3 /usr/local/libexec/agent-workstation/aw-prune.py --help")
    assert out.rc == 0 and "--pinned-file" in out.stdout


# --- restore cannot destroy: the installed script, real files in this container -------------
# A backup of one host path (the config holds only that path: no Docker is needed), damaged
# as a disk or an interrupted copy would, then restored through the script's command line.
_RESTORE_SETUP = r"""
set -eu
rm -rf /var/tmp/aw-restore && mkdir -p /var/tmp/aw-restore/data/sub
cd /var/tmp/aw-restore
for i in $(seq 40); do seq 2000 | sed "s/^/row $i /" > data/file-$i.txt; done
echo deep > data/sub/deep.txt
cat > backup.json <<'JSON'
{"backup_dir": "/var/tmp/aw-restore/backups", "min_free_gb": 0, "keep_days": 7,
 "paths": [{"name": "data", "path": "/var/tmp/aw-restore/data"}]}
JSON
python3 /usr/local/libexec/agent-workstation/aw-backup.py --config backup.json backup \
  | tail -n1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["backup"])' > name
echo "changed after the backup" > data/file-1.txt
"""
_DIGEST = "cd /var/tmp/aw-restore/data && find . -type f | sort | xargs sha256sum | sha256sum"
_CLI = (
    "python3 /usr/local/libexec/agent-workstation/aw-backup.py"
    " --config /var/tmp/aw-restore/backup.json"
)


def _restore_case(host, damage):
    host.run_expect([0], _RESTORE_SETUP)
    name = host.file("/var/tmp/aw-restore/name").content_string.strip()
    archive = f"/var/tmp/aw-restore/backups/{name}/paths/data.tar.gz"
    host.run_expect(
        [0],
        damage.format(
            archive=archive, manifest=f"/var/tmp/aw-restore/backups/{name}/MANIFEST.json"
        ),
    )
    before = host.check_output(_DIGEST)
    out = host.run(f"{_CLI} restore {name}")
    after = host.check_output(_DIGEST)
    leftovers = host.check_output("ls -A /var/tmp/aw-restore").split()
    return out, before, after, leftovers


def test_restore_refuses_a_corrupt_archive_and_changes_nothing(host):
    out, before, after, leftovers = _restore_case(
        host, "printf XXXX | dd of={archive} bs=1 seek=300 conv=notrunc status=none"
    )
    assert out.rc == 1
    assert "paths/data.tar.gz: sha256 mismatch" in out.stdout
    assert "nothing was changed" in out.stdout and "restore another backup" in out.stdout
    assert "Traceback" not in out.stdout + out.stderr
    assert after == before
    assert sorted(leftovers) == ["backup.json", "backups", "data", "name"]


def test_restore_refuses_a_truncated_archive_and_changes_nothing(host):
    # truncated while it was written: the manifest's sha256 matches the short file
    out, before, after, leftovers = _restore_case(
        host,
        "truncate -s 3000 {archive} && python3 -c 'import hashlib,json,sys;"
        ' m=json.load(open(sys.argv[2])); m["items"][0]["sha256"]='
        'hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest();'
        ' json.dump(m, open(sys.argv[2], "w"))\' {archive} {manifest}',
    )
    assert out.rc == 1
    assert "paths/data.tar.gz: the archive ends early" in out.stdout
    assert "nothing was changed" in out.stdout
    assert "Traceback" not in out.stdout + out.stderr
    assert after == before
    assert sorted(leftovers) == ["backup.json", "backups", "data", "name"]


def test_restore_of_a_good_backup_swaps_and_keeps_the_old_copy(host):
    out, before, after, leftovers = _restore_case(host, "true")
    assert out.rc == 0, out.stdout + out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    kept = result["kept"][0]
    assert kept.startswith("/var/tmp/aw-restore/data.pre-restore-")
    assert host.file("/var/tmp/aw-restore/data/file-1.txt").content_string.startswith("row 1 1\n")
    assert after != before
    assert host.check_output(_DIGEST.replace("/var/tmp/aw-restore/data", kept)) == before
    assert sorted(leftovers) == sorted(
        ["backup.json", "backups", "data", "name", kept.rsplit("/", 1)[1]]
    )
