# Sourced by the benchmarks that run podman: podman_ulimits prints the
# containers.conf line giving its containers rlimits this host's hard limits
# allow (its defaults ask for more than root without CAP_SYS_RESOURCE may
# set; it lowers its own NPROC to pid_max, so no more than that).
podman_ulimits() {
  local nofile nproc pid_max
  nofile=$(ulimit -Hn); nproc=$(ulimit -Hu)
  [ "$nofile" = unlimited ] && nofile=1048576
  pid_max=$(cat /proc/sys/kernel/pid_max)
  { [ "$nproc" = unlimited ] || [ "$nproc" -gt "$pid_max" ]; } && nproc=$pid_max
  echo "default_ulimits = [\"nofile=$nofile:$nofile\", \"nproc=$nproc:$nproc\"]"
}

# podman_conf prints the whole containers.conf of the rootful benchmarks
# that run one container at a time: those rlimits, runc (crun refuses this
# hybrid host), the cgroupfs manager (no systemd here), events in a file.
podman_conf() {
  printf '[containers]\n%s\n[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\nruntime = "runc"\n' "$(podman_ulimits)"
}
