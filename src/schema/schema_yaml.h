/*
 * schema_yaml.h - the table-driven walk over libyaml's document tree that
 * the schema loader is built on (schema_yaml.c), shared by schema.c,
 * schema_stream.c and schema_attrs.c.
 *
 * Each YAML mapping of the schema language is described by a table of
 * options {name, type, field offset, default, bounds}, in the manner of
 * Redis's config table: one walker checks keys (unknown and duplicate keys
 * are errors, with a "did you mean"), converts and bounds-checks values and
 * stores them in the model. Rules that relate several keys live in schema.c.
 */
#ifndef H5REC_SCHEMA_YAML_H
#define H5REC_SCHEMA_YAML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include "schema.h"

struct loader {
	const char *file;        /* display name for messages */
	yaml_document_t doc;
	struct schema_error *err;
	bool failed;             /* err holds the first error */
};

enum opt_type {
	OPT_STRING,   /* char *: non-empty text */
	OPT_NAME,     /* char *: [A-Za-z0-9_.-]+, not starting with '.' */
	OPT_BOOL,     /* bool: true | false */
	OPT_UINT,     /* uint64_t: decimal integer in [min, max] */
	OPT_INT,      /* int: decimal integer in [min, max] */
	OPT_REAL,     /* double: finite decimal number, see OPT_F_* */
	OPT_SIZE,     /* uint64_t bytes in [min, max] */
	OPT_SIZE32,   /* uint32_t bytes in [min, max] */
	OPT_DURATION, /* int64_t ns in [min, max] */
	OPT_ENUM,     /* an enum (int-sized); names in opt.enums */
	OPT_DTYPE,    /* enum dtype */
	OPT_TEMPLATE, /* struct schema_template */
	OPT_NODE,     /* not stored: the node is kept in the seen table for the
			 caller, after checking it is of opt.kind */
};

#define OPT_F_REQUIRED 0x1u
#define OPT_F_POSITIVE 0x2u /* OPT_REAL: > 0 */
#define OPT_F_NONZERO 0x4u  /* OPT_REAL: != 0 */

struct enum_name {
	const char *name;
	int value;
};

struct opt {
	const char *name;
	enum opt_type type;
	size_t offset;
	const char *def;                 /* default, written as in a schema;
					    NULL: none, or computed by schema.c */
	uint64_t min, max;               /* bounds of numbers, sizes, durations */
	unsigned flags;
	const struct enum_name *enums;   /* OPT_ENUM, NULL-terminated */
	yaml_node_type_t kind;           /* OPT_NODE */
};

/* Where each option of a table was given: its key and value nodes. */
struct seen {
	yaml_node_t *key;
	yaml_node_t *value;
};

/* Record the first error, "FILE:LINE:COL: message" at node's start; always
 * returns -EINVAL so callers can `return loader_fail(...)`. */
int loader_fail(struct loader *ld, const yaml_node_t *node, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int loader_fail_mark(struct loader *ld, yaml_mark_t mark, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Out of memory: recorded like any other error, returns -ENOMEM. */
int loader_nomem(struct loader *ld, const yaml_node_t *node);

yaml_node_t *loader_node(struct loader *ld, int index);
/* "a mapping", "a list", "a scalar" - for "expected X, got Y". */
const char *loader_kind(const yaml_node_t *node);
/* The text of a scalar, or NULL (node is not a scalar). */
const char *loader_text(const yaml_node_t *node);
/* A plain empty scalar, ~ or null: a key written without a value. */
bool loader_is_null(const yaml_node_t *node);
/* Text for "got '...'": truncated to 60 bytes, controls shown as '?'. */
const char *loader_shown(const char *text, char *buf, size_t buflen);

/* [A-Za-z0-9_.-]{1,64}, not starting with '.': names of streams, channels
 * and event fields, the same rule as placeholder values from the network. */
bool loader_name_valid(const char *text);

/*
 * Walk one mapping against a table. path ("output.roll") prefixes messages
 * about values; where ("in output.roll", "in channel 'wind'") completes
 * messages about keys. Fills seen[] (nopts entries, zeroed by the caller)
 * and stores every value into target. Does not apply defaults and does not
 * check OPT_F_REQUIRED: see loader_finish().
 */
int loader_walk(struct loader *ld, yaml_node_t *map, const struct opt *opts, size_t nopts,
		void *target, struct seen *seen, const char *path, const char *where);

/* Check required keys (error at map) and apply table defaults of the
 * options not seen. */
int loader_finish(struct loader *ld, yaml_node_t *map, const struct opt *opts, size_t nopts,
		  void *target, const struct seen *seen, const char *path);

/* Copy option i's value from one target to another (strings duplicated). */
int loader_copy(const struct opt *opt, void *to, const void *from);
/* Free what a table's strings and templates own in target. */
void loader_release(const struct opt *opts, size_t nopts, void *target);

/* Parse a scalar as one option (used for values kept as nodes). */
int loader_value(struct loader *ld, const struct opt *opt, yaml_node_t *node, void *target,
		 const char *path);

/* Strict YAML numbers: [-+]?digits for integers; decimal with optional
 * fraction and exponent for reals. Return 0 or -EINVAL / -ERANGE. */
int loader_parse_int64(const char *text, int64_t *value);
int loader_parse_uint64(const char *text, uint64_t *value);
int loader_parse_real(const char *text, double *value);

/* schema_attrs.c: an `attrs` mapping (MAP may be NULL: none) of the object
 * at OWNER_PATH ("" for the top level, "streams[s].channels.a"). Names
 * the recorder writes on that kind of object, and names of PLACEHOLDERS
 * (a group template, or NULL), are refused. Appends to *out / *nout even
 * on failure, so schema_attrs_free() always releases them. */
enum schema_attrs_owner { SCHEMA_ATTRS_ROOT, SCHEMA_ATTRS_GROUP, SCHEMA_ATTRS_DATASET };
int schema_load_attrs(struct loader *ld, yaml_node_t *map, const char *owner_path,
		      enum schema_attrs_owner owner, const struct schema_template *placeholders,
		      struct schema_attr **out, size_t *nout);
void schema_attrs_free(struct schema_attr *attrs, size_t n);

#endif
