"""End state after side_effect.yml: nothing lost, rollback done, prune kept every pin."""

import json

STATE = "/srv/agent-workstation/state"
PINNED = [
    "agent-workstation/busybox:test",
    "agent-workstation/standin-vllm:good",
    "agent-workstation/local-base:test",
    "agent-workstation/prune-pinned:by-tag",
    "agent-workstation/prune-pinned:by-id",
    "agent-workstation/prune-pinned:by-repo-id",
]
UNPINNED = [
    "agent-workstation/prune-unpinned:one",
    "agent-workstation/prune-unpinned:two",
    "agent-workstation/standin-vllm:never-ready",
]


def lines(host, path):
    return host.file(path).content_string.split()


def test_timers_enabled(host):
    for unit in ("aw-prune.timer", "aw-backup.timer"):
        assert host.service(unit).is_enabled
        assert host.service(unit).is_running


def test_backup_manifest_and_items(host):
    status = json.loads(host.file(f"{STATE}/backup-last-run.json").content_string)
    assert status["status"] == "ok"
    manifest = json.loads(host.file(f"{status['path']}/MANIFEST.json").content_string)
    kinds = sorted(f"{i['kind']}:{i['name']}" for i in manifest["items"])
    assert kinds == [
        "path:openhands-state",
        "qdrant:docs",
        "qdrant:memory",
        "redis:redis",
        "volume:aw-test-owui-data",
    ]
    for item in manifest["items"]:
        out = host.check_output(f"sha256sum {status['path']}/{item['file']}").split()[0]
        assert out == item["sha256"]
    assert host.file(status["path"]).mode == 0o700


def test_restored_record_counts(host):
    assert host.check_output("redis-cli DBSIZE").strip() == "300"
    assert host.check_output("redis-cli GET key:123").strip() == "value-123"
    assert host.check_output("redis-cli EXISTS lost-marker").strip() == "0"
    key = host.file("/srv/agent-workstation/secrets/qdrant_api_key").content_string.strip()
    for name, count in (("memory", 25), ("docs", 5)):
        info = json.loads(
            host.check_output(
                f"curl -fsS -H 'api-key: {key}' http://127.0.0.1:6333/collections/{name}"
            )
        )
        assert info["result"]["points_count"] == count
    assert int(host.check_output("ls /srv/agent-workstation/openhands-state | wc -l")) == 20
    assert (
        host.file("/srv/agent-workstation/openhands-state/file-7.json").content_string
        == "state 7\n"
    )
    assert host.file("/srv/agent-workstation/openhands-state/file-7.json").user == "agent"
    count = host.check_output(
        "docker run --rm -v aw-test-owui-data:/d agent-workstation/busybox:test"
        " sh -c 'ls /d/uploads' | wc -l"
    )
    assert int(count) == 10


def test_rollback_left_the_old_vllm_serving(host):
    report = json.loads(host.file(f"{STATE}/vllm-upgrade-last.json").content_string)
    assert report["result"] == "rolled_back"
    assert report["ready_again"] is True
    assert report["downtime_s"] > 0
    assert "did not become ready" in report["reason"]
    assert (
        host.file(f"{STATE}/vllm-image.current").content_string.strip()
        == "agent-workstation/standin-vllm:good"
    )
    assert (
        host.file(f"{STATE}/vllm-image.previous").content_string.strip()
        == "agent-workstation/standin-vllm:good"
    )
    cid = host.check_output(
        "cd /srv/agent-workstation/compose/agent-stack && docker compose ps -q vllm"
    )
    image = host.check_output(f"docker inspect -f '{{{{.Config.Image}}}}' {cid}")
    assert image == "agent-workstation/standin-vllm:good"
    models = json.loads(host.check_output("curl -fsS http://127.0.0.1:8000/v1/models"))
    assert {m["id"] for m in models["data"]} == {"qwen2.5-coder-32b-instruct", "claude-sonnet-4-5"}


def test_refused_driver_upgrade_kept_the_hold(host):
    assert host.check_output("dpkg --get-selections libnvidia-standin").split() == [
        "libnvidia-standin",
        "hold",
    ]
    assert host.package("libnvidia-standin").version == "570.133.07-1"


def test_prune_kept_pins_and_volumes_removed_the_rest(host):
    before = set(lines(host, "/var/tmp/aw-test/images-before.txt"))
    after = set(lines(host, "/var/tmp/aw-test/images-after.txt"))
    for ref in PINNED:
        assert ref in before
        assert ref in after, f"pinned image {ref} was pruned"
    assert "agent-workstation/prune-used:one" in after  # a stopped container uses it
    for ref in UNPINNED:
        assert ref in before
        assert ref not in after, f"unpinned image {ref} survived"
    assert "<none>:<none>" in before  # the dangling build
    assert "<none>:<none>" not in after
    assert lines(host, "/var/tmp/aw-test/volumes-before.txt") == lines(
        host, "/var/tmp/aw-test/volumes-after.txt"
    )
    assert "aw-test-vol-a" in lines(host, "/var/tmp/aw-test/volumes-after.txt")
    assert (
        host.check_output(
            "docker run --rm -v aw-test-vol-a:/d agent-workstation/busybox:test cat /d/data"
        )
        == "keep"
    )
    assert host.file("/srv/agent-workstation/models/weights.bin").exists
    n_before = int(host.file("/var/tmp/aw-test/image-count-before.txt").content_string)
    n_after = int(host.file("/var/tmp/aw-test/image-count-after.txt").content_string)
    assert n_after < n_before
    status = json.loads(host.file(f"{STATE}/prune-last-run.json").content_string)
    assert status["status"] == "ok"
    assert len(status["removed_images"]) == n_before - n_after


def test_doctor_report(host):
    report = json.loads(host.file("/var/tmp/aw-test/doctor.json").content_string)
    checks = next(iter(report["hosts"].values()))["checks"]
    assert checks["gpu"]["ok"] and checks["gpu"]["driver_version"] == "570.133.07"
    assert checks["vllm"]["ok"], checks["vllm"]
    assert checks["backup"]["ok"] and checks["prune"]["ok"]
    assert (
        checks["driver_hold"]["not_held"] == []
        and "libnvidia-standin" in checks["driver_hold"]["held"]
    )
    assert checks["last_vllm_upgrade"]["result"] == "rolled_back"
