# Sourced by the benchmarks: make_true_bundle DIR writes a bundle in DIR
# (minicontainer's default spec) running /bin/true on $ROOTFS, no terminal.
# SECCOMP=default puts in it the seccomp profile a Docker-style `run` gets
# (linux.seccomp of `minicontainer spec --rootfs ...`), for every runtime
# alike; unset or SECCOMP=none leaves the default spec's (none).
make_true_bundle() {
  mkdir -p "$1"
  "$MC" spec --bundle "$1" >/dev/null
  local profile=""
  case "${SECCOMP:-none}" in
    none) ;;
    # From this tree's binary (SECCOMP_FROM), also when $MC is an older one.
    default) profile=$("${SECCOMP_FROM:-$MC}" spec --stdout --rootfs "$ROOTFS" --network none -- /bin/true) ;;
    *) echo "bundle.sh: SECCOMP must be none or default, not ${SECCOMP}" >&2; return 2 ;;
  esac
  PROFILE=$profile python3 - "$1/config.json" "$ROOTFS" <<'PY'
import json, os, sys
p, rootfs = sys.argv[1], sys.argv[2]
c = json.load(open(p))
c["root"]["path"] = rootfs
# crun 1.8.1 refuses an ociVersion above 1.1.x; nothing here is newer.
c["ociVersion"] = "1.1.0"
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
if os.environ["PROFILE"]:
    s = json.loads(os.environ["PROFILE"])["linux"].get("seccomp")
    if s is None:
        sys.exit("bundle.sh: SECCOMP=default but run compiles no linux.seccomp")
    c["linux"]["seccomp"] = s
json.dump(c, open(p, "w"), indent=2)
PY
}
