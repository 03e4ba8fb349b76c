#!/usr/bin/env python3
# Copyright: agent-workstation contributors
# SPDX-License-Identifier: Apache-2.0 (see LICENSE at the repository root)
"""A STAND-IN for Qdrant's REST snapshot API (stdlib only), for tests where Qdrant can't run.

It replays the response shapes of Qdrant's documented REST API (https://api.qdrant.tech,
v1.15-v1.17 reference pages "Create a snapshot (collection)", "List all snapshots
(collection)", "Recover from an uploaded snapshot (collection)", and the snapshots guide
https://qdrant.tech/documentation/concepts/snapshots): every answer is
{"time": <float>, "status": "ok", "result": ...}; a SnapshotDescription is
{name, creation_time, size, checksum (sha256)}; the upload endpoint takes multipart/form-data
with a `snapshot` file field and `priority`/`wait` query parameters; auth is the `api-key`
header. It is NOT Qdrant: points live in memory, a "snapshot" is this server's own JSON
wrapped in a tar archive (one member, `points.json`; real Qdrant snapshots are tar archives
too, so a restore's read-to-the-end check applies), and there is no vector search. Endpoints:

  GET    /collections                                   list
  PUT    /collections/{c}                               create (body ignored)
  GET    /collections/{c}                               info: result.points_count
  DELETE /collections/{c}                               drop
  PUT    /collections/{c}/points                        upsert {"points": [{"id", ...}]}
  POST   /collections/{c}/snapshots                     create snapshot
  GET    /collections/{c}/snapshots                     list snapshots
  GET    /collections/{c}/snapshots/{name}              download
  DELETE /collections/{c}/snapshots/{name}              delete
  POST   /collections/{c}/snapshots/upload              recover (multipart field "snapshot")

Usage: qdrant_standin.py --port 6333 [--api-key-file FILE] [--host 127.0.0.1]
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import io
import json
import re
import tarfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

COLLECTIONS: dict[str, dict[str, Any]] = {}
SNAPSHOTS: dict[str, dict[str, bytes]] = {}
LOCK = threading.Lock()
API_KEY = ""


def tar_one(payload: bytes) -> bytes:
    """The snapshot file: a tar archive holding points.json."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        info = tarfile.TarInfo("points.json")
        info.size = len(payload)
        archive.addfile(info, io.BytesIO(payload))
    return out.getvalue()


def untar_one(data: bytes) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
        member = archive.extractfile("points.json")
        if member is None:
            raise ValueError("points.json is not a file")
        return member.read()


def envelope(result: Any, started: float) -> bytes:
    return json.dumps(
        {"time": round(time.monotonic() - started, 6), "status": "ok", "result": result}
    ).encode()


def multipart_file(body: bytes, ctype: str, field: str) -> bytes | None:
    match = re.search(r"boundary=([^;]+)", ctype)
    if not match:
        return None
    boundary = match.group(1).strip('"').encode()
    for part in body.split(b"--" + boundary):
        head, _, data = part.partition(b"\r\n\r\n")
        if f'name="{field}"'.encode() in head:
            return data[:-2] if data.endswith(b"\r\n") else data
    return None


class Handler(BaseHTTPRequestHandler):
    server_version = "qdrant-standin/1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def reply(self, code: int, payload: bytes, ctype: str = "application/json") -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def error(self, code: int, message: str, started: float) -> None:
        body = {
            "time": round(time.monotonic() - started, 6),
            "status": {"error": message},
            "result": None,
        }
        self.reply(code, json.dumps(body).encode())

    def handle_any(self, method: str) -> None:
        started = time.monotonic()
        if API_KEY and self.headers.get("api-key") != API_KEY:
            self.reply(
                401, b"Must provide an API key or an Authorization bearer token", "text/plain"
            )
            return
        url = urllib.parse.urlsplit(self.path)
        parts = [urllib.parse.unquote(p) for p in url.path.strip("/").split("/") if p]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with LOCK:
            self.route(method, parts, body, started)

    def route(self, method: str, parts: list[str], body: bytes, started: float) -> None:
        if parts == ["collections"] and method == "GET":
            self.reply(
                200, envelope({"collections": [{"name": n} for n in sorted(COLLECTIONS)]}, started)
            )
            return
        if len(parts) < 2 or parts[0] != "collections":
            self.error(404, f"Not found: {self.path}", started)
            return
        name = parts[1]
        rest = parts[2:]
        if not rest:
            if method == "PUT":
                COLLECTIONS.setdefault(name, {"points": {}})
                self.reply(200, envelope(True, started))
            elif method == "DELETE":
                self.reply(200, envelope(COLLECTIONS.pop(name, None) is not None, started))
            elif method == "GET" and name in COLLECTIONS:
                count = len(COLLECTIONS[name]["points"])
                self.reply(
                    200,
                    envelope(
                        {"status": "green", "points_count": count, "indexed_vectors_count": count},
                        started,
                    ),
                )
            else:
                self.error(404, f"Collection `{name}` doesn't exist!", started)
            return
        if rest == ["snapshots", "upload"] and method == "POST":
            data = multipart_file(body, self.headers.get("Content-Type", ""), "snapshot")
            if data is None:
                self.error(400, "multipart field `snapshot` missing", started)
                return
            try:
                COLLECTIONS[name] = {
                    "points": {str(p["id"]): p for p in json.loads(untar_one(data))["points"]}
                }
            except (ValueError, KeyError, TypeError, tarfile.TarError, EOFError) as exc:
                self.error(400, f"Bad snapshot: {exc}", started)
                return
            self.reply(200, envelope(True, started))
            return
        if name not in COLLECTIONS:
            self.error(404, f"Collection `{name}` doesn't exist!", started)
            return
        if rest == ["points"] and method == "PUT":
            for point in json.loads(body or b"{}").get("points", []):
                COLLECTIONS[name]["points"][str(point["id"])] = point
            self.reply(200, envelope({"operation_id": 0, "status": "completed"}, started))
        elif rest == ["snapshots"] and method == "POST":
            stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d-%H-%M-%S")
            snap = f"{name}-standin-{stamp}-{len(SNAPSHOTS.get(name, {}))}.snapshot"
            data = tar_one(
                json.dumps(
                    {"collection": name, "points": list(COLLECTIONS[name]["points"].values())}
                ).encode()
            )
            SNAPSHOTS.setdefault(name, {})[snap] = data
            self.reply(200, envelope(self.describe(snap, data), started))
        elif rest == ["snapshots"] and method == "GET":
            self.reply(
                200,
                envelope(
                    [self.describe(s, d) for s, d in SNAPSHOTS.get(name, {}).items()], started
                ),
            )
        elif len(rest) == 2 and rest[0] == "snapshots" and rest[1] in SNAPSHOTS.get(name, {}):
            if method == "GET":
                self.reply(200, SNAPSHOTS[name][rest[1]], "application/octet-stream")
            elif method == "DELETE":
                del SNAPSHOTS[name][rest[1]]
                self.reply(200, envelope(True, started))
            else:
                self.error(405, "method not allowed", started)
        else:
            self.error(404, f"Not found: {self.path}", started)

    @staticmethod
    def describe(snap: str, data: bytes) -> dict[str, Any]:
        return {
            "name": snap,
            "creation_time": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            "size": len(data),
            "checksum": hashlib.sha256(data).hexdigest(),
        }

    def do_GET(self) -> None:
        self.handle_any("GET")

    def do_PUT(self) -> None:
        self.handle_any("PUT")

    def do_POST(self) -> None:
        self.handle_any("POST")

    def do_DELETE(self) -> None:
        self.handle_any("DELETE")


def main() -> None:
    global API_KEY  # noqa: PLW0603 - a one-file test server
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6333)
    parser.add_argument("--api-key-file")
    args = parser.parse_args()
    if args.api_key_file:
        with open(args.api_key_file, encoding="utf-8") as handle:
            API_KEY = handle.read().strip()
    ThreadingHTTPServer((args.host, args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
