#!/usr/bin/env python3
"""The whole site, converged and re-run, in ONE systemd container (README "Benchmarks").

Not part of ./scripts/test.sh (it takes many minutes). What it does:

1. starts a container from agent-workstation/molecule:debian13 (tests/images/build.sh) with the
   capabilities the site scenarios give theirs (molecule/operations/molecule.yml) plus
   /dev/net/tun and /dev/fuse for rootless Docker (roles/docker_rootless/molecule/default);
2. copies this working tree in (tracked and untracked, not ignored files) to /opt/aw and runs
   tests/bench/site_rerun/prepare.sh there: Ansible in a venv, the stand-ins (GPU, toolkit
   package, stack images, DCGM exporter), each named as a stand-in;
3. runs, inside the container, as on a workstation (connection local, no docker exec per task):
       ansible-playbook site.yml -i inventories/workstation \
           -e @tests/bench/site_rerun/vars.yml -c local
   twice, with the profile_tasks callback, and prints: first converge time, no-op re-run time,
   their ratio, the task counts of the re-run's recap and its changed count (must be 0).

    python3 tests/bench/bench_site_rerun.py             # create, prepare, converge, re-run
    python3 tests/bench/bench_site_rerun.py --reuse     # copy the tree again, re-run only
    python3 tests/bench/bench_site_rerun.py --destroy   # remove the container

Logs: .cache/bench/site-rerun/{prepare,converge,rerun}.log; figures: result.json beside them.
Exit status: 0 when both runs succeeded and the re-run changed nothing, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NAME = "aw-bench-site-rerun"
IMAGE = "agent-workstation/molecule:debian13"
OUT = ROOT / ".cache" / "bench" / "site-rerun"
PLAYBOOK = [
    "/opt/aw-ansible/bin/ansible-playbook",
    "site.yml",
    "-i",
    "inventories/workstation",
    "-e",
    "@tests/bench/site_rerun/vars.yml",
    "-c",
    "local",
]
# As molecule/operations/molecule.yml, plus the two devices rootless Docker needs.
RUN_ARGS = [
    "--detach",
    "--name",
    NAME,
    "--hostname",
    "workstation",
    *[
        a
        for cap in (
            "SYS_ADMIN",
            "NET_ADMIN",
            "NET_RAW",
            "MKNOD",
            "SYS_PTRACE",
            "SYS_CHROOT",
            "SETFCAP",
            "AUDIT_WRITE",
            "DAC_READ_SEARCH",
            "IPC_LOCK",
            "SYS_NICE",
        )
        for a in ("--cap-add", cap)
    ],
    "--security-opt",
    "seccomp=unconfined",
    "--security-opt",
    "apparmor=unconfined",
    "--sysctl",
    "net.ipv4.ip_forward=1",
    "--cgroupns",
    "host",
    "--device",
    "/dev/net/tun",
    "--device",
    "/dev/fuse",
    "-v",
    "/sys/fs/cgroup:/sys/fs/cgroup:rw",
    "-v",
    "/var/lib/docker",
    "--tmpfs",
    "/run",
    "--tmpfs",
    "/run/lock",
    "--tmpfs",
    "/tmp",
]
RECAP = re.compile(
    r"^\S+\s+:\s+ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)\s+"
    r"failed=(?P<failed>\d+)\s+skipped=(?P<skipped>\d+)\s+rescued=(?P<rescued>\d+)\s+ignored=(?P<ignored>\d+)",
    re.M,
)
# profile_tasks: "role : task name ---------- 12.34s" (the 15 slowest, slowest first; a long
# name gets a single dash).
PROFILE = re.compile(r"^(?P<task>\S.*?)\s-+\s(?P<seconds>\d+\.\d+)s\s*$", re.M)


def sh(argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=True, text=True, **kw)  # type: ignore[call-overload]


def log_to(path: Path, argv: list[str]) -> tuple[int, float, str]:
    """Run argv, stream its output into path, return (exit code, seconds, output)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with path.open("w") as fh:
        rc = subprocess.run(argv, stdout=fh, stderr=subprocess.STDOUT, check=False).returncode
    return rc, time.monotonic() - start, path.read_text(errors="replace")


def exec_in(*cmd: str, workdir: str = "/opt/aw") -> list[str]:
    # profile_tasks lists every task (not only the 15 slowest), for the per-role sums.
    env = ["-e", "ANSIBLE_FORCE_COLOR=0", "-e", "PROFILE_TASKS_TASK_OUTPUT_LIMIT=all"]
    return ["docker", "exec", "-w", workdir, *env, NAME, *cmd]


def create() -> None:
    subprocess.run(["docker", "rm", "-f", NAME], capture_output=True, check=False)
    sh(["docker", "run", *RUN_ARGS, IMAGE, "/sbin/init"], stdout=subprocess.DEVNULL)
    image_id = sh(
        ["docker", "image", "inspect", "-f", "{{.Id}}", IMAGE], capture_output=True
    ).stdout.strip()
    tar = Path(f"/tmp/aw-agent-stack-base-{image_id.removeprefix('sha256:')}.tar")
    if not tar.is_file() or tar.stat().st_size == 0:
        tmp = tar.with_suffix(".tmp")
        sh(["docker", "save", "-o", str(tmp), IMAGE])
        tmp.rename(tar)
    sh(["docker", "cp", str(tar), f"{NAME}:/var/tmp/base.tar"])
    ca = Path("/etc/ssl/certs/ca-certificates.crt")
    if ca.is_file():
        sh(["docker", "cp", "-L", str(ca), f"{NAME}:/var/tmp/host-ca.crt"])
    for _ in range(60):
        state = subprocess.run(
            exec_in("systemctl", "is-system-running", workdir="/"),
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        if state in ("running", "degraded"):
            break
        time.sleep(1)


def copy_tree() -> None:
    files = sh(
        ["git", "-C", str(ROOT), "ls-files", "-co", "--exclude-standard", "-z"], capture_output=True
    ).stdout
    present = "\0".join(f for f in files.split("\0") if f and (ROOT / f).exists())
    sh(["docker", "exec", NAME, "sh", "-c", "rm -rf /opt/aw.new && mkdir -p /opt/aw.new"])
    tar = subprocess.Popen(
        ["tar", "-C", str(ROOT), "--null", "-T", "-", "-cf", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=False,
    )
    untar = subprocess.Popen(
        ["docker", "exec", "-i", NAME, "tar", "-C", "/opt/aw.new", "-xf", "-"], stdin=tar.stdout
    )
    assert tar.stdin is not None and tar.stdout is not None
    tar.stdin.write(present.encode())
    tar.stdin.close()
    tar.stdout.close()
    if tar.wait() or untar.wait():
        sys.exit("copying the tree into the container failed")
    # Keep the earlier runs' fact cache and wheel caches (.ansible, .cache), as a clone would.
    sh(
        [
            "docker",
            "exec",
            NAME,
            "sh",
            "-c",
            "for d in .ansible .cache; do [ -d /opt/aw/$d ] && mv /opt/aw/$d /opt/aw.new/; done;"
            " rm -rf /opt/aw && mv /opt/aw.new /opt/aw",
        ]
    )


def figures(text: str) -> dict[str, object]:
    recaps = [m.groupdict() for m in RECAP.finditer(text)]
    recap = {k: int(v) for k, v in recaps[-1].items()} if recaps else {}
    tasks = [(m["task"].strip(), float(m["seconds"])) for m in PROFILE.finditer(text)]
    by_role: dict[str, list[float]] = {}
    for task, seconds in tasks:
        role = task.split(" : ", 1)[0] if " : " in task else "(plays)"
        by_role.setdefault(role, []).append(seconds)
    roles = sorted(by_role.items(), key=lambda kv: -sum(kv[1]))
    return {
        "recap": recap,
        "slowest": tasks[:15],
        "tasks_timed": len(tasks),
        "by_role": [(role, round(sum(s), 1), len(s)) for role, s in roles],
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reuse", action="store_true", help="copy the tree again, re-run only")
    parser.add_argument("--destroy", action="store_true", help="remove the container and stop")
    args = parser.parse_args()
    if args.destroy:
        subprocess.run(["docker", "rm", "-f", NAME], capture_output=True, check=False)
        return 0
    OUT.mkdir(parents=True, exist_ok=True)
    result: dict[str, object] = {"command": " ".join(PLAYBOOK)}
    if not args.reuse:
        create()
        copy_tree()
        rc, secs, _ = log_to(
            OUT / "prepare.log", exec_in("bash", "tests/bench/site_rerun/prepare.sh")
        )
        print(f"prepare: rc={rc} {secs:.0f} s (log {OUT / 'prepare.log'})")
        if rc:
            return 1
        rc, secs, text = log_to(OUT / "converge.log", exec_in(*PLAYBOOK))
        result["converge"] = {"rc": rc, "seconds": round(secs, 1), **figures(text)}
        print(f"first converge: rc={rc} {secs:.1f} s {result['converge']['recap']}")  # type: ignore[index]
        if rc:
            print(f"first converge failed; see {OUT / 'converge.log'}")
            (OUT / "result.json").write_text(json.dumps(result, indent=2))
            return 1
    else:
        copy_tree()
        previous = OUT / "result.json"
        if previous.is_file():
            result["converge"] = json.loads(previous.read_text()).get("converge")
    rc, secs, text = log_to(OUT / "rerun.log", exec_in(*PLAYBOOK))
    rerun = {"rc": rc, "seconds": round(secs, 1), **figures(text)}
    result["rerun"] = rerun
    (OUT / "result.json").write_text(json.dumps(result, indent=2))
    print(f"container {NAME} kept for --reuse; remove it with --destroy")
    recap = rerun["recap"]
    print(f"no-op re-run: rc={rc} {secs:.1f} s {recap}")
    converge = result.get("converge")
    if isinstance(converge, dict) and converge.get("seconds"):
        print(f"ratio re-run / first converge: {secs / float(converge['seconds']):.1%}")
    for task, seconds in rerun["slowest"]:  # type: ignore[attr-defined]
        print(f"  {seconds:7.2f} s  {task}")
    print(f"per role (seconds, tasks; {rerun['tasks_timed']} tasks timed):")
    for role, seconds, count in rerun["by_role"]:  # type: ignore[attr-defined]
        print(f"  {seconds:7.1f} s {count:4d}  {role}")
    ok = rc == 0 and isinstance(recap, dict) and recap.get("changed") == 0
    print("RESULT: " + ("re-run changed nothing" if ok else f"FAILED (see {OUT / 'rerun.log'})"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
