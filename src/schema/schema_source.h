/*
 * schema_source.h - the `sources` list of a schema (schema_source.c): the
 * message brokers a recorder pulls from, each backend's settings, and the
 * rules that tie them to output.flush and limits.max_buffer.
 */
#ifndef H5REC_SCHEMA_SOURCE_H
#define H5REC_SCHEMA_SOURCE_H

#include <yaml.h>

#include "schema.h"
#include "schema_yaml.h"

/* Build and check schema->sources from the `sources` list LIST (after
 * output and limits are loaded). Returns 0 or a negative errno, with
 * ld->err saying why; what was built is released with the schema. */
int schema_load_sources(struct loader *ld, struct schema *schema, yaml_node_t *list);
/* Free what a source owns (not the source itself). */
void schema_source_release(struct schema_source *src);

#endif
