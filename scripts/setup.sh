#!/usr/bin/env bash
# Installs what building and testing minicontainer needs, from Debian's
# packages only. Idempotent: packages already present are not fetched again.
set -euo pipefail
# gcc and libc6-dev: the attack suite compiles its attacker programs static
# (and test_cri.py its pause program). containernetworking-plugins and
# python3-grpcio: test_cri.py's pods (CNI bridge, the CRI client).
# bolt-16: the Makefile lays out the linked binary again with llvm-bolt.
pkgs=(libjansson-dev libcap-dev libseccomp-dev busybox-static python3-jsonschema python3-pytest
      runc crun hyperfine iproute2 iptables nftables jq podman conmon containerd containernetworking-plugins
      python3-grpcio tmux gcc libc6-dev
      libarchive-dev libzstd-dev zlib1g-dev zstd umoci skopeo
      libcurl4-openssl-dev libssl-dev libnghttp2-dev libpsl-dev libidn2-dev libunistring-dev libbrotli-dev
      docker-registry apache2-utils openssl curl
      slirp4netns passt uidmap
      bolt-16
      zsh fish groff-base)  # the completion scripts and man pages are checked by their shells and groff
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The test runner's python may be another than Debian's (pyenv): make sure it
# has pytest, jsonschema and grpcio too, and jeepney (a D-Bus library: the
# fake systemd of test_features.py reads our StartTransientUnit with it).
python3 -c 'import pytest, jsonschema, grpc, jeepney' 2>/dev/null || python3 -m pip install -q pytest jsonschema grpcio jeepney
# Rootless user-mode networks (slirp4netns, pasta) open /dev/net/tun as the
# user: Debian's udev makes it 0666; a machine without udev may have 0600.
if [ -c /dev/net/tun ] && [ "$(stat -c %a /dev/net/tun)" != 666 ]; then chmod 0666 /dev/net/tun; fi
