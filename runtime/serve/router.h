/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The router: which model serves a request, when a model is started or
 * stopped, and who waits.  It is a pure state machine: it does no I/O,
 * starts no processes and keeps no clock; it asks for side effects through
 * struct router_effects and learns their outcome through the router_*
 * calls below.  That keeps every scheduling decision unit-testable with a
 * fake effects table (tests/serve/unit/test_serve_router.c).
 *
 * Per model, the process state is STOPPED, STARTING (spawned, not yet
 * healthy), READY or STOPPING.  A model may also be "committed": a request
 * needs it, and it starts as soon as the models it evicts have stopped.
 *
 * A request is admitted when its model has fewer than concurrencyLimit
 * requests admitted (waiting or being served); otherwise it is refused with
 * 429.  An admitted request is then, in arrival order:
 *   - served at once if its model is READY, nothing must be evicted for it
 *     and no committed start is about to evict it;
 *   - joined to its model's committed start;
 *   - left queued if starting its model would evict a model that is busy
 *     or collide with another committed start (retried whenever something
 *     finishes);
 *   - otherwise its model is committed: the models to evict are stopped,
 *     then the model is started, and every joined request is served once
 *     it is READY (or failed if it cannot start).
 *
 * Eviction follows llama-swap's groups: starting X stops a running model Y
 * if Y is in X's group and the group has swap: true, or if Y is in another
 * group, X's group is exclusive and Y's group is not persistent.
 *
 * Effects must not call back into the router synchronously, with one
 * exception: a grant may finish its request at once (sv_router_done), which
 * the router tolerates.
 */
#ifndef PEGPU_SERVE_ROUTER_H
#define PEGPU_SERVE_ROUTER_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

enum rt_state {
	RT_STOPPED,
	RT_STARTING,
	RT_READY,
	RT_STOPPING,
};

enum rq_where {
	RQ_NONE,	/* not known to the router */
	RQ_QUEUED,	/* in the router's queue */
	RQ_WAITING,	/* joined to its model's committed start */
	RQ_SERVING,	/* granted; sv_router_done() ends it */
};

struct rt_model;

/* A request as the router sees it; embedded in the caller's own struct. */
struct rt_req {
	struct rt_model *model;
	struct rt_req *prev, *next;
	enum rq_where where;
	char *name;		/* the model name the client asked for */
};

struct rt_list {
	struct rt_req *head, *tail;
	unsigned n;
};

struct rt_model {
	char *id;
	struct serve_config *cfg;	/* reference held */
	const struct serve_model *sm;	/* entry in cfg */
	enum rt_state state;
	bool committed;
	bool retired;			/* replaced by a reload: no new requests */
	bool idle_told;			/* effects heard "idle" for this idle spell */
	unsigned reserved;		/* admitted and not finished */
	unsigned inflight;		/* granted and not finished */
	struct rt_list waiters;
	uint64_t starts, failures, crashes;
	void *fx_data;			/* for the effects implementation */
	struct rt_model *next_retired;
};

struct router;

struct router_effects {
	/* Start m's process; answer with sv_router_started() or
	 * sv_router_start_failed(), then sv_router_stopped() when it is gone. */
	void (*start)(void *ctx, struct rt_model *m);
	/* Stop m's process; answer with sv_router_stopped(). */
	void (*stop)(void *ctx, struct rt_model *m);
	/* Serve q by m (READY); answer with sv_router_done(). */
	void (*grant)(void *ctx, struct rt_req *q);
	/* Answer q with an HTTP error; the router has forgotten q. */
	void (*fail)(void *ctx, struct rt_req *q, int status, const char *msg);
	/* m is READY with nothing in flight: arm its TTL (sv_router_ttl()). */
	void (*idle)(void *ctx, struct rt_model *m);
	/* A retired model has stopped and is forgotten: free fx_data. */
	void (*forget)(void *ctx, struct rt_model *m);
};

struct router *sv_router_new(const struct router_effects *fx, void *ctx, struct serve_config *cfg);
/* Frees models and lists; callers fail their own requests first
 * (sv_router_shutdown). */
void sv_router_free(struct router *r);

/* Use cfg from now on (see router.c for what happens to running models). */
void sv_router_reload(struct router *r, struct serve_config *cfg);

/* Current model by id or alias; NULL if none. */
struct rt_model *sv_router_find(struct router *r, const char *name);
size_t sv_router_count(const struct router *r);
struct rt_model *sv_router_model(struct router *r, size_t i);

/* Submit q (q->name set, q->where == RQ_NONE) for model m. */
void sv_router_request(struct router *r, struct rt_req *q, struct rt_model *m);
/* The client of a queued or waiting request went away. */
void sv_router_cancel(struct router *r, struct rt_req *q);
/* A granted request finished. */
void sv_router_done(struct router *r, struct rt_req *q);

void sv_router_started(struct router *r, struct rt_model *m);
void sv_router_start_failed(struct router *r, struct rt_model *m, const char *why);
/* m's process exited on its own and is being cleaned up: take no more
 * requests to it; sv_router_stopped() follows once it is all gone. */
void sv_router_exiting(struct router *r, struct rt_model *m);
/* m's process is gone (stopped, crashed or failed to start). */
void sv_router_stopped(struct router *r, struct rt_model *m);

/* m's TTL elapsed since it went idle: stop it if still idle. */
void sv_router_ttl(struct router *r, struct rt_model *m);
/* Stop m (or every model if m is NULL); its waiting requests fail with 503. */
void sv_router_unload(struct router *r, struct rt_model *m, const char *why);
/* Fail every queued and waiting request and stop every model. */
void sv_router_shutdown(struct router *r);

const char *sv_rt_state_name(enum rt_state s);
/* Requests admitted for m that are not yet being served. */
unsigned sv_rt_model_queued(const struct rt_model *m);
/* Whether anything still runs or is about to (for shutdown). */
bool sv_router_all_stopped(const struct router *r);

#endif /* PEGPU_SERVE_ROUTER_H */
