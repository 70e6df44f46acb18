/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Model server processes: start, health check, log capture, stop ladder.
 *
 * A model runs as a new process group (the server and anything it forks),
 * so stopping it reaches every process it made: cmdStop if configured,
 * else SIGTERM to the group; SIGKILL to the group after unloadTimeout.
 * The router hears "stopped" only once the group is empty, so the next
 * model never starts while the last one still holds the port or the GPU.
 *
 * Readiness is GET <proxy><checkEndpoint> every 250 ms until it answers
 * 200, the process exits, or healthCheckTimeout passes.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#include <sys/syscall.h>
#endif

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "cmdline.h"
#include "daemon.h"
#include "logpipe.h"
#include "rpcsup.h"
#include "spawn.h"
#include "split_exec.h"
#include "statedir.h"
#include "util.h"

#define HEALTH_FIRST_MS		50
#define HEALTH_INTERVAL_MS	250
#define HEALTH_PROBE_TIMEOUT_S	5
#define GROUP_POLL_MS		50
#define POOL_MAX		64
#define TAIL_LINES		6
#define UPSTREAM_IO_TIMEOUT_S	86400	/* a long generation may say nothing for minutes */


struct upstream {
	struct daemon *d;
	struct mdata *md;		/* NULL once finished */
	char *model;			/* id, for logs after md is gone */
	unsigned refs;
	pid_t pid;			/* leader == process group id */
	pid_t stop_pid;			/* cmdStop, 0 if none running */
	bool leader_exited, ready, stop_requested, finished;
	int status;			/* wait status of the leader */
	double started;
	uint64_t deadline_ms;
	int health_timeout;		/* seconds, for messages */
	struct logpipe *out, *stop_out;
	struct event *health_ev, *kill_ev, *group_ev;
	struct evhttp_connection *health_conn;
	struct evhttp_request *health_req;	/* the probe in flight, if any */
	bool health_pending;
	char *health_last;		/* last probe outcome, for messages */
	char *tail[TAIL_LINES];		/* last output lines, for messages */
	size_t tail_pos;
	struct evhttp_connection *idle[POOL_MAX];
	size_t n_idle;
	struct upstream *next;		/* daemon's list of unfinished instances */
};

static void finish(struct upstream *up);

pid_t sv_upstream_pid(const struct upstream *up)
{
	return up ? up->pid : 0;
}

void sv_upstream_ref(struct upstream *up)
{
	up->refs++;
}

void sv_upstream_unref(struct upstream *up)
{
	if (--up->refs)
		return;
	for (size_t i = 0; i < up->n_idle; i++)
		serve_trash_conn(up->d, up->idle[i]);
	for (size_t i = 0; i < TAIL_LINES; i++)
		free(up->tail[i]);
	free(up->health_last);
	free(up->model);
	free(up);
}

struct evhttp_connection *sv_upstream_conn_get(struct upstream *up, bool *reused)
{
	const struct serve_model *sm;
	struct evhttp_connection *c;
	struct timeval tv = { UPSTREAM_IO_TIMEOUT_S, 0 };

	if (up->finished)
		return NULL;
	sm = up->md->m->sm;
	if (up->n_idle) {
		*reused = true;
		return up->idle[--up->n_idle];
	}
	*reused = false;
	c = evhttp_connection_base_new(up->d->base, NULL, sm->proxy_host,
				       (unsigned short)sm->proxy_port);
	if (!c)
		return NULL;
	evhttp_connection_set_timeout_tv(c, &tv);
	evhttp_connection_set_retries(c, 0);
	return c;
}

void sv_upstream_conn_put(struct upstream *up, struct evhttp_connection *c)
{
	if (up->finished || up->n_idle == POOL_MAX)
		serve_trash_conn(up->d, c);
	else
		up->idle[up->n_idle++] = c;
}

static void remember_line(void *arg, const char *line, size_t len)
{
	struct upstream *up = arg;

	free(up->tail[up->tail_pos]);
	up->tail[up->tail_pos] = sv_strndup(line, len > 300 ? 300 : len);
	up->tail_pos = (up->tail_pos + 1) % TAIL_LINES;
}

/* The last output lines joined with " | ", for error messages. */
static char *tail_text(const struct upstream *up)
{
	struct sv_buf b = { 0 };

	for (size_t i = 0; i < TAIL_LINES; i++) {
		const char *t = up->tail[(up->tail_pos + i) % TAIL_LINES];

		if (t && *t) {
			if (b.len)
				sv_sbuf_adds(&b, " | ");
			sv_sbuf_adds(&b, t);
		}
	}
	return sv_sbuf_take(&b);
}

/* Drop the health connection.  A probe in flight is cancelled first:
 * libevent then never calls health_done, so its reference is ours to drop. */
static void health_close(struct upstream *up)
{
	if (up->health_pending) {
		evhttp_cancel_request(up->health_req);
		up->health_pending = false;
		up->health_req = NULL;
		sv_upstream_unref(up);
	}
	if (up->health_conn)
		serve_trash_conn(up->d, up->health_conn);
	up->health_conn = NULL;
}

static void report_ready(struct upstream *up)
{
	struct daemon *d = up->d;
	double secs = sv_now_s() - up->started;

	up->ready = true;
	if (up->health_ev)
		event_del(up->health_ev);
	health_close(up);
	sv_metrics_start_time(d->metrics, up->model, secs);
	serve_log(d, SERVE_LOG_INFO, "model '%s' is ready (pid %ld, %.2f s)", up->model, (long)up->pid,
		  secs);
	sv_router_started(d->router, up->md->m);
}

static void start_failed(struct upstream *up, const char *why)
{
	struct daemon *d = up->d;

	sv_metrics_event(d->metrics, up->model, MET_START_FAILED);
	serve_log(d, SERVE_LOG_ERROR, "%s", why);
	if (up->health_ev)
		event_del(up->health_ev);
	sv_router_start_failed(d->router, up->md->m, why);
}

static void health_probe(evutil_socket_t fd, short what, void *arg);

static void health_done(struct evhttp_request *req, void *arg)
{
	struct upstream *up = arg;
	int code = req ? evhttp_request_get_response_code(req) : 0;
	struct timeval tv = { 0, HEALTH_INTERVAL_MS * 1000 };

	up->health_pending = false;
	up->health_req = NULL;
	if (up->finished) {
		sv_upstream_unref(up);
		return;
	}
	if (up->ready || up->stop_requested || up->leader_exited)
		goto out;
	free(up->health_last);
	if (code == 200) {
		up->health_last = NULL;
		report_ready(up);
		goto out;
	}
	up->health_last = code ? sv_asprintf("HTTP %d", code) : sv_strdup("no answer");
	if (sv_now_ms() >= up->deadline_ms) {
		const struct serve_model *sm = up->md->m->sm;
		char *tail = tail_text(up);
		char *why = sv_asprintf("model '%s' did not become ready within %d s (GET http://%s:%d%s%s: %s)%s%s; it was stopped: raise healthCheckTimeout if it loads slowly, or see GET /logs",
				      up->model, up->health_timeout, sm->proxy_host, sm->proxy_port,
				      sm->proxy_base, sm->check_endpoint, up->health_last,
				      *tail ? "; last output: " : "", tail);

		free(tail);
		start_failed(up, why);
		free(why);
		sv_upstream_stop(up->d, up->md->m);
		goto out;
	}
	event_add(up->health_ev, &tv);
out:
	sv_upstream_unref(up);
}

static void health_probe(evutil_socket_t fd, short what, void *arg)
{
	struct upstream *up = arg;
	const struct serve_model *sm = up->md->m->sm;
	struct evhttp_request *req;
	char *uri, host[300];

	(void)fd;
	(void)what;
	if (up->ready || up->stop_requested || up->leader_exited || up->health_pending)
		return;
	if (!up->health_conn) {
		up->health_conn = evhttp_connection_base_new(up->d->base, NULL, sm->proxy_host,
							     (unsigned short)sm->proxy_port);
		if (!up->health_conn)
			return;
		evhttp_connection_set_timeout(up->health_conn, HEALTH_PROBE_TIMEOUT_S);
		evhttp_connection_set_retries(up->health_conn, 0);
	}
	req = evhttp_request_new(health_done, up);
	snprintf(host, sizeof(host), "%s:%d", sm->proxy_host, sm->proxy_port);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Host", host);
	uri = sv_asprintf("%s%s", sm->proxy_base, sm->check_endpoint);
	sv_upstream_ref(up);
	up->health_pending = true;
	up->health_req = req;
	if (evhttp_make_request(up->health_conn, req, EVHTTP_REQ_GET, uri)) {
		/* libevent freed req; try again next tick */
		up->health_pending = false;
		up->health_req = NULL;
		sv_upstream_unref(up);
		event_add(up->health_ev, &(struct timeval){ 0, HEALTH_INTERVAL_MS * 1000 });
	}
	free(uri);
}

static void ready_without_check(evutil_socket_t fd, short what, void *arg)
{
	struct upstream *up = arg;

	(void)fd;
	(void)what;
	if (!up->ready && !up->stop_requested && !up->leader_exited)
		report_ready(up);
}

static struct upstream *find_by_pid(struct daemon *d, pid_t pid, bool *is_stop)
{
	for (struct upstream *up = d->upstreams; up; up = up->next) {
		if (up->pid == pid && !up->leader_exited) {
			*is_stop = false;
			return up;
		}
		if (up->stop_pid == pid) {
			*is_stop = true;
			return up;
		}
	}
	return NULL;
}

static char *describe_status(int status)
{
	if (WIFEXITED(status))
		return sv_asprintf("exit status %d", WEXITSTATUS(status));
	if (WIFSIGNALED(status))
		return sv_asprintf("signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
	return sv_strdup("unknown status");
}

static bool group_alive(pid_t pgid)
{
	return kill(-pgid, 0) == 0 || errno == EPERM;
}

static void group_poll(evutil_socket_t fd, short what, void *arg)
{
	struct upstream *up = arg;

	(void)fd;
	(void)what;
	if (group_alive(up->pid) || up->stop_pid) {
		event_add(up->group_ev, &(struct timeval){ 0, GROUP_POLL_MS * 1000 });
		return;
	}
	finish(up);
}

static void kill_now(evutil_socket_t fd, short what, void *arg)
{
	struct upstream *up = arg;

	(void)fd;
	(void)what;
	if (group_alive(up->pid)) {
		serve_log(up->d, SERVE_LOG_WARN, "model '%s' (process group %ld) did not stop within %d s; sending SIGKILL",
			  up->model, (long)up->pid, up->md ? up->md->m->sm->unload_timeout : 0);
		killpg(up->pid, SIGKILL);
	}
	if (up->stop_pid)
		kill(up->stop_pid, SIGKILL);
}

/* The leader (the process we started) has exited with status. */
static void leader_exited(struct upstream *up, int status)
{
	struct daemon *d = up->d;
	char *st = describe_status(status);

	up->leader_exited = true;
	up->status = status;
	/* its last words may still sit in the pipe: they belong in the
	 * message below */
	if (up->out)
		sv_logpipe_drain(up->out);
	if (up->stop_requested) {
		serve_log(d, SERVE_LOG_INFO, "model '%s' stopped (%s)", up->model, st);
	} else if (!up->ready) {
		char *tail = tail_text(up);
		char *why = sv_asprintf("model '%s' exited while starting (%s)%s%s; see GET /logs for its output",
				      up->model, st, *tail ? "; last output: " : "", tail);

		start_failed(up, why);
		free(why);
		free(tail);
	} else {
		sv_metrics_event(d->metrics, up->model, MET_EXIT);
		serve_log(d, SERVE_LOG_WARN, "model '%s' exited unexpectedly (%s); the next request for it starts it again",
			  up->model, st);
		sv_router_exiting(d->router, up->md->m);
	}
	free(st);
	if (!up->stop_requested && group_alive(up->pid)) {
		/* Whatever it left behind in its group goes too, with the
		 * same grace a stop would give. */
		killpg(up->pid, SIGTERM);
		event_add(up->kill_ev, &(struct timeval){ up->md->m->sm->unload_timeout, 0 });
	}
	group_poll(-1, 0, up);
}

static void stop_exited(struct upstream *up, int status)
{
	up->stop_pid = 0;
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		char *st = describe_status(status);

		serve_log(up->d, SERVE_LOG_WARN, "cmdStop of model '%s' failed (%s); sending SIGTERM to its process group",
			  up->model, st);
		free(st);
		if (!up->leader_exited)
			killpg(up->pid, SIGTERM);
	}
}

void sv_upstream_on_sigchld(struct daemon *d)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		bool is_stop;
		struct upstream *up = find_by_pid(d, pid, &is_stop);

		if (!up) {
			sv_rpcsup_reaped(d, pid, status);
			continue;
		}
		if (is_stop)
			stop_exited(up, status);
		else
			leader_exited(up, status);
	}
}

bool sv_upstream_check_dead(struct daemon *d, struct upstream *up)
{
	int status;

	if (!up || up->finished || up->leader_exited)
		return true;
	if (waitpid(up->pid, &status, WNOHANG) == up->pid) {
		leader_exited(up, status);
		return true;
	}
	(void)d;
	return false;
}

/* The whole group is gone: tell the router, forget the instance. */
static void finish(struct upstream *up)
{
	struct daemon *d = up->d;
	struct mdata *md = up->md;
	struct upstream **pp;

	if (up->finished)
		return;
	up->finished = true;
	event_free(up->health_ev);
	event_free(up->kill_ev);
	event_free(up->group_ev);
	up->health_ev = up->kill_ev = up->group_ev = NULL;
	health_close(up);
	sv_logpipe_free(up->out);
	sv_logpipe_free(up->stop_out);
	up->out = up->stop_out = NULL;
	sv_statedir_forget(d->state, up->pid);
	for (pp = &d->upstreams; *pp; pp = &(*pp)->next) {
		if (*pp == up) {
			*pp = up->next;
			break;
		}
	}
	for (size_t i = 0; i < up->n_idle; i++)
		serve_trash_conn(d, up->idle[i]);
	up->n_idle = 0;
	up->md = NULL;
	md->up = NULL;
	sv_router_stopped(d->router, md->m);
	sv_upstream_unref(up);
}

static void start_failed_later(evutil_socket_t fd, short what, void *arg)
{
	struct upstream *up = arg;

	(void)fd;
	(void)what;
	start_failed(up, up->health_last);
	finish(up);
}

void sv_upstream_start(struct daemon *d, struct rt_model *m)
{
	struct mdata *md = serve_mdata(d, m);
	const struct serve_model *sm = m->sm;
	struct upstream *up = sv_calloc(1, sizeof(*up));
	int op[2];
	char *err = NULL, *line;

	up->d = d;
	up->md = md;
	up->model = sv_strdup(m->id);
	up->refs = 1;
	up->started = sv_now_s();
	up->health_timeout = d->cfg->health_check_timeout;
	up->deadline_ms = sv_now_ms() + (uint64_t)up->health_timeout * 1000u;
	up->health_ev = evtimer_new(d->base, health_probe, up);
	up->kill_ev = evtimer_new(d->base, kill_now, up);
	up->group_ev = evtimer_new(d->base, group_poll, up);
	md->up = up;
	up->next = d->upstreams;
	d->upstreams = up;
	sv_metrics_event(d->metrics, m->id, MET_START);

	line = sv_cmdline_join(sm->argv.v);
	serve_log(d, SERVE_LOG_INFO, "starting model '%s': %s", m->id, line);
	free(line);
	if (pipe2(op, O_CLOEXEC)) {
		err = sv_asprintf("pipe: %s", strerror(errno));
		goto fail;
	}
	/* a split model plans in its child (split_exec.h) */
	struct split_exec sx = { .cfg = m->cfg, .sm = sm };

	up->pid = sv_spawn(sm->argv.v, &sm->env, d->token, op[1],
			   sm->split ? sv_split_prepare : NULL, &sx, &err);
	close(op[1]);
	if (up->pid < 0) {
		close(op[0]);
		up->pid = 0;
		goto fail;
	}
	up->out = sv_logpipe_new(d, op[0], m->id, remember_line, up);
	sv_statedir_record(d->state, up->pid, d->token, m->id);
	if (!sm->check_endpoint) {
		event_assign(up->health_ev, d->base, -1, 0, ready_without_check, up);
		event_add(up->health_ev, &(struct timeval){ 0, 0 });
	} else {
		event_add(up->health_ev, &(struct timeval){ 0, HEALTH_FIRST_MS * 1000 });
	}
	return;
fail:
	/* The router must not hear back from inside its own start call. */
	up->health_last = sv_asprintf("model '%s' could not be started: %s; check its cmd: in %s",
				    m->id, err, d->cfg->path);
	free(err);
	event_assign(up->health_ev, d->base, -1, 0, start_failed_later, up);
	event_add(up->health_ev, &(struct timeval){ 0, 0 });
}

void sv_upstream_stop(struct daemon *d, struct rt_model *m)
{
	struct upstream *up = serve_mdata(d, m)->up;
	const struct serve_model *sm = m->sm;

	if (!up || up->stop_requested)
		return;
	up->stop_requested = true;
	if (up->health_ev)
		event_del(up->health_ev);
	if (!up->pid) {
		/* never started: start_failed_later finishes it */
		event_assign(up->health_ev, d->base, -1, 0, start_failed_later, up);
		event_add(up->health_ev, &(struct timeval){ 0, 0 });
		return;
	}
	if (up->leader_exited)
		return;		/* already being cleaned up */
	if (sm->cmd_stop) {
		char pid[24], *cmd, *err = NULL;
		struct sv_strv argv = { 0 };
		int op[2];

		snprintf(pid, sizeof(pid), "%ld", (long)up->pid);
		cmd = sv_str_replace_all(sm->cmd_stop, "${PID}", pid);
		serve_log(d, SERVE_LOG_INFO, "stopping model '%s' with cmdStop: %s", m->id, cmd);
		if (sv_cmdline_split(cmd, &argv, &err) == 0 && pipe2(op, O_CLOEXEC) == 0) {
			pid_t sp = sv_spawn(argv.v, &sm->env, d->token, op[1], NULL, NULL, &err);

			close(op[1]);
			if (sp > 0) {
				char *prefix = sv_asprintf("%s cmdStop", m->id);

				up->stop_pid = sp;
				up->stop_out = sv_logpipe_new(d, op[0], prefix, NULL, NULL);
				free(prefix);
			} else {
				close(op[0]);
			}
		}
		if (!up->stop_pid) {
			serve_log(d, SERVE_LOG_WARN, "cmdStop of model '%s' could not run (%s); sending SIGTERM",
				  m->id, err ? err : "?");
			killpg(up->pid, SIGTERM);
		}
		free(err);
		free(cmd);
		sv_strv_free(&argv);
	} else {
		serve_log(d, SERVE_LOG_INFO, "stopping model '%s' (SIGTERM to process group %ld)", m->id,
			  (long)up->pid);
		killpg(up->pid, SIGTERM);
	}
	event_add(up->kill_ev, &(struct timeval){ sm->unload_timeout, 0 });
}

void sv_upstream_kill_all(struct daemon *d, int sig)
{
	for (struct upstream *up = d->upstreams; up; up = up->next) {
		if (up->pid > 0)
			killpg(up->pid, sig);
		if (up->stop_pid > 0)
			kill(up->stop_pid, sig);
	}
}
