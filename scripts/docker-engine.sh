#!/usr/bin/env bash
# Makes sure a Docker engine answers, for the Molecule tests.
# - An engine that already answers (a workstation's own Docker, Docker Desktop) is used as is.
# - Otherwise, as root: install Debian's docker.io if dockerd is missing, then start dockerd,
#   through systemd when systemd runs, else in the background with a log under
#   /var/log/agent-workstation-dockerd.log. The self-started engine registers
#   scripts/runc-capfix as its default runtime, so privileged test containers also work on
#   VMs whose capability bounding set is incomplete (see tests/images/README.md).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

if docker info >/dev/null 2>&1; then
  echo "docker-engine: an engine answers; using it."
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "docker-engine: no Docker engine answers and this is not root." >&2
  echo "  Fix: start your Docker engine (systemctl start docker), or run this as root." >&2
  exit 1
fi
if ! command -v dockerd >/dev/null 2>&1; then
  echo "docker-engine: installing docker.io from the distribution archive"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends docker.io >/dev/null
fi
if [ -d /run/systemd/system ] && systemctl start docker 2>/dev/null && docker info >/dev/null 2>&1; then
  echo "docker-engine: started docker.service"
  exit 0
fi
install -m 0755 "$here/runc-capfix" /usr/local/libexec/agent-workstation-runc-capfix 2>/dev/null || {
  mkdir -p /usr/local/libexec
  install -m 0755 "$here/runc-capfix" /usr/local/libexec/agent-workstation-runc-capfix
}
log=/var/log/agent-workstation-dockerd.log
echo "docker-engine: starting dockerd in the background (log: $log)"
nohup dockerd \
  --add-runtime capfix=/usr/local/libexec/agent-workstation-runc-capfix \
  --default-runtime capfix \
  >"$log" 2>&1 &
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    echo "docker-engine: dockerd answers"
    exit 0
  fi
  sleep 1
done
echo "docker-engine: dockerd did not answer within 60 s; last lines of $log:" >&2
tail -n 20 "$log" >&2
exit 1
