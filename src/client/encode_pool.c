/*
 * encode_pool.c - the client's encoder threads (see encode_pool.h).
 *
 * Threading: one mutex guards the job list, the `claim` pointer and each
 * job's claimed/finished counts and error. `claim` is the oldest job with
 * a chunk no worker has taken: jobs before it are wholly taken, jobs after
 * it wholly untaken, so a worker finds work in O(1) and chunks are started
 * in submission order (the frame the owner waits for next is encoded
 * first). A worker writes a chunk's result outside the lock, then counts
 * it finished under the lock; the owner reads results only after seeing
 * the last one counted under the same lock.
 *
 * The wake-up is an eventfd rather than a condition variable because the
 * owner must wait for its socket (ACKs, room in the replay buffer) and for
 * the encoders at once, in one poll().
 */
#include "encode_pool.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "chunk_encode.h"
#include "frame.h"

struct encode_pool {
	pthread_mutex_t lock;
	pthread_cond_t work;
	struct encode_job *head, *tail; /* submission order */
	struct encode_job *claim;       /* the oldest job with an untaken chunk */
	bool stopping;
	int wake_fd;
	unsigned nthreads;
	pthread_t threads[];
};

struct encode_job *encode_job_new(const char *key, const struct pipeline *p,
				  uint32_t pipeline_id, enum dtype dtype, int64_t t0,
				  uint64_t event_id, const void *samples, uint32_t nchunks,
				  bool copy)
{
	size_t key_len = strlen(key);
	struct encode_job *job = calloc(1, sizeof(*job) + key_len + 1);

	if (!job)
		return NULL;
	memcpy(job->key, key, key_len + 1);
	job->pipeline = *p;
	job->pipeline_id = pipeline_id;
	job->dtype = dtype;
	job->t0 = t0;
	job->event_id = event_id;
	job->sample = frame_dtype_sample_size((unsigned)dtype);
	job->raw_len = (size_t)p->chunk * job->sample;
	job->nchunks = nchunks;
	job->samples = samples;
	job->chunks = calloc(nchunks, sizeof(*job->chunks));
	if (job->chunks && copy) {
		job->copy = malloc(job->raw_len * nchunks);
		if (job->copy)
			memcpy(job->copy, samples, job->raw_len * nchunks);
		job->samples = job->copy;
	}
	if (!job->chunks || !job->samples) {
		encode_job_free(job);
		return NULL;
	}
	return job;
}

int encode_job_run(struct encode_job *job, uint32_t i)
{
	struct encoded_chunk *out = &job->chunks[i];

	return chunk_encode(&job->pipeline, job->samples + (size_t)i * job->raw_len,
			    job->raw_len, job->sample, &out->bytes, &out->len);
}

void encode_job_free(struct encode_job *job)
{
	if (!job)
		return;
	for (uint32_t i = 0; job->chunks && i < job->nchunks; i++)
		free(job->chunks[i].bytes);
	free(job->chunks);
	free(job->copy);
	free(job);
}

static void wake_owner(struct encode_pool *pool)
{
	uint64_t one = 1;

	/* Only fails when the counter is about to overflow: it is readable then. */
	if (write(pool->wake_fd, &one, sizeof(one)) < 0)
		return;
}

static void *worker(void *arg)
{
	struct encode_pool *pool = arg;

	pthread_mutex_lock(&pool->lock);
	for (;;) {
		while (!pool->claim && !pool->stopping)
			pthread_cond_wait(&pool->work, &pool->lock);
		if (pool->stopping)
			break;
		struct encode_job *job = pool->claim;
		uint32_t i = job->claimed++;
		if (job->claimed == job->nchunks)
			pool->claim = job->next;
		pthread_mutex_unlock(&pool->lock);

		int rc = encode_job_run(job, i);

		pthread_mutex_lock(&pool->lock);
		/* The lowest failed chunk, as the calling thread would have met it. */
		if (rc && (!job->rc || i < job->failed_chunk)) {
			job->rc = rc;
			job->failed_chunk = i;
		}
		if (++job->finished == job->nchunks)
			wake_owner(pool);
	}
	pthread_mutex_unlock(&pool->lock);
	return NULL;
}

static void join_workers(struct encode_pool *pool, unsigned started)
{
	pthread_mutex_lock(&pool->lock);
	pool->stopping = true;
	pthread_cond_broadcast(&pool->work);
	pthread_mutex_unlock(&pool->lock);
	for (unsigned i = 0; i < started; i++)
		pthread_join(pool->threads[i], NULL);
}

static void free_pool(struct encode_pool *pool)
{
	while (pool->head) {
		struct encode_job *job = pool->head;
		pool->head = job->next;
		encode_job_free(job);
	}
	if (pool->wake_fd >= 0)
		close(pool->wake_fd);
	pthread_cond_destroy(&pool->work);
	pthread_mutex_destroy(&pool->lock);
	free(pool);
}

int encode_pool_start(unsigned threads, struct encode_pool **out)
{
	struct encode_pool *pool = calloc(1, sizeof(*pool) + threads * sizeof(pthread_t));
	sigset_t all, old;
	unsigned started = 0;
	int rc = 0;

	*out = NULL;
	if (!pool)
		return -ENOMEM;
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->work, NULL);
	pool->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (pool->wake_fd < 0) {
		rc = -errno;
		free_pool(pool);
		return rc;
	}
	/* The program's signal handlers run on the program's threads, never
	 * on ours: the workers start with every signal blocked. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	while (started < threads && !rc) {
		rc = -pthread_create(&pool->threads[started], NULL, worker, pool);
		started += !rc;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pool->nthreads = started;
	if (rc) {
		join_workers(pool, started);
		free_pool(pool);
		return rc;
	}
	*out = pool;
	return 0;
}

void encode_pool_stop(struct encode_pool *pool)
{
	if (!pool)
		return;
	join_workers(pool, pool->nthreads);
	free_pool(pool);
}

void encode_pool_submit(struct encode_pool *pool, struct encode_job *job)
{
	job->next = NULL;
	pthread_mutex_lock(&pool->lock);
	if (pool->tail)
		pool->tail->next = job;
	else
		pool->head = job;
	pool->tail = job;
	if (!pool->claim)
		pool->claim = job;
	/* one worker per chunk at most: the others would only wake to sleep */
	if (job->nchunks == 1)
		pthread_cond_signal(&pool->work);
	else
		pthread_cond_broadcast(&pool->work);
	pthread_mutex_unlock(&pool->lock);
}

struct encode_job *encode_pool_peek(struct encode_pool *pool)
{
	struct encode_job *job;

	pthread_mutex_lock(&pool->lock);
	job = pool->head && pool->head->finished == pool->head->nchunks ? pool->head : NULL;
	pthread_mutex_unlock(&pool->lock);
	return job;
}

void encode_pool_pop(struct encode_pool *pool)
{
	pthread_mutex_lock(&pool->lock);
	pool->head = pool->head->next;
	if (!pool->head)
		pool->tail = NULL;
	pthread_mutex_unlock(&pool->lock);
}

int encode_pool_fd(const struct encode_pool *pool)
{
	return pool->wake_fd;
}

void encode_pool_clear(struct encode_pool *pool)
{
	uint64_t count;

	if (read(pool->wake_fd, &count, sizeof(count)) < 0)
		return; /* EAGAIN: nothing finished since */
}
