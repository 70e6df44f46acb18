/* SPDX-License-Identifier: Apache-2.0 */
/* The endpoints pegpu serve answers itself (see docs/serve.md). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>

#include "reqctx.h"
#include "rpcsup.h"
#include "util.h"

#define LOG_STREAM_MAX_BACKLOG	(4u << 20)
#define UNLOAD_POLL_MS		50

static json_t *model_record(const struct rt_model *m, const char *id, json_int_t created,
			    const char *alias_of)
{
	const struct serve_model *sm = m->sm;
	json_t *r = json_pack("{s:s,s:s,s:I,s:s,s:{s:s}}", "id", id, "object", "model", "created",
			      created, "owned_by", "pegpu", "status", "value",
			      m->state == RT_STOPPED ? "unloaded" : "loaded");
	json_t *meta = sm->metadata ? json_deep_copy(sm->metadata) : json_object();

	if (sm->name)
		json_object_set_new(r, "name", json_string(sm->name));
	if (sm->description)
		json_object_set_new(r, "description", json_string(sm->description));
	if (alias_of) {
		json_object_set_new(meta, "type", json_string("alias"));
		json_object_set_new(meta, "modelID", json_string(alias_of));
	} else if (sm->aliases.n) {
		json_t *a = json_array();

		for (size_t i = 0; i < sm->aliases.n; i++)
			json_array_append_new(a, json_string(sm->aliases.v[i]));
		json_object_set_new(meta, "aliases", a);
	}
	if (json_object_size(meta))
		json_object_set_new(r, "meta", json_pack("{s:o}", "llamaswap", meta));
	else
		json_decref(meta);
	return r;
}

void sv_ep_models(struct req_ctx *c)
{
	struct router *r = c->d->router;
	json_t *data = json_array();
	json_int_t created = (json_int_t)time(NULL);

	for (size_t i = 0; i < sv_router_count(r); i++) {
		const struct rt_model *m = sv_router_model(r, i);

		if (m->sm->unlisted)
			continue;
		json_array_append_new(data, model_record(m, m->id, created, NULL));
		if (c->d->cfg->include_aliases_in_list)
			for (size_t a = 0; a < m->sm->aliases.n; a++)
				json_array_append_new(data, model_record(m, m->sm->aliases.v[a],
									 created, m->id));
	}
	sv_ctx_reply_json(c, 200, json_pack("{s:s,s:o}", "object", "list", "data", data));
}

void sv_ep_running(struct req_ctx *c)
{
	struct router *r = c->d->router;
	json_t *list = json_array();

	for (size_t i = 0; i < sv_router_count(r); i++) {
		struct rt_model *m = sv_router_model(r, i);
		const struct serve_model *sm = m->sm;
		json_t *e;

		if (m->state == RT_STOPPED && !m->committed)
			continue;
		e = json_pack("{s:s,s:s,s:s,s:s,s:i,s:I,s:i,s:i}", "model", m->id, "state",
			      m->state == RT_STOPPED ? "starting" : sv_rt_state_name(m->state), "cmd",
			      sm->cmd, "proxy", sm->proxy, "ttl", sm->ttl, "pid",
			      (json_int_t)sv_upstream_pid(serve_mdata(c->d, m)->up), "inflight", m->inflight,
			      "queued", sv_rt_model_queued(m));
		if (sm->name)
			json_object_set_new(e, "name", json_string(sm->name));
		if (sm->description)
			json_object_set_new(e, "description", json_string(sm->description));
		json_array_append_new(list, e);
	}
	/* pegpu's own: the supervised RPC servers, for a split's other side */
	sv_ctx_reply_json(c, 200, json_pack("{s:o,s:o}", "running", list, "rpcServers",
					    sv_rpcsup_json(c->d)));
}

static bool unload_done(struct req_ctx *c)
{
	struct router *r = c->d->router;

	if (c->rq.name) {
		struct rt_model *m = sv_router_find(r, c->rq.name);

		return !m || m->state == RT_STOPPED;
	}
	return sv_router_all_stopped(r);
}

static void unload_wait(evutil_socket_t fd, short what, void *arg)
{
	struct req_ctx *c = arg;

	(void)fd;
	(void)what;
	if (unload_done(c) || sv_now_ms() > c->wait_deadline) {
		sv_ctx_reply(c, 200, "text/plain", "OK", 2);
		return;
	}
	event_add(c->wait_ev, &(struct timeval){ 0, UNLOAD_POLL_MS * 1000 });
}

/* Like llama-swap, answer once the models are stopped, so a client can
 * count on the memory being free when it gets "OK". */
void sv_ep_unload(struct req_ctx *c, const char *model)
{
	struct daemon *d = c->d;
	struct rt_model *m = NULL;
	int longest = 0;

	if (model && *model) {
		m = sv_router_find(d->router, model);
		if (!m) {
			sv_ctx_error(c, 404, "model '%s' is not configured", model);
			return;
		}
		c->rq.name = sv_strdup(model);
		longest = m->sm->unload_timeout;
		serve_log(d, SERVE_LOG_INFO, "unloading model '%s' on request", m->id);
	} else {
		for (size_t i = 0; i < sv_router_count(d->router); i++)
			if (sv_router_model(d->router, i)->sm->unload_timeout > longest)
				longest = sv_router_model(d->router, i)->sm->unload_timeout;
		serve_log(d, SERVE_LOG_INFO, "unloading all models on request");
	}
	sv_router_unload(d->router, m, "the model was unloaded (GET /unload) while this request waited for it");
	c->wait_deadline = sv_now_ms() + (uint64_t)(longest + 5) * 1000u;
	c->wait_ev = evtimer_new(d->base, unload_wait, c);
	unload_wait(-1, 0, c);
}

void sv_ep_metrics(struct req_ctx *c)
{
	struct sv_buf b = { 0 };

	sv_metrics_render(c->d->metrics, c->d->router, &b);
	sv_ctx_reply(c, 200, "text/plain; version=0.0.4", b.p ? b.p : "", b.len);
	free(b.p);
}

static void add_line(void *arg, const char *line, size_t len)
{
	evbuffer_add(arg, line, len);
}

void sv_ep_logs(struct req_ctx *c)
{
	struct evbuffer *b = evbuffer_new();
	size_t n;

	sv_logring_each(c->d->log, LOG_PROXY | LOG_UPSTREAM, add_line, b);
	n = evbuffer_get_length(b);
	sv_ctx_reply(c, 200, "text/plain; charset=utf-8", (const char *)evbuffer_pullup(b, -1), n);
	evbuffer_free(b);
}

struct stream_sub {
	struct log_sub sub;
	struct req_ctx *c;
};

static void stream_line(struct log_sub *s, const char *line, size_t len)
{
	struct req_ctx *c = ((struct stream_sub *)s)->c;
	struct evbuffer *b;
	struct bufferevent *bev;

	if (!c->req || c->client_gone)
		return;
	bev = c->cconn ? evhttp_connection_get_bufferevent(c->cconn) : NULL;
	if (bev && evbuffer_get_length(bufferevent_get_output(bev)) > LOG_STREAM_MAX_BACKLOG) {
		/* A reader that cannot keep up is dropped rather than let
		 * its backlog grow without bound. */
		struct evhttp_connection *cc = c->cconn;

		evhttp_connection_set_closecb(cc, NULL, NULL);
		c->cconn = NULL;
		c->req = NULL;
		evhttp_connection_free(cc);
		sv_ctx_finish(c);
		return;
	}
	b = evbuffer_new();
	evbuffer_add(b, line, len);
	evhttp_send_reply_chunk(c->req, b);
	evbuffer_free(b);
}

void sv_ep_logs_stream(struct req_ctx *c, int srcmask)
{
	struct stream_sub *s = sv_calloc(1, sizeof(*s));
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(c->req);
	const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
	bool history = !query || !strstr(query, "no-history");
	struct evbuffer *b = evbuffer_new();

	evhttp_add_header(evhttp_request_get_output_headers(c->req), "Content-Type",
			  "text/plain; charset=utf-8");
	evhttp_add_header(evhttp_request_get_output_headers(c->req), "Cache-Control", "no-cache");
	evhttp_send_reply_start(c->req, 200, "OK");
	c->status = 200;
	if (history)
		sv_logring_each(c->d->log, srcmask, add_line, b);
	if (evbuffer_get_length(b))
		evhttp_send_reply_chunk(c->req, b);
	evbuffer_free(b);
	s->c = c;
	s->sub.srcmask = srcmask;
	s->sub.line = stream_line;
	c->sub = &s->sub;
	sv_logring_subscribe(c->d->log, &s->sub);
}

void sv_ep_upstream_index(struct req_ctx *c)
{
	struct router *r = c->d->router;
	json_t *list = json_array();

	for (size_t i = 0; i < sv_router_count(r); i++) {
		struct rt_model *m = sv_router_model(r, i);

		json_array_append_new(list, json_pack("{s:s,s:s,s:s}", "model", m->id, "state",
						      sv_rt_state_name(m->state), "url",
						      m->sm->proxy));
	}
	sv_ctx_reply_json(c, 200, json_pack("{s:o}", "upstreams", list));
}
