/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Model requests: find the model a request names, hand it to the router,
 * and once granted forward it to the model's server and stream the reply
 * back as it arrives.
 *
 * No buffering: the reply's headers are sent as soon as the model server's
 * arrive, and each piece of body libevent reads from it is queued to the
 * client in the same callback (evhttp chunked reply fed by the upstream
 * request's chunk callback), so a streamed token leaves pegpu in the loop
 * turn it arrived in.
 *
 * Failures:
 *   - the model server cannot be reached before any reply: if its process
 *     has died the request goes back to the router, which starts it again;
 *     if a kept-alive connection had gone stale it is retried on a new one;
 *     otherwise 502 with what to do;
 *   - it dies mid-reply: a streamed (SSE) reply gets a final error event
 *     and a clean end; any other reply is cut (the connection is closed, so
 *     the client sees a truncated reply, never a wrong complete one);
 *   - the client leaves: the request to the model server is cancelled so
 *     the model stops generating for nobody.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "reqctx.h"
#include "suggest.h"
#include "util.h"

#define PEEK_INTERVAL_MS	500
#define MAX_ATTEMPTS		3
#define RECHECK_MS		100
#ifndef CLIENT_BACKLOG_MAX	/* bytes waiting for a slow client before we stop reading */
#define CLIENT_BACKLOG_MAX	(4u << 20)
#endif

#define ctx_of(q) ((struct req_ctx *)((char *)(q) - offsetof(struct req_ctx, rq)))

static bool is_hop_header(const char *k)
{
	static const char *const hop[] = {
		"Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Connection",
		"TE", "Trailer", "Transfer-Encoding", "Upgrade", NULL,
	};

	for (int i = 0; hop[i]; i++)
		if (!strcasecmp(k, hop[i]))
			return true;
	return false;
}

static void send_upstream(struct req_ctx *c);
static void route(struct req_ctx *c, struct rt_model *m);

static void finish_served(struct req_ctx *c)
{
	struct daemon *d = c->d;

	if (c->up)
		sv_upstream_unref(c->up);
	c->up = NULL;
	if (c->rq.where == RQ_SERVING)
		sv_router_done(d->router, &c->rq);
	sv_ctx_finish(c);
}

static int up_header(struct evhttp_request *ureq, void *arg)
{
	struct req_ctx *c = arg;
	struct evkeyvalq *in = evhttp_request_get_input_headers(ureq);
	struct evkeyvalq *out;
	struct evkeyval *h;
	const char *ctype;
	int code = evhttp_request_get_response_code(ureq);

	if (c->client_gone || !c->req)
		return 0;
	out = evhttp_request_get_output_headers(c->req);
	TAILQ_FOREACH(h, in, next)
		if (!is_hop_header(h->key))
			evhttp_add_header(out, h->key, h->value);
	ctype = evhttp_find_header(in, "Content-Type");
	c->sse = ctype && !strncasecmp(ctype, "text/event-stream", 17);
	c->status = code;
	c->headers_sent = true;
	evhttp_send_reply_start(c->req, code, evhttp_request_get_response_code_line(ureq));
	return 0;
}

static void client_drained(struct evhttp_connection *conn, void *arg)
{
	struct req_ctx *c = arg;

	(void)conn;
	c->paused = false;
	if (c->uconn)
		bufferevent_enable(evhttp_connection_get_bufferevent(c->uconn), EV_READ);
}

static void up_chunk(struct evhttp_request *ureq, void *arg)
{
	struct req_ctx *c = arg;
	struct bufferevent *cbev;

	if (c->client_gone || !c->req || !c->headers_sent)
		return;		/* libevent drains the input after us */
	cbev = c->cconn ? evhttp_connection_get_bufferevent(c->cconn) : NULL;
	if (cbev && c->uconn &&
	    evbuffer_get_length(bufferevent_get_output(cbev)) > CLIENT_BACKLOG_MAX) {
		/* The client reads slower than the model writes: stop reading
		 * from the model until the client has taken what we hold,
		 * instead of holding an unbounded reply in memory. */
		evhttp_send_reply_chunk_with_cb(c->req, evhttp_request_get_input_buffer(ureq),
						client_drained, c);
		bufferevent_disable(evhttp_connection_get_bufferevent(c->uconn), EV_READ);
		c->paused = true;
		return;
	}
	evhttp_send_reply_chunk(c->req, evhttp_request_get_input_buffer(ureq));
}

static void up_error(enum evhttp_request_error err, void *arg)
{
	struct req_ctx *c = arg;

	c->uerr = (int)err + 1;
}

static const char *uerr_text(int uerr)
{
	switch (uerr - 1) {
	case EVREQ_HTTP_TIMEOUT:
		return "timed out";
	case EVREQ_HTTP_EOF:
		return "connection closed";
	case EVREQ_HTTP_INVALID_HEADER:
		return "invalid reply";
	case EVREQ_HTTP_BUFFER_ERROR:
		return "connection refused or reset";
	case EVREQ_HTTP_DATA_TOO_LONG:
		return "reply too long";
	default:
		return "connection failed";
	}
}

/* Send the request back to the router: its model died under it. */
static void requeue(struct req_ctx *c)
{
	struct daemon *d = c->d;
	struct rt_model *m;

	sv_upstream_unref(c->up);
	c->up = NULL;
	sv_router_done(d->router, &c->rq);
	m = sv_router_find(d->router, c->rq.name);
	if (!m) {
		sv_ctx_error(c, 503, "model '%s' is no longer configured", c->rq.name);
		return;
	}
	serve_log(d, SERVE_LOG_INFO, "model '%s' was gone when a request reached it; starting it again",
		  m->id);
	route(c, m);
}

static void upstream_failed(struct req_ctx *c);

static void recheck(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	upstream_failed(arg);
}

static void upstream_failed(struct req_ctx *c)
{
	struct daemon *d = c->d;
	const struct serve_model *sm = c->rq.model->sm;

	if (c->client_gone) {
		finish_served(c);
		return;
	}
	if (!c->headers_sent) {
		bool dead = sv_upstream_check_dead(d, c->up);

		/* A server that is exiting closes its sockets a moment before
		 * it can be reaped: look again shortly before concluding it
		 * is alive but not answering. */
		if (!dead && !c->rechecked) {
			c->rechecked = true;
			if (!c->recheck_ev)
				c->recheck_ev = evtimer_new(d->base, recheck, c);
			event_add(c->recheck_ev, &(struct timeval){ 0, RECHECK_MS * 1000 });
			return;
		}

		/* Only a request that never reached the server is sent again:
		 * one that did may be what made it crash, and retrying it
		 * would crash it in a loop. */
		if (c->connect_failed && c->attempts < MAX_ATTEMPTS) {
			if (dead) {
				requeue(c);
				return;
			}
			if (c->conn_reused) {
				send_upstream(c);	/* a kept-alive connection went stale */
				return;
			}
		}
		sv_metrics_event(d->metrics, c->rq.model->id, MET_UPSTREAM_ERROR);
		if (c->rq.where == RQ_SERVING)
			sv_router_done(d->router, &c->rq);
		sv_upstream_unref(c->up);
		c->up = NULL;
		if (dead)
			sv_ctx_error(c, 502, "model '%s' exited while handling this request; GET /logs shows its output (the next request starts it again)",
				     c->rq.model->id);
		else
			sv_ctx_error(c, 502, "model '%s' did not answer (http://%s:%d: %s); its server may be overloaded or hung; GET /logs shows its output",
				     c->rq.model->id, sm->proxy_host, sm->proxy_port,
				     c->connect_failed ? "connection refused" : uerr_text(c->uerr));
		return;
	}
	sv_metrics_event(d->metrics, c->rq.model->id, MET_UPSTREAM_ERROR);
	serve_log(d, SERVE_LOG_WARN, "model '%s' failed in the middle of a reply (%s)", c->rq.model->id,
		  uerr_text(c->uerr));
	if (c->sse) {
		struct evbuffer *b = evbuffer_new();
		json_t *j = json_pack("{s:{s:s++,s:s,s:i}}", "error", "message", "model '",
				      c->rq.model->id, "' failed in the middle of this reply; retry the request (GET /logs shows why)",
				      "type", "server_error", "code", 502);
		char *s = json_dumps(j, JSON_COMPACT);
		struct evhttp_request *req = c->req;

		evbuffer_add_printf(b, "data: %s\n\n", s);
		free(s);
		json_decref(j);
		evhttp_send_reply_chunk(req, b);
		evbuffer_free(b);
		c->status = 502;
		c->req = NULL;
		if (c->cconn)
			evhttp_connection_set_closecb(c->cconn, NULL, NULL);
		c->cconn = NULL;
		evhttp_send_reply_end(req);
	} else {
		/* A cut connection is the only honest end of a reply whose
		 * length or framing was already promised. */
		struct evhttp_connection *cc = c->cconn;

		c->status = 502;
		c->req = NULL;		/* freed with the connection */
		c->cconn = NULL;
		if (cc) {
			evhttp_connection_set_closecb(cc, NULL, NULL);
			evhttp_connection_free(cc);
		}
	}
	finish_served(c);
}

static void up_done(struct evhttp_request *ureq, void *arg)
{
	struct req_ctx *c = arg;
	struct daemon *d = c->d;

	c->ureq = NULL;
	if (ureq && evhttp_request_get_response_code(ureq) > 0 && !c->uerr) {
		struct evhttp_request *req = c->req;

		sv_upstream_conn_put(c->up, c->uconn);
		c->uconn = NULL;
		if (req && !c->client_gone) {
			if (c->cconn)
				evhttp_connection_set_closecb(c->cconn, NULL, NULL);
			c->cconn = NULL;
			c->req = NULL;
			evhttp_send_reply_end(req);
		}
		finish_served(c);
		return;
	}
	/* libevent reports a failed connect through this callback alone,
	 * with the request but no status; every later failure comes through
	 * up_error first. */
	c->connect_failed = ureq && !c->uerr;
	if (c->uconn)
		serve_trash_conn(d, c->uconn);
	c->uconn = NULL;
	upstream_failed(c);
}

static void send_upstream(struct req_ctx *c)
{
	struct daemon *d = c->d;
	const struct serve_model *sm = c->rq.model->sm;
	struct evkeyvalq *out;
	struct evkeyval *h;
	char host[300], len[32], *uri;
	size_t n = evbuffer_get_length(c->body);

	c->attempts++;
	c->uerr = 0;
	c->connect_failed = false;
	c->rechecked = false;
	c->uconn = sv_upstream_conn_get(c->up, &c->conn_reused);
	if (!c->uconn) {
		c->uerr = EVREQ_HTTP_BUFFER_ERROR + 1;
		upstream_failed(c);
		return;
	}
	c->ureq = evhttp_request_new(up_done, c);
	evhttp_request_set_header_cb(c->ureq, up_header);
	evhttp_request_set_chunked_cb(c->ureq, up_chunk);
	evhttp_request_set_error_cb(c->ureq, up_error);
	out = evhttp_request_get_output_headers(c->ureq);
	if (c->req) {
		TAILQ_FOREACH(h, evhttp_request_get_input_headers(c->req), next) {
			if (is_hop_header(h->key) || !strcasecmp(h->key, "Host") ||
			    !strcasecmp(h->key, "Content-Length") || !strcasecmp(h->key, "Expect"))
				continue;
			evhttp_add_header(out, h->key, h->value);
		}
	}
	snprintf(host, sizeof(host), strchr(sm->proxy_host, ':') ? "[%s]:%d" : "%s:%d",
		 sm->proxy_host, sm->proxy_port);
	evhttp_add_header(out, "Host", host);
	if (n || c->cmd == EVHTTP_REQ_POST || c->cmd == EVHTTP_REQ_PUT || c->cmd == EVHTTP_REQ_PATCH) {
		snprintf(len, sizeof(len), "%zu", n);
		evhttp_add_header(out, "Content-Length", len);
		/* copied, not moved: a retry needs the body again */
		evbuffer_add(evhttp_request_get_output_buffer(c->ureq), evbuffer_pullup(c->body, -1), n);
	}
	uri = sv_asprintf("%s%s", sm->proxy_base, c->uri);
	if (evhttp_make_request(c->uconn, c->ureq, c->cmd, uri)) {
		/* libevent has freed the request (and may have reported the
		 * failure through up_done already, which cleared c->ureq) */
		if (c->ureq) {
			c->ureq = NULL;
			serve_trash_conn(d, c->uconn);
			c->uconn = NULL;
			c->uerr = EVREQ_HTTP_BUFFER_ERROR + 1;
			free(uri);
			upstream_failed(c);
			return;
		}
	}
	free(uri);
}

void sv_proxy_grant(struct daemon *d, struct rt_req *q)
{
	struct req_ctx *c = ctx_of(q);
	struct upstream *up = serve_mdata(d, q->model)->up;

	if (c->peek_ev)
		event_del(c->peek_ev);
	if (c->preload) {
		serve_log(d, SERVE_LOG_INFO, "preloaded model '%s'", q->model->id);
		finish_served(c);
		return;
	}
	if (!up) {
		sv_router_done(d->router, q);
		sv_ctx_error(c, 502, "model '%s' has no running server", q->model->id);
		return;
	}
	c->up = up;
	sv_upstream_ref(up);
	send_upstream(c);
}

void sv_proxy_fail(struct daemon *d, struct rt_req *q, int status, const char *msg)
{
	struct req_ctx *c = ctx_of(q);

	if (c->preload) {
		serve_log(d, SERVE_LOG_ERROR, "preloading model '%s' failed: %s", c->rq.name, msg);
		sv_ctx_finish(c);
		return;
	}
	if (status == 429)
		sv_metrics_event(d->metrics, q->model ? q->model->id : c->rq.name, MET_REJECTED);
	sv_ctx_error(c, status, "%s", msg);
}

void sv_proxy_client_gone(struct req_ctx *c)
{
	struct daemon *d = c->d;

	switch (c->rq.where) {
	case RQ_QUEUED:
	case RQ_WAITING:
		serve_log(d, SERVE_LOG_DEBUG, "client left while waiting for model '%s'", c->rq.name);
		sv_router_cancel(d->router, &c->rq);
		sv_ctx_finish(c);
		break;
	case RQ_SERVING:
		if (c->ureq) {
			/* no callback of ours runs for a cancelled request
			 * but the error one, which only notes the error */
			evhttp_cancel_request(c->ureq);
			c->ureq = NULL;
		}
		if (c->uconn)
			serve_trash_conn(d, c->uconn);
		c->uconn = NULL;
		serve_log(d, SERVE_LOG_DEBUG, "client left; request to model '%s' cancelled",
			  c->rq.model->id);
		finish_served(c);
		break;
	default:
		sv_ctx_finish(c);
		break;
	}
}

/* While a request waits for its model, libevent does not read from the
 * client, so it cannot notice a client that gave up: peek at the socket.
 * A waiting client that leaves must not keep a model start alive. */
static void peek_client(evutil_socket_t fd, short what, void *arg)
{
	struct req_ctx *c = arg;
	struct bufferevent *bev;
	char ch;
	ssize_t n;

	(void)fd;
	(void)what;
	if (c->client_gone || !c->cconn || (c->rq.where != RQ_QUEUED && c->rq.where != RQ_WAITING))
		return;
	bev = evhttp_connection_get_bufferevent(c->cconn);
	n = bev ? recv(bufferevent_getfd(bev), &ch, 1, MSG_PEEK | MSG_DONTWAIT) : 1;
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
		struct evhttp_connection *cc = c->cconn;

		sv_router_cancel(c->d->router, &c->rq);
		evhttp_connection_set_closecb(cc, NULL, NULL);
		c->cconn = NULL;
		c->req = NULL;		/* freed with the connection */
		c->status = 499;
		evhttp_connection_free(cc);
		serve_log(c->d, SERVE_LOG_DEBUG, "client left while waiting for model '%s'",
			  c->rq.name);
		sv_ctx_finish(c);
		return;
	}
	event_add(c->peek_ev, &(struct timeval){ 0, PEEK_INTERVAL_MS * 1000 });
}

void sv_ctx_watch_client(struct req_ctx *c)
{
	if (!c->cconn)
		return;
	if (!c->peek_ev)
		c->peek_ev = evtimer_new(c->d->base, peek_client, c);
	event_add(c->peek_ev, &(struct timeval){ 0, PEEK_INTERVAL_MS * 1000 });
}

static void not_found(struct req_ctx *c, const char *name)
{
	struct serve_config *cfg = c->d->cfg;
	const char **names = sv_calloc(cfg->n_models * 8 + 1, sizeof(*names));
	struct sv_buf list = { 0 };
	const char *s;
	size_t n = 0;
	char *l;

	for (size_t i = 0; i < cfg->n_models; i++) {
		names[n++] = cfg->models[i].id;
		for (size_t a = 0; a < cfg->models[i].aliases.n && a < 7; a++)
			names[n++] = cfg->models[i].aliases.v[a];
		if (!cfg->models[i].unlisted)
			sv_sbuf_addf(&list, "%s%s", list.len ? ", " : "", cfg->models[i].id);
	}
	s = sv_suggest_word(name, names);
	l = sv_sbuf_take(&list);
	if (s)
		sv_ctx_error(c, 404, "model '%s' is not configured (did you mean '%s'?); GET /v1/models lists: %s",
			  name, s, l);
	else
		sv_ctx_error(c, 404, "model '%s' is not configured; GET /v1/models lists: %s", name, l);
	free(l);
	free(names);
}

/* The value of a multipart/form-data field (audio transcription uploads
 * name their model this way). */
static char *multipart_field(const char *ctype, const char *body, size_t len, const char *field)
{
	const char *b = strstr(ctype, "boundary="), *p, *end = body + len;
	char *boundary, *want, *r = NULL;
	size_t bl;

	if (!b)
		return NULL;
	b += 9;
	boundary = sv_asprintf("--%.*s", (int)strcspn(b, "; \""), *b == '"' ? b + 1 : b);
	bl = strlen(boundary);
	want = sv_asprintf("name=\"%s\"", field);
	for (p = memmem(body, len, boundary, bl); p; p = memmem(p, (size_t)(end - p), boundary, bl)) {
		const char *hdr_end, *next, *name;

		p += bl;
		hdr_end = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
		if (!hdr_end)
			break;
		name = memmem(p, (size_t)(hdr_end - p), want, strlen(want));
		if (!name)
			continue;
		next = memmem(hdr_end + 4, (size_t)(end - hdr_end - 4), boundary, bl);
		if (!next || next - 2 < hdr_end + 4)
			break;
		r = sv_strndup(hdr_end + 4, (size_t)(next - 2 - (hdr_end + 4)));
		break;
	}
	free(boundary);
	free(want);
	return r;
}

/* Apply useModelName and filters; true if the body changed. */
static bool rewrite(json_t *root, const struct serve_model *sm)
{
	bool changed = false;

	if (sm->use_model_name) {
		json_object_set_new(root, "model", json_string(sm->use_model_name));
		changed = true;
	}
	for (size_t i = 0; i < sm->strip_params.n; i++)
		changed |= json_object_del(root, sm->strip_params.v[i]) == 0;
	if (sm->set_params && json_object_size(sm->set_params)) {
		json_object_update(root, sm->set_params);
		changed = true;
	}
	return changed;
}

/*
 * Hand c to the router.  The router may answer it at once (served, or
 * refused) and c may then be gone when this returns: c->alive points at a
 * local flag that ctx_finish clears, so the watch on a waiting client is
 * only set up, per request, when it is needed.
 */
static void route(struct req_ctx *c, struct rt_model *m)
{
	bool alive = true;

	c->alive = &alive;
	sv_router_request(c->d->router, &c->rq, m);
	if (!alive)
		return;
	c->alive = NULL;
	if (c->rq.where == RQ_QUEUED || c->rq.where == RQ_WAITING)
		sv_ctx_watch_client(c);
}

static void submit(struct req_ctx *c, struct rt_model *m, const char *name, const char *uri)
{
	c->model = sv_strdup(m->id);
	c->rq.name = sv_strdup(name);
	c->uri = sv_strdup(uri);
	route(c, m);
}

void sv_proxy_handle(struct req_ctx *c, const char *path)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(c->req);
	size_t len = evbuffer_get_length(in);
	const char *ctype = evhttp_find_header(evhttp_request_get_input_headers(c->req),
					       "Content-Type");
	char *name = NULL;
	json_t *root = NULL;
	struct rt_model *m;

	(void)path;
	c->body = evbuffer_new();
	if (len && ctype && !strncasecmp(ctype, "multipart/form-data", 19)) {
		name = multipart_field(ctype, (const char *)evbuffer_pullup(in, -1), len, "model");
	} else if (len) {
		json_error_t err;
		json_t *mv;

		root = json_loadb((const char *)evbuffer_pullup(in, -1), len, 0, &err);
		if (!root) {
			sv_ctx_error(c, 400, "the request body is not valid JSON: %s (line %d, column %d)",
				  err.text, err.line, err.column);
			return;
		}
		if (!json_is_object(root)) {
			json_decref(root);
			sv_ctx_error(c, 400, "the request body must be a JSON object with a \"model\" field");
			return;
		}
		mv = json_object_get(root, "model");
		if (json_is_string(mv))
			name = sv_strdup(json_string_value(mv));
	} else {
		name = sv_req_query_param(c->req, "model");
	}
	if (!name || !*name) {
		json_decref(root);
		free(name);
		sv_ctx_error(c, 400, "the request names no model: add \"model\": \"<id>\" to its JSON body (GET /v1/models lists the ids)");
		return;
	}
	m = sv_router_find(c->d->router, name);
	if (!m) {
		json_decref(root);
		not_found(c, name);
		free(name);
		return;
	}
	if (root && rewrite(root, m->sm)) {
		char *s = json_dumps(root, JSON_COMPACT);

		evbuffer_add(c->body, s, strlen(s));
		free(s);
	} else {
		evbuffer_add_buffer(c->body, in);
	}
	json_decref(root);
	submit(c, m, name, evhttp_request_get_uri(c->req));
	free(name);
}

void sv_proxy_handle_upstream(struct req_ctx *c, const char *path)
{
	const char *rest = path + strlen("/upstream/"), *raw = evhttp_request_get_uri(c->req);
	struct rt_model *m = NULL;
	size_t segs = 0, mlen = 0;
	char *name = NULL;

	/* The model id may contain '/': try "a", then "a/b", ... */
	for (const char *p = rest;; p++) {
		if (*p == '/' || !*p) {
			segs++;
			free(name);
			name = sv_strndup(rest, (size_t)(p - rest));
			if ((m = sv_router_find(c->d->router, name))) {
				mlen = (size_t)(p - rest);
				break;
			}
			if (!*p)
				break;
		}
	}
	if (!m) {
		sv_ctx_error(c, 404, "/upstream/<model>/<path>: no configured model at the start of '%s'; GET /upstream lists them",
			  rest);
		free(name);
		return;
	}
	/* The same number of segments of the raw (still %-encoded) URI. */
	raw += strlen("/upstream/");
	for (size_t s = 0; s < segs && *raw; s++) {
		raw += strcspn(raw, "/?");
		if (s + 1 < segs && *raw == '/')
			raw++;
	}
	if (rest[mlen] == '\0') {
		char *to = sv_asprintf("/upstream/%s/%s", name, *raw == '?' ? raw : "");

		evhttp_add_header(evhttp_request_get_output_headers(c->req), "Location", to);
		free(to);
		sv_ctx_reply(c, c->cmd == EVHTTP_REQ_GET || c->cmd == EVHTTP_REQ_HEAD ? 301 : 308,
			  "text/plain", "", 0);
		free(name);
		return;
	}
	c->body = evbuffer_new();
	evbuffer_add_buffer(c->body, evhttp_request_get_input_buffer(c->req));
	submit(c, m, name, raw);
	free(name);
}

void sv_proxy_preload(struct daemon *d, const char *model)
{
	struct rt_model *m = sv_router_find(d->router, model);
	struct req_ctx *c;

	if (!m)
		return;
	c = sv_ctx_new(d, NULL);
	c->preload = true;
	c->model = sv_strdup(m->id);
	c->rq.name = sv_strdup(model);
	serve_log(d, SERVE_LOG_INFO, "preloading model '%s'", m->id);
	sv_router_request(d->router, &c->rq, m);
}
