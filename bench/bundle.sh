# Sourced by the benchmarks: make_true_bundle DIR writes a bundle in DIR
# (minicontainer's default spec) running /bin/true on $ROOTFS, no terminal.
make_true_bundle() {
  mkdir -p "$1"
  "$MC" spec --bundle "$1" >/dev/null
  python3 - "$1/config.json" "$ROOTFS" <<'PY'
import json, sys
p, rootfs = sys.argv[1], sys.argv[2]
c = json.load(open(p))
c["root"]["path"] = rootfs
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
json.dump(c, open(p, "w"), indent=2)
PY
}
