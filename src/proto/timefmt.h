/*
 * timefmt.h - UTC times as ISO 8601 text, the one format h5rec prints and
 * stores (root attributes, status, logs, h5rec info).
 */
#ifndef H5REC_TIMEFMT_H
#define H5REC_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

/* Room for any time_iso8601 text: int64 nanoseconds span 1677 to 2262. */
#define TIME_ISO8601_MAX sizeof("1677-09-21T00:12:43.145224192Z")

/*
 * NS nanoseconds since 1970-01-01T00:00:00Z as "2026-11-24T15:12:32Z", or
 * with DIGITS fractional digits (up to 9) "2026-11-24T15:12:32.463Z". The
 * time is rounded down, before 1970 as after. Writes at most LEN bytes,
 * NUL-terminated (LEN > 0); returns the length of the whole text, as
 * snprintf does, so a return >= LEN means it was cut short.
 */
size_t time_iso8601(int64_t ns, int digits, char *out, size_t len);

#endif
