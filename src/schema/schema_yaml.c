/*
 * schema_yaml.c - table-driven walk over libyaml's document tree.
 *
 * libyaml parses (yaml_parser_load builds the node tree with a start mark on
 * every node); this file only interprets it. All positions in messages come
 * from those marks, which are 0-based and reported 1-based. Every value
 * error names the key path and what was expected, and quotes what was
 * found, so a user can fix the schema from the message alone.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema_internal.h"
#include "schema_yaml.h"

static int vfail(struct loader *ld, yaml_mark_t mark, const char *fmt, va_list ap)
{
	if (ld->failed)
		return -EINVAL;
	ld->failed = true;
	int n = snprintf(ld->err->message, sizeof(ld->err->message), "%s:%zu:%zu: ", ld->file,
			 mark.line + 1, mark.column + 1);
	if (n > 0 && (size_t)n < sizeof(ld->err->message))
		vsnprintf(ld->err->message + n, sizeof(ld->err->message) - (size_t)n, fmt, ap);
	return -EINVAL;
}

int loader_fail_mark(struct loader *ld, yaml_mark_t mark, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int err = vfail(ld, mark, fmt, ap);
	va_end(ap);
	return err;
}

int loader_fail(struct loader *ld, const yaml_node_t *node, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int err = vfail(ld, node->start_mark, fmt, ap);
	va_end(ap);
	return err;
}

int loader_nomem(struct loader *ld, const yaml_node_t *node)
{
	loader_fail(ld, node, "out of memory");
	return -ENOMEM;
}

yaml_node_t *loader_node(struct loader *ld, int index)
{
	return yaml_document_get_node(&ld->doc, index);
}

const char *loader_kind(const yaml_node_t *node)
{
	switch (node->type) {
	case YAML_MAPPING_NODE:
		return "a mapping";
	case YAML_SEQUENCE_NODE:
		return "a list";
	default:
		return "a scalar";
	}
}

const char *loader_text(const yaml_node_t *node)
{
	if (node->type != YAML_SCALAR_NODE)
		return NULL;
	return (const char *)node->data.scalar.value;
}

bool loader_is_null(const yaml_node_t *node)
{
	static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
	const char *text = loader_text(node);

	if (!text || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
		if (strcmp(text, nulls[i]) == 0)
			return true;
	return false;
}

const char *loader_shown(const char *text, char *buf, size_t buflen)
{
	size_t n = 0, max = buflen > 64 ? 60 : buflen - 4;

	for (const char *p = text; *p && n < max; p++)
		buf[n++] = (unsigned char)*p < 0x20 ? '?' : *p;
	if (text[n] && strlen(text) > n) {
		memcpy(buf + n, "...", 3);
		n += 3;
	}
	buf[n] = '\0';
	return buf;
}

bool loader_name_valid(const char *text)
{
	return schema_placeholder_value_valid(text, strlen(text));
}

/* Optimal string alignment distance: a transposition counts as one edit,
 * which is the commonest typo in key names ("sampels"). */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t d[33][33];

	if (la > 32 || lb > 32)
		return SIZE_MAX;
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
			size_t best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (d[i - 1][j - 1] + cost < best)
				best = d[i - 1][j - 1] + cost;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	}
	return d[la][lb];
}

/* Keep the closer of *best and CANDIDATE to WORD, if close enough to be a
 * likely typo: same letters in another case, or one edit (two for words of
 * five letters or more). */
static void closest(const char *word, const char *candidate, const char **best,
		    size_t *best_distance)
{
	size_t limit = strlen(word) >= 5 ? 2 : 1;
	size_t d = strcasecmp(word, candidate) == 0 ? 0 : edit_distance(word, candidate);

	if (d <= limit && d < *best_distance) {
		*best = candidate;
		*best_distance = d;
	}
}

static const char *suggest(const char *key, const struct opt *opts, size_t nopts)
{
	const char *best = NULL;
	size_t distance = SIZE_MAX;

	for (size_t i = 0; i < nopts; i++)
		closest(key, opts[i].name, &best, &distance);
	return best;
}

static int all_digits(const char *p)
{
	if (!*p)
		return 0;
	for (; *p; p++)
		if (*p < '0' || *p > '9')
			return 0;
	return 1;
}

int loader_parse_uint64(const char *text, uint64_t *value)
{
	const char *p = text[0] == '+' ? text + 1 : text;
	uint64_t v = 0;

	if (!all_digits(p))
		return -EINVAL;
	for (; *p; p++) {
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*value = v;
	return 0;
}

int loader_parse_int64(const char *text, int64_t *value)
{
	bool negative = text[0] == '-';
	uint64_t magnitude;
	int err = loader_parse_uint64(negative ? text + 1 : text, &magnitude);

	if (err)
		return err;
	if (negative && text[1] == '+')
		return -EINVAL;
	if (negative) {
		if (magnitude > (uint64_t)INT64_MAX + 1)
			return -ERANGE;
		*value = magnitude == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)magnitude;
	} else {
		if (magnitude > (uint64_t)INT64_MAX)
			return -ERANGE;
		*value = (int64_t)magnitude;
	}
	return 0;
}

/* [-+]?(digits(.digits*)?|.digits)([eE][-+]?digits)? - the YAML core
 * schema's float, minus .inf/.nan, which no option here accepts. */
int loader_parse_real(const char *text, double *value)
{
	const char *p = text;
	int ndigits = 0;

	if (*p == '-' || *p == '+')
		p++;
	while (*p >= '0' && *p <= '9') {
		p++;
		ndigits++;
	}
	if (*p == '.') {
		p++;
		while (*p >= '0' && *p <= '9') {
			p++;
			ndigits++;
		}
	}
	if (ndigits == 0)
		return -EINVAL;
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '-' || *p == '+')
			p++;
		if (!all_digits(p))
			return -EINVAL;
	} else if (*p) {
		return -EINVAL;
	}
	errno = 0;
	double v = strtod(text, NULL);
	if (!isfinite(v))
		return -ERANGE;
	*value = v;
	return 0;
}

static const char *expected(const struct opt *opt, char *buf, size_t buflen)
{
	char lo[32], hi[32];

	switch (opt->type) {
	case OPT_STRING:
		return "a non-empty string";
	case OPT_NAME:
		return "a name of letters, digits, '_', '.' and '-' (at most 64, not starting "
		       "with '.')";
	case OPT_BOOL:
		return "true or false";
	case OPT_UINT:
	case OPT_INT:
		snprintf(buf, buflen, "an integer from %llu to %llu", (unsigned long long)opt->min,
			 (unsigned long long)opt->max);
		return buf;
	case OPT_REAL:
		if (opt->flags & OPT_F_POSITIVE)
			return "a positive number";
		if (opt->flags & OPT_F_NONZERO)
			return "a non-zero number";
		return "a number";
	case OPT_SIZE:
	case OPT_SIZE32:
		schema_format_size(opt->min, lo, sizeof(lo));
		schema_format_size(opt->max, hi, sizeof(hi));
		snprintf(buf, buflen, "a size from %s to %s", lo, hi);
		return buf;
	case OPT_DURATION:
		schema_format_duration((int64_t)opt->min, lo, sizeof(lo));
		schema_format_duration((int64_t)opt->max, hi, sizeof(hi));
		snprintf(buf, buflen, "a duration from %s to %s", lo, hi);
		return buf;
	case OPT_ENUM: {
		size_t n = 0;
		n += (size_t)snprintf(buf, buflen, "one of");
		for (const struct enum_name *e = opt->enums; e->name && n < buflen; e++)
			n += (size_t)snprintf(buf + n, buflen - n, "%s %s", e == opt->enums ? "" : ",",
					      e->name);
		return buf;
	}
	case OPT_DTYPE:
		return "a dtype (int8, int16, int32, int64, uint8, uint16, uint32, uint64, "
		       "float32, float64, string)";
	case OPT_TEMPLATE:
		return "a template string";
	case OPT_NODE:
		return opt->kind == YAML_MAPPING_NODE ? "a mapping" : "a list";
	}
	return "a value";
}

/* For a misspelt enum or dtype name, the value that was probably meant. */
static const char *value_suggestion(const struct opt *opt, const char *text)
{
	const char *best = NULL;
	size_t distance = SIZE_MAX;

	if (opt->type == OPT_ENUM) {
		for (const struct enum_name *e = opt->enums; e->name; e++)
			closest(text, e->name, &best, &distance);
	} else if (opt->type == OPT_DTYPE) {
		for (int i = DTYPE_INT8; i <= DTYPE_STRING; i++)
			closest(text, dtype_name((enum dtype)i), &best, &distance);
	}
	return best;
}

/* The first complaint about a value: "PATH.KEY: expected X, got 'V'". */
static int bad_value(struct loader *ld, const struct opt *opt, const yaml_node_t *node,
		     const char *path, const char *what)
{
	char buf[256], shown[80];
	const char *text = loader_text(node);

	if (!what)
		what = expected(opt, buf, sizeof(buf));
	if (!text || loader_is_null(node))
		return loader_fail(ld, node, "%s%s%s: expected %s, got %s", path, *path ? "." : "",
				   opt->name, what, text ? "nothing" : loader_kind(node));
	const char *hint = value_suggestion(opt, text);
	return loader_fail(ld, node, "%s%s%s: expected %s, got '%s'%s%s%s", path,
			   *path ? "." : "", opt->name, what,
			   loader_shown(text, shown, sizeof(shown)), hint ? " (did you mean '" : "",
			   hint ? hint : "", hint ? "'?)" : "");
}

static void *field(void *target, const struct opt *opt)
{
	return (char *)target + opt->offset;
}

/* Store text as opt into target. node is NULL for built-in defaults, which
 * are known to be valid. */
static int store(struct loader *ld, const struct opt *opt, const char *text, yaml_node_t *node,
		 void *target, const char *path)
{
	void *dst = field(target, opt);
	uint64_t u;
	int64_t i;
	double d;
	int err = 0;

	switch (opt->type) {
	case OPT_STRING:
	case OPT_NAME:
		if (!*text || (opt->type == OPT_NAME && !loader_name_valid(text)))
			return bad_value(ld, opt, node, path, NULL);
		free(*(char **)dst);
		*(char **)dst = schema_strdup(text);
		return *(char **)dst ? 0 : loader_nomem(ld, node);
	case OPT_BOOL:
		if (!strcmp(text, "true") || !strcmp(text, "True") || !strcmp(text, "TRUE"))
			*(bool *)dst = true;
		else if (!strcmp(text, "false") || !strcmp(text, "False") || !strcmp(text, "FALSE"))
			*(bool *)dst = false;
		else
			return bad_value(ld, opt, node, path, NULL);
		return 0;
	case OPT_UINT:
	case OPT_INT:
		if (loader_parse_uint64(text, &u) || u < opt->min || u > opt->max)
			return bad_value(ld, opt, node, path, NULL);
		if (opt->type == OPT_INT)
			*(int *)dst = (int)u;
		else
			*(uint64_t *)dst = u;
		return 0;
	case OPT_REAL:
		if (loader_parse_real(text, &d) || ((opt->flags & OPT_F_POSITIVE) && !(d > 0)) ||
		    ((opt->flags & OPT_F_NONZERO) && d == 0))
			return bad_value(ld, opt, node, path, NULL);
		*(double *)dst = d;
		return 0;
	case OPT_SIZE:
	case OPT_SIZE32:
		err = schema_parse_size(text, &u);
		if (err == -EINVAL)
			return bad_value(ld, opt, node, path,
					 "a size like 64KiB, 512MiB, 4GiB (units B, KiB, MiB, GiB, "
					 "TiB, KB, MB, GB, TB)");
		if (err || u < opt->min || u > opt->max)
			return bad_value(ld, opt, node, path, NULL);
		if (opt->type == OPT_SIZE32)
			*(uint32_t *)dst = (uint32_t)u;
		else
			*(uint64_t *)dst = u;
		return 0;
	case OPT_DURATION:
		err = schema_parse_duration(text, &i);
		if (err == -EINVAL)
			return bad_value(ld, opt, node, path,
					 "a duration like 250ms, 10s, 1h, 1d");
		if (err || (uint64_t)i < opt->min || (uint64_t)i > opt->max)
			return bad_value(ld, opt, node, path, NULL);
		*(int64_t *)dst = i;
		return 0;
	case OPT_ENUM:
		for (const struct enum_name *e = opt->enums; e->name; e++) {
			if (strcmp(e->name, text) == 0) {
				*(int *)dst = e->value;
				return 0;
			}
		}
		return bad_value(ld, opt, node, path, NULL);
	case OPT_DTYPE:
		if (dtype_from_name(text, (enum dtype *)dst))
			return bad_value(ld, opt, node, path, NULL);
		return 0;
	case OPT_TEMPLATE: {
		char why[200];
		struct schema_template *tmpl = dst;
		if (!*text)
			return bad_value(ld, opt, node, path, "a non-empty template");
		schema_template_free(tmpl);
		err = schema_template_parse(text, tmpl, why, sizeof(why));
		if (err == -ENOMEM)
			return loader_nomem(ld, node);
		if (err)
			return loader_fail(ld, node, "%s%s%s: %s", path, *path ? "." : "", opt->name,
					   why);
		return 0;
	}
	case OPT_NODE:
		break;
	}
	return 0;
}

int loader_value(struct loader *ld, const struct opt *opt, yaml_node_t *node, void *target,
		 const char *path)
{
	if (opt->type == OPT_NODE) {
		if (node->type != opt->kind)
			return bad_value(ld, opt, node, path, NULL);
		return 0;
	}
	if (node->type != YAML_SCALAR_NODE)
		return bad_value(ld, opt, node, path, NULL);
	if (loader_is_null(node))
		return bad_value(ld, opt, node, path, NULL);
	const char *text = loader_text(node);
	if (strlen(text) != node->data.scalar.length)
		return loader_fail(ld, node, "%s%s%s: contains a NUL character", path,
				   *path ? "." : "", opt->name);
	return store(ld, opt, text, node, target, path);
}

static const struct opt *find_opt(const struct opt *opts, size_t nopts, const char *name,
				  size_t *index)
{
	for (size_t i = 0; i < nopts; i++) {
		if (strcmp(opts[i].name, name) == 0) {
			*index = i;
			return &opts[i];
		}
	}
	return NULL;
}

int loader_walk(struct loader *ld, yaml_node_t *map, const struct opt *opts, size_t nopts,
		void *target, struct seen *seen, const char *path, const char *where)
{
	for (yaml_node_pair_t *pair = map->data.mapping.pairs.start;
	     pair < map->data.mapping.pairs.top; pair++) {
		yaml_node_t *key = loader_node(ld, pair->key);
		yaml_node_t *value = loader_node(ld, pair->value);
		const char *name = loader_text(key);
		char shown[80];
		size_t i;

		if (!name)
			return loader_fail(ld, key, "keys %s must be plain names, got %s", where,
					   loader_kind(key));
		const struct opt *opt = find_opt(opts, nopts, name, &i);
		if (!opt) {
			const char *hint = suggest(name, opts, nopts);
			if (hint)
				return loader_fail(ld, key, "unknown key '%s' %s (did you mean '%s'?)",
						   loader_shown(name, shown, sizeof(shown)), where,
						   hint);
			return loader_fail(ld, key, "unknown key '%s' %s",
					   loader_shown(name, shown, sizeof(shown)), where);
		}
		if (seen[i].key)
			return loader_fail(ld, key, "duplicate key '%s' %s (first given on line %zu)",
					   name, where, seen[i].key->start_mark.line + 1);
		seen[i].key = key;
		seen[i].value = value;
		int err = loader_value(ld, opt, value, target, path);
		if (err)
			return err;
	}
	return 0;
}

int loader_finish(struct loader *ld, yaml_node_t *map, const struct opt *opts, size_t nopts,
		  void *target, const struct seen *seen, const char *path)
{
	for (size_t i = 0; i < nopts; i++) {
		if (seen[i].key)
			continue;
		if (opts[i].flags & OPT_F_REQUIRED)
			return loader_fail(ld, map, "%s%smissing required key '%s'%s", path,
					   *path ? ": " : "", opts[i].name,
					   *path ? "" : " at the top level");
		if (opts[i].def) {
			int err = store(ld, &opts[i], opts[i].def, map, target, path);
			if (err)
				return err;
		}
	}
	return 0;
}

static size_t opt_size(enum opt_type type)
{
	switch (type) {
	case OPT_BOOL:
		return sizeof(bool);
	case OPT_UINT:
	case OPT_SIZE:
		return sizeof(uint64_t);
	case OPT_INT:
	case OPT_ENUM:
	case OPT_DTYPE:
		return sizeof(int);
	case OPT_REAL:
		return sizeof(double);
	case OPT_SIZE32:
		return sizeof(uint32_t);
	case OPT_DURATION:
		return sizeof(int64_t);
	default:
		return 0;
	}
}

int loader_copy(const struct opt *opt, void *to, const void *from)
{
	const void *src = (const char *)from + opt->offset;
	void *dst = field(to, opt);

	if (opt->type == OPT_STRING || opt->type == OPT_NAME) {
		const char *text = *(char *const *)src;
		free(*(char **)dst);
		*(char **)dst = text ? schema_strdup(text) : NULL;
		return !text || *(char **)dst ? 0 : -ENOMEM;
	}
	memcpy(dst, src, opt_size(opt->type));
	return 0;
}

void loader_release(const struct opt *opts, size_t nopts, void *target)
{
	for (size_t i = 0; i < nopts; i++) {
		void *dst = field(target, &opts[i]);
		if (opts[i].type == OPT_STRING || opts[i].type == OPT_NAME) {
			free(*(char **)dst);
			*(char **)dst = NULL;
		} else if (opts[i].type == OPT_TEMPLATE) {
			schema_template_free(dst);
		}
	}
}
