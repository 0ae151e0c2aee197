#!/usr/bin/env bash
# Makes the offline base image for the service: Debian bookworm with Python 3.11,
# built by debootstrap from the Debian mirror and imported into the local Docker
# engine. Used where no outside image registry can be reached; production builds
# use a CUDA PyTorch runtime image instead (see Dockerfile's BASE_IMAGE).
#
# usage: docker/build-base-image.sh [IMAGE_NAME]   (default: voxfleet/base:bookworm)
set -euo pipefail

image="${1:-voxfleet/base:bookworm}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if docker image inspect "$image" >/dev/null 2>&1; then
    echo "base image $image already present"
    exit 0
fi
command -v debootstrap >/dev/null || { echo "debootstrap is not installed (apt-get install debootstrap)" >&2; exit 1; }

root="$(mktemp -d /tmp/voxfleet-base.XXXXXX)"
trap 'rm -rf "$root"' EXIT

echo "debootstrap bookworm into $root from $mirror"
debootstrap --variant=minbase \
    --include=python3,python3-venv,ca-certificates,libgomp1 \
    bookworm "$root" "$mirror" >/tmp/voxfleet-debootstrap.log 2>&1 \
    || { tail -20 /tmp/voxfleet-debootstrap.log >&2; echo "debootstrap failed (log: /tmp/voxfleet-debootstrap.log)" >&2; exit 1; }

# Trim what a runtime image never needs.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
       "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/*

tar -C "$root" -c . | docker import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    - "$image"
echo "imported $image"
