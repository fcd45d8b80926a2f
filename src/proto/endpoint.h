/*
 * endpoint.h - the addresses senders are given ("tcp:HOST:PORT",
 * "udp:HOST:PORT", "unix:PATH") turned into what socket() and connect()
 * take. Shared by the blocking sender of the line protocol and by
 * libh5rec-client, so that both read an address the same way.
 *
 * Hosts are numeric (IPv4, or IPv6 in brackets): no name lookup, which
 * would block and pull in the resolver. Pure; any thread.
 */
#ifndef H5REC_ENDPOINT_H
#define H5REC_ENDPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct endpoint {
	struct sockaddr_storage addr;
	socklen_t addr_len;
	int type;      /* SOCK_STREAM or SOCK_DGRAM */
	bool datagram; /* type == SOCK_DGRAM */
};

/* Parse address into *ep. Returns 0 or -EINVAL with the reason in err. */
int endpoint_parse(const char *address, struct endpoint *ep, char *err, size_t err_len);

/* A socket for ep, close-on-exec, non-blocking if asked; -errno on failure.
 * TCP sockets get TCP_NODELAY: frames are written whole, and an ACK
 * request should not wait for Nagle. */
int endpoint_socket(const struct endpoint *ep, bool nonblocking);

#endif
