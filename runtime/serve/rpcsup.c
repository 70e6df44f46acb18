/* SPDX-License-Identifier: Apache-2.0 */
/* Supervised RPC servers (see rpcsup.h). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "cmdline.h"
#include "daemon.h"
#include "logpipe.h"
#include "reqctx.h"
#include "rpcsup.h"
#include "spawn.h"
#include "statedir.h"
#include "util.h"

#define BACKOFF_FIRST_MS	1000
#define BACKOFF_MAX_MS		30000
#define YOUNG_S			10.0	/* dying sooner than this doubles the back-off */

struct rpc_proc {
	struct daemon *d;
	char *id, *endpoint;
	struct sv_strv argv, env;
	pid_t pid;			/* 0: not running */
	bool stopping;			/* we asked it to stop */
	bool retired;			/* gone from the config: free once stopped */
	unsigned restarts;
	double started;
	int backoff_ms;
	struct sv_strv to_restart;	/* models to start again once it is back */
	struct event *restart_ev, *kill_ev;
	struct logpipe *out;
	struct rpc_proc *next;
};

static void kill_now(evutil_socket_t fd, short what, void *arg)
{
	struct rpc_proc *p = arg;

	(void)fd;
	(void)what;
	if (p->pid > 0) {
		serve_log(p->d, SERVE_LOG_WARN, "RPC server '%s' did not stop in time; sending SIGKILL",
			  p->id);
		killpg(p->pid, SIGKILL);
	}
}

static void proc_start(struct rpc_proc *p)
{
	struct daemon *d = p->d;
	char *err = NULL, *line, *prefix;
	int op[2];

	line = sv_cmdline_join(p->argv.v);
	serve_log(d, SERVE_LOG_INFO, "starting RPC server '%s' (%s): %s", p->id, p->endpoint, line);
	free(line);
	if (pipe2(op, O_CLOEXEC)) {
		err = sv_asprintf("pipe: %s", strerror(errno));
		goto fail;
	}
	p->pid = sv_spawn(p->argv.v, &p->env, d->token, op[1], NULL, NULL, &err);
	close(op[1]);
	if (p->pid < 0) {
		p->pid = 0;
		close(op[0]);
		goto fail;
	}
	prefix = sv_asprintf("rpc %s", p->id);
	p->out = sv_logpipe_new(d, op[0], prefix, NULL, NULL);
	free(prefix);
	p->started = sv_now_s();
	sv_statedir_record(d->state, p->pid, d->token, p->id);
	return;
fail:
	serve_log(d, SERVE_LOG_ERROR, "RPC server '%s' could not be started: %s; check its cmd: under rpcServers: in %s (retrying in %d s)",
		  p->id, err, d->cfg->path, BACKOFF_MAX_MS / 1000);
	free(err);
	p->backoff_ms = BACKOFF_MAX_MS;
	event_add(p->restart_ev, &(struct timeval){ BACKOFF_MAX_MS / 1000, 0 });
}

static void restart_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rpc_proc *p = arg;
	struct daemon *d = p->d;

	(void)fd;
	(void)what;
	if (p->pid || p->retired || d->shutting_down)
		return;
	p->restarts++;
	proc_start(p);
	if (!p->pid)
		return;
	/* the other side: the models it took down; each start waits until
	 * the server listens */
	for (size_t i = 0; i < p->to_restart.n; i++) {
		serve_log(d, SERVE_LOG_INFO, "restarting model '%s' now that RPC server '%s' is back",
			  p->to_restart.v[i], p->id);
		sv_proxy_preload(d, p->to_restart.v[i]);
	}
	sv_strv_free(&p->to_restart);
}

static struct rpc_proc *proc_new(struct daemon *d, const struct serve_rpc_server *r)
{
	struct rpc_proc *p = sv_calloc(1, sizeof(*p));

	p->d = d;
	p->id = sv_strdup(r->id);
	p->endpoint = sv_strdup(r->endpoint);
	for (size_t i = 0; i < r->argv.n; i++)
		sv_strv_push(&p->argv, r->argv.v[i]);
	for (size_t i = 0; i < r->env.n; i++)
		sv_strv_push(&p->env, r->env.v[i]);
	p->backoff_ms = BACKOFF_FIRST_MS;
	p->restart_ev = evtimer_new(d->base, restart_cb, p);
	p->kill_ev = evtimer_new(d->base, kill_now, p);
	p->next = d->rpcs;
	d->rpcs = p;
	return p;
}

static void proc_free(struct rpc_proc *p)
{
	event_free(p->restart_ev);
	event_free(p->kill_ev);
	sv_logpipe_free(p->out);
	free(p->id);
	free(p->endpoint);
	sv_strv_free(&p->argv);
	sv_strv_free(&p->env);
	sv_strv_free(&p->to_restart);
	free(p);
}

static void proc_stop(struct rpc_proc *p)
{
	event_del(p->restart_ev);
	if (!p->pid || p->stopping)
		return;
	p->stopping = true;
	serve_log(p->d, SERVE_LOG_INFO, "stopping RPC server '%s' (SIGTERM to process group %ld)",
		  p->id, (long)p->pid);
	killpg(p->pid, SIGTERM);
	event_add(p->kill_ev, &(struct timeval){ p->d->cfg->unload_timeout, 0 });
}

static const struct serve_rpc_server *cfg_server(const struct serve_config *cfg, const char *id)
{
	for (size_t i = 0; i < cfg->n_rpc_servers; i++)
		if (cfg->rpc_servers[i].cmd && !strcmp(cfg->rpc_servers[i].id, id))
			return &cfg->rpc_servers[i];
	return NULL;
}

static bool same_server(const struct rpc_proc *p, const struct serve_rpc_server *r)
{
	return !strcmp(p->endpoint, r->endpoint) && p->argv.n == r->argv.n &&
	       sv_strv_equal(&p->argv, &r->argv) && sv_strv_equal(&p->env, &r->env);
}

void sv_rpcsup_sync(struct daemon *d)
{
	const struct serve_config *cfg = d->cfg;

	/* servers gone or changed: stop them; a changed one starts again
	 * (below, on a later sync) once the old process has exited */
	for (struct rpc_proc *p = d->rpcs; p; p = p->next) {
		const struct serve_rpc_server *r = cfg_server(cfg, p->id);

		if (p->retired)
			continue;
		if (!r || !r->endpoint || !same_server(p, r)) {
			p->retired = true;
			proc_stop(p);
		}
	}
	for (size_t i = 0; i < cfg->n_rpc_servers; i++) {
		const struct serve_rpc_server *r = &cfg->rpc_servers[i];
		bool have = false;

		if (!r->cmd || !r->endpoint || !r->argv.n)
			continue;
		for (struct rpc_proc *p = d->rpcs; p; p = p->next)
			have |= !strcmp(p->id, r->id);	/* kept, or its old self still stopping */
		if (!have)
			proc_start(proc_new(d, r));
	}
}

static void unlink_proc(struct daemon *d, struct rpc_proc *p)
{
	for (struct rpc_proc **pp = &d->rpcs; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			return;
		}
	}
}

/* Stop every running split model that uses p, remembering them. */
static void take_down_users(struct rpc_proc *p, const char *st)
{
	struct daemon *d = p->d;

	for (size_t i = 0; i < sv_router_count(d->router); i++) {
		struct rt_model *m = sv_router_model(d->router, i);
		const struct serve_split *sp = m->sm->split;
		bool uses = false;

		for (size_t j = 0; sp && j < sp->n_rpc; j++) {
			const char *ep = m->cfg->rpc_servers[sp->rpc[j]].endpoint;

			uses |= ep && !strcmp(ep, p->endpoint);
		}
		if (!uses || (m->state == RT_STOPPED && !m->committed))
			continue;
		char *why = sv_asprintf("model '%s' lost its RPC server '%s' (%s), which %s; pegpu serve is restarting both, retry in a moment",
					m->id, p->id, p->endpoint, st);

		serve_log(d, SERVE_LOG_WARN, "%s", why);
		if (!sv_strv_contains(&p->to_restart, m->id))
			sv_strv_push(&p->to_restart, m->id);
		sv_router_unload(d->router, m, why);
		free(why);
	}
}

static char *describe(int status)
{
	if (WIFEXITED(status))
		return sv_asprintf("exited with status %d", WEXITSTATUS(status));
	if (WIFSIGNALED(status))
		return sv_asprintf("was killed by signal %d (%s)", WTERMSIG(status),
				   strsignal(WTERMSIG(status)));
	return sv_strdup("stopped");
}

bool sv_rpcsup_reaped(struct daemon *d, pid_t pid, int status)
{
	struct rpc_proc *p;
	char *st;

	for (p = d->rpcs; p && p->pid != pid; p = p->next)
		;
	if (!p)
		return false;
	/* The group may still hold a child of a wrapper: it goes too. */
	killpg(pid, p->stopping ? SIGKILL : SIGTERM);
	sv_statedir_forget(d->state, pid);
	sv_logpipe_free(p->out);
	p->out = NULL;
	p->pid = 0;
	event_del(p->kill_ev);
	st = describe(status);
	if (p->stopping || d->shutting_down) {
		serve_log(d, SERVE_LOG_INFO, "RPC server '%s' stopped (%s)", p->id, st);
		p->stopping = false;
		if (p->retired) {
			unlink_proc(d, p);
			proc_free(p);
			if (!d->shutting_down)
				sv_rpcsup_sync(d);	/* its replacement, if any */
		}
		free(st);
		return true;
	}
	if (sv_now_s() - p->started < YOUNG_S)
		p->backoff_ms = p->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : p->backoff_ms * 2;
	else
		p->backoff_ms = BACKOFF_FIRST_MS;
	serve_log(d, SERVE_LOG_WARN, "RPC server '%s' (pid %ld) %s; restarting it in %.1f s",
		  p->id, (long)pid, st, p->backoff_ms / 1000.0);
	take_down_users(p, st);
	free(st);
	event_add(p->restart_ev, &(struct timeval){ p->backoff_ms / 1000,
						    (p->backoff_ms % 1000) * 1000 });
	return true;
}

void sv_rpcsup_stop_all(struct daemon *d)
{
	for (struct rpc_proc *p = d->rpcs; p; p = p->next) {
		p->retired = true;
		proc_stop(p);
	}
}

bool sv_rpcsup_all_stopped(const struct daemon *d)
{
	for (const struct rpc_proc *p = d->rpcs; p; p = p->next)
		if (p->pid)
			return false;
	return true;
}

void sv_rpcsup_kill_all(struct daemon *d, int sig)
{
	for (struct rpc_proc *p = d->rpcs; p; p = p->next)
		if (p->pid > 0)
			killpg(p->pid, sig);
}

void sv_rpcsup_free(struct daemon *d)
{
	while (d->rpcs) {
		struct rpc_proc *p = d->rpcs;

		d->rpcs = p->next;
		proc_free(p);
	}
}

json_t *sv_rpcsup_json(const struct daemon *d)
{
	json_t *a = json_array();

	for (const struct rpc_proc *p = d->rpcs; p; p = p->next) {
		const char *state = p->pid ? (p->stopping ? "stopping" : "running") :
				    p->retired ? "stopped" : "restarting";

		json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:I, s:I}", "name", p->id,
						   "endpoint", p->endpoint, "state", state,
						   "pid", (json_int_t)p->pid,
						   "restarts", (json_int_t)p->restarts));
	}
	return a;
}
