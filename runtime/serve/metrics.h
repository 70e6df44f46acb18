/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Counters for GET /metrics (Prometheus text format 0.0.4): requests by
 * model and status, latency histograms, model starts, start failures,
 * unexpected exits, refusals, and the current state of every model.
 * Counters are kept per model id, so they survive config reloads.
 */
#ifndef PEGPU_SERVE_METRICS_H
#define PEGPU_SERVE_METRICS_H

#include "router.h"
#include "util.h"

enum metric_event {
	MET_START,		/* a model process was started */
	MET_START_FAILED,	/* ... and never became ready */
	MET_EXIT,		/* a ready model exited on its own */
	MET_REJECTED,		/* refused by the concurrency limit */
	MET_UPSTREAM_ERROR,	/* a request failed between us and the model */
	MET_COUNT_
};

struct serve_metrics;

struct serve_metrics *sv_metrics_new(void);
void sv_metrics_free(struct serve_metrics *mt);
/* model may be NULL (requests that name no model). */
void sv_metrics_request(struct serve_metrics *mt, const char *model, int status, double seconds);
void sv_metrics_event(struct serve_metrics *mt, const char *model, enum metric_event ev);
void sv_metrics_start_time(struct serve_metrics *mt, const char *model, double seconds);
void sv_metrics_reload(struct serve_metrics *mt, bool ok);
void sv_metrics_render(struct serve_metrics *mt, struct router *r, struct sv_buf *out);

#endif /* PEGPU_SERVE_METRICS_H */
