#!/usr/bin/env bash
# Builds a busybox image locally from a rootfs directory, nothing downloaded:
# an OCI layout with umoci (one layer: the rootfs; Cmd /bin/sh), then a
# docker-archive of it with skopeo, as `docker save` writes.
#   scripts/mkimage.sh ROOTFS OUT.tar [REF]   (REF default busybox:latest)
set -euo pipefail
rootfs=${1:?usage: mkimage.sh ROOTFS OUT.tar [REF]}
out=${2:?usage: mkimage.sh ROOTFS OUT.tar [REF]}
ref=${3:-busybox:latest}
tag=${ref##*:}
for t in umoci skopeo; do
  command -v "$t" >/dev/null || { echo "mkimage: $t is missing (apt-get install $t)" >&2; exit 1; }
done
work=$(mktemp -d /tmp/mkimage.XXXXXX)
trap 'rm -rf "$work"' EXIT
umoci init --layout "$work/layout"
umoci new --image "$work/layout:$tag"
umoci insert --history.created_by "scripts/mkimage.sh $rootfs" --image "$work/layout:$tag" "$rootfs" / >/dev/null
umoci config --image "$work/layout:$tag" --config.cmd /bin/sh --config.env PATH=/usr/sbin:/usr/bin:/sbin:/bin \
  --config.workingdir / --author minicontainer --architecture amd64 --os linux
rm -f "$out"
skopeo copy --quiet "oci:$work/layout:$tag" "docker-archive:$out:$ref"
