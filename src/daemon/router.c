/*
 * router.c - frame keys and line measurements to streams (see router.h).
 *
 * Key templates are matched part by part without backtracking: a literal
 * must appear where the template puts it, and a placeholder takes the text
 * up to the next occurrence of the following literal (or to the end). Since
 * placeholder values cannot contain '/', templates whose placeholders are
 * separated by '/' — every template in practice — match exactly one way.
 */
#include "router.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define ROUTER_MAX_KEY 1024 /* the frame protocol's key limit */

const char *router_status_name(enum router_status status)
{
	switch (status) {
	case ROUTER_OK:
		return "ok";
	case ROUTER_NO_STREAM:
		return "unknown_stream";
	case ROUTER_NO_CHANNEL:
		return "unknown_channel";
	case ROUTER_BAD_VALUE:
		return "bad_placeholder";
	case ROUTER_MISSING_TAG:
		return "missing_tag";
	case ROUTER_WRONG_KIND:
		return "wrong_kind";
	}
	return "unknown";
}

void router_values(const struct route *route, const char *values[ROUTER_MAX_PLACEHOLDERS])
{
	for (size_t i = 0; i < route->nvalues; i++)
		values[i] = route->values[i];
}

/* Record placeholder NAME = text[0..len) in the route if the group template
 * uses it. */
static enum router_status route_set(struct route *route, const char *name, const char *text,
				    size_t len, char *reason, size_t reason_len)
{
	if (!schema_placeholder_value_valid(text, len)) {
		snprintf(reason, reason_len,
			 "value '%.*s' of {%s} is not 1-64 of [A-Za-z0-9_.-] starting with no '.'",
			 (int)(len > 80 ? 80 : len), text, name);
		return ROUTER_BAD_VALUE;
	}
	if (!schema_template_has(&route->stream->group, name))
		return ROUTER_OK;
	for (size_t i = 0; i < route->nvalues; i++) {
		/* A placeholder used twice must have one value. */
		if (strcmp(route->names[i], name) == 0) {
			bool same = strlen(route->values[i]) == len &&
				    memcmp(route->values[i], text, len) == 0;
			if (!same)
				snprintf(reason, reason_len, "{%s} has two values", name);
			return same ? ROUTER_OK : ROUTER_BAD_VALUE;
		}
	}
	if (route->nvalues == ROUTER_MAX_PLACEHOLDERS) {
		snprintf(reason, reason_len, "more than %d placeholders", ROUTER_MAX_PLACEHOLDERS);
		return ROUTER_BAD_VALUE;
	}
	route->names[route->nvalues] = name;
	memcpy(route->values[route->nvalues], text, len);
	route->values[route->nvalues][len] = '\0';
	route->nvalues++;
	return ROUTER_OK;
}

struct key_match {
	const char *channel; /* the {channel} text, if the template has it */
	size_t channel_len;
};

/*
 * Match key against the first nparts parts of tmpl, filling route with the
 * group placeholders. Returns ROUTER_NO_STREAM when it does not match,
 * ROUTER_BAD_VALUE when it matches with an invalid value.
 */
static enum router_status match_parts(const struct schema_template *tmpl, size_t nparts,
				      const char *key, struct route *route,
				      struct key_match *match, char *reason, size_t reason_len)
{
	const char *p = key;
	const char *end = key + strlen(key);

	for (size_t i = 0; i < nparts; i++) {
		const struct schema_template_part *part = &tmpl->parts[i];
		if (!part->placeholder) {
			size_t len = strlen(part->text);
			if ((size_t)(end - p) < len || memcmp(p, part->text, len) != 0)
				return ROUTER_NO_STREAM;
			p += len;
			continue;
		}
		const char *stop = end;
		if (i + 1 < nparts) {
			const struct schema_template_part *next = &tmpl->parts[i + 1];
			stop = next->placeholder ? p : strstr(p, next->text);
			if (!stop)
				return ROUTER_NO_STREAM;
		}
		size_t len = (size_t)(stop - p);
		if (strcmp(part->text, "channel") == 0) {
			match->channel = p;
			match->channel_len = len;
		} else {
			enum router_status st = route_set(route, part->text, p, len, reason, reason_len);
			if (st != ROUTER_OK)
				return st;
		}
		p = stop;
	}
	return p == end ? ROUTER_OK : ROUTER_NO_STREAM;
}

static bool schema_template_has_placeholders(const struct schema_template *tmpl)
{
	for (size_t i = 0; i < tmpl->nparts; i++)
		if (tmpl->parts[i].placeholder)
			return true;
	return false;
}

static enum router_status find_channel(struct route *route, const struct key_match *match,
				       const char *key, char *reason, size_t reason_len)
{
	const struct schema_stream *stream = route->stream;
	for (size_t c = 0; c < stream->nchannels; c++) {
		const char *name = stream->channels[c].name;
		if (strlen(name) == match->channel_len &&
		    memcmp(name, match->channel, match->channel_len) == 0) {
			route->channel = c;
			return ROUTER_OK;
		}
	}
	snprintf(reason, reason_len, "key '%.100s': stream '%s' has no channel '%.*s'", key,
		 stream->name, (int)(match->channel_len > 80 ? 80 : match->channel_len),
		 match->channel);
	return ROUTER_NO_CHANNEL;
}

enum router_status router_data_key(const struct schema *schema, const char *key,
				   struct route *route, char *reason, size_t reason_len)
{
	for (size_t s = 0; s < schema->nstreams; s++) {
		const struct schema_stream *stream = &schema->streams[s];
		if (!stream->match_is_key)
			continue;
		struct key_match match = {0};
		*route = (struct route){.stream = stream};
		enum router_status st = match_parts(&stream->match_key, stream->match_key.nparts,
						    key, route, &match, reason, reason_len);
		if (st == ROUTER_NO_STREAM)
			continue;
		if (st != ROUTER_OK) {
			char detail[160];
			snprintf(detail, sizeof(detail), "%s", reason);
			snprintf(reason, reason_len, "key '%.100s': %s", key, detail);
			return st;
		}
		return find_channel(route, &match, key, reason, reason_len);
	}
	snprintf(reason, reason_len, "key '%.100s' matches no frame stream", key);
	return ROUTER_NO_STREAM;
}

/* The template without a final "/{channel}" (or "{channel}"): the parts an
 * EVENT key must match. */
static size_t event_parts(const struct schema_template *tmpl, bool *trim_slash)
{
	size_t n = tmpl->nparts;
	*trim_slash = false;
	if (n && tmpl->parts[n - 1].placeholder && strcmp(tmpl->parts[n - 1].text, "channel") == 0) {
		n--;
		if (n && !tmpl->parts[n - 1].placeholder) {
			size_t len = strlen(tmpl->parts[n - 1].text);
			*trim_slash = len && tmpl->parts[n - 1].text[len - 1] == '/';
		}
	}
	return n;
}

/* Match an EVENT key against one records stream's key template. */
static enum router_status match_event(const struct schema_stream *stream, const char *key,
				      struct route *route, char *reason, size_t reason_len)
{
	bool trim_slash;
	size_t n = event_parts(&stream->match_key, &trim_slash);
	struct key_match match = {0};
	char with_slash[ROUTER_MAX_KEY + 2];

	*route = (struct route){.stream = stream};
	if (trim_slash) {
		/* "dust/" is the last literal of "dust/{channel}": the EVENT key
		 * "dust" matches it with the slash put back. */
		int len = snprintf(with_slash, sizeof(with_slash), "%s/", key);
		if (len < 0 || (size_t)len >= sizeof(with_slash))
			return ROUTER_NO_STREAM;
		key = with_slash;
	}
	return match_parts(&stream->match_key, n, key, route, &match, reason, reason_len);
}

/* EVENT frames go to records streams and to streams with an event table. */
static bool takes_events(const struct schema_stream *stream)
{
	return stream->layout == SCHEMA_LAYOUT_RECORDS ||
	       (stream->layout == SCHEMA_LAYOUT_STREAM && stream->events);
}

enum router_status router_event_key(const struct schema *schema, const char *key,
				    struct route *route, char *reason, size_t reason_len)
{
	/* SPEC §3.1: the key is the stream name — which names the group
	 * only when the group has no placeholders. */
	const struct schema_stream *named = schema_find_stream(schema, key);
	if (named && named->match_is_key && takes_events(named) &&
	    !schema_template_has_placeholders(&named->group)) {
		*route = (struct route){.stream = named};
		return ROUTER_OK;
	}
	for (size_t s = 0; s < schema->nstreams; s++) {
		const struct schema_stream *stream = &schema->streams[s];
		if (!stream->match_is_key)
			continue;
		enum router_status st = match_event(stream, key, route, reason, reason_len);
		if (st == ROUTER_NO_STREAM)
			continue;
		if (st != ROUTER_OK)
			return st;
		if (!takes_events(stream)) {
			snprintf(reason, reason_len,
				 "EVENT key '%.100s': stream '%s' has neither the records layout "
				 "nor events: true", key, stream->name);
			return ROUTER_WRONG_KIND;
		}
		return ROUTER_OK;
	}
	snprintf(reason, reason_len, "EVENT key '%.100s' matches no records stream, nor a stream "
		 "with events", key);
	return ROUTER_NO_STREAM;
}

/*
 * The tag NAME of a line: *found is its first occurrence. Every tag is
 * looked at, however many the line has, so that a second, different value
 * anywhere in the line is noticed (ROUTER_BAD_VALUE).
 */
static enum router_status find_tag(const struct line_tag *tags, size_t ntags, const char *name,
				   const struct line_tag **found)
{
	size_t name_len = strlen(name);

	*found = NULL;
	for (size_t t = 0; t < ntags; t++) {
		const struct line_tag *tag = &tags[t];
		if (tag->key_len != name_len || memcmp(tag->key, name, name_len) != 0)
			continue;
		if (!*found)
			*found = tag;
		else if (tag->value_len != (*found)->value_len ||
			 memcmp(tag->value, (*found)->value, tag->value_len) != 0)
			return ROUTER_BAD_VALUE;
	}
	return *found ? ROUTER_OK : ROUTER_MISSING_TAG;
}

enum router_status router_line(const struct schema *schema, const char *measurement,
			       const struct line_tag *tags, size_t ntags, struct route *route,
			       char *reason, size_t reason_len)
{
	const struct schema_stream *stream = NULL;
	for (size_t s = 0; s < schema->nstreams && !stream; s++) {
		const char *m = schema->streams[s].match_measurement;
		if (m && strcmp(m, measurement) == 0)
			stream = &schema->streams[s];
	}
	if (!stream) {
		snprintf(reason, reason_len, "measurement '%.100s' matches no stream", measurement);
		return ROUTER_NO_STREAM;
	}
	*route = (struct route){.stream = stream};
	/* Walk the group template so values come out in its order. */
	for (size_t i = 0; i < stream->group.nparts; i++) {
		const struct schema_template_part *part = &stream->group.parts[i];
		if (!part->placeholder)
			continue;
		const struct line_tag *tag;
		enum router_status st = find_tag(tags, ntags, part->text, &tag);
		if (st == ROUTER_MISSING_TAG) {
			snprintf(reason, reason_len, "measurement '%.100s': tag '%s' missing (group %s)",
				 measurement, part->text, stream->group.text);
			return st;
		}
		/* A tag that names the group must say one thing. */
		if (st != ROUTER_OK) {
			snprintf(reason, reason_len, "measurement '%.100s': tag '%s' has two values",
				 measurement, part->text);
			return st;
		}
		char detail[200];
		st = route_set(route, part->text, tag->value, tag->value_len, detail, sizeof(detail));
		if (st != ROUTER_OK) {
			snprintf(reason, reason_len, "measurement '%.100s', tag '%s': %s", measurement,
				 part->text, detail);
			return st;
		}
	}
	return ROUTER_OK;
}
