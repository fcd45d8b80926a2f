/*
 * LD_PRELOAD shim: a disk that stalls or fails one fsync. Used by
 * tests/py/test_faults.py (a 2.5 s stall must not turn frames that came on
 * time into late data; a failed fsync must end the file and ACK nothing it
 * may have lost).
 *
 *   H5REC_FSYNC_AT=N[,M..] the Nth (Mth, ...) fsync or fdatasync call of the
 *                          process (1-based) is one; unset: none
 *   H5REC_FSYNC_SLEEP_MS   it first sleeps this long, then syncs
 *   H5REC_FSYNC_ERRNO      or it fails with this errno (e.g. 5, EIO)
 *                          without syncing
 *
 * It says on stderr when it acts, so a test knows the fault happened.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_long calls;

static long env_long(const char *name)
{
	const char *v = getenv(name);
	return v ? strtol(v, NULL, 10) : 0;
}

static void say(const char *what, long n)
{
	char msg[128];
	int len = snprintf(msg, sizeof(msg), "fsync_fault: fsync call %ld %s\n", n, what);
	if (len > 0) {
		ssize_t w = write(STDERR_FILENO, msg, (size_t)len);
		(void)w;
	}
}

/* Is call N one of H5REC_FSYNC_AT's? */
static int chosen(long n)
{
	const char *p = getenv("H5REC_FSYNC_AT");
	while (p && *p) {
		char *end;
		if (strtol(p, &end, 10) == n)
			return 1;
		p = *end == ',' ? end + 1 : NULL;
	}
	return 0;
}

/* 0: call through; else the result to return (-1, errno set). */
static int fault(void)
{
	long n = atomic_fetch_add(&calls, 1) + 1;
	if (!chosen(n))
		return 0;
	long err = env_long("H5REC_FSYNC_ERRNO");
	if (err) {
		say("fails", n);
		errno = (int)err;
		return -1;
	}
	long ms = env_long("H5REC_FSYNC_SLEEP_MS");
	say("stalls", n);
	struct timespec pause = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
	while (nanosleep(&pause, &pause) != 0)
		;
	return 0;
}

int fsync(int fd)
{
	static int (*next)(int);
	if (!next)
		*(void **)&next = dlsym(RTLD_NEXT, "fsync");
	if (fault())
		return -1;
	return next(fd);
}

int fdatasync(int fd)
{
	static int (*next)(int);
	if (!next)
		*(void **)&next = dlsym(RTLD_NEXT, "fdatasync");
	if (fault())
		return -1;
	return next(fd);
}
