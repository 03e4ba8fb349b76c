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
