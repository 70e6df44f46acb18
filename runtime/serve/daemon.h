/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The pegpu serve daemon: one libevent loop that owns the HTTP server, the
 * router, the model processes and the logs.  Everything runs on that one
 * thread, so no state needs a lock; slow work (a model loading, a reply
 * streaming) is only ever waited for through events.
 */
#ifndef PEGPU_SERVE_DAEMON_H
#define PEGPU_SERVE_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <event2/event.h>
#include <event2/http.h>

#include "config.h"
#include "logring.h"
#include "metrics.h"
#include "router.h"

#define SERVE_DEFAULT_LISTEN	"127.0.0.1:8080"
#define SERVE_DEFAULT_MAX_BODY	(64u << 20)

struct serve_opts {
	const char *config_path;
	const char *listen;		/* host:port */
	const char *state_dir;		/* NULL: $PEGPU_HOME/serve or ~/.pegpu/serve */
	size_t max_body;		/* request body limit in bytes */
};

struct upstream;
struct statedir;
struct rpc_proc;

/* The effects side's data for one rt_model (rt_model.fx_data). */
struct mdata {
	struct daemon *d;
	struct rt_model *m;
	struct event *ttl_ev;
	struct upstream *up;		/* the running process, or NULL */
};

struct daemon {
	struct event_base *base;
	struct evhttp *http;
	struct serve_opts opts;
	struct serve_config *cfg;
	struct router *router;
	struct logring *log;
	struct serve_metrics *metrics;
	struct statedir *state;
	char *token;			/* marks our children (see statedir.c) */
	struct upstream *upstreams;	/* every process instance not yet reaped */
	struct rpc_proc *rpcs;		/* supervised RPC servers (rpcsup.c) */
	bool rpcs_stopping;		/* shutdown has stopped them */
	struct event *sig_hup, *sig_term, *sig_int, *sig_chld;
	struct event *shutdown_ev;	/* polls until every model stopped */
	struct event *trash_ev;		/* frees connections outside callbacks */
	struct evhttp_connection **trash;
	size_t n_trash, cap_trash;
	unsigned long next_req_id;
	bool shutting_down;
	int exit_code;
};

/* daemon.c: runs until SIGTERM/SIGINT; 0 after a clean stop, 1 if it
 * could not start (the reason is printed). */
int serve_run(const struct serve_opts *opts);
void serve_log(struct daemon *d, enum serve_log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Free an evhttp connection from the next loop turn (never from inside
 * one of its own callbacks). */
void serve_trash_conn(struct daemon *d, struct evhttp_connection *c);
struct mdata *serve_mdata(struct daemon *d, struct rt_model *m);

/* upstream.c: model processes */
void sv_upstream_start(struct daemon *d, struct rt_model *m);
void sv_upstream_stop(struct daemon *d, struct rt_model *m);
void sv_upstream_on_sigchld(struct daemon *d);
/* Reap up's process now if it has exited (so a request that found it
 * dead sees the model stopped, not ready).  True if it is gone or going. */
bool sv_upstream_check_dead(struct daemon *d, struct upstream *up);
void sv_upstream_kill_all(struct daemon *d, int sig);
pid_t sv_upstream_pid(const struct upstream *up);
/* Connections to a model's server, kept alive between requests. */
struct evhttp_connection *sv_upstream_conn_get(struct upstream *up, bool *reused);
void sv_upstream_conn_put(struct upstream *up, struct evhttp_connection *c);
void sv_upstream_ref(struct upstream *up);
void sv_upstream_unref(struct upstream *up);

/* http.c: the HTTP front */
int sv_http_start(struct daemon *d);
void sv_http_stop(struct daemon *d);

/* proxy.c: router effects that touch requests */
void sv_proxy_grant(struct daemon *d, struct rt_req *q);
void sv_proxy_fail(struct daemon *d, struct rt_req *q, int status, const char *msg);

#endif /* PEGPU_SERVE_DAEMON_H */
