/*
 * h5w_space.c - keeping output.min_free bytes free.
 *
 * HDF5 does not survive write errors well: a chunk or metadata write that
 * fails with ENOSPC can leave its metadata cache in a state from which the
 * file can no longer be flushed or closed ("H5C_protect: Target already
 * protected"), and the file keeps its write flag for good. So the engine
 * does not let HDF5 run into a full disk: before a chunk is written it
 * checks that the file system keeps output.min_free bytes free afterwards,
 * and before HDF5 writes metadata (flush, close, a new file) that at least
 * half of min_free is free. When that does not hold the write is not
 * attempted; the chunk stays in memory exactly as after a failed write (see
 * h5w_chunk.c), and the caller gets -ENOSPC. The reserve is what lets the
 * file be flushed and closed cleanly on a disk that is "full". The frame
 * index of a stream channel counts as metadata: a few bytes a frame,
 * without which the samples that are stored are of little use.
 *
 * The same holds for a file-size limit (RLIMIT_FSIZE, e.g. systemd's
 * LimitFSIZE=): sec2 files are kept min_free below it, and the error is
 * -EFBIG. Family members are not checked against the limit.
 *
 * A check costs a statvfs() only now and then: a successful one grants a
 * budget of up to H5W_SPACE_RECHECK bytes of chunk writes (h5w_space_used()
 * takes what was written off it), after which (or at the next flush) the
 * file system is asked again. Another process that
 * fills the disk within that budget is not seen in time; then HDF5 does
 * meet ENOSPC, and the failed write is handled as before.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/statvfs.h>

#include "h5w_internal.h"

#define H5W_SPACE_RECHECK (16u << 20)

static void format_mib(uint64_t bytes, char *out, size_t len)
{
	snprintf(out, len, "%.1f MiB", (double)bytes / (1 << 20));
}

/* Bytes the current file may still grow by: free space on its file system,
 * or the room left under RLIMIT_FSIZE if that is less. Fills w->space_why
 * with the figures and returns -ENOSPC or -EFBIG for the case that binds. */
static int measure(struct h5w *w, uint64_t *room)
{
	const char *dir = w->schema->output.directory ? w->schema->output.directory : ".";
	struct statvfs vfs;
	char a[32], b[32];
	int kind = -ENOSPC;

	if (statvfs(dir, &vfs)) {
		/* cannot tell: let the write itself find out */
		*room = UINT64_MAX;
		return kind;
	}
	*room = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	format_mib(*room, a, sizeof(a));
	snprintf(w->space_why, sizeof(w->space_why), "%s free in %s", a, dir);

	struct rlimit lim;
	hsize_t size = 0;
	if (w->schema->output.driver == SCHEMA_DRIVER_SEC2 && w->file != H5I_INVALID_HID &&
	    !getrlimit(RLIMIT_FSIZE, &lim) && lim.rlim_cur != RLIM_INFINITY &&
	    H5Fget_filesize(w->file, &size) >= 0) {
		uint64_t left = lim.rlim_cur > size ? lim.rlim_cur - size : 0;
		if (left < *room) {
			*room = left;
			kind = -EFBIG;
			format_mib(left, a, sizeof(a));
			format_mib(lim.rlim_cur, b, sizeof(b));
			snprintf(w->space_why, sizeof(w->space_why),
				 "%s left under the file-size limit of %s", a, b);
		}
	}
	return kind;
}

/*
 * May the current file grow by BYTES of chunk data (RAW) or by HDF5's
 * metadata or a frame index (!RAW)? 0 if so; else -ENOSPC or -EFBIG, the write is
 * not to be attempted, and w->space_why says why. Does not report the error:
 * the caller knows what was being written.
 */
int h5w_space_check(struct h5w *w, uint64_t bytes, bool raw)
{
	uint64_t min_free = w->schema->output.min_free;
	if (!min_free)
		return 0;
	if (raw && w->space_budget >= bytes)
		return 0;
	uint64_t room;
	int kind = measure(w, &room);
	uint64_t reserve = raw ? min_free : min_free / 2;
	if (room >= reserve && room - reserve >= bytes) {
		uint64_t spare = room - min_free;
		if (!raw)
			spare = 0; /* metadata checks grant no chunk budget */
		w->space_budget = spare < H5W_SPACE_RECHECK ? spare : H5W_SPACE_RECHECK;
		return 0;
	}
	w->space_budget = 0;
	w->stats.full = true;
	char a[32];
	format_mib(reserve, a, sizeof(a));
	size_t len = strlen(w->space_why);
	snprintf(w->space_why + len, sizeof(w->space_why) - len, ", %s kept free (output.min_free%s)",
		 a, raw ? "" : " / 2, for metadata");
	return kind;
}

/* BYTES of chunk data were written: they come off the budget. */
void h5w_space_used(struct h5w *w, uint64_t bytes)
{
	w->space_budget = w->space_budget > bytes ? w->space_budget - bytes : 0;
}

/* Forget the budget: the next chunk write asks the file system again. */
void h5w_space_recheck(struct h5w *w)
{
	w->space_budget = 0;
}
