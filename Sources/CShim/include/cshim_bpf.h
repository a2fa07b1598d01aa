// CShim, bpf(2) for the cgroup v2 device program (Cgroups/DeviceFilter.swift).
#ifndef MINICONTAINER_CSHIM_BPF_H
#define MINICONTAINER_CSHIM_BPF_H
#include <stddef.h>
#include <stdint.h>

// BPF_PROG_LOAD of a BPF_PROG_TYPE_CGROUP_DEVICE program of `count` 8-byte
// instructions, license GPL; the verifier's words go to `log` (may be NULL).
// The program's fd (close-on-exec), or -1 with errno set.
int mc_bpf_load_device_program(const void *insns, uint32_t count, char *log, uint32_t log_size);

// BPF_PROG_ATTACH of `prog` to the cgroup2 directory `cgroup` as its
// BPF_CGROUP_DEVICE program, with BPF_F_ALLOW_MULTI; `replace` >= 0 is a
// program attached before that this one replaces (BPF_F_REPLACE).
// 0, or -1 with errno set.
int mc_bpf_attach_device_program(int cgroup, int prog, int replace);

// BPF_PROG_QUERY of the BPF_CGROUP_DEVICE programs attached to the cgroup2
// directory `cgroup` itself: their ids into `ids`, room for `*count`; `*count`
// becomes the number attached (also on ENOSPC: `ids` was too short).
// 0, or -1 with errno set.
int mc_bpf_query_device_programs(int cgroup, uint32_t *ids, uint32_t *count);

// BPF_PROG_GET_FD_BY_ID: an fd (close-on-exec) of the program with `id`, or
// -1 with errno set (ENOENT: gone).
int mc_bpf_prog_fd_by_id(uint32_t id);

// BPF_PROG_DETACH of `prog` from the cgroup2 directory `cgroup`
// (BPF_CGROUP_DEVICE). 0, or -1 with errno set.
int mc_bpf_detach_device_program(int cgroup, int prog);
#endif
