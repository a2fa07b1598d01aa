#!/usr/bin/env bash
# Image load and unpack, beside the tools people use today, in one run:
#   minicontainer load (docker-archive, uncompressed; oci-archive, gzip)
#   umoci unpack (of the OCI layout the archives were made from, gzip)
#   podman load into a private store (--root/--runroot under the work dir),
#     of the same docker-archive and oci-archive
# The image is built here (nothing downloaded): five layers of ~40 MB each,
# from the busybox rootfs, /usr/share and /usr/lib (small text files, icons,
# python sources, large binaries), with umoci; the archives with skopeo.
# Each tool runs RUNS times (alternated), each time into a fresh, empty
# destination on a new ext4 filesystem made for the run (a loop device over a
# sparse file in the work dir): ext4 makes creating files in the minutes after
# many deletions slow (it scans for recently deleted inodes not to reuse them),
# which made figures on the host's filesystem depend on what ran before.
# Inputs are warm in the page cache; nothing is synced after a run; the
# table has the median wall time, MB/s of uncompressed layer data, and the
# ratio to minicontainer's load of the same input. Then where our time goes:
# our load's own phases (--debug log) beside what decompression (gzip -dc)
# and SHA-256 (hashlib, OpenSSL; ours is CShim's SHA-NI code, about as fast) alone cost on these layers.
# Everything it made is removed on exit (podman's store with `system reset`,
# any mount under the work dir unmounted).
# Then pull from a local registry against podman pull and skopeo + umoci,
# and run --rm IMAGE /bin/true against podman run --rm (RUN_N times each).
# Usage: [RUNS=3] [RUN_N=20] [MINICONTAINER=BIN] bench/images.sh   (as root; needs umoci,
#   skopeo, podman)
set -euo pipefail
shopt -s inherit_errexit
RUNS=${RUNS:-3}
here=$(cd "$(dirname "$0")/.." && pwd)
MC=${MINICONTAINER:-$here/.build/release/minicontainer}
ROOTFS=${ROOTFS:-/var/lib/minicontainer/rootfs/busybox}
[ -x "$MC" ] || { echo "build first (make build): $MC" >&2; exit 1; }
for t in umoci skopeo podman openssl gzip curl; do command -v $t >/dev/null || { echo "needs $t" >&2; exit 1; }; done

work=$(mktemp -d /var/tmp/mc-bench-images.XXXXXX)
runs=$(mktemp -d /tmp/mcbr.XXXXXX)   # podman's runroot must be under 50 characters
# podman run makes its cgroup parent (cgroupfs manager) and leaves it: ours to
# remove if it was not there before.
had_libpod=$(ls -d /sys/fs/cgroup/*/libpod_parent 2>/dev/null | head -1 || true)
cleanup() {
  for d in "$work"/dest/podman-*; do
    [ -d "$d" ] || continue
    podman --root "$d/root" --runroot "$runs/${d##*/}" system reset -f >/dev/null 2>&1 || true
  done
  for w in "$work" "$runs"; do
    awk -v w="$w" 'index($2, w) == 1 { print $2 }' /proc/self/mounts | sort -r | while read -r m; do umount "$m" || umount -l "$m" || true; done
  done
  rm -rf "$work" "$runs"
  if [ -z "$had_libpod" ]; then
    for c in /sys/fs/cgroup/*/libpod_parent; do [ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null; done
  fi
}
trap cleanup EXIT

# The destinations' filesystem.
dest=$work/dest
truncate -s $((4 * RUNS + 4))G "$work/dest.img"
mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$work/dest.img"
mkdir "$dest"
mount -o loop "$work/dest.img" "$dest"

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "building the image in $work ..." >&2
lay=$work/layout
umoci init --layout "$lay"
umoci new --image "$lay:bench"
layer() {   # layer N DIR... : a layer of those trees, added with umoci
  local n=$1; shift
  tar -C / -cf "$work/l$n.tar" "$@"
  umoci raw add-layer --history.created_by "bench layer $n" --image "$lay:bench" "$work/l$n.tar"
  rm -f "$work/l$n.tar"
}
tar -C "$ROOTFS" -cf "$work/l1.tar" .
tar -C / -rf "$work/l1.tar" usr/share/vim
umoci raw add-layer --history.created_by "bench layer 1" --image "$lay:bench" "$work/l1.tar"; rm -f "$work/l1.tar"
layer 2 usr/share/icons usr/share/perl
layer 3 usr/lib/python3.11
layer 4 usr/lib/git-core usr/share/i18n
layer 5 usr/lib/cni
umoci config --image "$lay:bench" --config.cmd /bin/sh
skopeo copy --quiet "oci:$lay:bench" "docker-archive:$work/bench-docker.tar:mc-bench/images:1"
skopeo copy --quiet "oci:$lay:bench" "oci-archive:$work/bench-oci.tar:docker.io/mc-bench/images:1"
dsize=$(stat -c %s "$work/bench-docker.tar")
osize=$(stat -c %s "$work/bench-oci.tar")
# Uncompressed layer bytes: the docker-archive's layer files.
usize=$(tar -tvf "$work/bench-docker.tar" | awk '$6 ~ /\.tar$/ { s += $3 } END { print s }')
files=$(tar -xOf "$work/bench-docker.tar" --wildcards '*.tar' | tar -ti | wc -l)
MB() { awk -v b="$1" 'BEGIN { printf "%.0f", b / 1e6 }'; }
echo "image: 5 layers, $(MB "$usize") MB uncompressed, $files entries; docker-archive $(MB "$dsize") MB, oci-archive (gzip) $(MB "$osize") MB" >&2
cat "$work/bench-docker.tar" "$work/bench-oci.tar" "$lay"/blobs/sha256/* >/dev/null   # warm

declare -A T
run_one() {   # run_one NAME N: one timed run into a fresh destination
  local name=$1 n=$2 s e
  case $name in
    mc-docker|mc-oci)
      local d=$dest/mc-$name-$n input=$work/bench-docker.tar
      [ "$name" = mc-oci ] && input=$work/bench-oci.tar
      s=$(now); MINICONTAINER_DATA=$d "$MC" load -i "$input" >/dev/null; e=$(now) ;;
    umoci)
      s=$(now); umoci unpack --image "$lay:bench" "$dest/umoci-$n" >/dev/null; e=$(now) ;;
    podman-docker|podman-oci)
      local d=$dest/podman-$name-$n r=$runs/podman-$name-$n input=$work/bench-docker.tar
      [ "$name" = podman-oci ] && input=$work/bench-oci.tar
      s=$(now); podman --root "$d/root" --runroot "$r" --storage-driver overlay load -q -i "$input" >/dev/null 2>"$work/podman.err" || { cat "$work/podman.err" >&2; exit 1; }; e=$(now) ;;
  esac
  T[$name]+="$(elapsed "$s" "$e") "
}
NAMES="mc-docker mc-oci umoci podman-docker podman-oci"
for n in $(seq 1 "$RUNS"); do
  for name in $NAMES; do run_one "$name" "$n"; done
  echo "run $n/$RUNS done" >&2
done

med() { tr ' ' '\n' <<<"${T[$1]}" | grep . | median; }
declare -A LABEL=([mc-docker]="minicontainer load (docker-archive)" [mc-oci]="minicontainer load (oci-archive, gzip)"
  [umoci]="umoci unpack (layout, gzip)" [podman-docker]="podman load (docker-archive)" [podman-oci]="podman load (oci-archive, gzip)")
declare -A BASE=([mc-docker]=mc-docker [podman-docker]=mc-docker [mc-oci]=mc-oci [umoci]=mc-oci [podman-oci]=mc-oci)
echo
printf "%-40s %10s %10s %14s\n" "load + unpack, $RUNS runs" "median s" "MB/s" "x minicontainer"
for name in $NAMES; do
  m=$(med "$name"); b=$(med "${BASE[$name]}")
  printf "%-40s %10s %10s %14s\n" "${LABEL[$name]}" "$m" "$(awk -v u="$usize" -v t="$m" 'BEGIN { printf "%.0f", u / 1e6 / t }')" \
    "$(awk -v a="$m" -v b="$b" 'BEGIN { printf "%.2fx", a / b }')"
done
echo "(MB/s: uncompressed layer data, $(MB "$usize") MB; x minicontainer: time over ours on the same input, so >1 is slower than us)"

# Where our time goes.
echo
d=$dest/mc-phases
/usr/bin/time -f "%e %U %S" -o "$work/phases.time" env MINICONTAINER_DATA=$d "$MC" --debug --log "$work/phases.log" load -i "$work/bench-oci.tar" >/dev/null
rm -rf "$d"
read_ms=$(grep -o 'archive read and blobs verified in [0-9]* ms' "$work/phases.log" | grep -o '[0-9]* ms' | head -1)
unpack_ms=$(grep -o 'layers unpacked and committed in [0-9]* ms' "$work/phases.log" | grep -o '[0-9]* ms' | head -1)
read -r wall user sys < "$work/phases.time"
# zlib's inflate (the library we use) and SHA-256 (hashlib: OpenSSL's, about as fast as
# our CShim SHA-NI code) alone, one thread, on the image's gzip layers.
alone=$(python3 - "$lay" <<'PY'
import hashlib, json, os, sys, time, zlib
lay = sys.argv[1]
blobs = os.path.join(lay, "blobs", "sha256")
idx = json.load(open(os.path.join(lay, "index.json")))
man = json.load(open(os.path.join(blobs, idx["manifests"][0]["digest"].split(":")[1])))
inflate = sha = 0.0
for l in man["layers"]:
    data = open(os.path.join(blobs, l["digest"].split(":")[1]), "rb").read()
    t = time.perf_counter(); out = zlib.decompressobj(31).decompress(data); inflate += time.perf_counter() - t
    t = time.perf_counter(); hashlib.sha256(out).hexdigest(); sha += time.perf_counter() - t
print("%.0f %.0f" % (inflate * 1000, sha * 1000))
PY
)
read -r inflate_ms sha_ms <<<"$alone"
echo "where minicontainer's load of the oci-archive goes (one run; --debug log, GNU time):"
echo "  wall ${wall} s, CPU ${user} s user + ${sys} s system (threads: a reader per layer, layers in parallel)"
echo "  read the archive, write and verify the blobs ($(MB "$osize") MB, SHA-256):  $read_ms"
echo "  unpack the 5 layers and commit:                             $unpack_ms"
echo "  of its CPU, measured alone on the same layers (one thread):"
echo "    gzip decompression (zlib inflate):                        $inflate_ms ms"
echo "    SHA-256 of the uncompressed streams (DiffIDs):            $sha_ms ms"
echo "    the rest is file creation: open, write (page cache copies), utimensat, close of $files entries"

# Pull from a registry on 127.0.0.1 (Debian's docker-registry, distribution
# 2.8, with its own config and storage in the work dir), of the same 5-layer
# image pushed with skopeo: minicontainer pull into a fresh store, podman
# pull into a private store, and skopeo copy to an OCI layout followed by
# umoci unpack (what a runc user does). Then a second pull of the image
# already present, and the peak RSS of each pull (GNU time's %M).
if command -v docker-registry >/dev/null; then
  rport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkdir -p "$work/registry"
  cat > "$work/registry/config.yml" <<YML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/registry/data
http:
  addr: 127.0.0.1:$rport
YML
  docker-registry serve "$work/registry/config.yml" >"$work/registry/log" 2>&1 &
  regpid=$!
  trap 'kill $regpid 2>/dev/null; wait $regpid 2>/dev/null || true; cleanup' EXIT
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$rport/v2/" >/dev/null && break; sleep 0.1; done
  img=127.0.0.1:$rport/mc-bench/pull:1
  skopeo copy --quiet --dest-tls-verify=false "oci:$lay:bench" "docker://$img"
  echo "{\"default\": \"127.0.0.1:$rport\", \"insecure\": [\"127.0.0.1:$rport\"]}" > "$work/registries.json"
  csize=$(python3 - "$lay" <<'PY'
import json, os, sys
lay = sys.argv[1]
b = os.path.join(lay, "blobs", "sha256")
idx = json.load(open(os.path.join(lay, "index.json")))
m = json.load(open(os.path.join(b, idx["manifests"][0]["digest"].split(":")[1])))
print(sum(l["size"] for l in m["layers"]))
PY
)
  pconf=$runs/pull-conf
  mkdir -p "$pconf"
  printf '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n' > "$pconf/containers.conf"
  printf '[[registry]]\nlocation = "127.0.0.1:%s"\ninsecure = true\n' "$rport" > "$pconf/registries.conf"
  declare -A PT=() PR=()
  pull_one() {   # pull_one NAME N [again]
    local name=$1 n=$2 again=${3:-} d out=$work/pull.time
    case $name in
      mc)
        d=$dest/pull-mc-$n
        /usr/bin/time -f "%e %M" -o "$out" env MINICONTAINER_DATA=$d MINICONTAINER_REGISTRIES_CONF=$work/registries.json \
          REGISTRY_AUTH_FILE=$work/auth.json "$MC" pull -q "$img" >/dev/null ;;
      podman)
        d=$dest/pull-podman-$n
        /usr/bin/time -f "%e %M" -o "$out" env CONTAINERS_CONF=$pconf/containers.conf CONTAINERS_REGISTRIES_CONF=$pconf/registries.conf \
          podman --root "$d/root" --runroot "$runs/pull-podman-$n" --storage-driver overlay pull -q --tls-verify=false "$img" >/dev/null 2>"$work/podman.err" \
          || { cat "$work/podman.err" >&2; exit 1; } ;;
      skopeo)
        d=$dest/pull-skopeo-$n
        rm -rf "$d"; mkdir -p "$d"
        /usr/bin/time -f "%e %M" -o "$out" sh -c "skopeo copy --quiet --src-tls-verify=false 'docker://$img' 'oci:$d/layout:bench' && umoci unpack --image '$d/layout:bench' '$d/bundle' >/dev/null" ;;
    esac
    read -r t m < "$out"
    PT[$name$again]+="$t "
    PR[$name$again]=$(( ${PR[$name$again]:-0} > m ? ${PR[$name$again]:-0} : m ))
  }
  for n in $(seq 1 "$RUNS"); do
    for name in mc podman skopeo; do pull_one "$name" "$n"; done
    for name in mc podman; do pull_one "$name" "$n" -again; done
    echo "pull run $n/$RUNS done" >&2
  done
  for n in $(seq 1 "$RUNS"); do
    CONTAINERS_CONF=$pconf/containers.conf podman --root "$dest/pull-podman-$n/root" --runroot "$runs/pull-podman-$n" system reset -f >/dev/null 2>&1 || true
  done
  pmed() { tr ' ' '\n' <<<"${PT[$1]}" | grep . | median; }
  echo
  printf "%-48s %10s %10s %12s %12s\n" "pull from 127.0.0.1, $RUNS runs ($(MB "$csize") MB)" "median s" "MB/s" "x podman" "peak RSS MB"
  row() {   # row LABEL KEY BASEKEY
    local m b; m=$(pmed "$2"); b=$(pmed "$3")
    printf "%-48s %10s %10s %12s %12s\n" "$1" "$m" "$(awk -v u="$csize" -v t="$m" 'BEGIN { printf "%.0f", u / 1e6 / t }')" \
      "$(awk -v a="$m" -v b="$b" 'BEGIN { printf "%.2fx", a / b }')" "$(awk -v k="${PR[$2]}" 'BEGIN { printf "%.1f", k / 1024 }')"
  }
  row "minicontainer pull" mc podman
  row "podman pull (private store)" podman podman
  row "skopeo copy to a layout + umoci unpack" skopeo podman
  row "minicontainer pull, image present" mc-again podman-again
  row "podman pull, image present" podman-again podman-again
  echo "(MB/s: compressed layer bytes over the wire; x podman: time over podman's for the same case)"
  kill $regpid 2>/dev/null; wait $regpid 2>/dev/null || true
  trap cleanup EXIT
else
  echo "(no docker-registry: pull not measured)"
fi

# run --rm IMAGE /bin/true: ours against podman's (runc; crun refuses this
# hybrid host) on the busybox image, both from stores loaded above the loop,
# alternated, RUN_N times each. podman gets a private store and
# containers.conf: cgroupfs, file events, host network off, and rlimits that
# fit this host's hard limits (its defaults ask for more than CAP_SYS_RESOURCE-less
# root may set).
RUN_N=${RUN_N:-20}
bb=$work/busybox.tar
bash "$here/scripts/mkimage.sh" "$ROOTFS" "$bb" mc-bench/busybox:1 >/dev/null
rdata=$dest/mc-run
MINICONTAINER_DATA=$rdata "$MC" load -i "$bb" >/dev/null
prun=$runs/podman-run
mkdir -p "$prun"
. "$here/bench/podman.sh"
podman_conf > "$prun/containers.conf"
export CONTAINERS_CONF=$prun/containers.conf
P=(podman --root "$dest/podman-run" --runroot "$prun/run" --storage-driver overlay)
"${P[@]}" load -q -i "$bb" >/dev/null
"${P[@]}" run --rm --network none mc-bench/busybox:1 /bin/true   # warm
MINICONTAINER_DATA=$rdata "$MC" --root "$prun/mc-root" run --rm --network none mc-bench/busybox:1 /bin/true
declare -A R=()
for n in $(seq 1 "$RUN_N"); do
  s=$(now); MINICONTAINER_DATA=$rdata "$MC" --root "$prun/mc-root" run --rm --network none mc-bench/busybox:1 /bin/true; e=$(now)
  R[mc]+="$(elapsed "$s" "$e") "
  s=$(now); "${P[@]}" run --rm --network none mc-bench/busybox:1 /bin/true; e=$(now)
  R[podman]+="$(elapsed "$s" "$e") "
done
"${P[@]}" system reset -f >/dev/null 2>&1 || true
unset CONTAINERS_CONF
mr=$(tr ' ' '\n' <<<"${R[mc]}" | grep . | median); pr=$(tr ' ' '\n' <<<"${R[podman]}" | grep . | median)
echo
printf "%-44s %10s %14s\n" "run --rm IMAGE /bin/true, $RUN_N runs" "median s" "x podman"
printf "%-44s %10s %14s\n" "minicontainer run --rm (busybox image)" "$mr" "$(awk -v a="$mr" -v b="$pr" 'BEGIN { printf "%.2fx", a / b }')"
printf "%-44s %10s %14s\n" "podman run --rm, runc (same image)" "$pr" "1.00x"
