/*
 * LD_PRELOAD shim for tests/py/test_diskfull.py: when anything in the
 * process puts SIGTERM back to its default action (libuv does, the moment
 * its last SIGTERM handle closes), say so on stderr and keep that moment
 * open for half a second before returning. A SIGTERM the test sends then
 * lands exactly where libuv's handler is gone and the process still runs,
 * a window that is otherwise a few microseconds wide.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stddef.h>
#include <time.h>
#include <unistd.h>

int sigaction(int signum, const struct sigaction *act, struct sigaction *oldact)
{
	static int (*next)(int, const struct sigaction *, struct sigaction *);
	if (!next) {
		*(void **)&next = dlsym(RTLD_NEXT, "sigaction");
		if (!next)
			return -1;
	}
	int rc = next(signum, act, oldact);
	if (rc == 0 && signum == SIGTERM && act && !(act->sa_flags & SA_SIGINFO) &&
	    act->sa_handler == SIG_DFL) {
		static const char msg[] = "sigdfl_window: SIGTERM is at its default action\n";
		ssize_t n = write(STDERR_FILENO, msg, sizeof(msg) - 1);
		(void)n;
		struct timespec pause = {.tv_sec = 0, .tv_nsec = 500000000};
		while (nanosleep(&pause, &pause) != 0)
			;
	}
	return rc;
}
