#!/bin/bash
# Runs INSIDE the bench container (tests/bench/bench_site_rerun.py copies the repository to
# /opt/aw and runs this once): what a real workstation has and this container does not, each a
# test-only step or a stand-in, named as such. Mirrors the scenarios it borrows from:
#   roles/nvidia_driver/molecule/default/prepare.yml      fake nvidia-smi (recorded capture)
#   roles/nvidia_container_toolkit/molecule/default/...   stand-in toolkit package + file: repo
#   roles/docker_rootless/molecule/default/prepare.yml    /dev/net/tun, /dev/fuse, /proc unmasked
#   molecule/operations/prepare.yml                       rootful docker.io + stand-in images
#   roles/observability/molecule/default/prepare.yml      DCGM exporter stand-in
set -euo pipefail
cd /opt/aw
log() { printf 'prepare: %s\n' "$*"; }

# The host's CA bundle (this network reaches PyPI through a TLS-inspecting proxy), so pip works
# here as it does on the host: for Ansible itself and the wheels code_index/agent_queue fetch.
if [ -s /var/tmp/host-ca.crt ]; then
  install -m 0644 /var/tmp/host-ca.crt /usr/local/share/ca-certificates/aw-bench-host.crt
  update-ca-certificates >/dev/null 2>&1 || true
  printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' > /etc/pip.conf
fi

log "apt: docker.io, compose, python3-venv, curl"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends docker.io docker-cli docker-compose curl python3-venv \
  ca-certificates >/dev/null

log "rootful docker.io for the stack's stand-ins (see agent_stack's scenario for why not rootless)"
mkdir -p /etc/systemd/system/docker.service.d
printf '[Service]\nEnvironment=DOCKER_ALLOW_IPV6_ON_IPV4_INTERFACE=1\n' > /etc/systemd/system/docker.service.d/aw-molecule.conf
systemctl daemon-reload
systemctl enable -q docker
systemctl restart docker

log "Ansible for the control node (this container), the project's pinned range"
python3 -m venv /opt/aw-ansible
/opt/aw-ansible/bin/pip install -q --disable-pip-version-check 'ansible>=12.3,<13' 'ansible-core>=2.19.4,<2.20' \
  'jinja2>=3.1,<4' 'pyyaml>=6.0,<7'

log "STAND-IN GPU: the fake nvidia-smi replaying the recorded RTX 4090 capture, driver 550.163.01"
install -m 0755 tests/fakes/nvidia-smi /usr/local/libexec/fake-nvidia-smi
sed 's#<driver_version>[^<]*</driver_version>#<driver_version>550.163.01</driver_version>#' \
  tests/fixtures/nvidia-smi/rtx-4090-570-v12.handmade.xml > /usr/local/share/nvidia-smi-capture.xml
cat > /usr/local/bin/nvidia-smi-recorded <<'SH'
#!/bin/sh
# STAND-IN for a working nvidia-smi: replays a recorded capture (bench only).
FAKE_NVIDIA_SMI_XML=/usr/local/share/nvidia-smi-capture.xml exec /usr/local/libexec/fake-nvidia-smi "$@"
SH
chmod 0755 /usr/local/bin/nvidia-smi-recorded

log "STAND-IN nvidia-container-toolkit 1.17.8-1 in a file: repository"
mkdir -p /opt/standin-repo
: > /opt/standin-repo/Packages
ver=1.17.8-1
root=/tmp/standin/pkg-$ver
mkdir -p $root/DEBIAN $root/usr/bin $root/etc/nvidia-container-runtime
printf 'Package: nvidia-container-toolkit\nVersion: %s\nArchitecture: all\nMaintainer: agent-workstation tests <tests@localhost>\nDescription: STAND-IN for NVIDIA nvidia-container-toolkit (bench only)\n' "$ver" > $root/DEBIAN/control
echo /etc/nvidia-container-runtime/config.toml > $root/DEBIAN/conffiles
printf '#!/bin/sh\necho "NVIDIA Container Toolkit CLI version %s (stand-in)"\n' "${ver%-*}" > $root/usr/bin/nvidia-ctk
printf '#!/bin/sh\necho "stand-in runtime" >&2\nexit 1\n' > $root/usr/bin/nvidia-container-runtime
chmod 0755 $root/usr/bin/*
cat > $root/etc/nvidia-container-runtime/config.toml <<'TOML'
disable-require = false
supported-driver-capabilities = "compat32,compute,display,graphics,ngx,utility,video"

[nvidia-container-cli]
environment = []
ldconfig = "@/sbin/ldconfig"
load-kmods = true
#no-cgroups = false

[nvidia-container-runtime]
log-level = "info"
mode = "auto"
runtimes = ["runc", "crun"]
TOML
deb=nvidia-container-toolkit_${ver}_all.deb
dpkg-deb --root-owner-group --build $root /opt/standin-repo/$deb >/dev/null
( cd /opt/standin-repo
  { dpkg-deb -f $deb; echo "Filename: ./$deb"; echo "Size: $(stat -c %s $deb)";
    echo "SHA256: $(sha256sum $deb | cut -d' ' -f1)"; echo; } >> Packages )
echo 'deb [trusted=yes] file:/opt/standin-repo ./' > /etc/apt/sources.list.d/standin.list

log "test-only: /dev/net/tun and /dev/fuse for the service user, /proc unmasked (rootless Docker)"
chmod 0666 /dev/net/tun /dev/fuse
findmnt --raw --noheadings --output TARGET | grep -E '^/proc/.|^/sys/firmware' | tac \
  | while read -r m; do umount --lazy "$m" || true; done

log "STAND-IN images for the stack, built from the project's base image"
docker load -q -i /var/tmp/base.tar >/dev/null
rm -f /var/tmp/base.tar
docker tag agent-workstation/molecule:debian13 agent-workstation/standin-base:test
rm -rf /var/tmp/aw-ctx && mkdir -p /var/tmp/aw-ctx/fixtures
cp -r tests/standins /var/tmp/aw-ctx/standins
cp -r tests/fixtures/vllm /var/tmp/aw-ctx/fixtures/vllm
for t in vllm qdrant tei openwebui openhands redis; do
  docker build -q -f /var/tmp/aw-ctx/standins/agent-stack.Dockerfile --build-arg BASE=agent-workstation/standin-base:test \
    --target "$t" -t "agent-workstation/standin-$t:test" /var/tmp/aw-ctx >/dev/null
done
# The sandbox image under the plain name only (a new image id: OpenHands starts sandboxes by an
# image's first tag, and roles/agent_stack refuses one whose first tag is another).
printf 'FROM agent-workstation/standin-base:test\nLABEL org.agent-workstation.standin=agent-server\n' \
  | docker build -q -t ghcr.io/openhands/agent-server:1.34.0-python - >/dev/null
# The Docker API filter: Debian's haproxy running the role's own config (as roles/agent_stack's
# scenario builds it, tests/images/socket-proxy).
docker build -q --build-arg BASE=agent-workstation/standin-base:test \
  -t agent-workstation/standin-socket-proxy:test tests/images/socket-proxy >/dev/null

log "STAND-IN DCGM exporter on 127.0.0.1:9400 (a recorded real output)"
mkdir -p /opt/aw-dcgm-standin
cp roles/observability/molecule/default/files/dcgm_standin.py /opt/aw-dcgm-standin/
cp tests/fixtures/exporters/dcgm-exporter-rtx4000ada-580.txt /opt/aw-dcgm-standin/metrics.txt
cat > /etc/systemd/system/aw-dcgm-standin.service <<'UNIT'
[Unit]
Description=Stand-in serving a recorded DCGM exporter output on 127.0.0.1:9400
[Service]
ExecStart=/usr/bin/python3 /opt/aw-dcgm-standin/dcgm_standin.py 127.0.0.1 9400 /opt/aw-dcgm-standin/metrics.txt
[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
systemctl enable -q --now aw-dcgm-standin
log "ready"
