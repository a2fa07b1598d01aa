// CShim, networking: the netlink socket calls whose structures (sockaddr_nl)
// Swift's Glibc module does not carry. Prefixed mc_, -1 with errno on error.
#ifndef MINICONTAINER_CSHIM_NET_H
#define MINICONTAINER_CSHIM_NET_H
#include <stddef.h>
#include <sys/types.h>

// A NETLINK_ROUTE (or other `protocol`) socket, SOCK_CLOEXEC, bound with
// nl_pid 0 (the kernel picks it).
int mc_netlink_open(int protocol);
// Sends one buffer to the kernel (nl_pid 0).
ssize_t mc_netlink_send(int fd, const void *buf, size_t len);
// Receives one datagram; with MSG_TRUNC semantics reported as -1/EMSGSIZE.
ssize_t mc_netlink_recv(int fd, void *buf, size_t len);
// Makes the tap device `name` (IFF_TAP | IFF_NO_PI) in the calling thread's
// network namespace and sets it persistent (TUNSETPERSIST): it stays when
// the descriptor is closed, until it is deleted or its namespace goes.
int mc_tap_persist(const char *name);
#endif
