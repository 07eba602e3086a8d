#!/usr/bin/env bash
# Installs and starts what the tests need on Debian as root: Docker engine, Redis, the registry,
# busybox-static, Chromium, docker-compose and debootstrap. Idempotent; safe to run on a machine that
# already has them.
set -euo pipefail

need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v redis-server >/dev/null || need+=(redis-server)
command -v docker-registry >/dev/null || need+=(docker-registry)
[ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -qx httpd || need+=(busybox-static)
command -v chromium >/dev/null || need+=(chromium)
command -v docker-compose >/dev/null || need+=(docker-compose)
command -v iptables >/dev/null || need+=(iptables)
command -v debootstrap >/dev/null || need+=(debootstrap)  # scripts/build-base-image.sh
if [ ${#need[@]} -gt 0 ]; then
  echo "testbed: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# The registry package starts its own daemon on :5000 where an init system runs; tests use their own.

if ! docker info >/dev/null 2>&1; then
  echo "testbed: starting dockerd"
  nohup dockerd >/var/log/hmm-testbed-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
  docker info >/dev/null 2>&1 || { tail -n 30 /var/log/hmm-testbed-dockerd.log; exit 1; }
fi
echo "testbed: docker engine $(docker version --format '{{.Server.Version}}')"
