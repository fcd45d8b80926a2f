/*
 * vds_plan.c - the rows `h5rec vds` keeps: one copy of each message (see
 * vds_plan.h). Runs of equal sequences are sorted by (sequence, longest
 * first, file order), so the first run of each sequence is the one kept;
 * the kept runs of each file, adjacent ones merged, are its ranges.
 */
#include "vds_plan.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

struct run {
	uint64_t seq;
	uint64_t start, count;
	size_t file;
	size_t order; /* position over all files: file order, then row */
	bool kept;
};

static int by_seq_longest_first(const void *a, const void *b)
{
	const struct run *x = *(const struct run *const *)a, *y = *(const struct run *const *)b;
	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* The runs of equal, non-zero sequences of every file, in order; rows of
 * sequence 0 (and files without provenance) are runs kept as they are. */
static struct run *find_runs(const struct vds_rows *files, size_t nfiles, size_t *nruns)
{
	size_t n = 0, cap = 64;
	struct run *runs = malloc(cap * sizeof(*runs));
	if (!runs)
		return NULL;
	for (size_t f = 0; f < nfiles; f++) {
		const uint64_t *seq = files[f].seq;
		uint64_t row = 0;
		while (row < files[f].nrows) {
			uint64_t end = row + 1, s = seq ? seq[row] : 0;
			while (end < files[f].nrows && (seq ? seq[end] : 0) == s)
				end++;
			if (n == cap) {
				struct run *more = realloc(runs, 2 * cap * sizeof(*runs));
				if (!more) {
					free(runs);
					return NULL;
				}
				runs = more;
				cap *= 2;
			}
			runs[n] = (struct run){.seq = s, .start = row, .count = end - row, .file = f,
					       .order = n, .kept = s == 0};
			n++;
			row = end;
		}
	}
	*nruns = n;
	return runs;
}

static int choose(struct run *runs, size_t nruns)
{
	struct run **sorted = malloc((nruns + 1) * sizeof(*sorted));
	size_t n = 0;
	if (!sorted)
		return -ENOMEM;
	for (size_t i = 0; i < nruns; i++)
		if (runs[i].seq)
			sorted[n++] = &runs[i];
	qsort(sorted, n, sizeof(*sorted), by_seq_longest_first);
	for (size_t i = 0; i < n; i++)
		sorted[i]->kept = i == 0 || sorted[i - 1]->seq != sorted[i]->seq;
	free(sorted);
	return 0;
}

static int add_range(struct vds_keep *k, uint64_t start, uint64_t count)
{
	if (k->nranges && k->ranges[k->nranges - 1].start + k->ranges[k->nranges - 1].count ==
			   start) {
		k->ranges[k->nranges - 1].count += count;
	} else {
		struct vds_range *more = realloc(k->ranges, (k->nranges + 1) * sizeof(*more));
		if (!more)
			return -ENOMEM;
		k->ranges = more;
		k->ranges[k->nranges++] = (struct vds_range){start, count};
	}
	k->rows += count;
	return 0;
}

int vds_plan_keep(const struct vds_rows *files, size_t nfiles, struct vds_keep *out,
		  uint64_t *dropped)
{
	size_t nruns = 0;
	struct run *runs = find_runs(files, nfiles, &nruns);
	int rc = runs ? choose(runs, nruns) : -ENOMEM;
	for (size_t f = 0; f < nfiles; f++)
		out[f] = (struct vds_keep){0};
	*dropped = 0;
	for (size_t i = 0; !rc && i < nruns; i++) {
		if (runs[i].kept)
			rc = add_range(&out[runs[i].file], runs[i].start, runs[i].count);
		else
			*dropped += runs[i].count;
	}
	free(runs);
	if (rc)
		vds_keep_free(out, nfiles);
	return rc;
}

void vds_keep_free(struct vds_keep *keep, size_t nfiles)
{
	for (size_t f = 0; f < nfiles; f++) {
		free(keep[f].ranges);
		keep[f] = (struct vds_keep){0};
	}
}
