/*
 * schema_alloc.c - the schema loader's allocations, with a torture switch.
 *
 * Every allocation of src/schema*.c goes through these wrappers so that the
 * unit test can fail each one in turn (curl's torture mode) and prove that
 * every error path returns -ENOMEM and frees what was built - ASan and
 * valgrind then see no leak. Loading happens once, at startup, in one
 * thread; the switch is for tests only and is 0 (off) otherwise.
 */
#include <stdlib.h>
#include <string.h>

#include "schema_internal.h"

long schema_alloc_fail_countdown;

static int torture_fail(void)
{
	if (schema_alloc_fail_countdown <= 0)
		return 0;
	return --schema_alloc_fail_countdown == 0;
}

void *schema_malloc(size_t size)
{
	return torture_fail() ? NULL : malloc(size);
}

void *schema_calloc(size_t n, size_t size)
{
	return torture_fail() ? NULL : calloc(n, size);
}

void *schema_realloc(void *ptr, size_t size)
{
	return torture_fail() ? NULL : realloc(ptr, size);
}

char *schema_strdup(const char *text)
{
	return torture_fail() ? NULL : strdup(text);
}

char *schema_strndup(const char *text, size_t len)
{
	return torture_fail() ? NULL : strndup(text, len);
}
