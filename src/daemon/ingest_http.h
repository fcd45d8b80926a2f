/*
 * ingest_http.h - InfluxDB's HTTP write API (v1 /write, v2 /api/v2/write)
 * and the operators' pages (/ping, /health, /ready, /query, /metrics) on
 * the listeners of protocol `http` and `metrics`. Loop thread only.
 *
 * The helpers below the handler callbacks are pure: they are what the unit
 * tests pin without a socket.
 */
#ifndef H5REC_INGEST_HTTP_H
#define H5REC_INGEST_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "ingest.h"
#include "line.h"

/* The version InfluxDB clients are told (X-Influxdb-Version); they fail
 * their ping without the header, and some compare the major version. */
#define INGEST_HTTP_INFLUX_VERSION "1.8.10-h5rec-" H5REC_VERSION

/* The net handler of the http and metrics listeners (arg: INGEST): a
 * metrics listener answers only /metrics, /ping and /health. */
struct net_handler ingest_http_handler(struct ingest *ingest);

/* Status code counted at index i of ingest->http_responses. */
int ingest_http_code(size_t index);

/*
 * The value of query parameter `name` in `query` (the text after '?'),
 * percent-decoded ('+' is a space), into out (NUL-terminated, cut at cap).
 * Returns true when the parameter is present.
 */
bool ingest_http_query_param(const char *query, size_t query_len, const char *name, char *out,
			     size_t cap);

/* A write request's precision parameter ("" is ns). v1 takes n, ns, u, us,
 * ms, s, m, h; v2 takes ns, us, ms, s. Returns 0 or -EINVAL. */
int ingest_http_precision(const char *text, bool v2, enum line_precision *out);

/*
 * Does the request carry the listener's token? Accepted: "Token T",
 * "Token USER:T", "Bearer T", "Basic base64(USER:T)" in Authorization, or
 * the v1 parameters p=T (u= any). authorization and password may be NULL.
 * The comparison takes the same time wherever the first difference is.
 */
bool ingest_http_authorized(const char *token, const char *authorization, const char *password);

/*
 * The 400 body of a write with bad lines, as InfluxDB words it:
 * v1 {"error":"partial write: unable to parse 'LINE': REASON dropped=N"},
 * v2 {"code":"invalid","message":"..."}; the line text is JSON-escaped
 * (invalid UTF-8 as U+FFFD). Returns the length written (out is always
 * NUL-terminated; cut at cap).
 */
size_t ingest_http_partial_json(bool v2, const char *line, size_t line_len, bool line_cut,
				const char *reason, unsigned long long dropped, char *out,
				size_t cap);

#endif
