// CShim, seccomp(2), which Glibc does not declare: load a classic BPF
// program that the runtime compiled (or read from its cache) beforehand.
#ifndef MINICONTAINER_CSHIM_SECCOMP_H
#define MINICONTAINER_CSHIM_SECCOMP_H
#include <stdint.h>

// seccomp(SECCOMP_SET_MODE_FILTER, flags, &{count, insns}): `insns` holds
// `count` struct sock_filter (8 bytes each). 0 (or, with TSYNC, the id of a
// thread that could not be synchronized), or -1 with errno set.
int mc_seccomp_set_filter(uint32_t flags, const void *insns, uint16_t count);
#endif
