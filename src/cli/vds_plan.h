/*
 * vds_plan.h - which rows of several recorders' files `h5rec vds` keeps
 * (pure logic, no HDF5: unit-tested in tests/unit/test_vds_plan.c).
 *
 * A row's provenance is the stream sequence of the broker message it came
 * from (`source_seq`, 0: not from a broker). A message stored twice (by a
 * recorder killed before it acknowledged, and by the one the broker gave
 * it to next) is a run of consecutive rows with that sequence in each copy.
 * Of all runs of one sequence, the longest is kept (a copy stored in part,
 * before a write failed, loses to a whole one), the first in file order on
 * a tie; the others are left out. Rows with sequence 0 are always kept.
 */
#ifndef H5REC_VDS_PLAN_H
#define H5REC_VDS_PLAN_H

#include <stddef.h>
#include <stdint.h>

/* Rows [start, start + count) of one file. */
struct vds_range {
	uint64_t start, count;
};

/* One file's rows on an axis: their sequences (NULL: no provenance, every
 * row kept), in file order. */
struct vds_rows {
	const uint64_t *seq;
	uint64_t nrows;
};

/* What is kept of one file: ranges in increasing order, and their rows. */
struct vds_keep {
	struct vds_range *ranges;
	size_t nranges;
	uint64_t rows;
};

/*
 * Decide the rows kept of NFILES files (in the order their rows are to be
 * concatenated): OUT[f] for each file, freed with vds_keep_free. *DROPPED is
 * the number of rows left out. Returns 0 or -ENOMEM.
 */
int vds_plan_keep(const struct vds_rows *files, size_t nfiles, struct vds_keep *out,
		  uint64_t *dropped);
void vds_keep_free(struct vds_keep *keep, size_t nfiles);

#endif
