/*
 * h5w_writeback.c - starting the kernel's writeback of chunk data early.
 *
 * A flush ends in fsync (h5w_file.c), which waits until every page the
 * file dirtied since the last one is on disk. A fast stream dirties much
 * between two flushes (a second of pre-compressed waveforms is half a GB
 * at the rates of docs/performance.md), and the fsync then has all of it
 * written at once: the flush, and the ACKs that wait for it, took a fifth
 * of a second, with the disk idle before. So after every
 * H5W_WRITEBACK_BYTES of chunks stored, the writeback of what is dirty in
 * the file is started (sync_file_range with SYNC_FILE_RANGE_WRITE submits
 * the pages and does not wait for them), and the fsync finds most of it
 * done. It is no durability point: sync_file_range promises nothing of
 * metadata, and only the fsync of a flush counts (SPEC §6). sec2 files
 * only (a family has one descriptor per member). A failure here is not
 * reported: the fsync that follows reports any I/O error.
 *
 * Caller thread only.
 */
#include <fcntl.h>

#include "h5w_internal.h"

/* BYTES of chunks were stored in the current file (H5W_WRITEBACK_BYTES
 * is 32 MiB: with 8 MiB the writer spent a fifth more CPU, in smaller
 * writeback batches). */
void h5w_writeback_note(struct h5w *w, uint64_t bytes)
{
	w->writeback_due += bytes;
	if (w->writeback_due < H5W_WRITEBACK_BYTES || w->file == H5I_INVALID_HID ||
	    w->schema->output.driver != SCHEMA_DRIVER_SEC2)
		return;
	w->writeback_due = 0;
	void *handle = NULL;
	if (H5Fget_vfd_handle(w->file, H5P_DEFAULT, &handle) < 0 || !handle) {
		H5Eclear2(H5E_DEFAULT);
		return;
	}
	sync_file_range(*(int *)handle, 0, 0, SYNC_FILE_RANGE_WRITE);
}
