/*
 * schema_template.c - templates with {placeholder}s: file names, group paths
 * and frame keys.
 *
 * A template is split once, at load time, into literal and placeholder parts,
 * so expanding it on the data path is a walk over the parts with no parsing
 * and no allocation. Values coming from the network are checked with
 * schema_placeholder_value_valid() before they are ever expanded: that check
 * is what keeps a hostile key from naming "../etc" or a group outside the
 * stream.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema_internal.h"

static int is_name_start(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static int is_name_char(char c)
{
	return is_name_start(c) || (c >= '0' && c <= '9');
}

int schema_placeholder_name_valid(const char *name)
{
	if (!is_name_start(name[0]))
		return 0;
	for (const char *p = name + 1; *p; p++)
		if (!is_name_char(*p))
			return 0;
	return 1;
}

bool schema_placeholder_value_valid(const char *value, size_t len)
{
	if (len < 1 || len > 64 || value[0] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = value[i];
		if (!(is_name_char(c) || c == '.' || c == '-'))
			return false;
	}
	return true;
}

void schema_template_free(struct schema_template *tmpl)
{
	for (size_t i = 0; i < tmpl->nparts; i++)
		free(tmpl->parts[i].text);
	free(tmpl->parts);
	free(tmpl->text);
	memset(tmpl, 0, sizeof(*tmpl));
}

static int add_part(struct schema_template *tmpl, bool placeholder, const char *text, size_t len)
{
	struct schema_template_part *part = &tmpl->parts[tmpl->nparts];
	part->text = schema_strndup(text, len);
	if (!part->text)
		return -ENOMEM;
	part->placeholder = placeholder;
	tmpl->nparts++;
	return 0;
}

/* Parts alternate at most, so strlen/2 + 1 parts is an upper bound (and
 * never 0, so the allocation always returns a pointer we own). */
int schema_template_parse(const char *text, struct schema_template *tmpl, char *why, size_t whylen)
{
	size_t len = strlen(text);
	int err;

	memset(tmpl, 0, sizeof(*tmpl));
	tmpl->text = schema_strdup(text);
	tmpl->parts = schema_calloc(len / 2 + 2, sizeof(*tmpl->parts));
	if (!tmpl->text || !tmpl->parts) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < len;) {
		if (text[i] == '}') {
			snprintf(why, whylen, "'}' at offset %zu without '{'", i);
			err = -EINVAL;
			goto out;
		}
		if (text[i] != '{') {
			size_t end = i;
			while (end < len && text[end] != '{' && text[end] != '}')
				end++;
			err = add_part(tmpl, false, text + i, end - i);
			if (err)
				goto out;
			i = end;
			continue;
		}
		const char *close = strchr(text + i + 1, '}');
		const char *open = strchr(text + i + 1, '{');
		if (!close || (open && open < close)) {
			snprintf(why, whylen, "'{' at offset %zu is not closed by '}'", i);
			err = -EINVAL;
			goto out;
		}
		size_t nlen = (size_t)(close - (text + i + 1));
		char name[128];
		if (nlen == 0 || nlen >= sizeof(name)) {
			snprintf(why, whylen, "placeholder at offset %zu has %s name", i,
				 nlen ? "too long a" : "an empty");
			err = -EINVAL;
			goto out;
		}
		memcpy(name, text + i + 1, nlen);
		name[nlen] = '\0';
		if (!schema_placeholder_name_valid(name)) {
			snprintf(why, whylen,
				 "placeholder '{%s}' is not a valid name ([A-Za-z_][A-Za-z0-9_]*)",
				 name);
			err = -EINVAL;
			goto out;
		}
		err = add_part(tmpl, true, name, nlen);
		if (err)
			goto out;
		i += nlen + 2;
	}
	return 0;
out:
	if (err == -ENOMEM)
		snprintf(why, whylen, "out of memory");
	schema_template_free(tmpl);
	return err;
}

bool schema_template_has(const struct schema_template *tmpl, const char *name)
{
	for (size_t i = 0; i < tmpl->nparts; i++)
		if (tmpl->parts[i].placeholder && strcmp(tmpl->parts[i].text, name) == 0)
			return true;
	return false;
}

static const char *lookup(const char *name, const char *const *names,
			  const char *const *values, size_t nvalues)
{
	for (size_t i = 0; i < nvalues; i++)
		if (strcmp(names[i], name) == 0)
			return values[i];
	return NULL;
}

long schema_template_expand(const struct schema_template *tmpl, const char *const *names,
			    const char *const *values, size_t nvalues, char *out, size_t outlen)
{
	size_t used = 0;

	if (outlen == 0)
		return -ENOSPC;
	for (size_t i = 0; i < tmpl->nparts; i++) {
		const char *text = tmpl->parts[i].text;
		if (tmpl->parts[i].placeholder) {
			text = lookup(text, names, values, nvalues);
			if (!text)
				return -ENOENT;
		}
		size_t n = strlen(text);
		if (n >= outlen - used)
			return -ENOSPC;
		memcpy(out + used, text, n);
		used += n;
	}
	out[used] = '\0';
	return (long)used;
}
