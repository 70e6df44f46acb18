/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pegpu serve's main loop: load the config, sweep what a previous daemon
 * left, listen, and turn signals into reloads and shutdowns.  Also the
 * router's effects table, which maps its decisions onto processes
 * (upstream.c) and requests (proxy.c).
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/http.h>

#include "daemon.h"
#include "reqctx.h"
#include "rpcsup.h"
#include "statedir.h"
#include "util.h"

#define LOG_RING_LINES		5000
#define SHUTDOWN_POLL_MS	50
#define SHUTDOWN_GRACE_S	3

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void serve_log(struct daemon *d, enum serve_log_level lvl, const char *fmt, ...)
{
	enum serve_log_level min = d->cfg ? d->cfg->log_level : SERVE_LOG_INFO;
	enum serve_log_to to = d->cfg ? d->cfg->log_to_stdout : SERVE_LOG_PROXY;
	struct timespec ts;
	struct tm tm;
	char stamp[40];
	va_list ap;
	char *msg, *line;

	if (lvl < min)
		return;
	va_start(ap, fmt);
	msg = sv_vasprintf(fmt, ap);
	va_end(ap);
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	line = sv_asprintf("%s.%03ldZ %-5s %s", stamp, ts.tv_nsec / 1000000, level_names[lvl], msg);
	if (d->log)
		sv_logring_add(d->log, LOG_PROXY, line, strlen(line));
	if (!d->cfg && lvl >= SERVE_LOG_WARN)
		fprintf(stderr, "pegpu serve: %s\n", msg);
	else if (to == SERVE_LOG_PROXY || to == SERVE_LOG_BOTH)
		printf("%s\n", line);
	free(line);
	free(msg);
}

static void trash_cb(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;

	(void)fd;
	(void)what;
	/* freeing may close sockets whose callbacks trash more */
	while (d->n_trash)
		evhttp_connection_free(d->trash[--d->n_trash]);
}

void serve_trash_conn(struct daemon *d, struct evhttp_connection *c)
{
	if (!c)
		return;
	if (d->n_trash == d->cap_trash) {
		d->cap_trash = d->cap_trash ? d->cap_trash * 2 : 16;
		d->trash = sv_realloc(d->trash, d->cap_trash * sizeof(*d->trash));
	}
	d->trash[d->n_trash++] = c;
	event_active(d->trash_ev, EV_TIMEOUT, 0);
}

static void ttl_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mdata *md = arg;

	(void)fd;
	(void)what;
	if (md->m->state == RT_READY && !md->m->inflight)
		serve_log(md->d, SERVE_LOG_INFO, "model '%s' was idle for its ttl of %d s; unloading",
			  md->m->id, md->m->sm->ttl);
	sv_router_ttl(md->d->router, md->m);
}

struct mdata *serve_mdata(struct daemon *d, struct rt_model *m)
{
	struct mdata *md = m->fx_data;

	if (!md) {
		md = sv_calloc(1, sizeof(*md));
		md->d = d;
		md->m = m;
		md->ttl_ev = evtimer_new(d->base, ttl_cb, md);
		m->fx_data = md;
	}
	return md;
}

/* Router effects */

static void fx_start(void *ctx, struct rt_model *m)
{
	sv_upstream_start(ctx, m);
}

static void fx_stop(void *ctx, struct rt_model *m)
{
	struct daemon *d = ctx;

	event_del(serve_mdata(d, m)->ttl_ev);
	sv_upstream_stop(d, m);
}

static void fx_grant(void *ctx, struct rt_req *q)
{
	sv_proxy_grant(ctx, q);
}

static void fx_fail(void *ctx, struct rt_req *q, int status, const char *msg)
{
	sv_proxy_fail(ctx, q, status, msg);
}

static void fx_idle(void *ctx, struct rt_model *m)
{
	struct daemon *d = ctx;
	struct mdata *md = serve_mdata(d, m);

	/* Re-armed at every idle moment, so it fires a full ttl after the
	 * last request ended; sv_router_ttl() ignores it if busy again. */
	if (m->sm->ttl > 0)
		event_add(md->ttl_ev, &(struct timeval){ m->sm->ttl, 0 });
	else
		event_del(md->ttl_ev);
}

static void fx_forget(void *ctx, struct rt_model *m)
{
	struct mdata *md = m->fx_data;

	(void)ctx;
	if (!md)
		return;
	event_free(md->ttl_ev);
	free(md);
	m->fx_data = NULL;
}

static const struct router_effects effects = {
	.start = fx_start,
	.stop = fx_stop,
	.grant = fx_grant,
	.fail = fx_fail,
	.idle = fx_idle,
	.forget = fx_forget,
};

static void log_diag(struct daemon *d, const struct serve_diag *dg)
{
	for (size_t i = 0; i < dg->n; i++) {
		char *s = sv_diag_format(dg, i);

		serve_log(d, dg->v[i].severity == DIAG_ERROR ? SERVE_LOG_ERROR : SERVE_LOG_WARN, "%s", s);
		free(s);
	}
}

static void reload(struct daemon *d)
{
	struct serve_diag dg;
	struct serve_config *cfg;

	sv_diag_init(&dg, d->opts.config_path);
	cfg = serve_config_load_file(d->opts.config_path, &dg);
	log_diag(d, &dg);
	if (!cfg) {
		serve_log(d, SERVE_LOG_ERROR, "config reload failed with %u error%s; still serving the previous config",
			  dg.n_errors, dg.n_errors == 1 ? "" : "s");
		sv_metrics_reload(d->metrics, false);
		sv_diag_free(&dg);
		return;
	}
	sv_diag_free(&dg);
	sv_router_reload(d->router, cfg);
	serve_config_unref(d->cfg);
	d->cfg = cfg;
	sv_rpcsup_sync(d);
	sv_metrics_reload(d->metrics, true);
	serve_log(d, SERVE_LOG_INFO, "config reloaded from %s: %zu model%s", cfg->path, cfg->n_models,
		  cfg->n_models == 1 ? "" : "s");
}

static void shutdown_poll(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	static const struct timeval tick = { 0, SHUTDOWN_POLL_MS * 1000 };

	(void)fd;
	(void)what;
	if (!d->upstreams && sv_router_all_stopped(d->router)) {
		/* the RPC servers last: the models were their clients */
		if (!d->rpcs_stopping) {
			d->rpcs_stopping = true;
			sv_rpcsup_stop_all(d);
		}
		if (sv_rpcsup_all_stopped(d)) {
			event_base_loopexit(d->base, NULL);
			return;
		}
	}
	event_add(d->shutdown_ev, &tick);
}

static void begin_shutdown(struct daemon *d, int sig)
{
	int longest = 0;

	if (d->shutting_down) {
		serve_log(d, SERVE_LOG_WARN, "second %s: killing every model now", strsignal(sig));
		sv_upstream_kill_all(d, SIGKILL);
		sv_rpcsup_kill_all(d, SIGKILL);
		event_base_loopexit(d->base, NULL);
		return;
	}
	d->shutting_down = true;
	serve_log(d, SERVE_LOG_INFO, "%s: stopping every model, then exiting", strsignal(sig));
	sv_router_shutdown(d->router);
	for (size_t i = 0; i < sv_router_count(d->router); i++)
		if (sv_router_model(d->router, i)->sm->unload_timeout > longest)
			longest = sv_router_model(d->router, i)->sm->unload_timeout;
	/* A model that ignores even SIGKILL's timer is not waited for
	 * forever; the RPC servers get their own unloadTimeout after that. */
	event_base_loopexit(d->base, &(struct timeval){ longest + d->cfg->unload_timeout +
							SHUTDOWN_GRACE_S, 0 });
	d->shutdown_ev = evtimer_new(d->base, shutdown_poll, d);
	shutdown_poll(-1, 0, d);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;

	(void)what;
	switch (sig) {
	case SIGHUP:
		serve_log(d, SERVE_LOG_INFO, "SIGHUP: reloading %s", d->opts.config_path);
		reload(d);
		break;
	case SIGCHLD:
		sv_upstream_on_sigchld(d);
		break;
	default:
		begin_shutdown(d, (int)sig);
		break;
	}
}

static char *default_state_dir(void)
{
	const char *home = getenv("PEGPU_HOME");

	if (home && *home)
		return sv_asprintf("%s/serve", home);
	home = getenv("HOME");
	return sv_asprintf("%s/.pegpu/serve", home && *home ? home : ".");
}

static void sweep_log(void *arg, const char *msg)
{
	serve_log(arg, SERVE_LOG_WARN, "%s", msg);
}

int serve_run(const struct serve_opts *opts)
{
	struct daemon *d = sv_calloc(1, sizeof(*d));
	struct serve_diag dg;
	char *state_dir = NULL, *err = NULL;
	int ret = 1;

	d->opts = *opts;
	if (!d->opts.listen)
		d->opts.listen = SERVE_DEFAULT_LISTEN;
	if (!d->opts.max_body)
		d->opts.max_body = SERVE_DEFAULT_MAX_BODY;
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);	/* a client that leaves must not kill us */

	sv_diag_init(&dg, opts->config_path);
	d->cfg = serve_config_load_file(opts->config_path, &dg);
	sv_diag_print(&dg, stderr);
	sv_diag_free(&dg);
	if (!d->cfg) {
		fprintf(stderr, "pegpu serve: %s has errors; fix them and start again (pegpu serve --check %s checks without starting)\n",
			opts->config_path, opts->config_path);
		goto out;
	}
	{
		/* Batch epoll_ctl calls: evhttp enables and disables a socket's
		 * events several times per request; the changelist folds the
		 * changes made within one loop turn into one syscall.  (Its
		 * caveat, fds shared through dup(), does not apply here.) */
		struct event_config *ec = event_config_new();

		event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
		d->base = event_base_new_with_config(ec);
		event_config_free(ec);
	}
	d->log = sv_logring_new(LOG_RING_LINES);
	d->metrics = sv_metrics_new();
	d->trash_ev = event_new(d->base, -1, 0, trash_cb, d);

	state_dir = opts->state_dir ? sv_strdup(opts->state_dir) : default_state_dir();
	d->state = sv_statedir_open(state_dir, &err);
	if (!d->state) {
		serve_log(d, SERVE_LOG_ERROR, "%s", err);
		goto out;
	}
	sv_statedir_sweep(d->state, sweep_log, d);
	d->token = sv_statedir_new_token();

	d->router = sv_router_new(&effects, d, d->cfg);
	if (sv_http_start(d))
		goto out;
	sv_rpcsup_sync(d);
	d->sig_hup = evsignal_new(d->base, SIGHUP, on_signal, d);
	d->sig_term = evsignal_new(d->base, SIGTERM, on_signal, d);
	d->sig_int = evsignal_new(d->base, SIGINT, on_signal, d);
	d->sig_chld = evsignal_new(d->base, SIGCHLD, on_signal, d);
	event_add(d->sig_hup, NULL);
	event_add(d->sig_term, NULL);
	event_add(d->sig_int, NULL);
	event_add(d->sig_chld, NULL);

	serve_log(d, SERVE_LOG_INFO, "pegpu serve listening on http://%s (%zu model%s from %s, state in %s)",
		  d->opts.listen, d->cfg->n_models, d->cfg->n_models == 1 ? "" : "s", d->cfg->path,
		  state_dir);
	for (size_t i = 0; i < d->cfg->preload.n; i++)
		sv_proxy_preload(d, d->cfg->preload.v[i]);

	event_base_dispatch(d->base);
	sv_upstream_kill_all(d, SIGKILL);	/* whatever outlived the grace */
	sv_rpcsup_kill_all(d, SIGKILL);
	ret = 0;
	serve_log(d, SERVE_LOG_INFO, "pegpu serve stopped");
out:
	sv_http_stop(d);
	if (d->trash_ev)
		trash_cb(-1, 0, d);
	sv_router_free(d->router);
	sv_rpcsup_free(d);
	if (d->state)
		sv_statedir_close(d->state);
	{
		struct event *evs[] = { d->sig_hup, d->sig_term, d->sig_int, d->sig_chld,
					d->shutdown_ev, d->trash_ev };

		for (size_t i = 0; i < ARRAY_SIZE(evs); i++)
			if (evs[i])
				event_free(evs[i]);
	}
	free(d->trash);
	free(d->token);
	free(state_dir);
	free(err);
	sv_logring_free(d->log);
	sv_metrics_free(d->metrics);
	serve_config_unref(d->cfg);
	if (d->base)
		event_base_free(d->base);
	free(d);
	return ret;
}
