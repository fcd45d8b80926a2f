/*
 * LD_PRELOAD shim: a directory in which files cannot be created for a
 * while (permissions changed, descriptors exhausted, an I/O error). Used by
 * tests/py/test_create_faults.py: the recorder must hold the data and
 * create the file once it can, losing nothing.
 *
 *   H5REC_CREATE_FAULT_DIR    files created under this directory fail ...
 *   H5REC_CREATE_FAULT_FLAG   ... while this file exists
 *   H5REC_CREATE_FAULT_ERRNO  with this errno (e.g. 13, EACCES; 24, EMFILE)
 *
 * Only opens with O_CREAT fail: what exists can still be read, as in a
 * directory made read-only. It says on stderr (once per episode) when it
 * acts, so a test knows the fault happened.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static atomic_bool said;

/* Is creating PATH (with FLAGS) to fail now? */
static int fault(const char *path, int flags)
{
	const char *dir = getenv("H5REC_CREATE_FAULT_DIR");
	const char *flag = getenv("H5REC_CREATE_FAULT_FLAG");
	struct stat st;
	if (!(flags & O_CREAT) || !dir || !flag || !path)
		return 0;
	size_t len = strlen(dir);
	if (strncmp(path, dir, len) != 0 || path[len] != '/')
		return 0;
	if (stat(flag, &st) != 0) {
		said = false;
		return 0;
	}
	if (!atomic_exchange(&said, true)) {
		char msg[4200];
		int n = snprintf(msg, sizeof(msg), "create_fault: creating %s fails\n", path);
		if (n > 0) {
			ssize_t w = write(STDERR_FILENO, msg, (size_t)n < sizeof(msg) ? (size_t)n :
				    sizeof(msg) - 1);
			(void)w;
		}
	}
	const char *e = getenv("H5REC_CREATE_FAULT_ERRNO");
	errno = e ? atoi(e) : EACCES;
	return 1;
}

static mode_t mode_of(int flags, va_list ap)
{
	return (flags & (O_CREAT | O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
}

#define WRAP_OPEN(name)                                                            \
	int name(const char *path, int flags, ...)                                 \
	{                                                                          \
		static int (*next)(const char *, int, ...);                        \
		va_list ap;                                                        \
		va_start(ap, flags);                                               \
		mode_t mode = mode_of(flags, ap);                                  \
		va_end(ap);                                                        \
		if (!next)                                                         \
			*(void **)&next = dlsym(RTLD_NEXT, #name);                 \
		if (fault(path, flags))                                            \
			return -1;                                                 \
		return next(path, flags, mode);                                    \
	}

#define WRAP_OPENAT(name)                                                          \
	int name(int dirfd, const char *path, int flags, ...)                      \
	{                                                                          \
		static int (*next)(int, const char *, int, ...);                   \
		va_list ap;                                                        \
		va_start(ap, flags);                                               \
		mode_t mode = mode_of(flags, ap);                                  \
		va_end(ap);                                                        \
		if (!next)                                                         \
			*(void **)&next = dlsym(RTLD_NEXT, #name);                 \
		if (fault(path, flags))                                            \
			return -1;                                                 \
		return next(dirfd, path, flags, mode);                             \
	}

WRAP_OPEN(open)
WRAP_OPEN(open64)
WRAP_OPENAT(openat)
WRAP_OPENAT(openat64)
