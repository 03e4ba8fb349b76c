#!/usr/bin/env bash
# Copyright: agent-workstation contributors
# SPDX-License-Identifier: Apache-2.0 (see LICENSE at the repository root)
# The image's start script for the PyPI install (agent-workstation/real-openwebui:test). What
# open-webui's backend/start.sh (v0.12.4) does for the environment roles/agent_stack renders:
# cd to its own directory, HOST/PORT defaults 0.0.0.0:8080, a WEBUI_SECRET_KEY from
# .webui_secret_key when none is in the environment (the template's shim exports one), then
# uvicorn open_webui.main:app with --forwarded-allow-ips '*' and UVICORN_WORKERS (default 1).
# Not done (the template sets none of them): Playwright, USE_OLLAMA_DOCKER, USE_CUDA_DOCKER,
# SPACE_ID, and the `| tee server.log` of the original.
cd "$(dirname "${BASH_SOURCE[0]}")" || exit 1
PORT="${PORT:-8080}"
HOST="${HOST:-0.0.0.0}"
if [ -z "${WEBUI_SECRET_KEY:-}${WEBUI_JWT_SECRET_KEY:-}" ]; then
  [ -e .webui_secret_key ] || head -c 12 /dev/random | base64 >.webui_secret_key
  WEBUI_SECRET_KEY=$(cat .webui_secret_key)
fi
export WEBUI_SECRET_KEY
exec uvicorn open_webui.main:app --host "$HOST" --port "$PORT" --forwarded-allow-ips '*' \
  --workers "${UVICORN_WORKERS:-1}"
