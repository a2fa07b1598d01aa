#define _GNU_SOURCE
#include "cshim_sched.h"
#include <sched.h>
#include <sys/personality.h>
#include <sys/syscall.h>
#include <unistd.h>

// <linux/sched/types.h>, SCHED_ATTR_SIZE_VER1 (56 bytes).
struct mc_sched_attr {
    uint32_t size;
    uint32_t sched_policy;
    uint64_t sched_flags;
    int32_t sched_nice;
    uint32_t sched_priority;
    uint64_t sched_runtime;
    uint64_t sched_deadline;
    uint64_t sched_period;
    uint32_t sched_util_min;
    uint32_t sched_util_max;
};

int mc_sched_setattr(uint32_t policy, uint64_t flags, int32_t nice, uint32_t priority,
                     uint64_t runtime, uint64_t deadline, uint64_t period) {
    struct mc_sched_attr a = {
        .size = sizeof a, .sched_policy = policy, .sched_flags = flags, .sched_nice = nice,
        .sched_priority = priority, .sched_runtime = runtime, .sched_deadline = deadline, .sched_period = period,
    };
    return (int)syscall(SYS_sched_setattr, 0, &a, 0);
}

int mc_ioprio_set(int which, int who, int ioprio) {
    return (int)syscall(SYS_ioprio_set, which, who, ioprio);
}

int mc_set_mempolicy(int mode, const uint64_t *mask, unsigned long words) {
    // maxnode counts one more than the bits the kernel reads (mm/mempolicy.c: get_nodes).
    return (int)syscall(SYS_set_mempolicy, mode, mask, words ? words * 64 + 1 : 0);
}

int mc_sched_setaffinity(const uint64_t *mask, unsigned long bytes) {
    return sched_setaffinity(0, bytes, (const cpu_set_t *)mask);
}

int mc_sched_getaffinity(uint64_t *mask, unsigned long bytes) {
    return sched_getaffinity(0, bytes, (cpu_set_t *)mask);
}

int mc_personality(unsigned long persona) { return personality(persona); }
