/*
 * log.c - leveled, rate-limited logging to stderr (see log.h).
 *
 * The level and output are process-wide settings made once at startup,
 * before threads exist; messages may then come from any thread.
 *
 * Messages carry text from the network (sender names, keys, tag values,
 * parse errors quoting the input), so every line is escaped where it is
 * written, whatever its format string: control characters (a newline that
 * would start a forged line, a carriage return, ESC sequences for the
 * terminal), DEL, bytes that are not UTF-8, and the backslash itself (so
 * that a sender's literal "\x0a" cannot pass for an escape) become \xNN.
 * A log line is always exactly one line of valid UTF-8.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "timefmt.h"
#include "utf8.h"

static const char *const level_names[] = {
	[LOG_LEVEL_ERROR] = "error",  [LOG_LEVEL_WARNING] = "warning",
	[LOG_LEVEL_NOTICE] = "notice", [LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_DEBUG] = "debug",
};

static enum log_level max_level = LOG_LEVEL_INFO;
static int output_fd = STDERR_FILENO;
static int journal_prefixes = -1; /* -1: not decided yet */

int log_level_from_name(const char *name, enum log_level *level)
{
	for (int l = LOG_LEVEL_ERROR; l <= LOG_LEVEL_DEBUG; l++) {
		if (strcmp(name, level_names[l]) == 0) {
			*level = (enum log_level)l;
			return 0;
		}
	}
	return -EINVAL;
}

const char *log_level_name(enum log_level level)
{
	if (level < LOG_LEVEL_ERROR || level > LOG_LEVEL_DEBUG)
		return "unknown";
	return level_names[level];
}

void log_set_level(enum log_level level)
{
	max_level = level;
}

bool log_enabled(enum log_level level)
{
	return level <= max_level;
}

void log_set_output(int fd, bool prefixes)
{
	output_fd = fd;
	journal_prefixes = prefixes;
}

/* systemd sets JOURNAL_STREAM to "DEV:INODE" of the stream it connected;
 * only if stderr is that very stream do priority prefixes make sense. */
static bool stderr_is_journal(void)
{
	const char *env = getenv("JOURNAL_STREAM");
	return env && *env;
}

/* Copy TEXT into OUT (at most CAP bytes, NUL-terminated) escaping what is
 * not printable UTF-8 (see the top); returns the length written. */
size_t log_escape(const char *text, char *out, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	if (!cap)
		return 0;
	for (const unsigned char *p = (const unsigned char *)text; *p;) {
		size_t n = *p < 0x80 ? 1 : utf8_sequence_length(p, strlen((const char *)p));
		bool plain = n > 1 || (n == 1 && *p >= 0x20 && *p != 0x7f && *p != '\\');
		size_t need = plain ? n : 4;
		if (o + need >= cap)
			break;
		if (plain) {
			memcpy(out + o, p, n);
			o += n;
			p += n;
			continue;
		}
		out[o++] = '\\';
		out[o++] = 'x';
		out[o++] = hex[*p >> 4];
		out[o++] = hex[*p & 15];
		p++;
	}
	out[o] = '\0';
	return o;
}

static void vlog(enum log_level level, const char *suffix, const char *fmt, va_list ap)
{
	char line[2048], message[1536];
	size_t len;

	if (journal_prefixes < 0)
		journal_prefixes = stderr_is_journal();
	if (journal_prefixes) {
		len = (size_t)snprintf(line, sizeof(line), "<%d>", (int)level);
	} else {
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		len = time_iso8601((int64_t)now.tv_sec * 1000000000 + now.tv_nsec, 3, line,
				   sizeof(line));
		len += (size_t)snprintf(line + len, sizeof(line) - len, " %s: ",
					log_level_name(level));
	}
	vsnprintf(message, sizeof(message), fmt, ap);
	len += log_escape(message, line + len, sizeof(line) - len);
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2; /* truncated: keep the newline */
	if (suffix)
		len += (size_t)snprintf(line + len, sizeof(line) - len, "%s", suffix);
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	line[len++] = '\n';

	/* One write per line; a short write to a pipe of this size does not
	 * happen, and a failed log write has nowhere to be reported. */
	ssize_t written = write(output_fd, line, len);
	(void)written;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	if (!log_enabled(level))
		return;
	va_list ap;
	va_start(ap, fmt);
	vlog(level, NULL, fmt, ap);
	va_end(ap);
}

bool log_ratelimited(struct log_ratelimit *limit, int64_t now_ns, enum log_level level,
		     const char *fmt, ...)
{
	if (!log_enabled(level))
		return false;
	if (now_ns - limit->window_start_ns >= limit->interval_ns || now_ns < limit->window_start_ns) {
		limit->window_start_ns = now_ns;
		limit->emitted = 0;
	}
	if (limit->emitted >= limit->burst) {
		limit->suppressed++;
		return false;
	}
	limit->emitted++;

	char suffix[64] = "";
	if (limit->suppressed)
		snprintf(suffix, sizeof(suffix), " (%llu similar messages suppressed)",
			 (unsigned long long)limit->suppressed);
	limit->suppressed = 0;

	va_list ap;
	va_start(ap, fmt);
	vlog(level, suffix[0] ? suffix : NULL, fmt, ap);
	va_end(ap);
	return true;
}
