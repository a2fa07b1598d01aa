#include "cshim_rootfs.h"
#include <sys/statfs.h>

int mc_fstatfs(int fd, uint64_t *fs_type, uint64_t *mount_flags) {
    struct statfs st;
    if (fstatfs(fd, &st) != 0) return -1;
    if (fs_type) *fs_type = (uint64_t)st.f_type;
    if (mount_flags) *mount_flags = (uint64_t)st.f_flags;
    return 0;
}
