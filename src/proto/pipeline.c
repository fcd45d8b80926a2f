/*
 * pipeline.c - the canonical DESCRIBE answer and its id (see pipeline.h).
 *
 * One writer of the text (pipeline_format, on the recorder) and one strict
 * reader (pipeline_parse, in the C client): the id is a checksum of the
 * text, so the form must never vary, and a reader that accepted variants
 * would only hide a recorder that sent something else.
 */
#include "pipeline.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"

/* The text before ",id=": the part the id covers. */
static size_t format_body(const struct pipeline *p, char *buf, size_t size)
{
	char filters[96] = "";
	size_t at = 0;
	int n;

	if (!dtype_size(p->dtype) || p->chunk == 0)
		return 0;
	if (p->shuffle)
		at += (size_t)snprintf(filters + at, sizeof(filters) - at, "shuffle");
	if (p->codec == PIPELINE_DEFLATE)
		at += (size_t)snprintf(filters + at, sizeof(filters) - at, "%sdeflate=%d",
				       at ? "," : "", p->level);
	else if (p->codec == PIPELINE_LZ4)
		at += (size_t)snprintf(filters + at, sizeof(filters) - at, "%slz4=%" PRIu32,
				       at ? "," : "", p->lz4_block);
	if (p->fletcher32)
		snprintf(filters + at, sizeof(filters) - at, "%sfletcher32", at ? "," : "");
	n = snprintf(buf, size, "layout=\"%s\",dtype=\"%s\",chunk=%" PRIu64 "i,pipeline=\"%s\"",
		     p->layout == PIPELINE_RECORDS ? "records" : "stream", dtype_name(p->dtype),
		     p->chunk, filters);
	return n < 0 || (size_t)n >= size ? 0 : (size_t)n;
}

uint32_t pipeline_id(const struct pipeline *p)
{
	char body[PIPELINE_TEXT_MAX];
	size_t len = format_body(p, body, sizeof(body));

	return crc32c_update(0, body, len);
}

size_t pipeline_format(const struct pipeline *p, char *buf, size_t size)
{
	size_t len = format_body(p, buf, size);
	int n;

	if (!len)
		return 0;
	n = snprintf(buf + len, size - len, ",id=%" PRIu32 "i", crc32c_update(0, buf, len));
	return n < 0 || (size_t)n >= size - len ? 0 : len + (size_t)n;
}

unsigned pipeline_nfilters(const struct pipeline *p)
{
	return (unsigned)p->shuffle + (p->codec != PIPELINE_NONE) + (unsigned)p->fletcher32;
}

/* The value of `key=` at *at, up to the next ',' outside quotes (or the
 * end): copied without quotes into value. Advances *at past the comma. */
static int take_field(const char **at, const char *end, const char *key, char *value,
		      size_t size)
{
	size_t klen = strlen(key);
	const char *p = *at, *stop;

	if ((size_t)(end - p) <= klen || memcmp(p, key, klen) != 0 || p[klen] != '=')
		return -EINVAL;
	p += klen + 1;
	if (p < end && *p == '"') {
		stop = memchr(p + 1, '"', (size_t)(end - p - 1));
		if (!stop)
			return -EINVAL;
		p++;
	} else {
		stop = memchr(p, ',', (size_t)(end - p));
		if (!stop)
			stop = end;
	}
	if ((size_t)(stop - p) >= size)
		return -EINVAL;
	memcpy(value, p, (size_t)(stop - p));
	value[stop - p] = 0;
	if (stop < end && *stop == '"')
		stop++;
	if (stop < end && *stop != ',')
		return -EINVAL;
	*at = stop < end ? stop + 1 : stop;
	return 0;
}

static int parse_filters(char *list, struct pipeline *p)
{
	char *save = NULL;

	for (char *f = strtok_r(list, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
		if (!strcmp(f, "shuffle"))
			p->shuffle = true;
		else if (!strcmp(f, "fletcher32"))
			p->fletcher32 = true;
		else if (!strncmp(f, "deflate=", 8))
			p->codec = PIPELINE_DEFLATE, p->level = atoi(f + 8);
		else if (!strncmp(f, "lz4=", 4))
			p->codec = PIPELINE_LZ4, p->lz4_block = (uint32_t)strtoul(f + 4, NULL, 10);
		else
			return -EINVAL;
	}
	return 0;
}

int pipeline_parse(const char *text, size_t len, struct pipeline *p, uint32_t *id)
{
	const char *at = text, *end = text + len;
	char layout[16], dtype[16], chunk[32], filters[96], idtext[32];

	*p = (struct pipeline){0};
	if (take_field(&at, end, "layout", layout, sizeof(layout)) ||
	    take_field(&at, end, "dtype", dtype, sizeof(dtype)) ||
	    take_field(&at, end, "chunk", chunk, sizeof(chunk)) ||
	    take_field(&at, end, "pipeline", filters, sizeof(filters)) ||
	    take_field(&at, end, "id", idtext, sizeof(idtext)) || at != end)
		return -EINVAL;
	if (!strcmp(layout, "records"))
		p->layout = PIPELINE_RECORDS;
	else if (!strcmp(layout, "stream"))
		p->layout = PIPELINE_STREAM;
	else
		return -EINVAL;
	if (dtype_from_name(dtype, &p->dtype) || !dtype_size(p->dtype))
		return -EINVAL;
	p->chunk = strtoull(chunk, NULL, 10);
	if (parse_filters(filters, p))
		return -EINVAL;
	*id = (uint32_t)strtoul(idtext, NULL, 10);
	return *id == pipeline_id(p) ? 0 : -EINVAL;
}
