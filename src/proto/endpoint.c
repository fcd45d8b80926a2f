/*
 * endpoint.c - sender addresses to socket addresses (see endpoint.h).
 */
#include "endpoint.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

static int parse_unix(const char *path, struct endpoint *ep, char *err, size_t err_len)
{
	struct sockaddr_un *sun = (struct sockaddr_un *)&ep->addr;

	if (strlen(path) >= sizeof(sun->sun_path)) {
		snprintf(err, err_len, "socket path too long: %s", path);
		return -EINVAL;
	}
	sun->sun_family = AF_UNIX;
	strcpy(sun->sun_path, path);
	ep->addr_len = sizeof(*sun);
	ep->type = SOCK_STREAM;
	return 0;
}

/* host is "[v6]" or a dotted IPv4 address; port already checked. */
static int parse_host(char *host, long port, struct endpoint *ep)
{
	if (host[0] == '[') {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ep->addr;
		size_t hl = strlen(host);
		if (hl < 3 || host[hl - 1] != ']')
			return -EINVAL;
		host[hl - 1] = '\0';
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		ep->addr_len = sizeof(*in6);
		return inet_pton(AF_INET6, host + 1, &in6->sin6_addr) == 1 ? 0 : -EINVAL;
	}
	struct sockaddr_in *in = (struct sockaddr_in *)&ep->addr;
	in->sin_family = AF_INET;
	in->sin_port = htons((uint16_t)port);
	ep->addr_len = sizeof(*in);
	return inet_pton(AF_INET, host, &in->sin_addr) == 1 ? 0 : -EINVAL;
}

int endpoint_parse(const char *address, struct endpoint *ep, char *err, size_t err_len)
{
	memset(ep, 0, sizeof(*ep));
	if (strncmp(address, "unix:", 5) == 0)
		return parse_unix(address + 5, ep, err, err_len);
	bool tcp = strncmp(address, "tcp:", 4) == 0, udp = strncmp(address, "udp:", 4) == 0;
	if (!tcp && !udp) {
		snprintf(err, err_len,
			 "address '%s': expected tcp:HOST:PORT, udp:HOST:PORT or unix:PATH", address);
		return -EINVAL;
	}
	ep->type = tcp ? SOCK_STREAM : SOCK_DGRAM;
	ep->datagram = udp;
	char host[64];
	const char *hp = address + 4, *colon = strrchr(hp, ':');
	if (!colon || colon == hp || (size_t)(colon - hp) >= sizeof(host)) {
		snprintf(err, err_len, "address '%s': no port", address);
		return -EINVAL;
	}
	memcpy(host, hp, (size_t)(colon - hp));
	host[colon - hp] = '\0';
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (*end || port < 1 || port > 65535) {
		snprintf(err, err_len, "address '%s': bad port", address);
		return -EINVAL;
	}
	if (parse_host(host, port, ep)) {
		snprintf(err, err_len, host[0] == '[' ? "address '%s': bad IPv6 host"
						      : "address '%s': host must be a numeric IP address",
			 address);
		return -EINVAL;
	}
	return 0;
}

int endpoint_socket(const struct endpoint *ep, bool nonblocking)
{
	int fd = socket(ep->addr.ss_family, ep->type | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0),
			0);
	if (fd < 0)
		return -errno;
	if (ep->addr.ss_family != AF_UNIX && !ep->datagram) {
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	return fd;
}
