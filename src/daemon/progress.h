/*
 * progress.h - the writer → loop channel.
 *
 * The writer thread tells the loop thread how far it got (every item
 * numbered below `applied` is applied to the engine, every one below
 * `durable` is durable: what ACK frames report), which connections' data it
 * failed to store (so that no ACK covers it) and why, for senders that
 * understand ERROR frames, which groups it found idle
 * for a whole file, how many groups the current file holds, and that it
 * has finished. Each post wakes the loop through one uv_async handle, whose
 * callback then takes what was posted: marks are atomics, lists are under
 * a mutex, and nothing the writer posts waits for the loop.
 */
#ifndef H5REC_PROGRESS_H
#define H5REC_PROGRESS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* Failed sources remembered between two wakes; more fail every one. */
#define PROGRESS_FAILED_MAX 1024
/* Refusals explained between two wakes; more are closed unexplained. */
#define PROGRESS_REFUSALS_MAX 8

/* A frame the writer refused for a reason its sender is told in an ERROR
 * frame (a pre-compressed chunk that failed its checks). */
struct progress_refusal {
	uint64_t source; /* the connection */
	uint64_t seq;    /* the frame's */
	char key[1025];  /* the frame's (FRAME_MAX_KEY) */
	char reason[256];
};

struct progress {
	uv_async_t async;
	bool open;
	void (*wake)(void *arg); /* loop thread: something was posted */
	void *arg;

	_Atomic uint64_t applied;     /* every item numbered below is applied */
	_Atomic uint64_t durable;     /* every item numbered below is durable */
	_Atomic uint64_t file_groups; /* groups the current file holds */
	_Atomic bool finished;        /* the writer closed the engine */

	pthread_mutex_t lock; /* guards the lists below */
	uint64_t failed[PROGRESS_FAILED_MAX]; /* sources whose data was lost */
	size_t nfailed;
	bool all_failed;   /* more than fit, or sources unknown: every one */
	struct progress_refusal refusals[PROGRESS_REFUSALS_MAX];
	size_t nrefusals;
	uint32_t *idle;    /* the last offer of idle group ids (malloc'd) */
	uint32_t nidle;
	uint64_t idle_upto; /* every item numbered below was applied at the offer */
};

/* Loop thread. WAKE runs on the loop after posts (several may come as
 * one). Returns 0 or a libuv error. */
int progress_init(struct progress *p, uv_loop_t *loop, void (*wake)(void *arg), void *arg);
/* Close the handle; progress_free once the loop has run. */
void progress_close(struct progress *p);
void progress_free(struct progress *p);

/* Writer thread: the marks; wakes the loop only when one moved. */
void progress_mark(struct progress *p, uint64_t applied, uint64_t durable);
/* Writer thread: the engine could not store data from connection SOURCE
 * (an item's source; 0, UDP, has no connection and is ignored). */
void progress_note_failed(struct progress *p, uint64_t source);
/* Writer thread, before progress_note_failed of the same source: the
 * frame SEQ with KEY from connection SOURCE was refused for REASON, which
 * its sender is to be told before the connection closes. */
void progress_note_refusal(struct progress *p, uint64_t source, uint64_t seq, const char *key,
			   const char *reason);
/* Writer thread: data was lost for connections it cannot name: every
 * connection that waits for ACKs counts as failed. */
void progress_note_all_failed(struct progress *p);
/* Writer thread: the groups IDS (malloc'd, taken) were idle for a whole
 * file when every item numbered below UPTO was applied. A newer offer
 * replaces one the loop has not taken. */
void progress_offer_idle(struct progress *p, uint32_t *ids, uint32_t n, uint64_t upto);
/* Writer thread, its last call: everything is applied, the engine closed. */
void progress_finish(struct progress *p);

/* Loop thread: take the failed sources (into OUT, PROGRESS_FAILED_MAX
 * long); *ALL says every connection failed. Returns how many. */
size_t progress_take_failed(struct progress *p, uint64_t *out, bool *all);
/* Loop thread: take the refusals (into OUT, PROGRESS_REFUSALS_MAX long).
 * Take the failed sources first: a refusal is posted before its failure,
 * so one whose failure was taken is here (or was taken before). */
size_t progress_take_refusals(struct progress *p, struct progress_refusal *out);
/* Loop thread: take the offer of idle groups (NULL: none; the caller
 * frees it). */
uint32_t *progress_take_idle(struct progress *p, uint32_t *n, uint64_t *upto);

#endif
