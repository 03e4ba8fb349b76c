# agent-workstation/real-openhands:test (tests/images/real/build.sh): the REAL OpenHands app
# server, PyPI openhands-ai 1.11.0 (tests/real/build.sh openhands), in place of
# docker.openhands.dev/openhands/openhands. The template gives this service no entrypoint or
# command: the image's are used. As OpenHands' containers/app/Dockerfile (openhands-app target):
# WORKDIR /app, ENTRYPOINT ["/app/entrypoint.sh"], CMD uvicorn openhands.server.listen:app on
# 0.0.0.0:3000, the venv's bin first on PATH, FILE_STORE_PATH=/.openhands, SANDBOX_USER_ID=0 (the
# entrypoint then runs the app as root), and the same ENV defaults; python3 for the health check.
ARG BASE
FROM ${BASE}
# The venv and its interpreter are bind-mounted read-only at these paths (label
# org.agent-workstation.mounts; build.sh says why); the image holds their mount points.
ARG VENV
ARG PYPREFIX
COPY files/entrypoint.sh /app/entrypoint.sh
ENV VIRTUAL_ENV=${VENV} \
    PATH=${VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    RUN_AS_OPENHANDS=true OPENHANDS_USER_ID=42420 SANDBOX_LOCAL_RUNTIME_URL=http://host.docker.internal \
    USE_HOST_NETWORK=false WORKSPACE_BASE=/opt/workspace_base SANDBOX_USER_ID=0 FILE_STORE=local \
    FILE_STORE_PATH=/.openhands INIT_GIT_IN_EMPTY_WORKSPACE=1
RUN mkdir -p /.openhands /opt/workspace_base "${VENV}" "${PYPREFIX}"
WORKDIR /app
ENTRYPOINT ["/app/entrypoint.sh"]
CMD ["uvicorn", "openhands.server.listen:app", "--host", "0.0.0.0", "--port", "3000"]
