/*
 * metrics.h - the recorder's figures as a Prometheus text exposition
 * (format 0.0.4), for GET /metrics on the http and metrics listeners.
 *
 * Everything `h5rec status --json` shows is there, under the h5rec_ prefix,
 * in base units (bytes, seconds), counters ending in _total, and labels of
 * low cardinality only (a listener, a stream, an error class, an HTTP
 * code): one series per thing the schema declares, never per sender.
 *
 * Loop thread only, like status.c, whose figures it reads.
 */
#ifndef H5REC_METRICS_H
#define H5REC_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#include "status.h"

/* Render into out (NUL-terminated, cut at len); returns the length a large
 * enough buffer needs. status NULL (not yet set up): build info only. */
size_t metrics_render(const struct status *status, char *out, size_t len);

/* Is the output stalled (disk full: writing stopped)? /health says fail. */
bool metrics_output_stalled(const struct status *status);

#endif
