#!/usr/bin/env bash
# Provision Prometheus 2.42 and promtool from Debian 12 for the monitoring tests
# (test/integration/monitoring.integration.test.ts). Idempotent: exits at once when both are installed;
# apt keeps the downloaded .deb in /var/cache/apt/archives, so a reinstall needs no network.
#
# The package's own service (prometheus on :9090, every interface) is never started: the tests run their
# own Prometheus on a free loopback port. While installing, a policy-rc.d (exit 101) stops the maintainer
# scripts from starting it; with systemd running, the unit is also disabled and stopped.
set -euo pipefail

log() { printf '[provision-prometheus] %s\n' "$*"; }

if command -v prometheus >/dev/null && command -v promtool >/dev/null; then
  log "installed: $(prometheus --version 2>&1 | head -n 1)"
  exit 0
fi
[[ "$(id -u)" -eq 0 ]] || {
  echo "[provision-prometheus] error: must run as root (apt-get install)" >&2
  exit 1
}
export DEBIAN_FRONTEND=noninteractive

readonly POLICY=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e "$POLICY" ]]; then
  printf '#!/bin/sh\n# tabby provision-prometheus: do not start services while installing\nexit 101\n' >"$POLICY"
  chmod 755 "$POLICY"
  created_policy=1
fi
cleanup() { if [[ "$created_policy" -eq 1 ]]; then rm -f "$POLICY"; fi; }
trap cleanup EXIT

apt_get() { apt-get -o DPkg::Lock::Timeout=900 "$@"; }
if ! apt_get install -y --no-install-recommends prometheus; then
  apt_get update
  apt_get install -y --no-install-recommends prometheus
fi
if [[ -d /run/systemd/system ]]; then
  systemctl disable --now prometheus.service || true
fi
log "installed: $(prometheus --version 2>&1 | head -n 1)"
