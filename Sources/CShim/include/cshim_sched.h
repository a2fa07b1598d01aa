// CShim, the scheduling calls glibc 2.36 has no wrapper for (Swift cannot
// call the variadic syscall(2) itself), and those behind _GNU_SOURCE or in
// headers Swift's Glibc module leaves out. Each returns 0, or -1 with errno.
#ifndef MINICONTAINER_CSHIM_SCHED_H
#define MINICONTAINER_CSHIM_SCHED_H
#include <stdint.h>

// sched_setattr(2) on the calling thread, with struct sched_attr's second
// version (util_min and util_max 0, as runc).
int mc_sched_setattr(uint32_t policy, uint64_t flags, int32_t nice, uint32_t priority,
                     uint64_t runtime, uint64_t deadline, uint64_t period);
// ioprio_set(2).
int mc_ioprio_set(int which, int who, int ioprio);
// set_mempolicy(2): `words` 64-bit words of node mask (NULL, 0 for none).
int mc_set_mempolicy(int mode, const uint64_t *mask, unsigned long words);
// sched_setaffinity(2), sched_getaffinity(2) on the calling thread:
// `bytes` of mask (a multiple of 8).
int mc_sched_setaffinity(const uint64_t *mask, unsigned long bytes);
int mc_sched_getaffinity(uint64_t *mask, unsigned long bytes);
// personality(2) (<sys/personality.h>): the previous persona, or -1.
int mc_personality(unsigned long persona);
#endif
