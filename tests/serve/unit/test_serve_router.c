/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests: the router state machine, driven through a fake effects table
 * that records what the router asks for ("start a", "grant 3", ...).  No
 * processes, sockets or clocks: every step is explicit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "router.h"

#define MAX_REQS 32

struct treq {
	struct rt_req rq;
	int id;
	int status;	/* 0 waiting, 200 granted, else failed */
	bool done_on_grant;
};

struct world {
	struct serve_config *cfg;
	struct router *r;
	char log[4096];
	struct treq reqs[MAX_REQS];
	int n;
};

static struct world W;

#define treq_of(q) ((struct treq *)((char *)(q) - offsetof(struct treq, rq)))

static void note(const char *fmt, ...)
{
	va_list ap;
	size_t len = strlen(W.log);

	if (len)
		W.log[len++] = ';';
	va_start(ap, fmt);
	vsnprintf(W.log + len, sizeof(W.log) - len, fmt, ap);
	va_end(ap);
}

static void fx_start(void *ctx, struct rt_model *m)
{
	(void)ctx;
	note("start %s", m->id);
}

static void fx_stop(void *ctx, struct rt_model *m)
{
	(void)ctx;
	note("stop %s", m->id);
}

static void fx_grant(void *ctx, struct rt_req *q)
{
	struct treq *t = treq_of(q);

	(void)ctx;
	t->status = 200;
	note("grant %d %s", t->id, q->model->id);
	if (t->done_on_grant)
		sv_router_done(W.r, q);		/* re-entry the router must survive */
}

static void fx_fail(void *ctx, struct rt_req *q, int status, const char *msg)
{
	struct treq *t = treq_of(q);

	(void)ctx;
	(void)msg;
	t->status = status;
	note("fail %d %d", t->id, status);
}

static void fx_idle(void *ctx, struct rt_model *m)
{
	(void)ctx;
	note("idle %s", m->id);
}

static const struct router_effects fx = {
	.start = fx_start, .stop = fx_stop, .grant = fx_grant, .fail = fx_fail, .idle = fx_idle,
};

/* Check and clear the effect log. */
static void expect(const char *want)
{
	if (strcmp(W.log, want)) {
		fprintf(stderr, "effects: got  \"%s\"\n         want \"%s\"\n", W.log, want);
		fail();
	}
	W.log[0] = '\0';
}

static struct serve_config *config(const char *yaml)
{
	struct serve_diag d;
	struct serve_config *cfg;

	sv_diag_init(&d, "test.yaml");
	cfg = serve_config_load_string(yaml, strlen(yaml), "test.yaml", &d);
	if (!cfg)
		sv_diag_print(&d, stderr);
	assert_non_null(cfg);
	sv_diag_free(&d);
	return cfg;
}

static void setup_world(const char *yaml)
{
	memset(&W, 0, sizeof(W));
	W.cfg = config(yaml);
	W.r = sv_router_new(&fx, NULL, W.cfg);
}

static void teardown_world(void)
{
	for (int i = 0; i < W.n; i++)
		free(W.reqs[i].rq.name);
	sv_router_free(W.r);
	serve_config_unref(W.cfg);
}

static struct rt_model *M(const char *name)
{
	struct rt_model *m = sv_router_find(W.r, name);

	assert_non_null(m);
	return m;
}

/* Submit request number W.n for name; returns it. */
static struct treq *req(const char *name)
{
	struct treq *t = &W.reqs[W.n];

	t->id = W.n++;
	t->rq.name = strdup(name);
	sv_router_request(W.r, &t->rq, M(name));
	return t;
}

static void done(struct treq *t)
{
	sv_router_done(W.r, &t->rq);
}

static const char *two_models =
	"models:\n"
	"  a:\n    cmd: srv --port ${PORT}\n    aliases: [alpha]\n    concurrencyLimit: 3\n"
	"  b:\n    cmd: srv --port ${PORT}\n";

static void start_queue_and_fast_path(void **state)
{
	struct treq *r0, *r1, *r2;

	(void)state;
	setup_world(two_models);
	r0 = req("a");
	expect("start a");
	assert_int_equal(M("a")->state, RT_STARTING);
	r1 = req("alpha");		/* joins the start in progress */
	expect("");
	assert_int_equal(sv_rt_model_queued(M("a")), 2);
	sv_router_started(W.r, M("a"));
	expect("grant 0 a;grant 1 a");
	assert_int_equal(M("a")->inflight, 2);
	r2 = req("a");			/* ready: served at once */
	expect("grant 2 a");
	done(r0);
	done(r1);
	expect("");
	done(r2);
	expect("idle a");
	assert_int_equal(M("a")->reserved, 0);
	teardown_world();
}

static void concurrency_limit(void **state)
{
	struct treq *t[4];

	(void)state;
	setup_world(two_models);
	for (int i = 0; i < 4; i++)
		t[i] = req("a");
	expect("start a;fail 3 429");
	assert_int_equal(t[3]->status, 429);
	sv_router_started(W.r, M("a"));
	expect("grant 0 a;grant 1 a;grant 2 a");
	done(t[0]);
	t[0] = req("a");		/* a slot is free again */
	expect("grant 4 a");
	teardown_world();
}

static void swap_waits_for_stop(void **state)
{
	struct treq *ta, *tb;

	(void)state;
	setup_world(two_models);
	ta = req("a");
	sv_router_started(W.r, M("a"));
	done(ta);
	expect("start a;grant 0 a;idle a");
	tb = req("b");
	/* same (default) group with swap: a stops, b starts only after */
	expect("stop a");
	assert_int_equal(M("b")->state, RT_STOPPED);
	assert_true(M("b")->committed);
	sv_router_stopped(W.r, M("a"));
	expect("start b");
	sv_router_started(W.r, M("b"));
	expect("grant 1 b");
	done(tb);
	teardown_world();
}

static void swap_waits_for_busy(void **state)
{
	struct treq *ta, *tb, *ta2;

	(void)state;
	setup_world(two_models);
	ta = req("a");
	sv_router_started(W.r, M("a"));
	expect("start a;grant 0 a");
	tb = req("b");		/* a is busy: nothing happens yet */
	expect("");
	assert_int_equal(tb->rq.where, RQ_QUEUED);
	ta2 = req("a");		/* ready a keeps serving (fast path) */
	expect("grant 2 a");
	done(ta);
	expect("");
	done(ta2);		/* a idle: the swap goes ahead */
	expect("stop a");
	sv_router_stopped(W.r, M("a"));
	sv_router_started(W.r, M("b"));
	expect("start b;grant 1 b");
	done(tb);
	teardown_world();
}

static const char *grouped =
	"groups:\n"
	"  keep:\n    persistent: true\n    swap: false\n    exclusive: false\n    members: [p]\n"
	"  side:\n    swap: false\n    exclusive: false\n    members: [x, y]\n"
	"  pair:\n    swap: true\n    exclusive: false\n    members: [s, t]\n"
	"models:\n"
	"  a:\n    cmd: srv --port ${PORT}\n"
	"  p:\n    cmd: srv --port ${PORT}\n"
	"  s:\n    cmd: srv --port ${PORT}\n"
	"  t:\n    cmd: srv --port ${PORT}\n"
	"  x:\n    cmd: srv --port ${PORT}\n"
	"  y:\n    cmd: srv --port ${PORT}\n";

static void run_idle(const char *name)
{
	struct treq *t = req(name);

	if (M(name)->state == RT_STARTING)
		sv_router_started(W.r, M(name));
	done(t);
}

static void groups(void **state)
{
	(void)state;
	setup_world(grouped);
	run_idle("p");
	run_idle("x");
	run_idle("y");		/* side: no swap, not exclusive: all three run */
	expect("start p;grant 0 p;idle p;start x;grant 1 x;idle x;start y;grant 2 y;idle y");
	run_idle("s");
	expect("start s;grant 3 s;idle s");
	req("t");		/* pair swaps within itself only */
	expect("stop s");
	sv_router_stopped(W.r, M("s"));
	sv_router_started(W.r, M("t"));
	done(&W.reqs[4]);
	expect("start t;grant 4 t;idle t");
	req("a");		/* default group is exclusive: all but the persistent p */
	expect("stop t;stop x;stop y");
	sv_router_stopped(W.r, M("x"));
	sv_router_stopped(W.r, M("y"));
	expect("");
	sv_router_stopped(W.r, M("t"));
	expect("start a");
	assert_int_equal(M("p")->state, RT_READY);
	teardown_world();
}

/*
 * Split models that share an RPC server evict each other even where their
 * groups would let them run together (it serves one client); a split model
 * on another server, and a model without a split, are left alone.
 */
static void shared_rpc_server(void **state)
{
	(void)state;
	setup_world("rpcServers:\n  egpu: {endpoint: '10.0.0.2:50052'}\n"
		    "models:\n"
		    "  a:\n    cmd: srv --port ${PORT} -m a.gguf\n    split: {rpc: [egpu]}\n"
		    "  b:\n    cmd: srv --port ${PORT} -m b.gguf\n    split: {rpc: ['10.0.0.2:50052']}\n"
		    "  c:\n    cmd: srv --port ${PORT} -m c.gguf\n    split: {rpc: ['10.0.0.3:50052']}\n"
		    "  d:\n    cmd: srv --port ${PORT}\n"
		    "groups:\n  all:\n    swap: false\n    members: [a, b, c, d]\n");
	run_idle("a");
	run_idle("c");
	run_idle("d");		/* one group without swap: all three run */
	expect("start a;grant 0 a;idle a;start c;grant 1 c;idle c;start d;grant 2 d;idle d");
	req("b");		/* b's server is a's: a must go first */
	expect("stop a");
	sv_router_stopped(W.r, M("a"));
	expect("start b");
	assert_int_equal(M("c")->state, RT_READY);
	assert_int_equal(M("d")->state, RT_READY);
	teardown_world();
}

static void start_failure_and_crash(void **state)
{
	struct treq *t0, *t1, *t2;

	(void)state;
	setup_world(two_models);
	t0 = req("a");
	t1 = req("a");
	sv_router_start_failed(W.r, M("a"), "boom");
	expect("start a;fail 0 502;fail 1 502");
	assert_int_equal(M("a")->state, RT_STOPPING);
	sv_router_stopped(W.r, M("a"));
	assert_int_equal(M("a")->reserved, 0);
	/* exits during start without a start_failed report */
	t2 = req("a");
	sv_router_stopped(W.r, M("a"));
	expect("start a;fail 2 502");
	assert_int_equal(t2->status, 502);
	/* a ready model crashes; the next request starts it again */
	t2 = req("a");
	sv_router_started(W.r, M("a"));
	done(t2);
	expect("start a;grant 3 a;idle a");
	sv_router_exiting(W.r, M("a"));
	assert_int_equal(M("a")->state, RT_STOPPING);
	t2 = req("a");		/* waits for the cleanup, then restarts */
	expect("");
	sv_router_stopped(W.r, M("a"));
	expect("start a");
	assert_int_equal(M("a")->crashes, 1);
	(void)t0;
	(void)t1;
	teardown_world();
}

static void ttl_and_unload(void **state)
{
	struct treq *t, *w;

	(void)state;
	setup_world(two_models);
	t = req("a");
	sv_router_started(W.r, M("a"));
	sv_router_ttl(W.r, M("a"));	/* busy: ignored */
	expect("start a;grant 0 a");
	done(t);
	sv_router_ttl(W.r, M("a"));
	expect("idle a;stop a");
	sv_router_stopped(W.r, M("a"));
	w = req("a");
	sv_router_unload(W.r, M("a"), "unloaded");
	expect("start a;fail 1 503;stop a");
	assert_int_equal(w->status, 503);
	sv_router_stopped(W.r, M("a"));
	assert_true(sv_router_all_stopped(W.r));
	teardown_world();
}

static void cancel_uncommits(void **state)
{
	struct treq *ta, *tb;

	(void)state;
	setup_world(two_models);
	ta = req("a");
	sv_router_started(W.r, M("a"));
	expect("start a;grant 0 a");
	tb = req("b");
	assert_int_equal(tb->rq.where, RQ_QUEUED);
	sv_router_cancel(W.r, &tb->rq);		/* its client left */
	done(ta);
	expect("idle a");			/* nothing starts for nobody */
	assert_false(M("b")->committed);
	assert_int_equal(M("b")->reserved, 0);
	teardown_world();
}

static void reentrant_done(void **state)
{
	struct treq *t;

	(void)state;
	setup_world(two_models);
	t = &W.reqs[0];
	t->done_on_grant = true;	/* like a preload: finished inside the grant */
	req("a");
	sv_router_started(W.r, M("a"));
	expect("start a;grant 0 a;idle a");
	assert_int_equal(M("a")->inflight, 0);
	assert_int_equal(M("a")->reserved, 0);
	teardown_world();
}

static void reload(void **state)
{
	struct serve_config *cfg2;
	struct treq *ta, *tq;

	(void)state;
	setup_world("models:\n  a:\n    cmd: srv --port ${PORT}\n    ttl: 5\n"
		    "  b:\n    cmd: srv --port ${PORT} -v1\n    aliases: [bee]\n"
		    "  gone:\n    cmd: srv --port ${PORT}\n");
	ta = req("a");
	sv_router_started(W.r, M("a"));
	expect("start a;grant 0 a");
	/* a keeps its process (same command, new ttl); b's command changes */
	cfg2 = config("models:\n  a:\n    cmd: srv --port ${PORT}\n    ttl: 50\n"
		      "  b:\n    cmd: srv --port ${PORT} -v2\n    aliases: [bee]\n");
	tq = req("bee");	/* queued behind busy a */
	assert_int_equal(tq->rq.where, RQ_QUEUED);
	sv_router_reload(W.r, cfg2);
	serve_config_unref(cfg2);
	assert_int_equal(M("a")->state, RT_READY);
	assert_int_equal(M("a")->sm->ttl, 50);
	assert_null(sv_router_find(W.r, "gone"));
	assert_int_equal(M("b")->state, RT_STOPPED);
	assert_ptr_equal(tq->rq.model, M("b"));	/* moved to the new b */
	expect("");
	done(ta);		/* in-flight request finished on the kept a */
	expect("stop a");
	sv_router_stopped(W.r, M("a"));
	expect("start b");
	teardown_world();
}

static void reload_retires_busy(void **state)
{
	struct serve_config *cfg2;
	struct treq *t;
	struct rt_model *old;

	(void)state;
	setup_world("models:\n  a:\n    cmd: srv --port ${PORT} -v1\n");
	t = req("a");
	sv_router_started(W.r, M("a"));
	expect("start a;grant 0 a");
	old = M("a");
	cfg2 = config("models:\n  a:\n    cmd: srv --port ${PORT} -v2\n");
	sv_router_reload(W.r, cfg2);
	serve_config_unref(cfg2);
	/* the old instance keeps serving its request; nothing stops yet */
	expect("");
	assert_true(old->retired);
	assert_ptr_not_equal(M("a"), old);
	req("a");		/* the new a must wait for the old one (same port) */
	expect("");
	done(t);		/* old one idle: stopped, then the new one starts */
	expect("stop a");
	sv_router_stopped(W.r, old);
	expect("start a");
	teardown_world();
}

static void shutdown_fails_waiters(void **state)
{
	struct treq *t0, *t1, *t2;

	(void)state;
	setup_world(two_models);
	t0 = req("a");
	sv_router_started(W.r, M("a"));
	t1 = req("b");		/* queued behind busy a */
	sv_router_shutdown(W.r);
	expect("start a;grant 0 a;stop a;fail 1 503");
	t2 = req("a");
	expect("fail 2 503");
	assert_int_equal(t1->status, 503);
	assert_int_equal(t2->status, 503);
	done(t0);
	sv_router_stopped(W.r, M("a"));
	assert_true(sv_router_all_stopped(W.r));
	teardown_world();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(start_queue_and_fast_path),
		cmocka_unit_test(concurrency_limit),
		cmocka_unit_test(swap_waits_for_stop),
		cmocka_unit_test(swap_waits_for_busy),
		cmocka_unit_test(groups),
		cmocka_unit_test(shared_rpc_server),
		cmocka_unit_test(start_failure_and_crash),
		cmocka_unit_test(ttl_and_unload),
		cmocka_unit_test(cancel_uncommits),
		cmocka_unit_test(reentrant_done),
		cmocka_unit_test(reload),
		cmocka_unit_test(reload_retires_busy),
		cmocka_unit_test(shutdown_fails_waiters),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
