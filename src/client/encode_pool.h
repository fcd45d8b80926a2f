/*
 * encode_pool.h - libh5rec-client's encoder threads for pre-compressed
 * frames (issue 19; h5rec_client_set_encode_threads()).
 *
 * A job is one frame's worth of chunks: the samples (the caller's, or a
 * copy), the pipeline to run them through, and one result per chunk.
 * Workers take chunks, not jobs, so a stream frame of several chunks is
 * spread over the threads too; the owner takes jobs back only whole and
 * only in the order they were submitted, which is what lets the client
 * give frames their seq in call order however the encodings finish.
 *
 * Hand-off contract. The owner (the client's thread) fills a job, submits
 * it and does not touch it again until encode_pool_peek() returns it;
 * from then on the job is the owner's alone (the workers are done with it,
 * and the pool's lock orders their writes before the owner's reads). The
 * pool never blocks the owner: submit, peek and pop only take the lock for
 * a few pointer moves. Memory is bounded by the owner, which counts what
 * it submitted (the pool queues whatever it is given). The pool's fd is
 * readable once a job has finished since encode_pool_clear() was last
 * called: the owner polls it beside its socket.
 *
 * Stopping abandons the chunks no worker has started, waits for the ones
 * in progress (a chunk's encoding cannot be interrupted; it is bounded by
 * the chunk's size) and frees every job still in the pool.
 */
#ifndef H5REC_ENCODE_POOL_H
#define H5REC_ENCODE_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dtype.h"
#include "pipeline.h"

struct encoded_chunk {
	uint8_t *bytes; /* malloc'd by chunk_encode() */
	size_t len;
};

struct encode_job {
	struct encode_job *next;     /* the pool's: submission order */
	struct pipeline pipeline;    /* a copy of the DESCRIBE answer */
	uint32_t pipeline_id;
	enum dtype dtype;
	int64_t t0;
	uint64_t event_id;
	size_t sample;               /* bytes per sample */
	size_t raw_len;              /* bytes per chunk, before encoding */
	uint32_t nchunks;
	const uint8_t *samples;      /* nchunks * raw_len bytes: the caller's or `copy` */
	uint8_t *copy;               /* the samples when the job outlives the call */
	struct encoded_chunk *chunks;
	int rc;                      /* the first failed chunk's error; 0: none failed */
	uint32_t failed_chunk;
	uint32_t claimed, finished;  /* the pool's, under its lock */
	char key[];
};

/* A job for NCHUNKS chunks of P from SAMPLES; with COPY the samples are
 * copied (the job may then outlive the caller's buffer). NULL: no memory. */
struct encode_job *encode_job_new(const char *key, const struct pipeline *p,
				  uint32_t pipeline_id, enum dtype dtype, int64_t t0,
				  uint64_t event_id, const void *samples, uint32_t nchunks,
				  bool copy);

/* Encode chunk I of JOB (0, or chunk_encode()'s error). Any thread; two
 * threads never run the same chunk. */
int encode_job_run(struct encode_job *job, uint32_t i);

void encode_job_free(struct encode_job *job);

struct encode_pool;

/* Start THREADS workers (signals blocked in them: they belong to the
 * program's threads). 0, -ENOMEM, or pthread_create()'s or eventfd()'s
 * error. */
int encode_pool_start(unsigned threads, struct encode_pool **out);

/* Stop and join the workers, free every job still in the pool. NULL is
 * allowed. */
void encode_pool_stop(struct encode_pool *pool);

void encode_pool_submit(struct encode_pool *pool, struct encode_job *job);

/* The oldest job once all its chunks are done; NULL while it is still
 * being encoded, or when there is none. It stays in the pool until
 * encode_pool_pop(). */
struct encode_job *encode_pool_peek(struct encode_pool *pool);

/* Remove the job encode_pool_peek() returned; the caller frees it. */
void encode_pool_pop(struct encode_pool *pool);

/* Readable when a job finished since the last encode_pool_clear(). */
int encode_pool_fd(const struct encode_pool *pool);
void encode_pool_clear(struct encode_pool *pool);

#endif
