# agent-workstation/real-openwebui:test (tests/images/real/build.sh): REAL Open WebUI, PyPI
# open-webui 0.12.4 (tests/real/build.sh openwebui), in place of ghcr.io/open-webui/open-webui.
# The contract the compose template relies on (open-webui/open-webui Dockerfile at v0.12.4:
# WORKDIR /app/backend, CMD ["bash", "start.sh"], data in /app/backend/data, runs as root):
# - the template's entrypoint shim ends in `exec bash start.sh` (cwd /app/backend);
# - python3 on PATH: the health check and the rerank adapter (the same image) use it.
# start.sh is the project's own script doing what the image's backend/start.sh does for the
# template's environment (files/openwebui/start.sh says what and what not).
ARG BASE
FROM ${BASE}
# The venv and its interpreter are bind-mounted read-only at these paths (label
# org.agent-workstation.mounts; build.sh says why); the image holds their mount points.
ARG VENV
ARG PYPREFIX
COPY files/start.sh /app/backend/start.sh
# qdrant-client 1.18.0 (+ portalocker), which the real image carries (build.sh says why): on
# PYTHONPATH, as the mounted venv is read-only.
COPY extras/ /opt/aw-extras/
# The PyPI layout: open_webui/ lies in site-packages, not in /app/backend as in the image; these
# point Open WebUI at the image's data directory, at the wheel's frontend build, and at a
# writable static directory (it copies its assets there at start; the mounted venv is read-only).
ENV PATH=${VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    DATA_DIR=/app/backend/data \
    FRONTEND_BUILD_DIR=${VENV}/lib/python3.11/site-packages/open_webui/frontend \
    STATIC_DIR=/app/backend/static PYTHONPATH=/opt/aw-extras ENV=prod PORT=8080 HOME=/root
RUN mkdir -p /app/backend/data /app/backend/static "${VENV}" "${PYPREFIX}"
WORKDIR /app/backend
EXPOSE 8080
CMD ["bash", "start.sh"]
