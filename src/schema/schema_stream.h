/*
 * schema_stream.h - the `streams` list of a schema (schema_stream.c): each
 * stream's match, group template, layout, channels and event fields, with
 * the rules that relate them, checked with FILE:LINE:COL errors.
 */
#ifndef H5REC_SCHEMA_STREAM_H
#define H5REC_SCHEMA_STREAM_H

#include <yaml.h>

#include "schema.h"
#include "schema_yaml.h"

/* Build and check schema->streams from the `streams` list LIST (after
 * name, output and listen are loaded). Returns 0 or a negative errno, with
 * ld->err saying why; what was built is released with the schema. */
int schema_load_streams(struct loader *ld, struct schema *schema, yaml_node_t *list);
/* Free what a stream owns (not the stream itself). */
void schema_stream_release(struct schema_stream *stream);

#endif
