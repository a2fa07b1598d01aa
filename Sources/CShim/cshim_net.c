#define _GNU_SOURCE
#include "cshim_net.h"
#include <errno.h>
#include <linux/netlink.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int mc_netlink_open(int protocol) {
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
    if (fd < 0) return -1;
    struct sockaddr_nl sa;
    memset(&sa, 0, sizeof sa);
    sa.nl_family = AF_NETLINK;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

ssize_t mc_netlink_send(int fd, const void *buf, size_t len) {
    struct sockaddr_nl sa;
    memset(&sa, 0, sizeof sa);
    sa.nl_family = AF_NETLINK;
    ssize_t r;
    do {
        r = sendto(fd, buf, len, 0, (struct sockaddr *)&sa, sizeof sa);
    } while (r < 0 && errno == EINTR);
    return r;
}

ssize_t mc_netlink_recv(int fd, void *buf, size_t len) {
    ssize_t r;
    do {
        r = recv(fd, buf, len, MSG_TRUNC);
    } while (r < 0 && errno == EINTR);
    if (r > (ssize_t)len) {
        errno = EMSGSIZE;
        return -1;
    }
    return r;
}

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>

int mc_tap_persist(const char *name) {
    if (strlen(name) >= IFNAMSIZ) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0) return -1;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, name);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    int r = ioctl(fd, TUNSETIFF, &ifr);
    if (r == 0) r = ioctl(fd, TUNSETPERSIST, 1);
    int e = errno;
    close(fd);
    errno = e;
    return r < 0 ? -1 : 0;
}
