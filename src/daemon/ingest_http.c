/*
 * ingest_http.c - InfluxDB's HTTP write API and the operators' pages (see
 * ingest_http.h; net handler callbacks, loop thread only).
 *
 * HTTP is parsed by llhttp (Node's parser, from Debian's node-llhttp),
 * never by hand: it delivers the URL, the headers and the body -- chunked
 * or not, pipelined requests one after another -- in whatever slices the
 * socket gave. This file decides what each request means.
 *
 * A write's body is decoded while it streams: gzip through zlib into a
 * small window, then the line decoder, whose rows gather in the
 * connection's batch. The rows are queued for the writer only when the
 * body has ended and every line is decoded, as one item: a client that
 * retries a failed or cut-off request (they all resend the whole batch)
 * never leaves half of it behind. Until then they count against max_buffer
 * (ingest->http_inflight), so that many slow uploads cannot hold more than
 * the recorder allows.
 *
 * Back-pressure is answered, not applied: HTTP clients time a request out
 * after 5 to 10 s and send the whole batch again, so holding a request by
 * pausing reads would only multiply the load. Over the mark, a write gets
 * 503 at once (its body is read and dropped), and reading never pauses
 * (net handler never_paused).
 *
 * Memory per connection is bounded: the URL and the headers we read are
 * cut at fixed sizes, the inflate window is zlib's 32 KiB plus a 16 KiB
 * output slice, the line decoder holds at most max_line, and the batch
 * at most what max_body of decoded input makes (counted, see above). A body
 * past max_body -- decoded bytes, so a gzip bomb is stopped at the limit --
 * gets 413 and the connection is closed after a lingering drain: the FIN is
 * sent with the answer, and what the client still sends is read and dropped
 * (up to a bound) so that it sees the answer rather than a reset.
 */
#include "ingest_http.h"

#include <errno.h>
#include <llhttp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <zlib.h>

#include "ingest_line.h"
#include "json.h"
#include "metrics.h"
#include "utf8.h"

enum {
	HTTP_URL_MAX = 4096,
	HTTP_HEADER_NAME_MAX = 64,
	HTTP_HEADER_VALUE_MAX = 1024,
	HTTP_INFLATE_SLICE = 16 * 1024,
	HTTP_LINGER_MAX = 4 * 1024 * 1024, /* bytes read and dropped after a 413 */
	HTTP_ERROR_MAX = 2048,
	/* A batch whose arrays grew past this is freed after its request, so
	 * one large upload does not keep its memory for the connection's life. */
	HTTP_BATCH_KEEP = 1024 * 1024,
};

static const int counted_codes[INGEST_HTTP_CODES] = {200, 204, 400, 401, 404,
						     413, 414, 415, 500, 503};

int ingest_http_code(size_t index)
{
	return index < INGEST_HTTP_CODES ? counted_codes[index] : 0;
}

enum http_route {
	ROUTE_NONE,
	ROUTE_WRITE,
	ROUTE_PING,
	ROUTE_HEALTH,
	ROUTE_QUERY,
	ROUTE_METRICS,
	ROUTE_NOT_FOUND,
};

enum encoding { ENCODING_IDENTITY, ENCODING_GZIP, ENCODING_OTHER };

struct http_conn {
	struct ingest *ingest;
	struct net_conn *conn;
	const struct schema_listen *listen;
	char peer[80];
	llhttp_t parser;
	llhttp_settings_t settings;

	/* The request being read. */
	char url[HTTP_URL_MAX];
	size_t url_len;
	bool url_too_long;
	char header_name[HTTP_HEADER_NAME_MAX];
	size_t header_name_len;
	char header_value[HTTP_HEADER_VALUE_MAX];
	size_t header_value_len;
	char authorization[HTTP_HEADER_VALUE_MAX];
	char encoding_name[64];
	enum encoding encoding;
	bool expect_continue;
	bool v2;            /* /api/v2/write: v2 error bodies */
	bool in_body;       /* headers done, message not yet complete */
	bool decoding;      /* the body goes to the decoder (else dropped) */
	bool answered;      /* the response went out before the body ended */
	int failed_status;  /* the body turned out bad: answer at its end */
	char failed_message[256];
	bool lingering;     /* answered and shut down: drop what comes */
	uint64_t linger_bytes;
	uint64_t decoded;   /* body bytes after gzip */

	/* Decoding a write. */
	struct line_decoder *decoder;
	struct line_batch batch;
	size_t inflight;    /* this connection's share of ingest->http_inflight */
	int64_t receive_time;
	uint64_t dropped;
	bool have_error;
	char error_line[LINE_TEXT_MAX];
	size_t error_line_len;
	bool error_line_cut;
	char error_reason[LINE_REASON_SIZE];
	z_stream zs;
	bool zs_ready;
	bool zs_ended;      /* the gzip member ended (more may follow) */
	char *slice;        /* inflate output, HTTP_INFLATE_SLICE bytes */
};

/* ---- pure helpers (unit-tested) ------------------------------------------ */

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static void percent_decode(const char *s, size_t len, char *out, size_t cap)
{
	size_t n = 0;
	for (size_t i = 0; i < len && n + 1 < cap; i++) {
		int hi, lo;
		if (s[i] == '+') {
			out[n++] = ' ';
		} else if (s[i] == '%' && i + 2 < len && (hi = hex_digit(s[i + 1])) >= 0 &&
			   (lo = hex_digit(s[i + 2])) >= 0) {
			out[n++] = (char)(hi * 16 + lo);
			i += 2;
		} else {
			out[n++] = s[i];
		}
	}
	if (cap)
		out[n] = '\0';
}

bool ingest_http_query_param(const char *query, size_t query_len, const char *name, char *out,
			     size_t cap)
{
	size_t name_len = strlen(name);
	const char *end = query + query_len;
	for (const char *p = query; p < end;) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *stop = amp ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(stop - p));
		const char *key_end = eq ? eq : stop;
		if ((size_t)(key_end - p) == name_len && memcmp(p, name, name_len) == 0) {
			const char *value = eq ? eq + 1 : stop;
			percent_decode(value, (size_t)(stop - value), out, cap);
			return true;
		}
		p = amp ? amp + 1 : end;
	}
	if (cap)
		out[0] = '\0';
	return false;
}

int ingest_http_precision(const char *text, bool v2, enum line_precision *out)
{
	static const struct {
		const char *name;
		enum line_precision precision;
		bool v1, v2;
	} names[] = {
		{"", LINE_PRECISION_NS, true, true},  {"n", LINE_PRECISION_NS, true, false},
		{"ns", LINE_PRECISION_NS, true, true}, {"u", LINE_PRECISION_US, true, false},
		{"us", LINE_PRECISION_US, true, true}, {"ms", LINE_PRECISION_MS, true, true},
		{"s", LINE_PRECISION_S, true, true},   {"m", LINE_PRECISION_M, true, false},
		{"h", LINE_PRECISION_H, true, false},
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(text, names[i].name) == 0 && (v2 ? names[i].v2 : names[i].v1)) {
			*out = names[i].precision;
			return 0;
		}
	}
	return -EINVAL;
}

/* Equal, in a time that does not depend on where they first differ. */
static bool same_secret(const char *given, size_t given_len, const char *token)
{
	size_t token_len = strlen(token);
	unsigned char diff = given_len != token_len;
	for (size_t i = 0; i < token_len; i++)
		diff |= (unsigned char)(token[i] ^ (i < given_len ? given[i] : 0));
	return diff == 0;
}

/* The secret of "USER:SECRET" or of "SECRET". */
static bool credential_matches(const char *credential, size_t len, const char *token)
{
	if (same_secret(credential, len, token))
		return true;
	const char *colon = memchr(credential, ':', len);
	return colon && same_secret(colon + 1, len - (size_t)(colon + 1 - credential), token);
}

static size_t base64_decode(const char *in, char *out, size_t cap)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t n = 0;
	for (; *in && *in != '='; in++) {
		const char *at = strchr(alphabet, *in);
		if (!at)
			return 0;
		acc = (acc << 6) | (uint32_t)(at - alphabet);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n + 1 >= cap)
				return 0;
			out[n++] = (char)((acc >> bits) & 0xFF);
		}
	}
	out[n] = '\0';
	return n;
}

static bool scheme_is(const char *header, const char *scheme, const char **rest)
{
	size_t n = strlen(scheme);
	if (strncasecmp(header, scheme, n) != 0 || header[n] != ' ')
		return false;
	*rest = header + n + 1;
	while (**rest == ' ')
		(*rest)++;
	return true;
}

bool ingest_http_authorized(const char *token, const char *authorization, const char *password)
{
	const char *rest;
	if (!token)
		return true;
	if (authorization && authorization[0]) {
		if (scheme_is(authorization, "Token", &rest) || scheme_is(authorization, "Bearer", &rest))
			return credential_matches(rest, strlen(rest), token);
		if (scheme_is(authorization, "Basic", &rest)) {
			char decoded[HTTP_HEADER_VALUE_MAX];
			size_t n = base64_decode(rest, decoded, sizeof(decoded));
			const char *colon = n ? memchr(decoded, ':', n) : NULL;
			return colon && same_secret(colon + 1, n - (size_t)(colon + 1 - decoded), token);
		}
		return false;
	}
	return password && password[0] && same_secret(password, strlen(password), token);
}

struct text {
	char *buf;
	size_t cap, len; /* len may pass cap: what was cut */
};

static void text_put(struct text *t, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++, t->len++)
		if (t->len + 1 < t->cap)
			t->buf[t->len] = s[i];
}

static void text_printf(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_printf(struct text *t, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		text_put(t, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

static void text_piece(void *arg, const char *piece, size_t len)
{
	text_put(arg, piece, len);
}

/* s[0..n) as the inside of a JSON string. */
static void text_json(struct text *t, const char *s, size_t n)
{
	json_escape(s, n, text_piece, t);
}

static size_t text_end(struct text *t)
{
	if (t->cap)
		t->buf[t->len < t->cap ? t->len : t->cap - 1] = '\0';
	return t->len < t->cap ? t->len : t->cap - 1;
}

/* {"error":MESSAGE} or {"code":CODE,"message":MESSAGE}, MESSAGE built from
 * a prefix, an optional quoted line and a suffix. */
static size_t error_json(bool v2, const char *code, const char *prefix, const char *line,
			 size_t line_len, bool line_cut, const char *suffix, char *out, size_t cap)
{
	struct text t = {.buf = out, .cap = cap};
	if (v2)
		text_printf(&t, "{\"code\":\"%s\",\"message\":\"", code);
	else
		text_printf(&t, "{\"error\":\"");
	text_json(&t, prefix, strlen(prefix));
	if (line) {
		text_put(&t, "'", 1);
		text_json(&t, line, line_len);
		if (line_cut)
			text_put(&t, "...", 3);
		text_put(&t, "': ", 3);
	}
	text_json(&t, suffix, strlen(suffix));
	text_put(&t, "\"}", 2);
	return text_end(&t);
}

size_t ingest_http_partial_json(bool v2, const char *line, size_t line_len, bool line_cut,
				const char *reason, unsigned long long dropped, char *out,
				size_t cap)
{
	char suffix[LINE_REASON_SIZE + 64];
	snprintf(suffix, sizeof(suffix), "%s dropped=%llu", reason, dropped);
	return error_json(v2, "invalid", "partial write: unable to parse ", line ? line : "",
			  line ? line_len : 0, line_cut, suffix, out, cap);
}

/* ---- responses ----------------------------------------------------------- */

static const char *reason_phrase(int code)
{
	switch (code) {
	case 200: return "OK";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 404: return "Not Found";
	case 413: return "Request Entity Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 503: return "Service Unavailable";
	default: return "Internal Server Error";
	}
}

static void count_response(struct ingest *ingest, int code)
{
	for (size_t i = 0; i < INGEST_HTTP_CODES; i++) {
		if (counted_codes[i] == code) {
			ingest->http_responses[i]++;
			return;
		}
	}
}

/* Stop reading requests: the FIN goes after the answer, and what the
 * client still sends is dropped (HTTP_LINGER_MAX). */
static void start_linger(struct http_conn *hc)
{
	hc->lingering = true;
	hc->decoding = false;
	if (net_conn_shutdown(hc->conn))
		net_conn_close(hc->conn);
}

/*
 * Send a whole response. body may be NULL; with head, its length is given
 * but it is not sent (HEAD). close: Connection: close, then the lingering
 * close. Every response says X-Influxdb-Version: clients fail without it.
 */
static void respond(struct http_conn *hc, int code, const char *type, const char *body,
		    size_t body_len, bool head, bool close)
{
	char date[64], header[512], retry[48] = "";
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	if (!close && !llhttp_should_keep_alive(&hc->parser))
		close = true;
	if (code == 503 && hc->listen->retry_after_ns > 0)
		snprintf(retry, sizeof(retry), "Retry-After: %lld\r\n",
			 (long long)(hc->listen->retry_after_ns / 1000000000));
	int n = snprintf(header, sizeof(header),
			 "HTTP/1.1 %d %s\r\n"
			 "Date: %s\r\n"
			 "X-Influxdb-Version: " INGEST_HTTP_INFLUX_VERSION "\r\n"
			 "X-Influxdb-Build: OSS\r\n"
			 "%s%s%s"
			 "%s%s"
			 "Content-Length: %zu\r\n\r\n",
			 code, reason_phrase(code), date, type ? "Content-Type: " : "",
			 type ? type : "", type ? "\r\n" : "", retry,
			 close ? "Connection: close\r\n" : "",
			 code == 204 ? (size_t)0 : body_len);
	size_t send_body = (body && !head && code != 204) ? body_len : 0;
	char *whole = malloc((size_t)n + send_body);
	count_response(hc->ingest, code);
	if (!whole) {
		net_conn_close(hc->conn);
		return;
	}
	memcpy(whole, header, (size_t)n);
	if (send_body)
		memcpy(whole + n, body, send_body);
	if (net_conn_write(hc->conn, whole, (size_t)n + send_body))
		close = true;
	free(whole);
	if (close)
		start_linger(hc);
}

static void respond_json(struct http_conn *hc, int code, const char *json, bool close)
{
	respond(hc, code, "application/json", json, strlen(json),
		hc->parser.method == HTTP_HEAD, close);
}

static void respond_error(struct http_conn *hc, int code, const char *v2_code,
			  const char *message, bool close)
{
	char body[HTTP_ERROR_MAX];
	error_json(hc->v2, v2_code, message, NULL, 0, false, "", body, sizeof(body));
	respond_json(hc, code, body, close);
}

/* ---- write bodies -------------------------------------------------------- */

static void update_inflight(struct http_conn *hc)
{
	size_t now = ingest_line_batch_bytes(&hc->batch);
	hc->ingest->http_inflight += now;
	hc->ingest->http_inflight -= hc->inflight;
	hc->inflight = now;
}

/* Over the back-pressure mark: the writer queue paused the other listeners,
 * or it and the bodies in flight hold max_buffer. */
static bool over_mark(struct ingest *ingest)
{
	bool full;
	size_t queued = writer_queue_buffered(ingest->queue, &full);
	return full || queued + ingest->http_inflight >= ingest->schema->limits.max_buffer;
}

static void drop_rows(struct http_conn *hc)
{
	ingest_line_batch_clear(&hc->batch);
	if (hc->batch.rows_cap * sizeof(*hc->batch.rows) > HTTP_BATCH_KEEP ||
	    hc->batch.arena_cap > HTTP_BATCH_KEEP)
		ingest_line_batch_free(&hc->batch);
	update_inflight(hc);
}

static int on_point(void *user, const struct line_point *point)
{
	struct http_conn *hc = user;
	char why[LINE_REASON_SIZE];
	int err = ingest_line_point(hc->ingest, &hc->batch, point, hc->receive_time, hc->peer,
				    why, sizeof(why));
	if (err == -ENOMEM)
		return err;
	if (err) {
		hc->dropped++;
		if (!hc->have_error) {
			hc->have_error = true;
			hc->error_line_len = point->text ? point->text_len : 0;
			hc->error_line_cut = point->text_cut;
			if (point->text)
				memcpy(hc->error_line, point->text, hc->error_line_len);
			snprintf(hc->error_reason, sizeof(hc->error_reason), "%s", why);
		}
	}
	return 0;
}

static void on_bad_line(void *user, const struct line_error *err)
{
	struct http_conn *hc = user;
	ingest_line_report_bad(hc->ingest, hc->peer, err);
	hc->dropped++;
	if (hc->have_error)
		return;
	hc->have_error = true;
	hc->error_line_len = err->text ? err->text_len : 0;
	hc->error_line_cut = err->text_cut || err->kind == LINE_ERR_TOO_LONG;
	if (err->text)
		memcpy(hc->error_line, err->text, hc->error_line_len);
	snprintf(hc->error_reason, sizeof(hc->error_reason), "%s", err->reason);
}

/* The body cannot be stored (too large, undecodable, out of memory, over
 * the mark): forget its rows, drop the rest of it, answer at its end. */
static void fail_body(struct http_conn *hc, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void fail_body(struct http_conn *hc, int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(hc->failed_message, sizeof(hc->failed_message), fmt, ap);
	va_end(ap);
	hc->failed_status = status;
	hc->decoding = false;
	drop_rows(hc);
}

static int feed_decoded(struct http_conn *hc, const char *data, size_t len)
{
	hc->decoded += len;
	if (hc->decoded > hc->listen->max_body) {
		fail_body(hc, 413, "request body larger than max_body (%llu bytes, decoded)",
			  (unsigned long long)hc->listen->max_body);
		return -1;
	}
	ingest_count(hc->ingest, INGEST_BYTES, len);
	if (line_decoder_feed(hc->decoder, data, len)) {
		fail_body(hc, 500, "out of memory decoding the body");
		return -1;
	}
	update_inflight(hc);
	if (over_mark(hc->ingest)) {
		fail_body(hc, 503, "recorder busy: buffers full (max_buffer); retry later");
		return -1;
	}
	return 0;
}

static int inflate_body(struct http_conn *hc, const char *data, size_t len)
{
	hc->zs.next_in = (Bytef *)(uintptr_t)data;
	hc->zs.avail_in = (uInt)len;
	while (hc->zs.avail_in > 0) {
		if (hc->zs_ended) {
			/* Another gzip member follows (gzip allows several). */
			inflateReset(&hc->zs);
			hc->zs_ended = false;
		}
		hc->zs.next_out = (Bytef *)hc->slice;
		hc->zs.avail_out = HTTP_INFLATE_SLICE;
		int rc = inflate(&hc->zs, Z_NO_FLUSH);
		size_t out = HTTP_INFLATE_SLICE - hc->zs.avail_out;
		if (rc != Z_OK && rc != Z_STREAM_END && !(rc == Z_BUF_ERROR && out)) {
			fail_body(hc, 400, "gzip: %s", hc->zs.msg ? hc->zs.msg : "invalid data");
			return -1;
		}
		if (rc == Z_STREAM_END)
			hc->zs_ended = true;
		if (out && feed_decoded(hc, hc->slice, out))
			return -1;
	}
	return 0;
}

static int start_write(struct http_conn *hc, enum line_precision precision)
{
	if (!hc->decoder) {
		const struct line_options options = {.max_line = hc->ingest->schema->limits.max_line,
						     .precision = precision, .keep_text = true};
		hc->decoder = line_decoder_new(&options, on_point, on_bad_line, hc);
		if (!hc->decoder)
			return -ENOMEM;
	}
	line_decoder_reset(hc->decoder);
	line_decoder_set_precision(hc->decoder, precision);
	if (hc->encoding == ENCODING_GZIP) {
		if (!hc->slice && !(hc->slice = malloc(HTTP_INFLATE_SLICE)))
			return -ENOMEM;
		if (!hc->zs_ready) {
			if (inflateInit2(&hc->zs, 16 + MAX_WBITS) != Z_OK)
				return -ENOMEM;
			hc->zs_ready = true;
		} else {
			inflateReset(&hc->zs);
		}
		hc->zs_ended = false;
	}
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	hc->receive_time = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	hc->decoded = 0;
	hc->dropped = 0;
	hc->have_error = false;
	hc->decoding = true;
	return 0;
}

/* The body ended: commit its rows, say what became of its lines. */
static void finish_write(struct http_conn *hc)
{
	if (hc->decoding && hc->encoding == ENCODING_GZIP && !hc->zs_ended && hc->zs.total_in > 0)
		fail_body(hc, 400, "gzip: unexpected end of body");
	if (hc->decoding && line_decoder_finish(hc->decoder))
		fail_body(hc, 500, "out of memory decoding the body");
	hc->decoding = false;
	if (hc->failed_status) {
		respond_error(hc, hc->failed_status,
			      hc->failed_status == 413   ? "request too large"
			      : hc->failed_status == 503 ? "unavailable"
			      : hc->failed_status == 400 ? "invalid"
							 : "internal error",
			      hc->failed_message, hc->failed_status == 413);
		return;
	}
	ingest_line_batch_flush(hc->ingest, &hc->batch, hc->peer, false);
	drop_rows(hc);
	if (!hc->dropped) {
		respond(hc, 204, NULL, NULL, 0, false, false);
		return;
	}
	char body[HTTP_ERROR_MAX];
	ingest_http_partial_json(hc->v2, hc->error_line, hc->error_line_len, hc->error_line_cut,
				 hc->error_reason, (unsigned long long)hc->dropped, body,
				 sizeof(body));
	respond_json(hc, 400, body, false);
}

/* ---- routing ------------------------------------------------------------- */

static bool path_is(const char *path, size_t len, const char *want)
{
	size_t n = strlen(want);
	return len == n && memcmp(path, want, n) == 0;
}

static enum http_route find_route(struct http_conn *hc, const char *path, size_t len)
{
	uint8_t method = hc->parser.method;
	bool get = method == HTTP_GET || method == HTTP_HEAD;
	bool metrics_only = hc->listen->protocol == SCHEMA_PROTOCOL_METRICS;
	if (path_is(path, len, "/metrics") && get)
		return ROUTE_METRICS;
	if (path_is(path, len, "/ping") && get)
		return ROUTE_PING;
	if ((path_is(path, len, "/health") || path_is(path, len, "/api/v2/health") ||
	     path_is(path, len, "/ready")) && get)
		return ROUTE_HEALTH;
	if (metrics_only)
		return ROUTE_NOT_FOUND;
	if (path_is(path, len, "/write") && method == HTTP_POST)
		return ROUTE_WRITE;
	if (path_is(path, len, "/api/v2/write") && method == HTTP_POST) {
		hc->v2 = true;
		return ROUTE_WRITE;
	}
	if (path_is(path, len, "/query") && (get || method == HTTP_POST))
		return ROUTE_QUERY;
	return ROUTE_NOT_FOUND;
}

static void serve_metrics(struct http_conn *hc)
{
	size_t cap = 16 * 1024;
	char *page = NULL;
	for (int attempt = 0; attempt < 3; attempt++) {
		char *grown = realloc(page, cap);
		if (!grown)
			break;
		page = grown;
		size_t need = metrics_render(hc->ingest->status, page, cap);
		if (need < cap) {
			respond(hc, 200, "text/plain; version=0.0.4; charset=utf-8", page, need,
				hc->parser.method == HTTP_HEAD, false);
			free(page);
			return;
		}
		cap = need + need / 4 + 256; /* the writer may add to it meanwhile */
	}
	free(page);
	respond_error(hc, 500, "internal error", "out of memory", false);
}

static void serve_health(struct http_conn *hc)
{
	bool stalled = metrics_output_stalled(hc->ingest->status);
	char body[256];
	snprintf(body, sizeof(body),
		 "{\"name\":\"h5recd\",\"message\":\"%s\",\"status\":\"%s\","
		 "\"version\":\"" INGEST_HTTP_INFLUX_VERSION "\"}",
		 stalled ? "output stalled: disk full or not writable" : "ready for queries and writes",
		 stalled ? "fail" : "pass");
	respond_json(hc, stalled ? 503 : 200, body, false);
}

static void serve_ping(struct http_conn *hc, const char *query, size_t query_len)
{
	char verbose[16];
	if (ingest_http_query_param(query, query_len, "verbose", verbose, sizeof(verbose)) &&
	    strcmp(verbose, "true") == 0) {
		respond_json(hc, 200, "{\"version\":\"" INGEST_HTTP_INFLUX_VERSION "\"}", false);
		return;
	}
	respond(hc, 204, NULL, NULL, 0, false, false);
}

/* A request refused before its body: answer now. The body, if any, is read
 * and dropped, unless the client waits for 100-continue: it will not send
 * it, so the connection cannot be reused. */
static void refuse(struct http_conn *hc, int code, const char *v2_code, const char *message)
{
	bool has_body = hc->parser.content_length > 0 || (hc->parser.flags & F_CHUNKED);
	respond_error(hc, code, v2_code, message, code == 413 || (hc->expect_continue && has_body));
	hc->answered = true;
}

/* The token of a listener that has one, from the Authorization header or
 * the p parameter; a request without it is refused with 401 and counted. */
static bool authorize(struct http_conn *hc, const char *what, const char *query,
		      size_t query_len)
{
	char password[HTTP_HEADER_VALUE_MAX];
	ingest_http_query_param(query, query_len, "p", password, sizeof(password));
	if (!ingest_http_authorized(hc->listen->token, hc->authorization, password)) {
		ingest_error(hc->ingest, INGEST_AUTH_FAILURES, "%s: HTTP %s without the token",
			     hc->peer, what);
		refuse(hc, 401, "unauthorized", "authorization failed");
		return false;
	}
	net_conn_trust(hc->conn);
	return true;
}

static void serve_write(struct http_conn *hc, const char *query, size_t query_len)
{
	char value[256];
	enum line_precision precision;
	if (!authorize(hc, "write", query, query_len))
		return;
	ingest_http_query_param(query, query_len, "precision", value, sizeof(value));
	if (ingest_http_precision(value, hc->v2, &precision)) {
		refuse(hc, 400, "invalid",
		       hc->v2 ? "invalid precision: use ns, us, ms or s"
			      : "invalid precision: use n, u, ms, s, m or h");
		return;
	}
	if (hc->encoding == ENCODING_OTHER) {
		char message[128];
		snprintf(message, sizeof(message), "unsupported Content-Encoding '%s': use gzip or "
			 "identity", hc->encoding_name);
		refuse(hc, 415, "unsupported media type", message);
		return;
	}
	if (!(hc->parser.flags & F_CHUNKED) && hc->encoding == ENCODING_IDENTITY &&
	    hc->parser.content_length > hc->listen->max_body) {
		refuse(hc, 413, "request too large", "request body larger than max_body");
		return;
	}
	if (over_mark(hc->ingest)) {
		refuse(hc, 503, "unavailable", "recorder busy: buffers full (max_buffer); retry later");
		return;
	}
	if (start_write(hc, precision)) {
		refuse(hc, 500, "internal error", "out of memory");
		return;
	}
	if (hc->expect_continue)
		net_conn_write(hc->conn, "HTTP/1.1 100 Continue\r\n\r\n", 25);
}

static int on_headers_complete(llhttp_t *parser)
{
	struct http_conn *hc = parser->data;
	hc->in_body = true;
	if (hc->url_too_long) {
		refuse(hc, 414, "invalid", "URL too long");
		return 0;
	}
	const char *question = memchr(hc->url, '?', hc->url_len);
	size_t path_len = question ? (size_t)(question - hc->url) : hc->url_len;
	const char *query = question ? question + 1 : hc->url + hc->url_len;
	size_t query_len = hc->url_len - (size_t)(query - hc->url);
	enum http_route route = find_route(hc, hc->url, path_len);
	if (route != ROUTE_WRITE && route != ROUTE_NOT_FOUND && route != ROUTE_QUERY)
		hc->answered = true;
	switch (route) {
	case ROUTE_WRITE:
		serve_write(hc, query, query_len);
		break;
	case ROUTE_PING:
		serve_ping(hc, query, query_len);
		break;
	case ROUTE_HEALTH:
		serve_health(hc);
		break;
	case ROUTE_METRICS:
		serve_metrics(hc);
		break;
	case ROUTE_QUERY:
		/* Telegraf and the client libraries send CREATE DATABASE on
		 * start; there is nothing to create, and nothing to query. */
		authorize(hc, "query", query, query_len);
		break;
	default:
		refuse(hc, 404, "not found", "not found");
		break;
	}
	return 0;
}

/* ---- llhttp callbacks ---------------------------------------------------- */

static int on_message_begin(llhttp_t *parser)
{
	struct http_conn *hc = parser->data;
	hc->url_len = 0;
	hc->url_too_long = false;
	hc->header_name_len = hc->header_value_len = 0;
	hc->authorization[0] = '\0';
	hc->encoding = ENCODING_IDENTITY;
	hc->encoding_name[0] = '\0';
	hc->expect_continue = false;
	hc->v2 = false;
	hc->in_body = false;
	hc->decoding = false;
	hc->answered = false;
	hc->failed_status = 0;
	return 0;
}

static int on_url(llhttp_t *parser, const char *at, size_t len)
{
	struct http_conn *hc = parser->data;
	if (len > sizeof(hc->url) - 1 - hc->url_len) {
		hc->url_too_long = true;
		return 0;
	}
	memcpy(hc->url + hc->url_len, at, len);
	hc->url_len += len;
	hc->url[hc->url_len] = '\0';
	return 0;
}

/* Append a piece of a header name or value (llhttp may hand one over in
 * several) to BUF of CAP bytes holding *USED, cut to fit, NUL-ended. */
static int append_cut(char *buf, size_t cap, size_t *used, const char *at, size_t len)
{
	size_t room = cap - 1 - *used;
	size_t n = len < room ? len : room;
	memcpy(buf + *used, at, n);
	*used += n;
	buf[*used] = '\0';
	return 0;
}

static int on_header_field(llhttp_t *parser, const char *at, size_t len)
{
	struct http_conn *hc = parser->data;
	return append_cut(hc->header_name, sizeof(hc->header_name), &hc->header_name_len, at, len);
}

static int on_header_value(llhttp_t *parser, const char *at, size_t len)
{
	struct http_conn *hc = parser->data;
	return append_cut(hc->header_value, sizeof(hc->header_value), &hc->header_value_len, at,
			  len);
}

/* Copy a header value, cut to fit (a cut value is never a valid one). */
static void copy_value(char *dst, size_t cap, const char *src)
{
	size_t n = strnlen(src, cap - 1);
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static int on_header_value_complete(llhttp_t *parser)
{
	struct http_conn *hc = parser->data;
	const char *name = hc->header_name, *value = hc->header_value;
	if (strcasecmp(name, "Authorization") == 0) {
		copy_value(hc->authorization, sizeof(hc->authorization), value);
	} else if (strcasecmp(name, "Content-Encoding") == 0) {
		copy_value(hc->encoding_name, sizeof(hc->encoding_name), value);
		if (strcasecmp(value, "gzip") == 0 || strcasecmp(value, "x-gzip") == 0)
			hc->encoding = ENCODING_GZIP;
		else if (value[0] && strcasecmp(value, "identity") != 0)
			hc->encoding = ENCODING_OTHER;
	} else if (strcasecmp(name, "Expect") == 0) {
		hc->expect_continue = strcasecmp(value, "100-continue") == 0;
	}
	hc->header_name_len = hc->header_value_len = 0;
	hc->header_name[0] = hc->header_value[0] = '\0';
	return 0;
}

static int on_body(llhttp_t *parser, const char *at, size_t len)
{
	struct http_conn *hc = parser->data;
	if (!hc->decoding)
		return 0;
	int rc = hc->encoding == ENCODING_GZIP ? inflate_body(hc, at, len)
					       : feed_decoded(hc, at, len);
	if (rc && hc->failed_status == 413) {
		/* The client may send forever (a gzip bomb, an endless
		 * chunked body): answer now and close. */
		finish_write(hc);
		return HPE_USER;
	}
	return 0;
}

static int on_message_complete(llhttp_t *parser)
{
	struct http_conn *hc = parser->data;
	hc->in_body = false;
	if (hc->lingering)
		return HPE_USER;
	if (hc->answered) {
		/* answered at its headers */
	} else if (hc->decoding || hc->failed_status) {
		finish_write(hc);
	} else {
		respond_json(hc, 200, "{\"results\":[{\"statement_id\":0}]}", false);
	}
	return hc->lingering ? HPE_USER : 0;
}

/* ---- net handler ---------------------------------------------------------- */

static void *ingest_http_open(void *arg, struct net_conn *conn, const struct net_peer *peer,
		       const struct schema_listen *listen)
{
	struct http_conn *hc = calloc(1, sizeof(*hc));
	if (!hc)
		return NULL;
	hc->ingest = arg;
	hc->conn = conn;
	hc->listen = listen;
	snprintf(hc->peer, sizeof(hc->peer), "%s", peer->name);
	llhttp_settings_init(&hc->settings);
	hc->settings.on_message_begin = on_message_begin;
	hc->settings.on_url = on_url;
	hc->settings.on_header_field = on_header_field;
	hc->settings.on_header_value = on_header_value;
	hc->settings.on_header_value_complete = on_header_value_complete;
	hc->settings.on_headers_complete = on_headers_complete;
	hc->settings.on_body = on_body;
	hc->settings.on_message_complete = on_message_complete;
	llhttp_init(&hc->parser, HTTP_REQUEST, &hc->settings);
	hc->parser.data = hc;
	return hc;
}

static int ingest_http_data(void *state, const char *buf, size_t len)
{
	struct http_conn *hc = state;
	if (hc->lingering) {
		hc->linger_bytes += len;
		return hc->linger_bytes > HTTP_LINGER_MAX ? -1 : 0;
	}
	enum llhttp_errno err = llhttp_execute(&hc->parser, buf, len);
	if (err == HPE_OK || hc->lingering)
		return 0;
	if (err == HPE_PAUSED_UPGRADE) {
		respond_error(hc, 400, "invalid", "protocol upgrades are not supported", true);
		return 0;
	}
	ingest_error(hc->ingest, INGEST_PROTOCOL_ERRORS, "%s: bad HTTP request: %s (%s)",
		     hc->peer, llhttp_errno_name(err), llhttp_get_error_reason(&hc->parser));
	if (hc->decoding)
		fail_body(hc, 400, "bad request");
	char message[160];
	snprintf(message, sizeof(message), "bad request: %s", llhttp_get_error_reason(&hc->parser));
	respond_error(hc, 400, "invalid", message, true);
	return 0;
}

static void ingest_http_eof(void *state)
{
	struct http_conn *hc = state;
	if (hc->in_body && hc->decoding)
		log_msg(LOG_LEVEL_INFO, "%s: HTTP request cut off in its body: its lines are "
			"dropped (the client sends them again)", hc->peer);
	drop_rows(hc);
}

static void ingest_http_close(void *state)
{
	struct http_conn *hc = state;
	ingest_line_batch_clear(&hc->batch);
	update_inflight(hc);
	ingest_line_batch_free(&hc->batch);
	line_decoder_free(hc->decoder);
	if (hc->zs_ready)
		inflateEnd(&hc->zs);
	free(hc->slice);
	free(hc);
}

struct net_handler ingest_http_handler(struct ingest *ingest)
{
	return (struct net_handler){
		.arg = ingest,
		.never_paused = true,
		.open = ingest_http_open,
		.data = ingest_http_data,
		.eof = ingest_http_eof,
		.close = ingest_http_close,
	};
}
