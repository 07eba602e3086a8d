#!/usr/bin/env bash
# Builds hmm-updater-base:bookworm, a Debian 12 root filesystem with Python 3.11, from Debian's package
# archive alone (debootstrap into a folder, then `docker import`). The Dockerfile's default base comes from
# Docker Hub; this one is for machines that only reach the package registries:
#   docker build --network host --build-arg BASE_IMAGE=hmm-updater-base:bookworm .
# Cached: does nothing when the image exists. FORCE=1 rebuilds; DEBIAN_MIRROR picks another mirror.
set -euo pipefail

tag=${BASE_IMAGE_TAG:-hmm-updater-base:bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
security_mirror=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

if [ -z "${FORCE:-}" ] && docker image inspect "$tag" >/dev/null 2>&1; then
  echo "base image: $tag is cached (FORCE=1 rebuilds it)"
  exit 0
fi
if ! command -v debootstrap >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi

started=$SECONDS
root=$(mktemp -d /var/tmp/hmm-updater-base.XXXXXX)
cleanup() {
  # debootstrap mounts /proc and /sys inside the tree; a failed run can leave them behind.
  grep -o " $root/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l || true
  rm -rf --one-file-system "$root"
}
trap cleanup EXIT

echo "base image: debootstrap bookworm from $mirror"
debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
  bookworm "$root" "$mirror" >"$root.log" 2>&1 || { tail -n 30 "$root.log"; exit 1; }
rm -f "$root.log"

cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security_mirror bookworm-security main
EOF
# What the official Debian images do: no daemons started by package installs, no recommends, no caches.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' >"$root/etc/apt/apt.conf.d/90docker"
# CAs the host added (e.g. a TLS-inspecting proxy's) so pip and apt inside builds trust the same servers.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
  chroot "$root" update-ca-certificates >/dev/null 2>&1
fi
chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/log/*.log \
  "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/etc/resolv.conf "$root"/etc/hostname

tar --numeric-owner -C "$root" --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -c . |
  docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["bash"]' \
    --message "debootstrap bookworm minbase + python3" \
    - "$tag" >/dev/null
echo "base image: built $tag in $((SECONDS - started)) s"
