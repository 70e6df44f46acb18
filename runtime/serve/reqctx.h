/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One client request from arrival to the end of its reply, shared by the
 * HTTP front (http.c), the model proxy (proxy.c) and the local endpoints
 * (endpoints.c).
 *
 * Lifetime rules, because libevent frees a request behind our back when
 * its client disconnects:
 *   - c->req is the client's request until we send the end of a reply
 *     (then libevent owns it) or the client leaves (then we free it);
 *   - the client connection's close callback points at c while c lives,
 *     and is cleared before c is freed;
 *   - sv_ctx_finish() is the one place a ctx is freed.
 */
#ifndef PEGPU_SERVE_REQCTX_H
#define PEGPU_SERVE_REQCTX_H

#include <stdbool.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <jansson.h>

#include "daemon.h"

struct req_ctx {
	struct daemon *d;
	struct evhttp_request *req;		/* client side; NULL once handed back */
	struct evhttp_connection *cconn;	/* client connection */
	struct rt_req rq;
	double t0;
	int status;				/* sent to the client */
	char *model;				/* for metrics: the model asked for */
	bool preload;				/* a hooks.on_startup.preload start */
	bool *alive;				/* cleared by ctx_finish (see proxy.c) */
	bool client_gone;

	/* model requests */
	enum evhttp_cmd_type cmd;
	char *uri;				/* path?query to ask the model server */
	struct evbuffer *body;			/* body to send it */
	struct event *peek_ev;			/* client liveness while waiting */
	struct upstream *up;
	struct evhttp_connection *uconn;
	struct evhttp_request *ureq;
	bool conn_reused, connect_failed, headers_sent, sse, paused, rechecked;
	struct event *recheck_ev;		/* see upstream_failed() */
	int attempts;
	int uerr;				/* enum evhttp_request_error + 1, 0: none */

	/* GET /logs/stream */
	struct log_sub *sub;
	/* GET /unload: answered once the models have stopped */
	struct event *wait_ev;
	uint64_t wait_deadline;
};

struct req_ctx *sv_ctx_new(struct daemon *d, struct evhttp_request *req);
/* Record metrics and free c (and its request, if the client left). */
void sv_ctx_finish(struct req_ctx *c);
/* Send a complete reply and finish c. */
void sv_ctx_reply(struct req_ctx *c, int code, const char *ctype, const char *body, size_t len);
void sv_ctx_reply_json(struct req_ctx *c, int code, json_t *j);	/* steals j */
/* An OpenAI-style error: {"error": {"message", "type", "code"}}. */
void sv_ctx_error(struct req_ctx *c, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Watch for the client leaving while c waits (see proxy.c). */
void sv_ctx_watch_client(struct req_ctx *c);

/* proxy.c */
void sv_proxy_handle(struct req_ctx *c, const char *path);		/* /v1/... */
void sv_proxy_handle_upstream(struct req_ctx *c, const char *path);	/* /upstream/... */
void sv_proxy_client_gone(struct req_ctx *c);
void sv_proxy_preload(struct daemon *d, const char *model);

/* endpoints.c */
void sv_ep_models(struct req_ctx *c);
void sv_ep_running(struct req_ctx *c);
void sv_ep_unload(struct req_ctx *c, const char *model);
void sv_ep_metrics(struct req_ctx *c);
void sv_ep_logs(struct req_ctx *c);
void sv_ep_logs_stream(struct req_ctx *c, int srcmask);
void sv_ep_upstream_index(struct req_ctx *c);

/* The query parameter name of the request's URI (caller frees), or NULL. */
char *sv_req_query_param(struct evhttp_request *req, const char *name);

#endif /* PEGPU_SERVE_REQCTX_H */
