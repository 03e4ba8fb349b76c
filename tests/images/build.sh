#!/usr/bin/env bash
# Builds the local Molecule base images (systemd as PID 1) from Debian's archive, no registry:
#   agent-workstation/molecule:debian13   (trixie: primary; Compose v2, NVIDIA 550 user space)
#   agent-workstation/molecule:debian12   (bookworm)
# An image is rebuilt only when its recipe (this script, the Dockerfile, the release) changes:
# the recipe's hash is stored as the image label org.agent-workstation.recipe.
# The mirror is read from this machine's own apt sources, or from DEBIAN_MIRROR.
# Usage: tests/images/build.sh [debian13|debian12 ...]   (default: both, in parallel)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo="agent-workstation/molecule"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/agent-workstation/rootfs"
mkdir -p "$cache"

declare -A SUITE=([debian13]=trixie [debian12]=bookworm)
PACKAGES="systemd,systemd-sysv,dbus,python3,python3-apt,sudo,procps,iproute2,ca-certificates,gnupg"

mirror() {
  if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
  local uri
  uri=$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list /etc/apt/sources.list 2>/dev/null \
        | grep -vE 'security|updates|nodesource|google|docker|nvidia|tailscale' \
        | sed -E 's/^URIs:[[:space:]]*//; s/^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?//' \
        | awk '{print $1}' | grep -E '/debian/?$' | head -n 1)
  if [ -z "$uri" ]; then
    echo "build.sh: no Debian mirror found in /etc/apt sources; set DEBIAN_MIRROR" >&2
    return 1
  fi
  echo "$uri"
}

recipe_hash() {
  { cat "$here/build.sh" "$here/Dockerfile"; echo "$1 $PACKAGES"; } | sha256sum | cut -c1-16
}

build_one() {
  local name=$1 suite=${SUITE[$1]} hash tag rootfs tarball
  hash=$(recipe_hash "$suite")
  tag="$repo:$name"
  if [ "$(docker image inspect -f '{{ index .Config.Labels "org.agent-workstation.recipe" }}' "$tag" 2>/dev/null)" = "$hash" ]; then
    echo "images: $tag is up to date (recipe $hash)"
    return 0
  fi
  tarball="$cache/$suite-$hash.tar"
  if [ ! -s "$tarball" ]; then
    echo "images: debootstrap $suite (about a minute)"
    rootfs=$(mktemp -d "/tmp/rootfs-$suite.XXXXXX")
    debootstrap --variant=minbase --include="$PACKAGES" --components=main \
      "$suite" "$rootfs" "$(mirror)" >"$cache/$suite.debootstrap.log" 2>&1 || {
        echo "images: debootstrap $suite failed; see $cache/$suite.debootstrap.log" >&2
        tail -n 20 "$cache/$suite.debootstrap.log" >&2
        rm -rf "$rootfs"; return 1; }
    tar -C "$rootfs" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$rootfs"
    rm -f "$cache/$suite"-*.tar.tmp
    find "$cache" -name "$suite-*.tar" ! -name "$(basename "$tarball")" -delete
  fi
  docker import "$tarball" "$repo:$name-rootfs" >/dev/null
  docker build -q --build-arg BASE="$repo:$name-rootfs" --label "org.agent-workstation.recipe=$hash" \
    -t "$tag" "$here" >/dev/null
  docker image rm "$repo:$name-rootfs" >/dev/null 2>&1 || true
  echo "images: built $tag (recipe $hash)"
}

command -v debootstrap >/dev/null || {
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
}
names=("$@"); [ ${#names[@]} -gt 0 ] || names=(debian13 debian12)
pids=()
for n in "${names[@]}"; do
  [ -n "${SUITE[$n]:-}" ] || { echo "build.sh: unknown image '$n' (known: ${!SUITE[*]})" >&2; exit 2; }
  build_one "$n" & pids+=($!)
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done
exit $rc
