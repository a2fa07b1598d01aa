#define _GNU_SOURCE
#include "cshim_bpf.h"
#include <linux/bpf.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int mc_bpf_load_device_program(const void *insns, uint32_t count, char *log, uint32_t log_size) {
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
    a.insns = (uint64_t)(uintptr_t)insns;
    a.insn_cnt = count;
    a.license = (uint64_t)(uintptr_t)"GPL";
    if (log != NULL && log_size > 0) {
        log[0] = 0;
        a.log_buf = (uint64_t)(uintptr_t)log;
        a.log_size = log_size;
        a.log_level = 1;
    }
    return (int)syscall(SYS_bpf, BPF_PROG_LOAD, &a, sizeof a);
}

int mc_bpf_attach_device_program(int cgroup, int prog, int replace) {
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.target_fd = (uint32_t)cgroup;
    a.attach_bpf_fd = (uint32_t)prog;
    a.attach_type = BPF_CGROUP_DEVICE;
    a.attach_flags = BPF_F_ALLOW_MULTI;
    if (replace >= 0) {
        a.attach_flags |= BPF_F_REPLACE;
        a.replace_bpf_fd = (uint32_t)replace;
    }
    return (int)syscall(SYS_bpf, BPF_PROG_ATTACH, &a, sizeof a);
}

int mc_bpf_query_device_programs(int cgroup, uint32_t *ids, uint32_t *count) {
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.query.target_fd = (uint32_t)cgroup;
    a.query.attach_type = BPF_CGROUP_DEVICE;
    a.query.prog_ids = (uint64_t)(uintptr_t)ids;
    a.query.prog_cnt = *count;
    int r = (int)syscall(SYS_bpf, BPF_PROG_QUERY, &a, sizeof a);
    // The kernel writes the number attached, also when ENOSPC says the array was short.
    *count = a.query.prog_cnt;
    return r;
}

int mc_bpf_prog_fd_by_id(uint32_t id) {
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.prog_id = id;
    a.open_flags = 0;
    return (int)syscall(SYS_bpf, BPF_PROG_GET_FD_BY_ID, &a, sizeof a);
}

int mc_bpf_detach_device_program(int cgroup, int prog) {
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.target_fd = (uint32_t)cgroup;
    a.attach_bpf_fd = (uint32_t)prog;
    a.attach_type = BPF_CGROUP_DEVICE;
    return (int)syscall(SYS_bpf, BPF_PROG_DETACH, &a, sizeof a);
}
