/*
 * progress.c - the writer → loop channel (see progress.h).
 *
 * uv_async_send is the one libuv call that is safe from another thread;
 * libuv may coalesce several sends into one callback, which is why the
 * posts are state (marks, lists) rather than messages.
 */
#include "progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void on_async(uv_async_t *async)
{
	struct progress *p = async->data;
	p->wake(p->arg);
}

int progress_init(struct progress *p, uv_loop_t *loop, void (*wake)(void *arg), void *arg)
{
	memset(p, 0, sizeof(*p));
	p->wake = wake;
	p->arg = arg;
	pthread_mutex_init(&p->lock, NULL);
	int err = uv_async_init(loop, &p->async, on_async);
	if (err) {
		pthread_mutex_destroy(&p->lock);
		return err;
	}
	p->async.data = p;
	p->open = true;
	return 0;
}

void progress_close(struct progress *p)
{
	if (!p->open)
		return;
	p->open = false;
	uv_close((uv_handle_t *)&p->async, NULL);
}

void progress_free(struct progress *p)
{
	pthread_mutex_destroy(&p->lock);
	free(p->idle);
	p->idle = NULL;
	p->nidle = 0;
}

void progress_mark(struct progress *p, uint64_t applied, uint64_t durable)
{
	uint64_t old_applied = atomic_exchange(&p->applied, applied);
	uint64_t old_durable = atomic_exchange(&p->durable, durable);
	if (old_applied != applied || old_durable != durable)
		uv_async_send(&p->async);
}

void progress_note_failed(struct progress *p, uint64_t source)
{
	if (!source)
		return; /* UDP: no connection, no ACKs */
	pthread_mutex_lock(&p->lock);
	bool known = false;
	for (size_t i = 0; i < p->nfailed && !known; i++)
		known = p->failed[i] == source;
	if (!known && p->nfailed < PROGRESS_FAILED_MAX)
		p->failed[p->nfailed++] = source;
	else if (!known)
		p->all_failed = true;
	pthread_mutex_unlock(&p->lock);
}

void progress_note_refusal(struct progress *p, uint64_t source, uint64_t seq, const char *key,
			   const char *reason)
{
	if (!source)
		return;
	pthread_mutex_lock(&p->lock);
	if (p->nrefusals < PROGRESS_REFUSALS_MAX) {
		struct progress_refusal *r = &p->refusals[p->nrefusals++];
		r->source = source;
		r->seq = seq;
		snprintf(r->key, sizeof(r->key), "%s", key);
		snprintf(r->reason, sizeof(r->reason), "%s", reason);
	}
	pthread_mutex_unlock(&p->lock);
}

size_t progress_take_refusals(struct progress *p, struct progress_refusal *out)
{
	pthread_mutex_lock(&p->lock);
	size_t n = p->nrefusals;
	memcpy(out, p->refusals, n * sizeof(*out));
	p->nrefusals = 0;
	pthread_mutex_unlock(&p->lock);
	return n;
}

void progress_note_all_failed(struct progress *p)
{
	pthread_mutex_lock(&p->lock);
	p->all_failed = true;
	pthread_mutex_unlock(&p->lock);
	uv_async_send(&p->async);
}

void progress_offer_idle(struct progress *p, uint32_t *ids, uint32_t n, uint64_t upto)
{
	pthread_mutex_lock(&p->lock);
	uint32_t *old = p->idle;
	p->idle = ids;
	p->nidle = n;
	p->idle_upto = upto;
	pthread_mutex_unlock(&p->lock);
	free(old);
	uv_async_send(&p->async);
}

void progress_finish(struct progress *p)
{
	atomic_store(&p->finished, true);
	uv_async_send(&p->async);
}

size_t progress_take_failed(struct progress *p, uint64_t *out, bool *all)
{
	pthread_mutex_lock(&p->lock);
	size_t n = p->nfailed;
	*all = p->all_failed;
	memcpy(out, p->failed, n * sizeof(*out));
	p->nfailed = 0;
	p->all_failed = false;
	pthread_mutex_unlock(&p->lock);
	return n;
}

uint32_t *progress_take_idle(struct progress *p, uint32_t *n, uint64_t *upto)
{
	pthread_mutex_lock(&p->lock);
	uint32_t *ids = p->idle;
	*n = p->nidle;
	*upto = p->idle_upto;
	p->idle = NULL;
	p->nidle = 0;
	pthread_mutex_unlock(&p->lock);
	return ids;
}
