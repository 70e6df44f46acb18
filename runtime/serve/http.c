/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The HTTP front: libevent's evhttp server, request contexts, API keys and
 * the dispatch of paths to the proxy and the local endpoints.
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>

#include "reqctx.h"
#include "util.h"

#define MAX_HEADERS_SIZE	(64 * 1024)
#define CLIENT_IO_TIMEOUT_S	300

static void on_client_close(struct evhttp_connection *conn, void *arg)
{
	struct req_ctx *c = arg;

	(void)conn;
	evhttp_connection_set_closecb(conn, NULL, NULL);
	c->client_gone = true;
	/* libevent detaches a request it has not finished from a connection
	 * that failed; we then own it.  When the whole server is being freed
	 * it is still attached and libevent frees it itself. */
	if (c->req && evhttp_request_get_connection(c->req))
		c->req = NULL;
	c->cconn = NULL;
	sv_proxy_client_gone(c);
}

struct req_ctx *sv_ctx_new(struct daemon *d, struct evhttp_request *req)
{
	struct req_ctx *c = sv_calloc(1, sizeof(*c));

	c->d = d;
	c->req = req;
	c->t0 = sv_now_s();
	c->status = 0;
	if (req) {
		c->cconn = evhttp_request_get_connection(req);
		c->cmd = evhttp_request_get_command(req);
		if (c->cconn)
			evhttp_connection_set_closecb(c->cconn, on_client_close, c);
	}
	return c;
}

/* Stop hearing about the client connection (before handing the request
 * back to libevent, which may close it at once). */
static void detach_client(struct req_ctx *c)
{
	if (c->cconn && !c->client_gone)
		evhttp_connection_set_closecb(c->cconn, NULL, NULL);
	c->cconn = NULL;
}

void sv_ctx_finish(struct req_ctx *c)
{
	if (c->alive)
		*c->alive = false;
	detach_client(c);
	if (c->peek_ev)
		event_free(c->peek_ev);
	if (c->wait_ev)
		event_free(c->wait_ev);
	if (c->recheck_ev)
		event_free(c->recheck_ev);
	if (c->sub) {
		sv_logring_unsubscribe(c->d->log, c->sub);
		free(c->sub);
	}
	if (c->client_gone && c->req)
		evhttp_request_free(c->req);
	if (!c->preload)
		sv_metrics_request(c->d->metrics, c->model, c->client_gone && !c->status ? 499 : c->status,
				sv_now_s() - c->t0);
	if (c->body)
		evbuffer_free(c->body);
	free(c->rq.name);
	free(c->model);
	free(c->uri);
	free(c);
}

void sv_ctx_reply(struct req_ctx *c, int code, const char *ctype, const char *body, size_t len)
{
	struct evhttp_request *req = c->req;

	c->status = code;
	if (req && !c->client_gone) {
		struct evkeyvalq *h = evhttp_request_get_output_headers(req);
		struct evbuffer *b = evbuffer_new();

		if (ctype)
			evhttp_add_header(h, "Content-Type", ctype);
		evhttp_add_header(h, "Access-Control-Allow-Origin", "*");
		evbuffer_add(b, body, len);
		detach_client(c);
		c->req = NULL;
		evhttp_send_reply(req, code, NULL, b);
		evbuffer_free(b);
	}
	sv_ctx_finish(c);
}

void sv_ctx_reply_json(struct req_ctx *c, int code, json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);

	json_decref(j);
	if (!s)
		s = sv_strdup("{}");
	sv_ctx_reply(c, code, "application/json", s, strlen(s));
	free(s);
}

static const char *error_type(int code)
{
	switch (code) {
	case 400:
	case 413:
		return "invalid_request_error";
	case 401:
		return "authentication_error";
	case 404:
		return "not_found_error";
	case 429:
		return "rate_limit_error";
	default:
		return code >= 500 ? "server_error" : "invalid_request_error";
	}
}

void sv_ctx_error(struct req_ctx *c, int code, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	msg = sv_vasprintf(fmt, ap);
	va_end(ap);
	if (code >= 500)
		serve_log(c->d, SERVE_LOG_WARN, "%d: %s", code, msg);
	sv_ctx_reply_json(c, code, json_pack("{s:{s:s,s:s,s:i}}", "error", "message", msg, "type",
					  error_type(code), "code", code));
	free(msg);
}

char *sv_req_query_param(struct evhttp_request *req, const char *name)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
	struct evkeyvalq q;
	const char *v;
	char *r = NULL;

	if (!query)
		return NULL;
	TAILQ_INIT(&q);
	if (evhttp_parse_query_str(query, &q) == 0 && (v = evhttp_find_header(&q, name)))
		r = sv_strdup(v);
	evhttp_clear_headers(&q);
	return r;
}

/* The API key the client sent: Bearer token, x-api-key, or the password
 * of Basic auth (llama-swap accepts all three). */
static char *client_key(struct evhttp_request *req)
{
	struct evkeyvalq *h = evhttp_request_get_input_headers(req);
	const char *auth = evhttp_find_header(h, "Authorization");
	const char *x = evhttp_find_header(h, "x-api-key");

	if (auth && !strncasecmp(auth, "Bearer ", 7))
		return sv_strdup(auth + 7 + strspn(auth + 7, " "));
	if (auth && !strncasecmp(auth, "Basic ", 6)) {
		static const char b64[] =
			"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
		const char *s = auth + 6;
		struct sv_buf out = { 0 };
		unsigned acc = 0;
		int bits = 0;
		char *colon, *r;

		for (; *s && *s != '='; s++) {
			const char *p = strchr(b64, *s);

			if (!p || !*s)
				break;
			acc = (acc << 6) | (unsigned)(p - b64);
			bits += 6;
			if (bits >= 8) {
				char ch = (char)((acc >> (bits - 8)) & 0xff);

				bits -= 8;
				sv_sbuf_add(&out, &ch, 1);
			}
		}
		r = sv_sbuf_take(&out);
		colon = strchr(r, ':');
		if (colon) {
			char *pw = sv_strdup(colon + 1);

			free(r);
			return pw;
		}
		return r;
	}
	return x ? sv_strdup(x) : NULL;
}

static bool authorized(struct daemon *d, struct evhttp_request *req)
{
	const struct sv_strv *keys = &d->cfg->api_keys;
	char *k;
	bool ok = false;

	if (!keys->n)
		return true;
	k = client_key(req);
	for (size_t i = 0; k && i < keys->n; i++)
		ok |= sv_secret_equal(k, keys->v[i]);
	free(k);
	return ok;
}

static bool is_get(const struct req_ctx *c)
{
	return c->cmd == EVHTTP_REQ_GET || c->cmd == EVHTTP_REQ_HEAD;
}

/* Paths llama-swap routes to a model by the body's "model" besides /v1/. */
static bool model_route(const char *path)
{
	static const char *const extra[] = { "/completion", "/infill", "/rerank", "/reranking",
					     "/embedding", "/tokenize", "/detokenize", NULL };

	if (sv_str_has_prefix(path, "/v1/"))
		return true;
	for (int i = 0; extra[i]; i++)
		if (!strcmp(path, extra[i]))
			return true;
	return false;
}

static void on_request(struct evhttp_request *req, void *arg)
{
	struct daemon *d = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *raw = uri ? evhttp_uri_get_path(uri) : NULL;
	char *path = raw ? evhttp_uridecode(raw, 0, NULL) : NULL;
	struct req_ctx *c;

	c = sv_ctx_new(d, req);
	if (!path || path[0] != '/') {
		sv_ctx_error(c, 400, "cannot read the request path");
		goto out;
	}
	if (c->cmd == EVHTTP_REQ_OPTIONS) {
		/* CORS preflight, answered for browser clients as llama-swap does */
		struct evkeyvalq *h = evhttp_request_get_output_headers(req);
		const char *want = evhttp_find_header(evhttp_request_get_input_headers(req),
						      "Access-Control-Request-Headers");

		evhttp_add_header(h, "Access-Control-Allow-Methods",
				  "GET, POST, PUT, PATCH, DELETE, OPTIONS");
		evhttp_add_header(h, "Access-Control-Allow-Headers",
				  want && !strpbrk(want, "\r\n") ? want :
				  "Content-Type, Authorization, Accept, X-Requested-With");
		evhttp_add_header(h, "Access-Control-Max-Age", "86400");
		sv_ctx_reply(c, 204, NULL, "", 0);
		goto out;
	}
	if (!strcmp(path, "/health") || !strcmp(path, "/")) {
		sv_ctx_reply(c, 200, "text/plain", "OK", 2);
		goto out;
	}
	if (!authorized(d, req)) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
				  "Bearer realm=\"pegpu serve\"");
		sv_ctx_error(c, 401, "missing or wrong API key: send the header 'Authorization: Bearer <key>' with one of the apiKeys in %s",
			  d->cfg->path);
		goto out;
	}
	if (model_route(path) && !(is_get(c) && (!strcmp(path, "/v1/models")))) {
		sv_proxy_handle(c, path);
	} else if (sv_str_has_prefix(path, "/upstream/")) {
		sv_proxy_handle_upstream(c, path);
	} else if (!strcmp(path, "/upstream") && is_get(c)) {
		sv_ep_upstream_index(c);
	} else if ((!strcmp(path, "/v1/models") || !strcmp(path, "/models")) && is_get(c)) {
		sv_ep_models(c);
	} else if (!strcmp(path, "/running") && is_get(c)) {
		sv_ep_running(c);
	} else if (!strcmp(path, "/unload") &&
		   (is_get(c) || c->cmd == EVHTTP_REQ_POST)) {
		char *m = sv_req_query_param(req, "model");

		sv_ep_unload(c, m);
		free(m);
	} else if (!strcmp(path, "/api/models/unload") && c->cmd == EVHTTP_REQ_POST) {
		sv_ep_unload(c, NULL);
	} else if (sv_str_has_prefix(path, "/api/models/unload/") && c->cmd == EVHTTP_REQ_POST) {
		sv_ep_unload(c, path + strlen("/api/models/unload/"));
	} else if (!strcmp(path, "/metrics") && is_get(c)) {
		sv_ep_metrics(c);
	} else if (!strcmp(path, "/logs") && is_get(c)) {
		sv_ep_logs(c);
	} else if (!strcmp(path, "/logs/stream") && is_get(c)) {
		sv_ep_logs_stream(c, LOG_PROXY | LOG_UPSTREAM);
	} else if (!strcmp(path, "/logs/stream/proxy") && is_get(c)) {
		sv_ep_logs_stream(c, LOG_PROXY);
	} else if (!strcmp(path, "/logs/stream/upstream") && is_get(c)) {
		sv_ep_logs_stream(c, LOG_UPSTREAM);
	} else {
		sv_ctx_error(c, 404, "no such endpoint: %s; pegpu serve answers /v1/... (OpenAI API), /upstream/<model>/..., /running, /unload, /health, /logs, /logs/stream and /metrics",
			  path);
	}
out:
	free(path);
}

static int parse_listen(const char *listen, char **host, unsigned short *port)
{
	const char *colon = strrchr(listen, ':');
	char *end;
	long p;

	if (!colon)
		return -1;
	p = strtol(colon + 1, &end, 10);
	if (*end || p < 0 || p > 65535 || end == colon + 1)
		return -1;
	if (listen[0] == '[' && colon > listen && colon[-1] == ']')
		*host = sv_strndup(listen + 1, (size_t)(colon - listen - 2));
	else
		*host = sv_strndup(listen, (size_t)(colon - listen));
	if (!**host) {
		free(*host);
		*host = sv_strdup("0.0.0.0");
	}
	*port = (unsigned short)p;
	return 0;
}

int sv_http_start(struct daemon *d)
{
	char *host = NULL;
	unsigned short port;
	struct evhttp_bound_socket *bs;
	evutil_socket_t fd;
	int one = 1;

	if (parse_listen(d->opts.listen, &host, &port)) {
		serve_log(d, SERVE_LOG_ERROR, "--listen '%s' must look like 127.0.0.1:8080 or [::1]:8080",
			  d->opts.listen);
		return -1;
	}
	d->http = evhttp_new(d->base);
	evhttp_set_allowed_methods(d->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
					    EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
					    EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	evhttp_set_max_body_size(d->http, (ev_ssize_t)d->opts.max_body);
	evhttp_set_max_headers_size(d->http, MAX_HEADERS_SIZE);
	evhttp_set_timeout(d->http, CLIENT_IO_TIMEOUT_S);
	evhttp_set_default_content_type(d->http, NULL);
	evhttp_set_gencb(d->http, on_request, d);
	bs = evhttp_bind_socket_with_handle(d->http, host, port);
	if (!bs) {
		serve_log(d, SERVE_LOG_ERROR, "cannot listen on %s: %s; is another server using the port? choose another with --listen",
			  d->opts.listen, evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		free(host);
		return -1;
	}
	free(host);
	/* Streamed tokens are small writes; Nagle would hold each one until
	 * the client acknowledged the last (up to 40 ms with delayed ACKs).
	 * Set on the listener, TCP_NODELAY is inherited by every accepted
	 * socket (Linux and BSDs), which saves a syscall per request. */
	fd = evhttp_bound_socket_get_fd(bs);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return 0;
}

void sv_http_stop(struct daemon *d)
{
	if (d->http)
		evhttp_free(d->http);
	d->http = NULL;
}
