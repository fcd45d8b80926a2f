/*
 * run.c - runs: parsing the request, typing the attributes for the
 * engine, and the state file that carries a run across a restart (see
 * run.h).
 *
 * The state file is a few text lines, written whole and renamed into
 * place, so that a crash leaves the old one or the new one:
 *
 *   run November_Run3
 *   start 1764806400000000000
 *   attr beam_energy=6.5
 */
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool key_valid(const char *key, size_t len)
{
	if (len == 0 || len > RUN_MAX_KEY || !((key[0] >= 'A' && key[0] <= 'Z') ||
					       (key[0] >= 'a' && key[0] <= 'z') || key[0] == '_'))
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = key[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_'))
			return false;
	}
	return true;
}

int run_parse(const char *text, struct run_state *out, char *why, size_t len)
{
	memset(out, 0, sizeof(*out));
	size_t n = strcspn(text, "\t");
	if (!schema_placeholder_value_valid(text, n)) {
		snprintf(why, len, "a run name is 1-64 of [A-Za-z0-9_.-]");
		return -EINVAL;
	}
	memcpy(out->name, text, n);
	for (const char *p = text + n; *p == '\t';) {
		p++;
		size_t field = strcspn(p, "\t");
		const char *eq = memchr(p, '=', field);
		size_t klen = eq ? (size_t)(eq - p) : field;
		if (!eq || !key_valid(p, klen)) {
			snprintf(why, len, "'%.*s': expected KEY=VALUE, KEY a letter or '_' then "
				 "letters, digits and '_' (at most %d)", (int)(field > 80 ? 80 : field),
				 p, RUN_MAX_KEY);
			return -EINVAL;
		}
		size_t vlen = field - klen - 1;
		if (vlen == 0 || vlen > RUN_MAX_VALUE) {
			snprintf(why, len, "%.*s: a value is 1 to %d bytes", (int)klen, p,
				 RUN_MAX_VALUE);
			return -EINVAL;
		}
		for (size_t i = 0; i < vlen; i++)
			if ((unsigned char)eq[1 + i] < 0x20 || eq[1 + i] == 0x7f) {
				snprintf(why, len, "%.*s: control characters in the value", (int)klen, p);
				return -EINVAL;
			}
		char key[RUN_MAX_KEY + 1];
		memcpy(key, p, klen);
		key[klen] = '\0';
		const char *owned = schema_root_attr_reserved(key);
		if (owned) {
			snprintf(why, len, "%s: the recorder writes that attribute itself (%s)", key,
				 owned);
			return -EINVAL;
		}
		for (size_t i = 0; i < out->nattrs; i++)
			if (strlen(out->keys[i]) == klen && memcmp(out->keys[i], p, klen) == 0) {
				snprintf(why, len, "%s given twice", out->keys[i]);
				return -EINVAL;
			}
		if (out->nattrs == RUN_MAX_ATTRS) {
			snprintf(why, len, "at most %d attributes", RUN_MAX_ATTRS);
			return -EINVAL;
		}
		memcpy(out->keys[out->nattrs], p, klen);
		memcpy(out->values[out->nattrs], eq + 1, vlen);
		out->nattrs++;
		p += field;
	}
	return 0;
}

void run_to_engine(const struct run_state *state, int64_t restarted, struct h5w_attr *attrs,
		   struct h5w_run *out)
{
	for (size_t i = 0; i < state->nattrs; i++) {
		const char *v = state->values[i];
		char *end;
		struct h5w_attr *a = &attrs[i];
		*a = (struct h5w_attr){.name = state->keys[i], .type = H5W_ATTR_STRING, .s = v};
		errno = 0;
		long long iv = strtoll(v, &end, 10);
		if (!*end && end != v && !errno) {
			a->type = H5W_ATTR_INT;
			a->i = iv;
			a->s = NULL;
			continue;
		}
		double fv = strtod(v, &end);
		if (!*end && end != v && isfinite(fv)) {
			a->type = H5W_ATTR_FLOAT;
			a->f = fv;
			a->s = NULL;
		}
	}
	*out = (struct h5w_run){.name = state->name, .start = state->start,
				.restarted = restarted, .attrs = attrs, .nattrs = state->nattrs};
}

int run_state_path(const struct schema *schema, char *out, size_t len)
{
	int n = snprintf(out, len, "%s/.%s.run", schema->output.directory, schema->name);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int run_state_load(const struct schema *schema, struct run_state *state)
{
	char path[4096], line[512];
	int rc = run_state_path(schema, path, sizeof(path));
	if (rc)
		return rc;
	FILE *f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? 0 : -errno;
	memset(state, 0, sizeof(*state));
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (strncmp(line, "run ", 4) == 0 &&
		    schema_placeholder_value_valid(line + 4, strlen(line + 4))) {
			snprintf(state->name, sizeof(state->name), "%s", line + 4);
		} else if (strncmp(line, "start ", 6) == 0) {
			state->start = strtoll(line + 6, NULL, 10);
		} else if (strncmp(line, "attr ", 5) == 0 && state->nattrs < RUN_MAX_ATTRS) {
			char *eq = strchr(line + 5, '=');
			if (!eq || (size_t)(eq - line - 5) > RUN_MAX_KEY || strlen(eq + 1) > RUN_MAX_VALUE)
				continue;
			memcpy(state->keys[state->nattrs], line + 5, (size_t)(eq - line - 5));
			snprintf(state->values[state->nattrs], sizeof(state->values[0]), "%s", eq + 1);
			state->nattrs++;
		}
	}
	fclose(f);
	return state->name[0] ? 1 : -EINVAL;
}

/* The output directory and its parents, as the engine makes them when
 * its first file is created (a run may start before any data). */
static int make_dirs(const char *dir)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s", dir);
	for (char *p = path + 1; ; p++) {
		if (*p != '/' && *p)
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(path, 0755) && errno != EEXIST)
			return -errno;
		if (!c)
			return 0;
		*p = c;
	}
}

static int fsync_dir(const char *path)
{
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	int fd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = fsync(fd) ? -errno : 0;
	close(fd);
	return rc;
}

int run_state_save(const struct schema *schema, const struct run_state *state)
{
	char path[4096], tmp[4200];
	int rc = run_state_path(schema, path, sizeof(path));
	if (rc)
		return rc;
	if (!state) {
		if (unlink(path) && errno != ENOENT)
			return -errno;
		return fsync_dir(path);
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	rc = make_dirs(schema->output.directory);
	if (rc)
		return rc;
	FILE *f = fopen(tmp, "we");
	if (!f)
		return -errno;
	fprintf(f, "run %s\nstart %lld\n", state->name, (long long)state->start);
	for (size_t i = 0; i < state->nattrs; i++)
		fprintf(f, "attr %s=%s\n", state->keys[i], state->values[i]);
	rc = fflush(f) || fsync(fileno(f)) ? -errno : 0;
	if (fclose(f) && !rc)
		rc = -errno;
	if (!rc && rename(tmp, path))
		rc = -errno;
	if (rc) {
		unlink(tmp);
		return rc;
	}
	return fsync_dir(path);
}
