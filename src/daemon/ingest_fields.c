/*
 * ingest_fields.c - field values to item values (see ingest_fields.h).
 *
 * Line protocol gives every value one of five types; the schema gives each
 * column a dtype. Numbers of any type go to numeric columns (the engine
 * converts them as HDF5 would, counting clipped values), booleans become
 * 0/1, strings go only to string columns: a string is never parsed as a
 * number, since a sensor that sends "21.5" quoted is misconfigured and
 * should hear about it.
 */
#include "ingest_fields.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *const value_type_names[] = {
	[LINE_VALUE_FLOAT] = "a float", [LINE_VALUE_INT] = "an integer",
	[LINE_VALUE_UINT] = "an unsigned integer", [LINE_VALUE_STRING] = "a string",
	[LINE_VALUE_BOOL] = "a boolean",
};

int ingest_field_value(const struct line_field *field, uint32_t index, enum dtype target,
		       struct ingest_value *out, char *arena, size_t *arena_used, char *reason,
		       size_t reason_len)
{
	bool is_string = field->type == LINE_VALUE_STRING;
	if (is_string != (target == DTYPE_STRING)) {
		snprintf(reason, reason_len, "field '%s' is %s, the schema declares %s", field->key,
			 value_type_names[field->type], dtype_name(target));
		return -EINVAL;
	}
	out->index = index;
	switch (field->type) {
	case LINE_VALUE_FLOAT:
		out->dtype = DTYPE_FLOAT64;
		out->v.f64 = field->value.f;
		break;
	case LINE_VALUE_INT:
		out->dtype = DTYPE_INT64;
		out->v.i64 = field->value.i;
		break;
	case LINE_VALUE_UINT:
		out->dtype = DTYPE_UINT64;
		out->v.u64 = field->value.u;
		break;
	case LINE_VALUE_BOOL:
		out->dtype = DTYPE_UINT8;
		out->v.u64 = field->value.b;
		break;
	case LINE_VALUE_STRING:
		out->dtype = DTYPE_STRING;
		out->v.string = (uint32_t)*arena_used;
		memcpy(arena + *arena_used, field->string, field->string_len);
		arena[*arena_used + field->string_len] = '\0';
		*arena_used += field->string_len + 1;
		break;
	}
	return 0;
}

static const struct schema_event_field *find_event_field(const struct schema_stream *stream,
							 const char *name, uint32_t *index)
{
	for (size_t i = 0; i < stream->nevent_fields; i++) {
		if (strcmp(stream->event_fields[i].name, name) == 0) {
			*index = (uint32_t)i;
			return &stream->event_fields[i];
		}
	}
	return NULL;
}

static struct line_decoder *fields_decoder(struct ingest *ingest)
{
	if (!ingest->fields_decoder) {
		const struct line_options options = {.max_line = ingest->schema->limits.max_line,
						     .precision = LINE_PRECISION_NS};
		ingest->fields_decoder = line_decoder_new(&options, NULL, NULL, NULL);
	}
	return ingest->fields_decoder;
}

static int parse(struct ingest *ingest, const void *payload, size_t len,
		 struct line_point *point, char *reason, size_t reason_len)
{
	struct line_decoder *decoder = fields_decoder(ingest);
	struct line_error err;
	if (!decoder) {
		snprintf(reason, reason_len, "out of memory");
		return -ENOMEM;
	}
	int rc = line_parse_field_set(decoder, payload, len, point, &err);
	if (rc == -EINVAL)
		snprintf(reason, reason_len, "field set: %s at byte %llu", err.reason,
			 (unsigned long long)err.offset);
	else if (rc)
		snprintf(reason, reason_len, "out of memory");
	return rc;
}

struct ingest_item *ingest_fields_item(struct ingest *ingest, const struct schema_stream *stream,
				       const void *payload, size_t len, const char *peer,
				       char *reason, size_t reason_len)
{
	struct line_point point;
	if (parse(ingest, payload, len, &point, reason, reason_len))
		return NULL;

	/* Size the item exactly: declared fields and their strings. */
	size_t nvalues = 0, arena_size = 0;
	for (size_t i = 0; i < point.nfields; i++) {
		uint32_t index;
		const struct line_field *field = &point.fields[i];
		if (find_event_field(stream, field->key, &index)) {
			nvalues++;
			arena_size += field->type == LINE_VALUE_STRING ? field->string_len + 1 : 0;
		} else if (stream->unknown_fields == SCHEMA_UNKNOWN_ERROR) {
			snprintf(reason, reason_len, "stream '%s' has no event field '%s'",
				 stream->name, field->key);
			ingest_count(ingest, INGEST_UNKNOWN_FIELD, 1);
			return NULL;
		} else {
			ingest_count(ingest, INGEST_UNKNOWN_FIELD, 1);
		}
	}
	struct ingest_item *item = ingest_item_new(
		INGEST_ITEM_EVENT, nvalues * sizeof(struct ingest_value) + arena_size, peer);
	if (!item) {
		snprintf(reason, reason_len, "out of memory");
		return NULL;
	}
	item->u.event.values = (struct ingest_value *)(item + 1);
	item->u.event.arena = (char *)(item->u.event.values + nvalues);
	size_t arena_used = 0;
	for (size_t i = 0; i < point.nfields; i++) {
		uint32_t index;
		const struct schema_event_field *declared =
			find_event_field(stream, point.fields[i].key, &index);
		if (!declared)
			continue;
		struct ingest_value *value = &item->u.event.values[item->u.event.nvalues];
		if (ingest_field_value(&point.fields[i], index, declared->dtype, value,
				       item->u.event.arena, &arena_used, reason, reason_len)) {
			ingest_item_free(item);
			return NULL;
		}
		item->u.event.nvalues++;
	}
	ingest_count_samples(ingest, stream, item->u.event.nvalues);
	return item;
}

int ingest_fields_string(struct ingest *ingest, const void *payload, size_t len,
			 const char *name, char *out, size_t out_len)
{
	struct line_point point;
	char reason[LINE_REASON_SIZE];
	if (parse(ingest, payload, len, &point, reason, sizeof(reason)))
		return -EINVAL;
	for (size_t i = 0; i < point.nfields; i++) {
		const struct line_field *field = &point.fields[i];
		if (strcmp(field->key, name) != 0)
			continue;
		if (field->type != LINE_VALUE_STRING || field->string_len >= out_len)
			return -EINVAL;
		memcpy(out, field->string, field->string_len + 1);
		return 1;
	}
	return 0;
}
