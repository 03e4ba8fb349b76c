# Stand-in images for roles/agent_stack's Molecule scenario (tests only; see that README).
# Built inside the test instance from the project's own Debian base image (no registry):
#   docker build -f agent-stack.Dockerfile --build-arg BASE=... --target <svc> -t agent-workstation/standin-<svc>:test .
# The context holds tests/standins/ as standins/ and tests/fixtures/vllm/ as fixtures/vllm/.
ARG BASE=agent-workstation/molecule:debian13
FROM ${BASE} AS base
STOPSIGNAL SIGTERM
COPY standins/ /standin/standins/
COPY fixtures/vllm/ /standin/fixtures/vllm/
RUN ln -s /standin/standins/agent_stack_standin.py /standin/http_standin.py
CMD ["python3", "--version"]

# vLLM: `vllm serve ...` runs the recorded-response stand-in; a huggingface_hub stand-in takes
# the entrypoint's one-time download (nothing is downloaded).
FROM base AS vllm
RUN install -m 0755 /standin/standins/vllm_cli_shim.py /usr/local/bin/vllm \
 && d="$(python3 -c 'import site; print(site.getsitepackages()[0])')" \
 && mkdir -p "$d" && cp -r /standin/standins/huggingface_hub "$d/"

# Qdrant: ./qdrant --config-path ... in /qdrant, as in the real image.
FROM base AS qdrant
WORKDIR /qdrant
RUN printf '#!/bin/sh\nexec python3 /standin/http_standin.py --kind qdrant --port 6333 "$@"\n' > /qdrant/qdrant \
 && chmod 0755 /qdrant/qdrant
ENTRYPOINT ["./qdrant"]

# Text Embeddings Inference: the image's entrypoint takes TEI's arguments.
FROM base AS tei
ENTRYPOINT ["python3", "/standin/http_standin.py", "--kind", "tei"]

# Open WebUI: `bash start.sh` in /app/backend, as in the real image.
FROM base AS openwebui
WORKDIR /app/backend
RUN printf '#!/bin/bash\nexec python3 /standin/http_standin.py --kind openwebui --port 8080\n' > start.sh
CMD ["bash", "start.sh"]

# OpenHands app server.
FROM base AS openhands
CMD ["python3", "/standin/http_standin.py", "--kind", "openhands", "--port", "3000"]

# Redis: the real redis-server from Debian's archive.
FROM base AS redis
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends redis-server redis-tools >/dev/null \
 && rm -rf /var/lib/apt/lists/* && mkdir -p /usr/local/etc/redis /data
CMD ["redis-server"]
