/*
 * timefmt.c - UTC times as ISO 8601 text (see timefmt.h).
 */
#include "timefmt.h"

#include <stdio.h>
#include <time.h>

size_t time_iso8601(int64_t ns, int digits, char *out, size_t len)
{
	int64_t sec = ns / 1000000000;
	int64_t frac = ns % 1000000000;
	if (frac < 0) { /* floor, not toward zero */
		frac += 1000000000;
		sec--;
	}
	time_t t = (time_t)sec;
	struct tm tm;
	gmtime_r(&t, &tm);
	char text[TIME_ISO8601_MAX];
	size_t n = strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &tm);
	if (digits > 9)
		digits = 9;
	if (digits > 0) {
		for (int d = digits; d < 9; d++)
			frac /= 10;
		n += (size_t)snprintf(text + n, sizeof(text) - n, ".%0*lld", digits,
				      (long long)frac);
	}
	n += (size_t)snprintf(text + n, sizeof(text) - n, "Z");
	snprintf(out, len, "%s", text);
	return n;
}
