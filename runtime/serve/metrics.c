/* SPDX-License-Identifier: Apache-2.0 */
/* Prometheus counters for pegpu serve (see metrics.h). */
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

static const double buckets[] = {
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300,
};
#define N_BUCKETS ARRAY_SIZE(buckets)
#define MAX_CODES 24

struct code_count {
	int code;
	uint64_t n;
};

struct model_stats {
	char *model;		/* "" for requests that named no model */
	struct code_count codes[MAX_CODES];
	size_t n_codes;
	uint64_t hist[N_BUCKETS + 1];	/* last: +Inf */
	double sum;
	uint64_t count;
	uint64_t events[MET_COUNT_];
	double start_sum;
	uint64_t start_count;
};

struct serve_metrics {
	struct model_stats *v;
	size_t n, cap;
	uint64_t reload_ok, reload_failed;
	double started;
};

struct serve_metrics *sv_metrics_new(void)
{
	struct serve_metrics *mt = sv_calloc(1, sizeof(*mt));

	mt->started = sv_now_s();
	return mt;
}

void sv_metrics_free(struct serve_metrics *mt)
{
	if (!mt)
		return;
	for (size_t i = 0; i < mt->n; i++)
		free(mt->v[i].model);
	free(mt->v);
	free(mt);
}

static struct model_stats *stats(struct serve_metrics *mt, const char *model)
{
	if (!model)
		model = "";
	for (size_t i = 0; i < mt->n; i++)
		if (!strcmp(mt->v[i].model, model))
			return &mt->v[i];
	if (mt->n == mt->cap) {
		mt->cap = mt->cap ? mt->cap * 2 : 8;
		mt->v = sv_realloc(mt->v, mt->cap * sizeof(*mt->v));
	}
	memset(&mt->v[mt->n], 0, sizeof(mt->v[0]));
	mt->v[mt->n].model = sv_strdup(model);
	return &mt->v[mt->n++];
}

void sv_metrics_request(struct serve_metrics *mt, const char *model, int status, double seconds)
{
	struct model_stats *s = stats(mt, model);
	size_t i;

	for (i = 0; i < s->n_codes; i++)
		if (s->codes[i].code == status)
			break;
	if (i == s->n_codes && s->n_codes < MAX_CODES)
		s->codes[s->n_codes++] = (struct code_count){ status, 0 };
	if (i < s->n_codes)
		s->codes[i].n++;
	for (i = 0; i < N_BUCKETS && seconds > buckets[i]; i++)
		;
	s->hist[i]++;
	s->sum += seconds;
	s->count++;
}

void sv_metrics_event(struct serve_metrics *mt, const char *model, enum metric_event ev)
{
	stats(mt, model)->events[ev]++;
}

void sv_metrics_start_time(struct serve_metrics *mt, const char *model, double seconds)
{
	struct model_stats *s = stats(mt, model);

	s->start_sum += seconds;
	s->start_count++;
}

void sv_metrics_reload(struct serve_metrics *mt, bool ok)
{
	if (ok)
		mt->reload_ok++;
	else
		mt->reload_failed++;
}

/* Label values escape \, " and newline (exposition format rules). */
static void label(struct sv_buf *o, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			sv_sbuf_addf(o, "\\%c", *v);
		else if (*v == '\n')
			sv_sbuf_adds(o, "\\n");
		else
			sv_sbuf_add(o, v, 1);
	}
}

static void header(struct sv_buf *o, const char *name, const char *type, const char *help)
{
	sv_sbuf_addf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void event_family(struct serve_metrics *mt, struct sv_buf *o, enum metric_event ev,
			 const char *name, const char *help)
{
	header(o, name, "counter", help);
	for (size_t i = 0; i < mt->n; i++) {
		if (!*mt->v[i].model)
			continue;
		sv_sbuf_addf(o, "%s{model=\"", name);
		label(o, mt->v[i].model);
		sv_sbuf_addf(o, "\"} %llu\n", (unsigned long long)mt->v[i].events[ev]);
	}
}

void sv_metrics_render(struct serve_metrics *mt, struct router *r, struct sv_buf *o)
{
	static const enum rt_state states[] = { RT_STOPPED, RT_STARTING, RT_READY, RT_STOPPING };

	/* Make sure every configured model has a row, even before its first
	 * request, so dashboards see it. */
	for (size_t i = 0; r && i < sv_router_count(r); i++)
		stats(mt, sv_router_model(r, i)->id);

	header(o, "pegpu_serve_requests_total", "counter",
	       "HTTP requests answered, by model asked for and status code.");
	for (size_t i = 0; i < mt->n; i++) {
		for (size_t c = 0; c < mt->v[i].n_codes; c++) {
			sv_sbuf_adds(o, "pegpu_serve_requests_total{model=\"");
			label(o, mt->v[i].model);
			sv_sbuf_addf(o, "\",code=\"%d\"} %llu\n", mt->v[i].codes[c].code,
				  (unsigned long long)mt->v[i].codes[c].n);
		}
	}
	header(o, "pegpu_serve_request_duration_seconds", "histogram",
	       "Time from request to the end of the reply, model start included.");
	for (size_t i = 0; i < mt->n; i++) {
		struct model_stats *s = &mt->v[i];
		uint64_t cum = 0;

		if (!s->count)
			continue;
		for (size_t b = 0; b <= N_BUCKETS; b++) {
			cum += s->hist[b];
			sv_sbuf_adds(o, "pegpu_serve_request_duration_seconds_bucket{model=\"");
			label(o, s->model);
			if (b < N_BUCKETS)
				sv_sbuf_addf(o, "\",le=\"%g\"} %llu\n", buckets[b], (unsigned long long)cum);
			else
				sv_sbuf_addf(o, "\",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
		}
		sv_sbuf_adds(o, "pegpu_serve_request_duration_seconds_sum{model=\"");
		label(o, s->model);
		sv_sbuf_addf(o, "\"} %.6f\n", s->sum);
		sv_sbuf_adds(o, "pegpu_serve_request_duration_seconds_count{model=\"");
		label(o, s->model);
		sv_sbuf_addf(o, "\"} %llu\n", (unsigned long long)s->count);
	}
	event_family(mt, o, MET_START, "pegpu_serve_model_starts_total",
		     "Model server processes started.");
	event_family(mt, o, MET_START_FAILED, "pegpu_serve_model_start_failures_total",
		     "Model starts that never became ready (exit, health check timeout).");
	event_family(mt, o, MET_EXIT, "pegpu_serve_model_unexpected_exits_total",
		     "Ready model servers that exited without being asked to.");
	event_family(mt, o, MET_REJECTED, "pegpu_serve_rejected_total",
		     "Requests refused with 429 by the model's concurrencyLimit.");
	event_family(mt, o, MET_UPSTREAM_ERROR, "pegpu_serve_upstream_errors_total",
		     "Requests that failed between pegpu serve and the model server.");
	header(o, "pegpu_serve_model_start_seconds", "summary",
	       "Time from starting a model process to its first healthy check.");
	for (size_t i = 0; i < mt->n; i++) {
		if (!mt->v[i].start_count)
			continue;
		sv_sbuf_adds(o, "pegpu_serve_model_start_seconds_sum{model=\"");
		label(o, mt->v[i].model);
		sv_sbuf_addf(o, "\"} %.6f\npegpu_serve_model_start_seconds_count{model=\"",
			  mt->v[i].start_sum);
		label(o, mt->v[i].model);
		sv_sbuf_addf(o, "\"} %llu\n", (unsigned long long)mt->v[i].start_count);
	}
	if (r) {
		header(o, "pegpu_serve_model_state", "gauge",
		       "1 for the state each configured model is in.");
		for (size_t i = 0; i < sv_router_count(r); i++) {
			struct rt_model *m = sv_router_model(r, i);

			for (size_t s = 0; s < ARRAY_SIZE(states); s++) {
				sv_sbuf_adds(o, "pegpu_serve_model_state{model=\"");
				label(o, m->id);
				sv_sbuf_addf(o, "\",state=\"%s\"} %d\n", sv_rt_state_name(states[s]),
					  m->state == states[s]);
			}
		}
		header(o, "pegpu_serve_inflight_requests", "gauge",
		       "Requests being served by each model now.");
		for (size_t i = 0; i < sv_router_count(r); i++) {
			sv_sbuf_adds(o, "pegpu_serve_inflight_requests{model=\"");
			label(o, sv_router_model(r, i)->id);
			sv_sbuf_addf(o, "\"} %u\n", sv_router_model(r, i)->inflight);
		}
		header(o, "pegpu_serve_queued_requests", "gauge",
		       "Requests waiting for each model to start or to be free.");
		for (size_t i = 0; i < sv_router_count(r); i++) {
			sv_sbuf_adds(o, "pegpu_serve_queued_requests{model=\"");
			label(o, sv_router_model(r, i)->id);
			sv_sbuf_addf(o, "\"} %u\n", sv_rt_model_queued(sv_router_model(r, i)));
		}
	}
	header(o, "pegpu_serve_config_reloads_total", "counter", "Config reloads, by result.");
	sv_sbuf_addf(o, "pegpu_serve_config_reloads_total{result=\"ok\"} %llu\n",
		  (unsigned long long)mt->reload_ok);
	sv_sbuf_addf(o, "pegpu_serve_config_reloads_total{result=\"error\"} %llu\n",
		  (unsigned long long)mt->reload_failed);
	header(o, "pegpu_serve_uptime_seconds", "gauge", "Seconds since pegpu serve started.");
	sv_sbuf_addf(o, "pegpu_serve_uptime_seconds %.3f\n", sv_now_s() - mt->started);
}
