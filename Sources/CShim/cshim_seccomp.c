#define _GNU_SOURCE
#include "cshim_seccomp.h"
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

int mc_seccomp_set_filter(uint32_t flags, const void *insns, uint16_t count) {
    struct sock_fprog prog = { .len = count, .filter = (struct sock_filter *)(uintptr_t)insns };
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
}
