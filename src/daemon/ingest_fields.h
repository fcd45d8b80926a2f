/*
 * ingest_fields.h - line-protocol field values to item values: the shared
 * step of table rows (lines) and event fields (EVENT frames), plus the HELLO
 * token lookup. Loop thread only (uses the ingest's field-set decoder).
 */
#ifndef H5REC_INGEST_FIELDS_H
#define H5REC_INGEST_FIELDS_H

#include <stddef.h>

#include "ingest.h"
#include "line.h"

/*
 * Convert one field for a column of type target. Strings are copied to
 * arena + *arena_used (the caller sized the arena). Returns 0, or -EINVAL
 * with reason filled when the field's type cannot be stored in target.
 */
int ingest_field_value(const struct line_field *field, uint32_t index, enum dtype target,
		       struct ingest_value *out, char *arena, size_t *arena_used, char *reason,
		       size_t reason_len);

/*
 * An EVENT frame's payload (a field set) as an INGEST_ITEM_EVENT item for
 * STREAM's event_fields; group, event_id and time are left to the caller.
 * Undeclared fields are counted and dropped, or make the event invalid with
 * `unknown_fields: error`. NULL with reason filled when the payload is not
 * a valid field set, a value does not fit its field, or memory runs out.
 */
struct ingest_item *ingest_fields_item(struct ingest *ingest, const struct schema_stream *stream,
				       const void *payload, size_t len, const char *peer,
				       char *reason, size_t reason_len);

/*
 * Look up string field NAME in a field set (a HELLO payload). Returns 1 and
 * copies it to out when present and a string, 0 when absent, -EINVAL when
 * the payload is not a field set or the value is not a string or too long.
 */
int ingest_fields_string(struct ingest *ingest, const void *payload, size_t len,
			 const char *name, char *out, size_t out_len);

#endif
