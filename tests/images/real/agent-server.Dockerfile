# agent-workstation/real-agent-server:test (tests/images/real/build.sh): the REAL OpenHands
# agent-server, PyPI openhands-agent-server 1.34.0 (tests/real/build.sh openhands: the version
# openhands-ai 1.11.0 pins), in place of ghcr.io/openhands/agent-server:1.34.0-python, the
# sandbox image the app starts through the Docker API. As that image (OpenHands/software-agent-sdk
# openhands-agent-server/openhands/agent_server/docker/Dockerfile, targets base-image-minimal +
# source): user openhands uid/gid 10001 with passwordless sudo, /workspace/project owned by it,
# WORKDIR /, OH_ENABLE_VNC=false, LOG_JSON=true, port 8000, ENTRYPOINT
# ["/agent-server/.venv/bin/python", "-m", "openhands.agent_server"] (the app adds `--port 8000`).
# Chromium: agent-server 1.34.0 refuses to create a conversation without it ("Chromium is
# required for browser operations", tests/real/README.md); the real image carries it too. Not
# carried: VS Code Web, VNC/desktop, Docker CLI, gh (the template turns none of them on).
ARG BASE
FROM ${BASE}
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium git tmux curl \
      sudo ca-certificates jq procps >/dev/null \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd -g 10001 openhands && useradd -m -u 10001 -g 10001 -s /bin/bash openhands \
 && usermod -aG sudo openhands && echo 'openhands ALL=(ALL) NOPASSWD:ALL' >>/etc/sudoers \
 && mkdir -p /workspace/project && chown -R openhands:openhands /workspace
# The venv and its interpreter are bind-mounted read-only at these paths (label
# org.agent-workstation.mounts; build.sh says why; the app adds the mounts to each sandbox it
# starts, OH_SANDBOX_MOUNTS). The venv lies under /root (its absolute path is in its scripts):
# let uid 10001 reach the mount points.
ARG VENV
ARG PYPREFIX
RUN mkdir -p "${VENV}" "${PYPREFIX}" \
 && chmod 0755 /root /root/.cache /root/.pyenv /root/.pyenv/versions "$(dirname "${VENV}")" "$(dirname "$(dirname "${VENV}")")" \
 && mkdir -p /agent-server && ln -s "${VENV}" /agent-server/.venv
ENV OH_ENABLE_VNC=false LOG_JSON=true CHROME_BIN=/usr/bin/chromium \
    CHROMIUM_FLAGS="--no-sandbox --disable-dev-shm-usage --disable-gpu"
USER openhands
WORKDIR /
EXPOSE 8000
ENTRYPOINT ["/agent-server/.venv/bin/python", "-m", "openhands.agent_server"]
