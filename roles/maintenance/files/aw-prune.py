#!/usr/bin/env python3
# Copyright: agent-workstation contributors
# SPDX-License-Identifier: Apache-2.0 (see LICENSE at the repository root)
"""Weekly Docker prune that never removes a pinned image, a volume or the model cache.

Why not `docker system prune -a --volumes`: it removes every unused image (a stopped, pinned
20 GB vLLM image included) and every unused volume. Why not even `docker image prune`: an image
pulled by digest only (`image: repo@sha256:...`, the way this project pins) has no tag, and
whether the engine's "dangling" filter counts it differs across engine versions. So the only
things delegated to the engine are stopped containers and the build cache; images are judged
here, one by one:

  remove an image  <=>  no container (running or stopped) uses it
                        AND none of its references (repo:tag, repo@sha256:digest, its ID)
                        is in the pinned list.

Volumes are never touched (no volume prune at all), nor any directory (the model cache).
Usage: aw-prune.py --pinned-file FILE [--state-file FILE] [--dry-run]
DOCKER_HOST in the environment selects the engine (the service user's rootless socket).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
from typing import Any


def log(msg: str) -> None:
    print(f"aw-prune: {msg}", flush=True)


def docker(args: list[str], binary: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([binary, *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(
            f"docker {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}"
        )
    return proc


def read_pins(path: str) -> set[str]:
    pins: set[str] = set()
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            ref = line.split("#", 1)[0].strip()
            if ref:
                pins.add(ref)
    return pins


def normalise(name: str) -> str:
    """docker.io/library/redis and redis name the same repository."""
    for prefix in ("docker.io/", "index.docker.io/", "library/"):
        if name.startswith(prefix):
            name = name[len(prefix) :]
    return name


def pin_matches(pins: set[str], image: dict[str, Any]) -> list[str]:
    """The pins that name `image`: repo@sha256:<digest>, repo:tag, or its ID (sha256:<id>).

    A locally built image has no RepoDigest; `repo@<image ID>` (the test-only form that
    upgrade-vllm accepts with upgrade_vllm_allow_local_images) matches its ID.
    """
    image_id = image.get("Id", "")
    tags = {normalise(tag) for tag in image.get("RepoTags") or []}
    digests = {
        (normalise(ref.split("@", 1)[0]), ref.split("@", 1)[1])
        for ref in image.get("RepoDigests") or []
        if "@" in ref
    }
    hits = []
    for pin in pins:
        if pin == image_id:
            hits.append(pin)
        elif "@" in pin:
            name, digest = pin.split("@", 1)
            if (normalise(name), digest) in digests or digest == image_id:
                hits.append(pin)
        elif normalise(pin) in tags:
            hits.append(pin)
    return sorted(hits)


def plan(
    images: list[dict[str, Any]], used_ids: set[str], pins: set[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Split images into (remove, keep) with the reason for each kept one."""
    remove: list[dict[str, Any]] = []
    keep: list[dict[str, Any]] = []
    for image in images:
        image_id = image["Id"]
        pinned = pin_matches(pins, image)
        refs = list(image.get("RepoTags") or []) + list(image.get("RepoDigests") or [])
        entry = {"id": image_id, "refs": refs}
        if pinned:
            keep.append({**entry, "reason": "pinned", "pins": pinned})
        elif image_id in used_ids:
            keep.append({**entry, "reason": "used by a container"})
        else:
            remove.append(entry)
    return remove, keep


def write_state(path: str | None, state: dict[str, Any]) -> None:
    if not path:
        return
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(state, handle, indent=2, sort_keys=True)
    os.replace(tmp, path)


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def run(args: argparse.Namespace) -> dict[str, Any]:
    pins = read_pins(args.pinned_file)
    for extra in args.also_pinned_file:  # vLLM's current/previous image from upgrade-vllm.yml
        if os.path.isfile(extra):
            pins |= read_pins(extra)
    if not pins:
        raise RuntimeError(
            f"{args.pinned_file} lists no pinned image; refusing to prune (all would be fair game)"
        )
    state: dict[str, Any] = {
        "job": "prune",
        "started": now(),
        "dry_run": args.dry_run,
        "pinned": sorted(pins),
    }
    if not args.dry_run:
        out = docker(
            ["container", "prune", "--force", "--filter", f"until={args.container_age}"],
            args.docker,
        )
        state["containers"] = out.stdout.strip().splitlines()
    container_ids = docker(["ps", "--all", "--quiet", "--no-trunc"], args.docker).stdout.split()
    used_ids: set[str] = set()
    if container_ids:
        out = docker(
            ["container", "inspect", "--format", "{{.Image}}", *container_ids], args.docker
        )
        used_ids = set(out.stdout.split())
    image_ids = sorted(
        set(docker(["image", "ls", "--quiet", "--no-trunc"], args.docker).stdout.split())
    )
    images: list[dict[str, Any]] = []
    if image_ids:
        images = json.loads(docker(["image", "inspect", *image_ids], args.docker).stdout)
    remove, keep = plan(images, used_ids, pins)
    removed, failed = [], []
    for entry in remove:
        targets = entry["refs"] or [entry["id"]]
        if args.dry_run:
            log(f"would remove {entry['id']} {targets}")
            continue
        ok = True
        for ref in targets:
            proc = docker(["image", "rm", ref], args.docker, check=False)
            if proc.returncode != 0 and "No such image" not in proc.stderr:
                ok = False
                log(f"could not remove {ref}: {proc.stderr.strip()}")
        (removed if ok else failed).append(entry)
        if ok:
            log(f"removed {entry['id']} {targets}")
    for entry in keep:
        log(f"kept {entry['id']} ({entry['reason']})")
    if not args.dry_run:
        proc = docker(["builder", "prune", "--force"], args.docker, check=False)
        state["build_cache"] = (
            proc.stdout.strip().splitlines()[-1:]
            if proc.returncode == 0
            else f"skipped: {proc.stderr.strip()}"
        )
    state.update(
        finished=now(),
        removed_images=removed,
        kept_images=keep,
        failed_images=failed,
        status="ok" if not failed else "partial",
    )
    return state


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--pinned-file",
        required=True,
        help="one pinned reference per line (repo@sha256:..., repo:tag or sha256:<id>)",
    )
    parser.add_argument(
        "--also-pinned-file",
        action="append",
        default=[],
        help="more pinned references, read when the file exists (repeatable)",
    )
    parser.add_argument(
        "--state-file", help="where to write the last-run status (JSON) that doctor reads"
    )
    parser.add_argument("--docker", default="docker", help="docker CLI binary")
    parser.add_argument(
        "--container-age", default="24h", help="only stopped containers older than this are removed"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="list what would be removed, change nothing"
    )
    args = parser.parse_args(argv)
    try:
        state = run(args)
    except (RuntimeError, OSError, json.JSONDecodeError) as exc:
        log(f"FAILED: {exc}")
        write_state(
            args.state_file,
            {"job": "prune", "finished": now(), "status": "failed", "error": str(exc)},
        )
        return 1
    write_state(args.state_file, state)
    log(
        f"{state['status']}: removed {len(state['removed_images'])} image(s),"
        f" kept {len(state['kept_images'])}"
    )
    return 0 if state["status"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
