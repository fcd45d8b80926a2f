/*
 * run.h - runs (`h5rec run start NAME`, `h5rec run stop`): what a run is
 * made of, as the control socket takes it, as the engine records it, and
 * as the recorder keeps it on disk so that a restart during a run goes on
 * with it (a small state file beside the data files).
 */
#ifndef H5REC_RUN_H
#define H5REC_RUN_H

#include <stddef.h>
#include <stdint.h>

#include "h5w.h"
#include "schema.h"

#define RUN_MAX_ATTRS 16
#define RUN_MAX_KEY 64
#define RUN_MAX_VALUE 256

struct run_state {
	char name[72];
	int64_t start; /* ns since 1970 */
	size_t nattrs;
	char keys[RUN_MAX_ATTRS][RUN_MAX_KEY + 1];
	char values[RUN_MAX_ATTRS][RUN_MAX_VALUE + 1];
};

/*
 * Parse "NAME[\tKEY=VALUE]..." (the control request after "run start ").
 * NAME: 1-64 of [A-Za-z0-9_.-] (it goes into file names); KEY: a letter or
 * '_', then letters, digits, '_', at most 64, none of the root attributes
 * the recorder writes itself; VALUE: 1-256 bytes, no control characters.
 * Returns 0, or -EINVAL with WHY filled.
 */
int run_parse(const char *text, struct run_state *out, char *why, size_t len);

/* The engine's view of STATE: ATTRS (RUN_MAX_ATTRS) are filled, a value
 * that is a whole integer becomes one, a finite number a float, anything
 * else text. Points into STATE. */
void run_to_engine(const struct run_state *state, int64_t restarted, struct h5w_attr *attrs,
		   struct h5w_run *out);

/* The state file of SCHEMA's recorder: "<output.directory>/.<name>.run". */
int run_state_path(const struct schema *schema, char *out, size_t len);
/* 1 and STATE filled when a run was going on, 0 when none, -errno. */
int run_state_load(const struct schema *schema, struct run_state *state);
/* Write STATE durably (a temporary file, fsync, rename, fsync of the
 * directory); NULL removes the file (durably too). 0 or -errno. */
int run_state_save(const struct schema *schema, const struct run_state *state);

#endif
