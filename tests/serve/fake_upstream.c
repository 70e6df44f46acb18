/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fake_upstream: a stand-in for llama-server in pegpu serve's tests and
 * proxy benchmark.  It speaks just enough of llama.cpp's HTTP API:
 *
 *   GET  /health               503 {"status":"loading"} until --startup-delay
 *                              has passed, then 200 {"status":"ok"}
 *   POST /v1/chat/completions  OpenAI reply; with "stream": true, SSE chunks,
 *                              each stamped with the wall-clock time it was
 *                              sent ("t_sent"), so a client can prove that
 *                              nothing between them buffered
 *   POST /v1/completions, /v1/embeddings, GET /props, GET /v1/models
 *
 * Request fields that steer it (all optional):
 *   fake_chunks       number of streamed chunks (default 5)
 *   fake_interval_ms  pause between chunks (default 0)
 *   fake_delay_ms     pause before answering (default 0)
 *   fake_crash_after  exit abruptly after sending this many chunks
 *   fake_bytes        size of the content of a non-streamed reply
 *
 * Flags: --port N (required), --host H, --name NAME, --startup-delay SEC,
 * --listen-delay SEC (bind only after that), --ignore-term (ignore SIGTERM:
 * tests the SIGKILL ladder), --spawn-child (fork a child that stays in the
 * process group: tests that whole groups are stopped), --exit-after SEC.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

struct fake {
	struct event_base *base;
	struct evhttp *http;
	const char *host, *name;
	int port;
	double ready_at;
	unsigned long served;
};

struct stream {
	struct fake *f;
	struct evhttp_request *req;
	struct event *ev;
	char *model;
	int sent, chunks, crash_after, interval_ms;
	bool gone;
};

static double wall(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static void reply_json(struct evhttp_request *req, int code, json_t *j)
{
	struct evbuffer *b = evbuffer_new();
	char *s = json_dumps(j, JSON_COMPACT);

	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
	evbuffer_add(b, s, strlen(s));
	evhttp_send_reply(req, code, NULL, b);
	evbuffer_free(b);
	free(s);
	json_decref(j);
}

static void stream_closed(struct evhttp_connection *c, void *arg)
{
	struct stream *s = arg;

	(void)c;
	s->gone = true;
}

static void stream_tick(evutil_socket_t fd, short what, void *arg)
{
	struct stream *s = arg;
	struct evbuffer *b;
	json_t *j;
	char *txt, tok[32];

	(void)fd;
	(void)what;
	if (s->gone) {
		/* the client left: libevent hands the request back to us */
		evhttp_request_free(s->req);
		goto done;
	}
	if (s->crash_after >= 0 && s->sent >= s->crash_after) {
		fprintf(stderr, "fake_upstream %s: crashing on request after %d chunks\n", s->f->name,
			s->sent);
		_exit(3);
	}
	b = evbuffer_new();
	if (s->sent < s->chunks) {
		snprintf(tok, sizeof(tok), "tok%d ", s->sent);
		j = json_pack("{s:s,s:s,s:i,s:s,s:[{s:i,s:{s:s},s:n}],s:f,s:s,s:i}", "id", "chatcmpl-fake",
			      "object", "chat.completion.chunk", "created", (int)time(NULL), "model",
			      s->model, "choices", "index", 0, "delta", "content", tok,
			      "finish_reason", "t_sent", wall(), "served_by", s->f->name, "seq", s->sent);
		txt = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(17));
		evbuffer_add_printf(b, "data: %s\n\n", txt);
		free(txt);
		json_decref(j);
		s->sent++;
		evhttp_send_reply_chunk(s->req, b);
		evbuffer_free(b);
		event_add(s->ev, &(struct timeval){ s->interval_ms / 1000, (s->interval_ms % 1000) * 1000 });
		return;
	}
	evbuffer_add_printf(b, "data: [DONE]\n\n");
	evhttp_send_reply_chunk(s->req, b);
	evbuffer_free(b);
	evhttp_connection_set_closecb(evhttp_request_get_connection(s->req), NULL, NULL);
	evhttp_send_reply_end(s->req);
done:
	event_free(s->ev);
	free(s->model);
	free(s);
}

static int opt_int(json_t *body, const char *key, int def)
{
	json_t *v = json_object_get(body, key);

	return json_is_integer(v) ? (int)json_integer_value(v) : def;
}

struct delayed {
	struct fake *f;
	struct evhttp_request *req;
	json_t *body;
	char *path;
	struct event *ev;
};

static void answer(struct fake *f, struct evhttp_request *req, json_t *body, const char *path);

static void delayed_answer(evutil_socket_t fd, short what, void *arg)
{
	struct delayed *dl = arg;

	(void)fd;
	(void)what;
	answer(dl->f, dl->req, dl->body, dl->path);
	json_decref(dl->body);
	free(dl->path);
	event_free(dl->ev);
	free(dl);
}

static void answer(struct fake *f, struct evhttp_request *req, json_t *body, const char *path)
{
	const char *model = json_string_value(json_object_get(body, "model"));

	if (!model)
		model = "unknown";
	f->served++;
	if (!strcmp(path, "/v1/chat/completions") && json_is_true(json_object_get(body, "stream"))) {
		struct stream *s = calloc(1, sizeof(*s));

		s->f = f;
		s->req = req;
		s->model = strdup(model);
		s->chunks = opt_int(body, "fake_chunks", 5);
		s->interval_ms = opt_int(body, "fake_interval_ms", 0);
		s->crash_after = opt_int(body, "fake_crash_after", -1);
		s->ev = evtimer_new(f->base, stream_tick, s);
		evhttp_connection_set_closecb(evhttp_request_get_connection(req), stream_closed, s);
		evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
				  "text/event-stream");
		evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control", "no-cache");
		evhttp_send_reply_start(req, 200, "OK");
		stream_tick(-1, 0, s);
		return;
	}
	if (!strcmp(path, "/v1/chat/completions") || !strcmp(path, "/v1/completions")) {
		int nbytes = opt_int(body, "fake_bytes", 16);
		char *content;

		if (opt_int(body, "fake_crash_after", -1) >= 0) {
			fprintf(stderr, "fake_upstream %s: crashing on request\n", f->name);
			_exit(3);
		}
		content = malloc((size_t)nbytes + 1);
		memset(content, 'x', (size_t)nbytes);
		content[nbytes] = '\0';
		reply_json(req, 200, json_pack("{s:s,s:s,s:i,s:s,s:[{s:i,s:{s:s,s:s},s:s}],s:{s:i,s:i,s:i},s:s,s:i}",
					       "id", "chatcmpl-fake", "object", "chat.completion",
					       "created", (int)time(NULL), "model", model, "choices",
					       "index", 0, "message", "role", "assistant", "content",
					       content, "finish_reason", "stop", "usage", "prompt_tokens",
					       3, "completion_tokens", 1, "total_tokens", 4, "served_by",
					       f->name, "pid", (int)getpid()));
		free(content);
		return;
	}
	if (!strcmp(path, "/v1/embeddings")) {
		reply_json(req, 200, json_pack("{s:s,s:[{s:s,s:i,s:[f,f,f]}],s:s,s:s}", "object", "list",
					       "data", "object", "embedding", "index", 0, "embedding",
					       0.1, 0.2, 0.3, "model", model, "served_by", f->name));
		return;
	}
	reply_json(req, 404, json_pack("{s:s}", "error", "fake_upstream: no such route"));
}

static void on_request(struct evhttp_request *req, void *arg)
{
	struct fake *f = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = evhttp_uri_get_path(uri);
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	json_t *body = NULL;
	int delay;

	if (!path)
		path = "/";
	if (!strcmp(path, "/health")) {
		if (wall() < f->ready_at)
			reply_json(req, 503, json_pack("{s:s}", "status", "loading"));
		else
			reply_json(req, 200, json_pack("{s:s}", "status", "ok"));
		return;
	}
	if (!strcmp(path, "/props")) {
		const char *q = evhttp_uri_get_query(uri);

		const char *probe = getenv("FAKE_PROBE");

		/* FAKE_PROBE shows that a model's env: reached the server */
		reply_json(req, 200, json_pack("{s:s,s:i,s:s,s:I,s:s}", "name", f->name, "pid",
					       (int)getpid(), "query", q ? q : "", "served",
					       (json_int_t)f->served, "probe", probe ? probe : ""));
		return;
	}
	if (!strcmp(path, "/v1/models")) {
		reply_json(req, 200, json_pack("{s:s,s:[{s:s}]}", "object", "list", "data", "id", f->name));
		return;
	}
	if (evbuffer_get_length(in)) {
		json_error_t err;

		body = json_loadb((const char *)evbuffer_pullup(in, -1), evbuffer_get_length(in), 0, &err);
		if (!body) {
			reply_json(req, 400, json_pack("{s:s}", "error", err.text));
			return;
		}
	} else {
		body = json_object();
	}
	delay = opt_int(body, "fake_delay_ms", 0);
	if (delay > 0) {
		struct delayed *dl = calloc(1, sizeof(*dl));

		dl->f = f;
		dl->req = req;
		dl->body = body;
		dl->path = strdup(path);
		dl->ev = evtimer_new(f->base, delayed_answer, dl);
		event_add(dl->ev, &(struct timeval){ delay / 1000, (delay % 1000) * 1000 });
		return;
	}
	answer(f, req, body, path);
	json_decref(body);
}

static void sleep_s(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static void on_exit_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	fprintf(stderr, "fake_upstream: --exit-after elapsed, exiting\n");
	_exit(4);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "host", required_argument, NULL, 'H' },
		{ "name", required_argument, NULL, 'n' },
		{ "startup-delay", required_argument, NULL, 's' },
		{ "listen-delay", required_argument, NULL, 'l' },
		{ "ignore-term", no_argument, NULL, 'i' },
		{ "spawn-child", no_argument, NULL, 'c' },
		{ "exit-after", required_argument, NULL, 'x' },
		{ NULL, 0, NULL, 0 },
	};
	struct fake f = { .host = "127.0.0.1", .name = "fake" };
	double startup = 0, listen_delay = 0, exit_after = 0;
	bool spawn_child = false;
	struct event *exit_ev = NULL;
	struct evhttp_bound_socket *bs;
	int ch, one = 1;

	while ((ch = getopt_long(argc, argv, "p:", opts, NULL)) != -1) {
		switch (ch) {
		case 'p':
			f.port = atoi(optarg);
			break;
		case 'H':
			f.host = optarg;
			break;
		case 'n':
			f.name = optarg;
			break;
		case 's':
			startup = atof(optarg);
			break;
		case 'l':
			listen_delay = atof(optarg);
			break;
		case 'i':
			signal(SIGTERM, SIG_IGN);
			break;
		case 'c':
			spawn_child = true;
			break;
		case 'x':
			exit_after = atof(optarg);
			break;
		default:
			fprintf(stderr, "usage: fake_upstream --port N [--name NAME] [--startup-delay S] [--listen-delay S] [--ignore-term] [--spawn-child] [--exit-after S]\n");
			return 2;
		}
	}
	if (f.port <= 0) {
		fprintf(stderr, "fake_upstream: --port is required\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (spawn_child && fork() == 0) {
		/* stays in our process group, like a helper a real server forks */
		for (;;)
			pause();
	}
	fprintf(stderr, "fake_upstream %s: pid %d, port %d, loading for %.2f s\n", f.name, (int)getpid(),
		f.port, listen_delay + startup);
	if (listen_delay > 0)
		sleep_s(listen_delay);
	f.ready_at = wall() + startup;
	f.base = event_base_new();
	f.http = evhttp_new(f.base);
	evhttp_set_allowed_methods(f.http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD);
	evhttp_set_gencb(f.http, on_request, &f);
	bs = evhttp_bind_socket_with_handle(f.http, f.host, (unsigned short)f.port);
	if (!bs) {
		fprintf(stderr, "fake_upstream %s: cannot listen on %s:%d\n", f.name, f.host, f.port);
		return 1;
	}
	/* each SSE chunk leaves at once, as from a server that flushes per
	 * token (accepted sockets inherit the option) */
	setsockopt(evhttp_bound_socket_get_fd(bs), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (exit_after > 0) {
		exit_ev = evtimer_new(f.base, on_exit_timer, NULL);
		event_add(exit_ev, &(struct timeval){ (time_t)exit_after,
						      (long)((exit_after - (double)(time_t)exit_after) * 1e6) });
	}
	event_base_dispatch(f.base);
	return 0;
}
