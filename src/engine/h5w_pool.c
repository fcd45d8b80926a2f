/*
 * h5w_pool.c - the compression worker pool.
 *
 * HDF5 is not thread-safe in Debian's serial build, and the project rule is
 * that only the writer thread calls it. Encoding, which is where the CPU
 * time goes, does not need HDF5: a worker takes a whole chunk, runs the
 * dataset's filter pipeline on it (h5w_pipeline.c: shuffle, deflate or
 * LZ4, Fletcher-32), pads it to the size the engine keeps in the file for
 * it, and hands it back; the writer thread then stores the bytes with a
 * direct chunk write. Jobs are taken back in the order they were
 * submitted, which for one dataset is the order of its chunks: the engine
 * stores chunks in order, so a chunk whose write fails (full disk) is never
 * followed into the file by a later one, and a dataset's extent never has
 * to cover a chunk that is not stored.
 *
 * Threading: one mutex guards the work queue, the submission order and each
 * job's `finished` flag. Workers touch a job only between taking it from the
 * work queue and marking it finished; the engine touches it only before
 * submit and after take. A job's dataset is read only where it is fixed
 * since planning (dtype, sizes, filters). Each worker keeps its encoder
 * (h5w_pipeline.c): a shuffle buffer as large as the largest chunk it met
 * and a deflate stream.
 */
#include <errno.h>
#include <stdlib.h>

#include "h5w_internal.h"

static void *worker(void *arg)
{
	struct h5w_pool *pool = arg;
	struct h5w_encoder encoder = {0};

	pthread_mutex_lock(&pool->lock);
	for (;;) {
		while (!pool->queue_head && !pool->stopping)
			pthread_cond_wait(&pool->work, &pool->lock);
		if (!pool->queue_head)
			break;
		struct h5w_job *job = pool->queue_head;
		pool->queue_head = job->next;
		if (!pool->queue_head)
			pool->queue_tail = NULL;
		pthread_mutex_unlock(&pool->lock);

		h5w_job_encode(job, &encoder);

		pthread_mutex_lock(&pool->lock);
		job->finished = true;
		if (job == pool->order_head)
			pthread_cond_signal(&pool->done);
	}
	pthread_mutex_unlock(&pool->lock);
	h5w_encoder_free(&encoder);
	return NULL;
}

int h5w_pool_start(struct h5w_pool *pool, unsigned nthreads)
{
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->work, NULL);
	pthread_cond_init(&pool->done, NULL);
	pool->threads = calloc(nthreads, sizeof(*pool->threads));
	if (!pool->threads)
		return -ENOMEM;
	for (unsigned i = 0; i < nthreads; i++) {
		int rc = pthread_create(&pool->threads[i], NULL, worker, pool);
		if (rc) {
			h5w_pool_stop(pool);
			return -rc;
		}
		pool->nthreads++;
	}
	return 0;
}

/* Stop the workers once the queue is empty. Finished jobs belong to the
 * caller, who must have taken them all back before. */
void h5w_pool_stop(struct h5w_pool *pool)
{
	pthread_mutex_lock(&pool->lock);
	pool->stopping = true;
	pthread_cond_broadcast(&pool->work);
	pthread_mutex_unlock(&pool->lock);
	for (unsigned i = 0; i < pool->nthreads; i++)
		pthread_join(pool->threads[i], NULL);
	free(pool->threads);
	pool->threads = NULL;
	pool->nthreads = 0;
	pthread_cond_destroy(&pool->done);
	pthread_cond_destroy(&pool->work);
	pthread_mutex_destroy(&pool->lock);
}

void h5w_pool_submit(struct h5w_pool *pool, struct h5w_job *job)
{
	job->next = NULL;
	job->order_next = NULL;
	job->finished = false;
	pthread_mutex_lock(&pool->lock);
	if (pool->order_tail)
		pool->order_tail->order_next = job;
	else
		pool->order_head = job;
	pool->order_tail = job;
	if (pool->queue_tail)
		pool->queue_tail->next = job;
	else
		pool->queue_head = job;
	pool->queue_tail = job;
	pool->pending++;
	pthread_cond_signal(&pool->work);
	pthread_mutex_unlock(&pool->lock);
}

/* Take back the oldest submitted job once it is completed; with WAIT, block
 * until it is (NULL only when nothing is pending). */
struct h5w_job *h5w_pool_take(struct h5w_pool *pool, bool wait)
{
	struct h5w_job *job = NULL;

	pthread_mutex_lock(&pool->lock);
	while (wait && pool->order_head && !pool->order_head->finished)
		pthread_cond_wait(&pool->done, &pool->lock);
	if (pool->order_head && pool->order_head->finished) {
		job = pool->order_head;
		pool->order_head = job->order_next;
		if (!pool->order_head)
			pool->order_tail = NULL;
		pool->pending--;
	}
	pthread_mutex_unlock(&pool->lock);
	return job;
}
