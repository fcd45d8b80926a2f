/*
 * schema_addr.c - listen addresses and `allow` networks of the schema.
 *
 * Only numeric addresses are accepted: resolving host names at load time
 * would make a schema's meaning depend on DNS at startup, and a recorder
 * that binds the wrong interface silently is worse than one that refuses to
 * start. inet_pton does the address syntax; this file adds the port and
 * prefix rules around it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "schema_internal.h"

/* Strict decimal port 1..65535: digits only, no sign, no leading zero. */
static int parse_port(const char *text, uint16_t *port)
{
	unsigned long value = 0;

	if (text[0] < '1' || text[0] > '9' || strlen(text) > 5)
		return -EINVAL;
	for (const char *p = text; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		value = value * 10 + (unsigned long)(*p - '0');
	}
	if (value > 65535)
		return -EINVAL;
	*port = (uint16_t)value;
	return 0;
}

int schema_parse_hostport(const char *text, char **host, uint16_t *port, char *why,
			  size_t whylen)
{
	unsigned char buf[16];
	const char *colon, *host_start;
	size_t host_len;

	*host = NULL;
	if (text[0] == '[') {
		const char *close = strchr(text, ']');
		if (!close || close[1] != ':') {
			snprintf(why, whylen, "an IPv6 address must be written [ADDRESS]:PORT");
			return -EINVAL;
		}
		host_start = text + 1;
		host_len = (size_t)(close - host_start);
		colon = close + 1;
	} else {
		colon = strrchr(text, ':');
		if (!colon) {
			if (parse_port(text, port) < 0)
				goto bad_port;
			*host = schema_strdup("127.0.0.1");
			return *host ? 0 : -ENOMEM;
		}
		host_start = text;
		host_len = (size_t)(colon - text);
	}
	if (parse_port(colon + 1, port) < 0)
		goto bad_port;
	*host = schema_strndup(host_start, host_len);
	if (!*host)
		return -ENOMEM;
	int family = text[0] == '[' ? AF_INET6 : AF_INET;
	if (inet_pton(family, *host, buf) != 1) {
		snprintf(why, whylen, "'%s' is not a numeric %s address", *host,
			 family == AF_INET ? "IPv4" : "IPv6");
		free(*host);
		*host = NULL;
		return -EINVAL;
	}
	return 0;
bad_port:
	snprintf(why, whylen, "the port must be a number from 1 to 65535");
	return -EINVAL;
}

int schema_parse_allow(const char *text, struct schema_allow *allow, char *why, size_t whylen)
{
	char addr[64];
	const char *slash = strchr(text, '/');
	size_t addr_len = slash ? (size_t)(slash - text) : strlen(text);

	memset(allow, 0, sizeof(*allow));
	if (addr_len >= sizeof(addr))
		goto bad_addr;
	memcpy(addr, text, addr_len);
	addr[addr_len] = '\0';
	if (inet_pton(AF_INET, addr, allow->addr) == 1)
		allow->family = AF_INET;
	else if (inet_pton(AF_INET6, addr, allow->addr) == 1)
		allow->family = AF_INET6;
	else
		goto bad_addr;
	unsigned max = allow->family == AF_INET ? 32 : 128;
	allow->prefix_len = max;
	if (slash) {
		const char *p = slash + 1;
		unsigned value = 0;
		if (!*p || strlen(p) > 3 || (p[0] == '0' && p[1]))
			goto bad_prefix;
		for (; *p; p++) {
			if (*p < '0' || *p > '9')
				goto bad_prefix;
			value = value * 10 + (unsigned)(*p - '0');
		}
		if (value > max)
			goto bad_prefix;
		allow->prefix_len = value;
	}
	/* Host bits set below the prefix are almost always a typo for a
	 * different network; refuse rather than guess which was meant. */
	for (unsigned bit = allow->prefix_len; bit < max; bit++) {
		if (allow->addr[bit / 8] & (0x80u >> (bit % 8))) {
			snprintf(why, whylen, "network '%s' has host bits set after the /%u prefix",
				 text, allow->prefix_len);
			return -EINVAL;
		}
	}
	allow->text = schema_strdup(text);
	return allow->text ? 0 : -ENOMEM;
bad_addr:
	snprintf(why, whylen, "expected a numeric IPv4/IPv6 address or CIDR network like "
			      "10.0.0.0/8, got '%s'", text);
	return -EINVAL;
bad_prefix:
	snprintf(why, whylen, "prefix length in '%s' must be 0..%u",
		 text, allow->family == AF_INET ? 32 : 128);
	return -EINVAL;
}
