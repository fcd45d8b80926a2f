/*
 * json.c - text as a JSON string (see json.h).
 */
#include "json.h"

#include <stdio.h>

#include "utf8.h"

void json_escape(const char *s, size_t n, void (*put)(void *arg, const char *piece, size_t len),
		 void *arg)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t plain = 0; /* start of the run of bytes that need no escape */
	for (size_t i = 0; i < n;) {
		unsigned char c = u[i];
		size_t len = 1;
		char esc[8];
		int elen = 0;
		if (c == '"' || c == '\\')
			elen = snprintf(esc, sizeof(esc), "\\%c", c);
		else if (c < 0x20 || c == 0x7F)
			elen = snprintf(esc, sizeof(esc), "\\u%04x", c);
		else if (c >= 0x80 && !(len = utf8_sequence_length(u + i, n - i)))
			elen = snprintf(esc, sizeof(esc), "\\ufffd");
		if (!elen) {
			i += len;
			continue;
		}
		if (i > plain)
			put(arg, s + plain, i - plain);
		put(arg, esc, (size_t)elen);
		i++;
		plain = i;
	}
	if (n > plain)
		put(arg, s + plain, n - plain);
}
