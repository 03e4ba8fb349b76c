#!/bin/bash
# Copyright: agent-workstation contributors
# SPDX-License-Identifier: Apache-2.0 (see LICENSE at the repository root)
# The app image's entrypoint (agent-workstation/real-openhands:test). OpenHands'
# containers/app/entrypoint.sh runs the command as root when SANDBOX_USER_ID is 0 (the image's
# default, which the compose template keeps) after switching RUN_AS_OPENHANDS off; that branch
# is all this script does. The other branch (a non-root user made at start, the Docker socket's
# group) is not reached with the template's environment.
set -eo pipefail
if [ "${SANDBOX_USER_ID:-0}" != 0 ]; then
  echo "entrypoint.sh: SANDBOX_USER_ID=${SANDBOX_USER_ID} is not supported by this test image (root only)" >&2
  exit 1
fi
export RUN_AS_OPENHANDS=false
exec "$@"
