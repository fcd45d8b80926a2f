/*
 * utf8.c - UTF-8 validation (see utf8.h). The second byte's range depends
 * on the first (RFC 3629, table 3-7 of the Unicode standard): that is what
 * rules out overlong forms, surrogates and code points past U+10FFFF.
 */
#include "utf8.h"

size_t utf8_sequence_length(const unsigned char *s, size_t n)
{
	size_t len;
	unsigned char lo = 0x80, hi = 0xBF;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xC2 && s[0] <= 0xDF)
		len = 2;
	else if (s[0] >= 0xE0 && s[0] <= 0xEF)
		len = 3;
	else if (s[0] >= 0xF0 && s[0] <= 0xF4)
		len = 4;
	else
		return 0;
	if (s[0] == 0xE0)
		lo = 0xA0;
	else if (s[0] == 0xED)
		hi = 0x9F;
	else if (s[0] == 0xF0)
		lo = 0x90;
	else if (s[0] == 0xF4)
		hi = 0x8F;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xBF)
			return 0;
	return len;
}

size_t utf8_prefix(const unsigned char *s, size_t n, size_t max)
{
	size_t at = 0;
	while (at < n && at < max) {
		size_t len = utf8_sequence_length(s + at, n - at);
		if (len == 0)
			return SIZE_MAX;
		if (at + len > max)
			break;
		at += len;
	}
	return at;
}
