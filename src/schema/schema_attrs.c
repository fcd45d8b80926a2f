/*
 * schema_attrs.c - `attrs` mappings: static attributes the user gives the
 * root group (top level), a stream's groups, a channel's dataset or an
 * event field's dataset (docs/schema.md).
 *
 * Values keep YAML's types: a plain integer is an int64 attribute, a plain
 * real a float64, a list of plain numbers a 1-D int64 or float64 attribute,
 * anything else (quoted text, true, a date) a string with the text as
 * written, so nothing is reinterpreted. Names the recorder writes itself on
 * that object are refused rather than silently overwritten (or silently
 * overwriting: readers rely on `units`, `_FillValue` and the dimension
 * scale attributes being the recorder's).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema_internal.h"
#include "schema_yaml.h"

/* A list attribute holds at most this many numbers (HDF5 keeps small
 * attributes in the object header, which is limited to 64 KiB). */
#define ATTR_LIST_MAX 1024

struct reserved {
	const char *name;
	const char *why;
};

/* On every object: the HDF5 dimension scale machinery. */
static const struct reserved any_reserved[] = {
	{"CLASS", "HDF5 dimension scales"},
	{"NAME", "HDF5 dimension scales"},
	{"REFERENCE_LIST", "HDF5 dimension scales"},
	{"DIMENSION_LIST", "HDF5 dimension scales"},
	{"DIMENSION_LABELS", "HDF5 dimension scales"},
	{NULL, NULL},
};

static const struct reserved root_reserved[] = {
	{"Conventions", "the CF version the files meet"},
	{"h5rec_version", "the recorder's version"},
	{"schema_name", "the schema's name"},
	{"schema", "the schema's source text"},
	{"file_created", "the file's creation time"},
	{"host", "the recording host"},
	{"file_sequence", "the file's {seq}"},
	{"run", "the run name"},
	{"run_start", "the run's start (h5rec run start)"},
	{"run_end", "the run's end (h5rec run stop)"},
	{"run_restarted", "a restart during the run"},
	{NULL, NULL},
};

static const struct reserved group_reserved[] = {
	{"time_monotonic", "whether the group's time axes are strictly increasing"},
	{NULL, NULL},
};

static const struct reserved dataset_reserved[] = {
	{"units", "the option units"},
	{"long_name", "the option long_name"},
	{"scale_factor", "the option scale_factor"},
	{"add_offset", "the option add_offset"},
	{"dt", "the sample interval"},
	{"start_time", "the time of the first data in the file"},
	{"end_time", "the time of the last data in the file"},
	{NULL, NULL},
};

static const char *reserved_why(enum schema_attrs_owner owner, const char *name)
{
	const struct reserved *lists[2] = {any_reserved,
					   owner == SCHEMA_ATTRS_ROOT	 ? root_reserved
					   : owner == SCHEMA_ATTRS_GROUP ? group_reserved
									 : dataset_reserved};
	if (name[0] == '_')
		return "netCDF reserves names starting with '_', such as _FillValue, which the "
		       "recorder writes from the option fill";
	for (size_t l = 0; l < 2; l++)
		for (const struct reserved *r = lists[l]; r->name; r++)
			if (strcmp(r->name, name) == 0)
				return r->why;
	return NULL;
}

const char *schema_root_attr_reserved(const char *name)
{
	return reserved_why(SCHEMA_ATTRS_ROOT, name);
}

void schema_attrs_free(struct schema_attr *attrs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(attrs[i].name);
		free(attrs[i].text);
		free(attrs[i].ints);
		free(attrs[i].floats);
	}
	free(attrs);
}

/* Plain YAML integers and reals become numeric attributes; anything else
 * (quoted, true, a date) keeps its text, so nothing is reinterpreted. */
static void classify_scalar(struct schema_attr *attr, const yaml_node_t *value)
{
	attr->type = SCHEMA_ATTR_STRING;
	if (value->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return;
	if (loader_parse_int64(attr->text, &attr->i) == 0) {
		attr->type = SCHEMA_ATTR_INT;
		attr->f = (double)attr->i;
	} else if (loader_parse_real(attr->text, &attr->f) == 0) {
		attr->type = SCHEMA_ATTR_FLOAT;
	}
}

static int load_list(struct loader *ld, struct schema_attr *attr, yaml_node_t *list,
		     const char *path)
{
	size_t n = (size_t)(list->data.sequence.items.top - list->data.sequence.items.start);
	char shown[80];
	bool reals = false;

	if (n == 0 || n > ATTR_LIST_MAX)
		return loader_fail(ld, list, "%s.%s: expected a list of 1 to %d numbers, got %zu",
				   path, attr->name, ATTR_LIST_MAX, n);
	attr->ints = schema_calloc(n, sizeof(*attr->ints));
	attr->floats = schema_calloc(n, sizeof(*attr->floats));
	if (!attr->ints || !attr->floats)
		return loader_nomem(ld, list);
	attr->count = n;
	for (size_t k = 0; k < n; k++) {
		yaml_node_t *item = loader_node(ld, list->data.sequence.items.start[k]);
		const char *text = loader_text(item);
		bool plain = text && item->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
		if (plain && loader_parse_int64(text, &attr->ints[k]) == 0) {
			attr->floats[k] = (double)attr->ints[k];
			continue;
		}
		if (plain && loader_parse_real(text, &attr->floats[k]) == 0) {
			reals = true;
			continue;
		}
		return loader_fail(ld, item, "%s.%s[%zu]: expected a number (a list attribute "
				   "holds numbers only), got %s%s%s", path, attr->name, k,
				   text ? "'" : "",
				   text ? loader_shown(text, shown, sizeof(shown)) : loader_kind(item),
				   text ? "'" : "");
	}
	attr->type = reals ? SCHEMA_ATTR_FLOATS : SCHEMA_ATTR_INTS;
	return 0;
}

static int check_name(struct loader *ld, yaml_node_t *key, const char *path,
		      enum schema_attrs_owner owner, const struct schema_template *placeholders,
		      const struct schema_attr *attrs, size_t done)
{
	const char *name = loader_text(key), *why;
	char shown[80];

	if (!name || !*name || strchr(name, '/') || strlen(name) > 255)
		return loader_fail(ld, key, "%s: expected an attribute name (1..255 characters, "
				   "no '/'), got %s%s%s", path, name ? "'" : "",
				   name ? loader_shown(name, shown, sizeof(shown)) : loader_kind(key),
				   name ? "'" : "");
	if (placeholders && schema_template_has(placeholders, name))
		return loader_fail(ld, key, "%s: '%s' collides with the group placeholder {%s}, "
				   "which is stored as an attribute of that name", path, name,
				   name);
	why = reserved_why(owner, name);
	if (why)
		return loader_fail(ld, key, "%s: '%s' is written by the recorder itself (%s)",
				   path, loader_shown(name, shown, sizeof(shown)), why);
	for (size_t j = 0; j < done; j++)
		if (strcmp(attrs[j].name, name) == 0)
			return loader_fail(ld, key, "%s: duplicate attribute '%s'", path, name);
	return 0;
}

int schema_load_attrs(struct loader *ld, yaml_node_t *map, const char *owner_path,
		      enum schema_attrs_owner owner, const struct schema_template *placeholders,
		      struct schema_attr **out, size_t *nout)
{
	char path[256];
	size_t n;

	if (!map || (n = (size_t)(map->data.mapping.pairs.top - map->data.mapping.pairs.start)) == 0)
		return 0;
	snprintf(path, sizeof(path), "%s%sattrs", owner_path, *owner_path ? "." : "");
	*out = schema_calloc(n, sizeof(**out));
	if (!*out)
		return loader_nomem(ld, map);
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *key = loader_node(ld, map->data.mapping.pairs.start[i].key);
		yaml_node_t *value = loader_node(ld, map->data.mapping.pairs.start[i].value);
		struct schema_attr *attr = &(*out)[i];
		const char *text = loader_text(value);
		int err = check_name(ld, key, path, owner, placeholders, *out, i);
		if (err)
			return err;
		if (value->type == YAML_MAPPING_NODE || (text && loader_is_null(value)))
			return loader_fail(ld, value, "%s.%s: expected a single value or a list of "
					   "numbers, got %s", path, loader_text(key),
					   text ? "nothing" : loader_kind(value));
		attr->name = schema_strdup(loader_text(key));
		(*nout)++;
		if (!attr->name)
			return loader_nomem(ld, key);
		if (value->type == YAML_SEQUENCE_NODE) {
			err = load_list(ld, attr, value, path);
			if (err)
				return err;
			continue;
		}
		attr->text = schema_strdup(text);
		if (!attr->text)
			return loader_nomem(ld, value);
		classify_scalar(attr, value);
	}
	return 0;
}
