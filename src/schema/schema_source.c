/*
 * schema_source.c - the `sources` list of a schema: where a recorder pulls
 * data from, beside the listeners that wait for it (docs/scale-out.md).
 *
 * Each entry is a mapping of one key, the backend, whose value is that
 * backend's settings: `- nats: {servers, stream, consumer, ...}`. The
 * settings that bound time (ack_wait against output.flush, fetch.expires
 * against ack_wait) and memory (fetch.max_bytes against limits.max_buffer)
 * are checked against each other here, since a wrong pair does not fail at
 * once: it makes every message go to another recorder, again and again.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema_internal.h"
#include "schema_source.h"

#define KiB (UINT64_C(1) << 10)
#define MiB (UINT64_C(1) << 20)
#define MS INT64_C(1000000)
#define SEC INT64_C(1000000000)

/* How many servers and subjects one source may list. */
#define SOURCE_LIST_MAX 64

static const struct enum_name source_protocol_names[] = {
	{"line", SCHEMA_PROTOCOL_LINE},
	{"frame", SCHEMA_PROTOCOL_FRAME},
	{NULL, 0},
};

static const struct enum_name source_precision_names[] = {
	{"ns", LINE_PRECISION_NS}, {"us", LINE_PRECISION_US}, {"ms", LINE_PRECISION_MS},
	{"s", LINE_PRECISION_S},   {"m", LINE_PRECISION_M},   {"h", LINE_PRECISION_H},
	{NULL, 0},
};

enum { NATS_SERVERS, NATS_STREAM, NATS_CONSUMER, NATS_SUBJECTS, NATS_PROTOCOL, NATS_PRECISION,
       NATS_REPLICAS, NATS_FETCH, NATS_ACK_WAIT, NATS_MAX_ACK_PENDING, NATS_CREDENTIALS,
       NATS_N };
static const struct opt nats_opts[NATS_N] = {
	[NATS_SERVERS] = {"servers", OPT_NODE, .kind = YAML_SEQUENCE_NODE,
			  .flags = OPT_F_REQUIRED},
	[NATS_STREAM] = {"stream", OPT_STRING, offsetof(struct schema_source, stream),
			 .flags = OPT_F_REQUIRED},
	[NATS_CONSUMER] = {"consumer", OPT_STRING, offsetof(struct schema_source, consumer),
			   .flags = OPT_F_REQUIRED},
	[NATS_SUBJECTS] = {"subjects", OPT_NODE, .kind = YAML_SEQUENCE_NODE},
	[NATS_PROTOCOL] = {"protocol", OPT_ENUM, offsetof(struct schema_source, protocol),
			   .enums = source_protocol_names, .flags = OPT_F_REQUIRED},
	[NATS_PRECISION] = {"precision", OPT_ENUM, offsetof(struct schema_source, precision),
			    "ns", .enums = source_precision_names},
	/* JetStream clusters replicate a stream on at most 5 servers */
	[NATS_REPLICAS] = {"replicas", OPT_UINT, offsetof(struct schema_source, replicas), "1",
			   .min = 1, .max = 5},
	[NATS_FETCH] = {"fetch", OPT_NODE, .kind = YAML_MAPPING_NODE},
	[NATS_ACK_WAIT] = {"ack_wait", OPT_DURATION, offsetof(struct schema_source, ack_wait_ns),
			   "60s", .min = SEC, .max = 3600 * SEC},
	[NATS_MAX_ACK_PENDING] = {"max_ack_pending", OPT_UINT,
				  offsetof(struct schema_source, max_ack_pending), "1024",
				  .min = 1, .max = 1000000},
	[NATS_CREDENTIALS] = {"credentials", OPT_STRING,
			      offsetof(struct schema_source, credentials)},
};

enum { FETCH_BATCH, FETCH_MAX_BYTES, FETCH_EXPIRES, FETCH_N };
static const struct opt fetch_opts[FETCH_N] = {
	[FETCH_BATCH] = {"batch", OPT_UINT, offsetof(struct schema_source, fetch_batch), "64",
			 .min = 1, .max = 10000},
	/* the server's default max_payload is 1 MiB: a fetch of 8 holds a
	 * few of the largest messages */
	[FETCH_MAX_BYTES] = {"max_bytes", OPT_SIZE, offsetof(struct schema_source, fetch_max_bytes),
			     "8MiB", .min = 64 * KiB, .max = 1024 * MiB},
	[FETCH_EXPIRES] = {"expires", OPT_DURATION,
			   offsetof(struct schema_source, fetch_expires_ns), "1s", .min = 100 * MS,
			   .max = 60 * SEC},
};

/* JetStream names (streams, consumers): no '.', '*', '>', spaces or
 * controls, at most 64 bytes here. */
static bool jetstream_name_valid(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c <= ' ' || c >= 0x7f || c == '.' || c == '*' || c == '>' || c == '/' ||
		    c == '\\')
			return false;
	}
	return true;
}

/* A subject: tokens separated by '.', none empty; '*' and '>' whole
 * tokens, '>' only last. */
static bool subject_valid(const char *subject)
{
	size_t n = strlen(subject);
	if (n == 0 || n > 255)
		return false;
	const char *token = subject;
	for (;;) {
		const char *dot = strchr(token, '.');
		size_t len = dot ? (size_t)(dot - token) : strlen(token);
		if (len == 0)
			return false;
		for (size_t i = 0; i < len; i++) {
			unsigned char c = (unsigned char)token[i];
			if (c <= ' ' || c >= 0x7f)
				return false;
			if ((c == '*' || c == '>') && len != 1)
				return false;
		}
		if (token[0] == '>' && dot)
			return false;
		if (!dot)
			return true;
		token = dot + 1;
	}
}

static bool server_valid(const char *url)
{
	static const char *const schemes[] = {"nats://", "tls://"};
	for (size_t i = 0; i < 2; i++) {
		size_t len = strlen(schemes[i]);
		if (strncmp(url, schemes[i], len) == 0 && url[len] && !strpbrk(url, " \t,"))
			return true;
	}
	return false;
}

/* A list of strings, each checked by VALID (WHAT says what one is). */
static int load_strings(struct loader *ld, yaml_node_t *list, const char *path,
			bool (*valid)(const char *), const char *what, char ***out, size_t *nout)
{
	size_t n = (size_t)(list->data.sequence.items.top - list->data.sequence.items.start);
	char shown[80];

	if (n == 0)
		return loader_fail(ld, list, "%s: expected at least one %s", path, what);
	if (n > SOURCE_LIST_MAX)
		return loader_fail(ld, list, "%s: at most %d entries", path, SOURCE_LIST_MAX);
	*out = schema_calloc(n, sizeof(**out));
	if (!*out)
		return loader_nomem(ld, list);
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *item = loader_node(ld, list->data.sequence.items.start[i]);
		const char *text = loader_text(item);
		if (!text)
			return loader_fail(ld, item, "%s[%zu]: expected %s, got %s", path, i, what,
					   loader_kind(item));
		if (!valid(text))
			return loader_fail(ld, item, "%s[%zu]: '%s' is not %s", path, i,
					   loader_shown(text, shown, sizeof(shown)), what);
		(*out)[i] = schema_strdup(text);
		if (!(*out)[i])
			return loader_nomem(ld, item);
		(*nout)++;
	}
	return 0;
}

/* The rules between keys, and against output and limits. */
static int check_nats(struct loader *ld, const struct schema *schema,
		      const struct schema_source *src, const struct seen *seen,
		      const struct seen *fetch_seen, yaml_node_t *map, const char *path)
{
	char shown[80];
	const char *names[] = {src->stream, src->consumer};
	const int keys[] = {NATS_STREAM, NATS_CONSUMER};

	for (size_t i = 0; i < 2; i++)
		if (!jetstream_name_valid(names[i]))
			return loader_fail(ld, seen[keys[i]].value,
					   "%s.%s: '%s' is not a JetStream name (1 to 64 "
					   "printable characters, none of . * > / \\ or space)",
					   path, nats_opts[keys[i]].name,
					   loader_shown(names[i], shown, sizeof(shown)));
	if (seen[NATS_PRECISION].key && src->protocol != SCHEMA_PROTOCOL_LINE)
		return loader_fail(ld, seen[NATS_PRECISION].value,
				   "%s.precision: only line sources take a precision", path);
	if (seen[NATS_REPLICAS].key && !seen[NATS_SUBJECTS].key)
		return loader_fail(ld, seen[NATS_REPLICAS].value,
				   "%s.replicas: only a stream the recorder creates (give its "
				   "subjects) takes replicas", path);
	/* A message is acked after the flush that makes it durable; a wait
	 * shorter than two flushes would hand every message to another
	 * recorder before this one could ack it. */
	if (src->ack_wait_ns <= 2 * schema->output.flush_ns)
		return loader_fail(ld, seen[NATS_ACK_WAIT].value ? seen[NATS_ACK_WAIT].value : map,
				   "%s.ack_wait: must be more than twice output.flush (messages "
				   "are acked only once the flush has made them durable)", path);
	if (src->fetch_expires_ns >= src->ack_wait_ns)
		return loader_fail(ld, fetch_seen[FETCH_EXPIRES].value
					       ? fetch_seen[FETCH_EXPIRES].value : map,
				   "%s.fetch.expires: must be shorter than ack_wait", path);
	if (src->fetch_max_bytes > schema->limits.max_buffer)
		return loader_fail(ld, fetch_seen[FETCH_MAX_BYTES].value
					       ? fetch_seen[FETCH_MAX_BYTES].value : map,
				   "%s.fetch.max_bytes: must not exceed limits.max_buffer", path);
	return 0;
}

static int load_nats(struct loader *ld, const struct schema *schema, struct schema_source *src,
		     yaml_node_t *map, const char *path)
{
	struct seen seen[NATS_N] = {0}, fetch_seen[FETCH_N] = {0};
	char where[64], sub[64];
	int err;

	snprintf(where, sizeof(where), "in %s", path);
	if (map->type != YAML_MAPPING_NODE)
		return loader_fail(ld, map, "%s: expected a mapping (servers, stream, consumer, "
				   "protocol), got %s", path, loader_kind(map));
	src->kind = SCHEMA_SOURCE_NATS;
	err = loader_walk(ld, map, nats_opts, NATS_N, src, seen, path, where);
	if (!err)
		err = loader_finish(ld, map, nats_opts, NATS_N, src, seen, path);
	snprintf(sub, sizeof(sub), "%s.fetch", path);
	snprintf(where, sizeof(where), "in %s.fetch", path);
	if (!err && seen[NATS_FETCH].value)
		err = loader_walk(ld, seen[NATS_FETCH].value, fetch_opts, FETCH_N, src, fetch_seen,
				  sub, where);
	if (!err)
		err = loader_finish(ld, seen[NATS_FETCH].value ? seen[NATS_FETCH].value : map,
				    fetch_opts, FETCH_N, src, fetch_seen, sub);
	snprintf(sub, sizeof(sub), "%s.servers", path);
	if (!err)
		err = load_strings(ld, seen[NATS_SERVERS].value, sub, server_valid,
				   "a server URL (nats://host:port or tls://host:port)",
				   &src->servers, &src->nservers);
	snprintf(sub, sizeof(sub), "%s.subjects", path);
	if (!err && seen[NATS_SUBJECTS].value)
		err = load_strings(ld, seen[NATS_SUBJECTS].value, sub, subject_valid,
				   "a NATS subject", &src->subjects, &src->nsubjects);
	if (!err)
		err = check_nats(ld, schema, src, seen, fetch_seen, map, path);
	return err;
}

static int load_one_source(struct loader *ld, const struct schema *schema,
			   struct schema_source *src, yaml_node_t *item, const char *path)
{
	if (item->type != YAML_MAPPING_NODE ||
	    item->data.mapping.pairs.top - item->data.mapping.pairs.start != 1)
		return loader_fail(ld, item, "%s: expected a mapping of one backend (nats: "
				   "{...}), got %s", path, item->type == YAML_MAPPING_NODE
				   ? "a mapping of several keys" : loader_kind(item));
	yaml_node_pair_t *pair = item->data.mapping.pairs.start;
	yaml_node_t *key = loader_node(ld, pair->key);
	const char *name = loader_text(key);
	char shown[80], sub[48];
	src->pos.line = (int)item->start_mark.line + 1;
	src->pos.col = (int)item->start_mark.column + 1;
	if (!name || strcmp(name, "nats") != 0)
		return loader_fail(ld, key, "%s: unknown source '%s' (known: nats)", path,
				   name ? loader_shown(name, shown, sizeof(shown)) : "?");
	snprintf(sub, sizeof(sub), "%s.nats", path);
	return load_nats(ld, schema, src, loader_node(ld, pair->value), sub);
}

/* Two sources on one consumer of one stream would split its messages
 * between them for nothing: refused. */
static int check_distinct(struct loader *ld, const struct schema *schema, size_t i,
			  yaml_node_t *item)
{
	const struct schema_source *a = &schema->sources[i];
	for (size_t j = 0; j < i; j++) {
		const struct schema_source *b = &schema->sources[j];
		if (strcmp(a->stream, b->stream) == 0 && strcmp(a->consumer, b->consumer) == 0)
			return loader_fail(ld, item, "sources[%zu]: stream '%s', consumer '%s' is "
					   "already sources[%zu]", i, a->stream, a->consumer, j);
	}
	return 0;
}

int schema_load_sources(struct loader *ld, struct schema *schema, yaml_node_t *list)
{
	size_t n = (size_t)(list->data.sequence.items.top - list->data.sequence.items.start);

	if (n == 0)
		return loader_fail(ld, list, "sources: expected at least one source (leave "
				   "sources out to take data from listeners only)");
	schema->sources = schema_calloc(n, sizeof(*schema->sources));
	if (!schema->sources)
		return loader_nomem(ld, list);
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *item = loader_node(ld, list->data.sequence.items.start[i]);
		char path[32];
		snprintf(path, sizeof(path), "sources[%zu]", i);
		schema->nsources++;
		int err = load_one_source(ld, schema, &schema->sources[i], item, path);
		if (!err)
			err = check_distinct(ld, schema, i, item);
		if (err)
			return err;
	}
	return 0;
}

static void free_strings(char **list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

void schema_source_release(struct schema_source *src)
{
	loader_release(nats_opts, NATS_N, src);
	loader_release(fetch_opts, FETCH_N, src);
	free_strings(src->servers, src->nservers);
	free_strings(src->subjects, src->nsubjects);
}
