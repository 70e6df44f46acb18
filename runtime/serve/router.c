/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The router state machine (see router.h for the rules).
 *
 * Every entry point changes some state and then calls settle(), which
 * repeats "advance committed starts, retry queued requests, forget retired
 * models" until nothing changes.  A grant may finish its request at once
 * (sv_router_done from inside the grant effect); settle() notices the
 * re-entry through r->settling and loops again instead of recursing, so
 * no list is ever walked while another call rewrites it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router.h"
#include "util.h"

struct router {
	const struct router_effects *fx;
	void *ctx;
	struct serve_config *cfg;
	struct rt_model **models;	/* parallel to cfg->models */
	size_t n;
	struct rt_model *retired;	/* replaced by reloads, still running */
	struct rt_list queue;
	bool settling, dirty, shutting_down;
};

static void list_append(struct rt_list *l, struct rt_req *q)
{
	q->next = NULL;
	q->prev = l->tail;
	if (l->tail)
		l->tail->next = q;
	else
		l->head = q;
	l->tail = q;
	l->n++;
}

static void list_remove(struct rt_list *l, struct rt_req *q)
{
	if (q->prev)
		q->prev->next = q->next;
	else
		l->head = q->next;
	if (q->next)
		q->next->prev = q->prev;
	else
		l->tail = q->prev;
	q->prev = q->next = NULL;
	l->n--;
}

const char *sv_rt_state_name(enum rt_state s)
{
	switch (s) {
	case RT_STOPPED:
		return "stopped";
	case RT_STARTING:
		return "starting";
	case RT_READY:
		return "ready";
	case RT_STOPPING:
		return "stopping";
	}
	return "unknown";
}

unsigned sv_rt_model_queued(const struct rt_model *m)
{
	return m->reserved - m->inflight;
}

static struct rt_model *model_new(struct serve_config *cfg, const struct serve_model *sm)
{
	struct rt_model *m = sv_calloc(1, sizeof(*m));

	m->id = sv_strdup(sm->id);
	m->cfg = serve_config_ref(cfg);
	m->sm = sm;
	return m;
}

static void model_free(struct router *r, struct rt_model *m)
{
	if (r->fx->forget)
		r->fx->forget(r->ctx, m);
	serve_config_unref(m->cfg);
	free(m->id);
	free(m);
}

struct router *sv_router_new(const struct router_effects *fx, void *ctx, struct serve_config *cfg)
{
	struct router *r = sv_calloc(1, sizeof(*r));

	r->fx = fx;
	r->ctx = ctx;
	r->cfg = serve_config_ref(cfg);
	r->n = cfg->n_models;
	r->models = sv_calloc(r->n, sizeof(*r->models));
	for (size_t i = 0; i < r->n; i++)
		r->models[i] = model_new(cfg, &cfg->models[i]);
	return r;
}

void sv_router_free(struct router *r)
{
	struct rt_model *m, *next;

	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++)
		model_free(r, r->models[i]);
	for (m = r->retired; m; m = next) {
		next = m->next_retired;
		model_free(r, m);
	}
	free(r->models);
	serve_config_unref(r->cfg);
	free(r);
}

size_t sv_router_count(const struct router *r)
{
	return r->n;
}

struct rt_model *sv_router_model(struct router *r, size_t i)
{
	return i < r->n ? r->models[i] : NULL;
}

struct rt_model *sv_router_find(struct router *r, const char *name)
{
	const struct serve_model *sm = serve_config_find(r->cfg, name);

	return sm ? r->models[sm - r->cfg->models] : NULL;
}

static const struct serve_group *group_of(const struct rt_model *m)
{
	return &m->cfg->groups[m->sm->group];
}

static bool same_endpoint(const struct rt_model *a, const struct rt_model *b)
{
	return a->sm->proxy_host && b->sm->proxy_host &&
	       !strcmp(a->sm->proxy_host, b->sm->proxy_host) &&
	       a->sm->proxy_port == b->sm->proxy_port;
}

/* llama-swap's group rule between two models of the same config. */
static bool group_evicts(const struct rt_model *x, const struct rt_model *y)
{
	if (x->sm->group == y->sm->group)
		return group_of(x)->swap;
	return group_of(x)->exclusive && !group_of(y)->persistent;
}

/*
 * Does starting x stop y?  Besides the group rule, two models that answer
 * on the same address can never run together, nor two split models that
 * use one RPC server (it serves a single client).  A model retired by a reload
 * is judged by what its id means in the new config; one whose id is gone
 * gives way to any exclusive start, as a model of another group would.
 */
static bool evicts(struct router *r, struct rt_model *x, struct rt_model *y)
{
	struct rt_model *now;

	if (x == y)
		return false;
	if (same_endpoint(x, y) || serve_models_share_rpc(x->cfg, x->sm, y->cfg, y->sm))
		return true;
	if (!y->retired)
		return group_evicts(x, y);
	if (!strcmp(x->id, y->id))
		return true;
	now = sv_router_find(r, y->id);
	if (now && !strcmp(now->id, y->id))
		return group_evicts(x, now);
	return group_of(x)->exclusive;
}

static bool is_running(const struct rt_model *m)
{
	return m->state != RT_STOPPED || m->committed;
}

/* Iterate current then retired models. */
#define for_each_model(r, m, i)                                                          \
	for ((i) = 0, (m) = (r)->n ? (r)->models[0] : (r)->retired; (m);                   \
	     (m) = ++(i) < (r)->n ? (r)->models[i] : ((i) == (r)->n ? (r)->retired          \
								     : (m)->next_retired))

/* x's start collides with a committed start of another model. */
static bool collides(struct router *r, struct rt_model *x)
{
	struct rt_model *y;
	size_t i;

	for_each_model(r, y, i)
		if (y != x && y->committed && (evicts(r, y, x) || evicts(r, x, y)))
			return true;
	return false;
}

static bool needs_evict(struct router *r, struct rt_model *x)
{
	struct rt_model *y;
	size_t i;

	for_each_model(r, y, i)
		if (is_running(y) && evicts(r, x, y))
			return true;
	return false;
}

static bool evicts_busy(struct router *r, struct rt_model *x)
{
	struct rt_model *y;
	size_t i;

	for_each_model(r, y, i)
		if (is_running(y) && y->inflight && evicts(r, x, y))
			return true;
	return false;
}

static void stop_model(struct router *r, struct rt_model *m)
{
	m->state = RT_STOPPING;
	m->idle_told = false;
	r->fx->stop(r->ctx, m);
}

static void grant(struct router *r, struct rt_req *q)
{
	q->where = RQ_SERVING;
	q->model->inflight++;
	q->model->idle_told = false;
	r->fx->grant(r->ctx, q);
}

static void fail(struct router *r, struct rt_req *q, int status, const char *msg)
{
	if (q->model)
		q->model->reserved--;
	q->where = RQ_NONE;
	r->fx->fail(r->ctx, q, status, msg);
}

static void fail_waiters(struct router *r, struct rt_model *m, int status, const char *msg)
{
	struct rt_req *q;

	while ((q = m->waiters.head)) {
		list_remove(&m->waiters, q);
		fail(r, q, status, msg);
	}
}

/* m is READY and was committed: serve everyone who waited for it. */
static void finish_start(struct router *r, struct rt_model *m)
{
	struct rt_req *q;

	m->committed = false;
	while ((q = m->waiters.head)) {
		list_remove(&m->waiters, q);
		grant(r, q);
	}
	r->dirty = true;
}

/* Tell the effects side once per idle spell (it arms the TTL then). */
static void idle_check(struct router *r, struct rt_model *m)
{
	if (m->state == RT_READY && !m->inflight && !m->committed && !m->retired &&
	    !m->idle_told) {
		m->idle_told = true;
		r->fx->idle(r->ctx, m);
	}
}

/* Advance x's committed start: stop what it evicts, start it once they are
 * all gone. */
static void progress(struct router *r, struct rt_model *x)
{
	struct rt_model *y;
	bool blocked = false;
	size_t i;

	for_each_model(r, y, i) {
		if (y == x || !is_running(y) || !evicts(r, x, y))
			continue;
		if (!y->committed && y->inflight == 0 &&
		    (y->state == RT_READY || y->state == RT_STARTING))
			stop_model(r, y);
		blocked = true;		/* until router_stopped(y) */
	}
	if (blocked || x->state == RT_STOPPING)
		return;
	if (x->state == RT_STOPPED) {
		x->state = RT_STARTING;
		x->starts++;
		r->fx->start(r->ctx, x);
	} else if (x->state == RT_READY) {
		finish_start(r, x);
	}
}

/* Try to take q (queued) further; true if it left the queue. */
static bool try_request(struct router *r, struct rt_req *q)
{
	struct rt_model *x = q->model;

	if (x->committed) {
		list_remove(&r->queue, q);
		q->where = RQ_WAITING;
		list_append(&x->waiters, q);
		return true;
	}
	if (x->state == RT_READY && !needs_evict(r, x) && !collides(r, x)) {
		list_remove(&r->queue, q);
		grant(r, q);
		return true;
	}
	if (collides(r, x) || evicts_busy(r, x))
		return false;
	list_remove(&r->queue, q);
	q->where = RQ_WAITING;
	list_append(&x->waiters, q);
	x->committed = true;
	r->dirty = true;
	return true;
}

static void reap_retired(struct router *r)
{
	struct rt_model **pp = &r->retired, *m;

	while ((m = *pp)) {
		if (!m->inflight && (m->state == RT_READY || m->state == RT_STARTING))
			stop_model(r, m);
		if (m->state == RT_STOPPED && !m->inflight && !m->reserved) {
			*pp = m->next_retired;
			model_free(r, m);
			continue;
		}
		pp = &m->next_retired;
	}
}

static void settle(struct router *r)
{
	struct rt_model *m;
	struct rt_req *q, *next;
	size_t i;

	if (r->settling) {
		r->dirty = true;
		return;
	}
	r->settling = true;
	do {
		r->dirty = false;
		for_each_model(r, m, i)
			if (m->committed)
				progress(r, m);
		for (q = r->queue.head; q; q = next) {
			next = q->next;
			try_request(r, q);
		}
		reap_retired(r);
	} while (r->dirty);
	r->settling = false;
}

void sv_router_request(struct router *r, struct rt_req *q, struct rt_model *m)
{
	char msg[512];

	q->model = NULL;
	q->where = RQ_NONE;
	if (r->shutting_down) {
		r->fx->fail(r->ctx, q, 503, "pegpu serve is shutting down; retry once it is back");
		return;
	}
	if (m->reserved >= (unsigned)m->sm->concurrency_limit) {
		snprintf(msg, sizeof(msg),
			 "model '%s' already has %u requests in progress or waiting, its limit (concurrencyLimit: %d); retry later or raise concurrencyLimit",
			 m->id, m->reserved, m->sm->concurrency_limit);
		r->fx->fail(r->ctx, q, 429, msg);
		return;
	}
	m->reserved++;
	q->model = m;
	q->where = RQ_QUEUED;
	list_append(&r->queue, q);
	settle(r);
}

void sv_router_cancel(struct router *r, struct rt_req *q)
{
	struct rt_model *m = q->model;

	if (q->where == RQ_QUEUED)
		list_remove(&r->queue, q);
	else if (q->where == RQ_WAITING)
		list_remove(&m->waiters, q);
	else
		return;
	q->where = RQ_NONE;
	m->reserved--;
	/* Nobody needs a start that has not begun yet any more. */
	if (m->committed && !m->waiters.n && m->state != RT_STARTING && m->state != RT_READY)
		m->committed = false;
	settle(r);
}

void sv_router_done(struct router *r, struct rt_req *q)
{
	struct rt_model *m = q->model;
	bool keep;

	if (q->where != RQ_SERVING)
		return;
	q->where = RQ_NONE;
	m->inflight--;
	m->reserved--;
	/* settle first: if a queued start evicts m now, m is not idle.
	 * Only a retired model can be freed by settle(). */
	keep = !m->retired;
	settle(r);
	if (keep && !m->inflight)
		idle_check(r, m);
}

void sv_router_started(struct router *r, struct rt_model *m)
{
	if (m->state != RT_STARTING)
		return;		/* stopped meanwhile */
	m->state = RT_READY;
	if (m->committed)
		finish_start(r, m);
	idle_check(r, m);
	settle(r);
}

void sv_router_start_failed(struct router *r, struct rt_model *m, const char *why)
{
	m->failures++;
	m->committed = false;
	fail_waiters(r, m, 502, why);
	if (m->state == RT_STARTING)
		m->state = RT_STOPPING;	/* the effects side is killing it */
	settle(r);
}

void sv_router_exiting(struct router *r, struct rt_model *m)
{
	if (m->state == RT_READY) {
		m->crashes++;
		m->state = RT_STOPPING;
		settle(r);
	}
}

void sv_router_stopped(struct router *r, struct rt_model *m)
{
	enum rt_state was = m->state;
	char msg[300];

	m->state = RT_STOPPED;
	if (was == RT_READY)
		m->crashes++;
	if (was == RT_STARTING && m->committed) {
		m->failures++;
		m->committed = false;
		snprintf(msg, sizeof(msg),
			 "model '%s' exited while starting; GET /logs shows its output", m->id);
		fail_waiters(r, m, 502, msg);
	}
	settle(r);
}

void sv_router_ttl(struct router *r, struct rt_model *m)
{
	if (m->state == RT_READY && !m->inflight && !m->reserved && !m->committed) {
		stop_model(r, m);
		settle(r);
	}
}

static void unload_one(struct router *r, struct rt_model *m, const char *why)
{
	struct rt_req *q, *next;

	fail_waiters(r, m, 503, why);
	for (q = r->queue.head; q; q = next) {
		next = q->next;
		if (q->model == m) {
			list_remove(&r->queue, q);
			fail(r, q, 503, why);
		}
	}
	m->committed = false;
	if (m->state == RT_READY || m->state == RT_STARTING)
		stop_model(r, m);
}

void sv_router_unload(struct router *r, struct rt_model *m, const char *why)
{
	struct rt_model *y;
	size_t i;

	if (m) {
		unload_one(r, m, why);
	} else {
		for_each_model(r, y, i)
			unload_one(r, y, why);
	}
	settle(r);
}

void sv_router_shutdown(struct router *r)
{
	r->shutting_down = true;
	sv_router_unload(r, NULL, "pegpu serve is shutting down; retry once it is back");
}

bool sv_router_all_stopped(const struct router *r)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->models[i]->state != RT_STOPPED)
			return false;
	for (struct rt_model *m = r->retired; m; m = m->next_retired)
		if (m->state != RT_STOPPED)
			return false;
	return true;
}

/* Point q, which targeted a retired model, at what its name means now. */
static void retarget(struct router *r, struct rt_req *q, struct rt_list *from)
{
	struct rt_model *now = sv_router_find(r, q->name);
	char msg[300];

	list_remove(from, q);
	if (!now) {
		snprintf(msg, sizeof(msg),
			 "model '%s' was removed from the config by a reload; GET /v1/models lists the models now served",
			 q->name);
		fail(r, q, 503, msg);
		return;
	}
	q->model->reserved--;
	now->reserved++;
	q->model = now;
	q->where = RQ_QUEUED;
	list_append(&r->queue, q);
}

/*
 * A reload keeps a model's running process when the model still exists and
 * would be started exactly the same way (serve_model_same_process); its
 * other settings (ttl, aliases, limits...) take effect at once.  A model
 * that changed or disappeared is retired: it takes no new requests, its
 * waiting requests move to the new model of that name, and it is stopped
 * as soon as its last request in flight finishes, so a reload never cuts a
 * reply short.
 */
void sv_router_reload(struct router *r, struct serve_config *cfg)
{
	struct rt_model **models = sv_calloc(cfg->n_models, sizeof(*models));
	struct rt_model *m;
	struct rt_req *q, *next;
	bool *kept = sv_calloc(r->n + 1, sizeof(*kept));

	for (size_t i = 0; i < cfg->n_models; i++) {
		const struct serve_model *nm = &cfg->models[i];
		long old = serve_config_index(r->cfg, nm->id);

		if (old >= 0 && serve_model_same_process(r->models[old]->sm, nm)) {
			m = r->models[old];
			serve_config_unref(m->cfg);
			m->cfg = serve_config_ref(cfg);
			m->sm = nm;
			kept[old] = true;
		} else {
			m = model_new(cfg, nm);
		}
		models[i] = m;
	}
	for (size_t i = 0; i < r->n; i++) {
		if (kept[i])
			continue;
		m = r->models[i];
		m->retired = true;
		m->committed = false;
		m->next_retired = r->retired;
		r->retired = m;
	}
	free(kept);
	free(r->models);
	r->models = models;
	r->n = cfg->n_models;
	serve_config_unref(r->cfg);
	r->cfg = serve_config_ref(cfg);

	for (m = r->retired; m; m = m->next_retired)
		while ((q = m->waiters.head))
			retarget(r, q, &m->waiters);
	for (q = r->queue.head; q; q = next) {
		next = q->next;
		if (q->model->retired) {
			/* keep arrival order: move to the tail in turn */
			retarget(r, q, &r->queue);
		}
	}
	settle(r);
}
