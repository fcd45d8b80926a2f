/*
 * router.h - which stream, group and channel a frame or a line belongs to.
 *
 * The schema says how names on the wire map to the file: a frame key is
 * matched against each frame stream's `match.key` template ("dust/{channel}",
 * "{board}/{channel}"), a line's measurement against `match.measurement`
 * and its tags fill the group template. The router does that matching and
 * checks every placeholder value (SPEC §2: [A-Za-z0-9_.-]{1,64}, not
 * starting with '.') before it can name a group; a value that fails never
 * reaches the engine.
 *
 * Pure functions over an immutable schema: callable from any thread; the
 * daemon calls them on the loop thread.
 */
#ifndef H5REC_ROUTER_H
#define H5REC_ROUTER_H

#include <stddef.h>

#include "line.h"
#include "schema.h"

#define ROUTER_MAX_PLACEHOLDERS 16
#define ROUTER_MAX_VALUE 64

enum router_status {
	ROUTER_OK = 0,
	ROUTER_NO_STREAM,   /* no stream matches the key / measurement */
	ROUTER_NO_CHANNEL,  /* {channel} is not a declared channel */
	ROUTER_BAD_VALUE,   /* a placeholder value fails SPEC §2 */
	ROUTER_MISSING_TAG, /* a group placeholder has no tag in the line */
	ROUTER_WRONG_KIND,  /* e.g. an EVENT frame for a stream that is not records */
};

/* Where a frame or a line goes. values[] are NUL-terminated copies, so a
 * route outlives the network buffer it was made from. */
struct route {
	const struct schema_stream *stream;
	size_t channel; /* DATA frames: index in stream->channels */
	size_t nvalues; /* group placeholders, in group-template order */
	const char *names[ROUTER_MAX_PLACEHOLDERS];
	char values[ROUTER_MAX_PLACEHOLDERS][ROUTER_MAX_VALUE + 1];
};

/* The placeholder values as the engine takes them (pointers into route). */
void router_values(const struct route *route, const char *values[ROUTER_MAX_PLACEHOLDERS]);

/*
 * A DATA frame's key. The first frame stream (in schema order) whose
 * template matches wins. reason receives a message naming the key and what
 * is wrong when the status is not ROUTER_OK.
 */
enum router_status router_data_key(const struct schema *schema, const char *key,
				   struct route *route, char *reason, size_t reason_len);

/*
 * An EVENT frame's key: the name of a records stream whose group has no
 * placeholders (SPEC §3.1), or the stream's key template without its final
 * "/{channel}" part ("dust" for "dust/{channel}", "b7" for
 * "{board}/{channel}"), which also names the group when it has
 * placeholders.
 */
enum router_status router_event_key(const struct schema *schema, const char *key,
				    struct route *route, char *reason, size_t reason_len);

/*
 * A line's measurement and its tags, all of them, as the decoder gave them
 * (duplicates included). A tag that names the group may appear more than
 * once only with one value; other tags are not looked at.
 */
enum router_status router_line(const struct schema *schema, const char *measurement,
			       const struct line_tag *tags, size_t ntags, struct route *route,
			       char *reason, size_t reason_len);

/* Short stable name of a status for counters ("no_stream", …). */
const char *router_status_name(enum router_status status);

#endif
