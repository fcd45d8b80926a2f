/*
 * log.h - leveled, rate-limited logging to stderr.
 *
 * h5recd runs in the foreground and logs to stderr; under systemd, journald
 * takes the stream. When stderr is connected to the journal (systemd sets
 * JOURNAL_STREAM), each line starts with the sd-daemon priority prefix
 * ("<3>") so journald records the right priority; otherwise lines carry a
 * UTC timestamp and the level name.
 *
 * Thread-safe: each message is formatted into one buffer and written with a
 * single write(2), so lines from different threads never interleave.
 *
 * Errors that a hostile or broken peer can repeat at line rate go through a
 * struct log_ratelimit: at most `burst` messages per `interval_ns`, after
 * which they are counted, and the count of suppressed messages is reported
 * with the next message that gets through.
 */
#ifndef H5REC_LOG_H
#define H5REC_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum log_level {
	LOG_LEVEL_ERROR = 3, /* numbered as syslog priorities */
	LOG_LEVEL_WARNING = 4,
	LOG_LEVEL_NOTICE = 5,
	LOG_LEVEL_INFO = 6,
	LOG_LEVEL_DEBUG = 7,
};

/* "error", "warning", "notice", "info", "debug"; returns 0 or -EINVAL. */
int log_level_from_name(const char *name, enum log_level *level);
const char *log_level_name(enum log_level level);

/* Messages above this level are dropped; default LOG_LEVEL_INFO. */
void log_set_level(enum log_level level);
bool log_enabled(enum log_level level);

/* Where lines go (default: stderr) and whether to use journald prefixes
 * (default: detected from JOURNAL_STREAM). For tests. */
void log_set_output(int fd, bool journal_prefixes);

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

struct log_ratelimit {
	int64_t interval_ns; /* window length */
	unsigned burst;      /* messages allowed per window */
	int64_t window_start_ns;
	unsigned emitted;    /* in the current window */
	uint64_t suppressed; /* since the last message that got through */
};

#define LOG_RATELIMIT_INIT(interval_ns_, burst_) \
	{ .interval_ns = (interval_ns_), .burst = (burst_) }

/*
 * Log through a rate limit, with now_ns from a monotonic clock (the caller
 * passes it so tests are deterministic). Returns true if the message was
 * written. Not thread-safe per limiter: each limiter belongs to one thread.
 */
bool log_ratelimited(struct log_ratelimit *limit, int64_t now_ns, enum log_level level,
		     const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* TEXT with control characters, DEL, the backslash and bytes that are not
 * UTF-8 written as \xNN, into OUT of CAP bytes (NUL-terminated, cut at a
 * whole character); the length. Every log line goes through it. */
size_t log_escape(const char *text, char *out, size_t cap);

#endif
