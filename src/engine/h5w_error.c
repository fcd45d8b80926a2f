/*
 * h5w_error.c - the engine's error messages.
 *
 * HDF5's automatic error printing is switched off by h5w_open(); instead,
 * when an HDF5 call fails, the engine walks the error stack and appends the
 * innermost messages (where the problem was found, e.g. "No space left on
 * device") to the caller's one-line message, then clears the stack. Every
 * message is also kept as stats.last_error. Caller thread only.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "h5w_internal.h"

struct stack_text {
	char text[256];
	size_t len;
	int entries;
};

static herr_t collect(unsigned n, const H5E_error2_t *e, void *data)
{
	struct stack_text *st = data;
	(void)n;
	if (st->entries >= 2 || st->len >= sizeof(st->text) - 1)
		return 0;
	size_t start = st->len;
	int len = snprintf(st->text + st->len, sizeof(st->text) - st->len, "%s%s: %s",
			   st->entries ? "; " : "", e->func_name ? e->func_name : "?",
			   e->desc ? e->desc : "?");
	if (len > 0)
		st->len += (size_t)len;
	if (st->len >= sizeof(st->text))
		st->len = sizeof(st->text) - 1;
	/* HDF5's descriptions may hold newlines (sec2 embeds ctime()'s): a
	 * message must stay one log line and one status field. */
	for (size_t i = start; i < st->len; i++)
		if ((unsigned char)st->text[i] < 0x20)
			st->text[i] = ' ';
	st->entries++;
	return 0;
}

static void record(struct h5w *w, const struct h5w_error *err)
{
	if (!w)
		return;
	w->stats.errors++;
	snprintf(w->stats.last_error, sizeof(w->stats.last_error), "%s", err->message);
	if (w->stats.full && !w->stats.full_reason[0])
		snprintf(w->stats.full_reason, sizeof(w->stats.full_reason), "%s", err->message);
}

void h5w_err(struct h5w *w, struct h5w_error *err, const char *fmt, ...)
{
	struct h5w_error local;
	va_list ap;
	if (!err)
		err = &local;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	record(w, err);
}

/*
 * Fill ERR with the message and HDF5's innermost error descriptions. The
 * return value is the code to pass on: -ENOSPC when the failure was a full
 * disk (sec2 leaves errno set), -EFBIG for the file-size limit, else -EIO.
 */
int h5w_err_hdf5(struct h5w *w, struct h5w_error *err, const char *fmt, ...)
{
	int saved_errno = errno;
	struct h5w_error local;
	struct stack_text st = {.len = 0, .entries = 0};
	va_list ap;

	if (!err)
		err = &local;
	H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, collect, &st);
	H5Eclear2(H5E_DEFAULT);
	st.text[st.len] = '\0';
	va_start(ap, fmt);
	int len = vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	if (len >= 0 && (size_t)len < sizeof(err->message) && st.len)
		snprintf(err->message + len, sizeof(err->message) - (size_t)len, " (HDF5: %s)",
			 st.text);
	int rc = -EIO;
	if (saved_errno == ENOSPC || strstr(st.text, "No space left"))
		rc = -ENOSPC;
	else if (saved_errno == EFBIG || strstr(st.text, "File too large"))
		rc = -EFBIG;
	if (w && rc != -EIO)
		w->stats.full = true;
	record(w, err);
	return rc;
}
