/*
 * schema_internal.h - the parsers and the allocator shared by the schema
 * loader's files (schema*.c: units, templates, addresses, allocation), by
 * `h5rec check` and the status (which print sizes and durations as the
 * schema writes them). Not part of the model's public interface (schema.h);
 * the unit tests include it to pin the parsers directly.
 */
#ifndef H5REC_SCHEMA_INTERNAL_H
#define H5REC_SCHEMA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "schema.h"

/* Largest accepted size (16 EiB would overflow; 1 EiB is plenty). */
#define SCHEMA_SIZE_MAX (UINT64_C(1) << 60)

/*
 * Parse a size: a decimal integer immediately followed by a unit, one of
 * B, KiB, MiB, GiB, TiB (powers of 1024) or KB, MB, GB, TB (powers of 1000).
 * No sign, no fraction, no space, no bare number. Returns 0 or -EINVAL
 * (garbage) or -ERANGE (above SCHEMA_SIZE_MAX).
 */
int schema_parse_size(const char *text, uint64_t *bytes);

/*
 * Parse a duration: a decimal number (integer or with a fraction, no sign,
 * no exponent) immediately followed by ns, us, ms, s, m or min, h, d. The
 * result must be a whole number of nanoseconds. Returns 0, -EINVAL or
 * -ERANGE (does not fit int64 nanoseconds).
 */
int schema_parse_duration(const char *text, int64_t *ns);

/* Render a size / duration with the largest exact unit ("64MiB", "250ms"). */
void schema_format_size(uint64_t bytes, char *out, size_t outlen);
void schema_format_duration(int64_t ns, char *out, size_t outlen);

/*
 * Split a template into literal and placeholder parts. Placeholder names
 * must match [A-Za-z_][A-Za-z0-9_]*; braces must pair up and not nest.
 * On failure returns -EINVAL and writes the reason into why.
 */
int schema_template_parse(const char *text, struct schema_template *tmpl,
			  char *why, size_t whylen);
void schema_template_free(struct schema_template *tmpl);

/* Is NAME a valid placeholder name ([A-Za-z_][A-Za-z0-9_]*)? */
int schema_placeholder_name_valid(const char *name);

/*
 * Network addresses. schema_parse_hostport accepts "A.B.C.D:PORT",
 * "[V6]:PORT" or a bare PORT (meaning 127.0.0.1:PORT); the host is returned
 * as a new string. schema_parse_allow accepts an address or a CIDR network
 * with no host bits set. Both return 0 or -EINVAL and explain in why.
 */
int schema_parse_hostport(const char *text, char **host, uint16_t *port,
			  char *why, size_t whylen);
int schema_parse_allow(const char *text, struct schema_allow *allow,
		       char *why, size_t whylen);

/*
 * Allocation for the loader (schema_alloc.c). Test hook: when
 * schema_alloc_fail_countdown is n > 0, the nth allocation from then on
 * fails (and the countdown stops at 0, off).
 */
extern long schema_alloc_fail_countdown;
void *schema_malloc(size_t size);
void *schema_calloc(size_t n, size_t size);
void *schema_realloc(void *ptr, size_t size);
char *schema_strdup(const char *text);
char *schema_strndup(const char *text, size_t len);

#endif
