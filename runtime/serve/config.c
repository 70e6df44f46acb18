/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Load a llama-swap style YAML config (see config.h, docs/serve.md).
 *
 * libyaml's document API gives a node tree in which every node keeps its
 * line, so each problem is reported where it is.  Each mapping level has a
 * table of the keys it knows; a key not in the table is an error with a
 * "did you mean" suggestion, because a misspelled `tll:` silently meaning
 * "never unload" is exactly the kind of surprise a config loader must not
 * give.  llama-swap keys that pegpu does not implement are either accepted
 * with a warning (logging and UI knobs: ignoring them changes nothing a
 * client can see) or refused (routing features: ignoring them would route
 * requests differently than the user wrote).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "cmdline.h"
#include "config.h"
#include "macros.h"
#include "plan_core.h"
#include "pegpu/ggml_rpc.h"
#include "suggest.h"

enum key_kind {
	KEY_OK,			/* implemented */
	KEY_IGNORED,		/* llama-swap key accepted with a warning */
	KEY_UNSUPPORTED,	/* llama-swap key refused */
};

struct key_def {
	const char *name;
	enum key_kind kind;
	const char *why;	/* for IGNORED / UNSUPPORTED */
};

static const struct key_def top_keys[] = {
	{ "healthCheckTimeout", KEY_OK, NULL },
	{ "logLevel", KEY_OK, NULL },
	{ "logToStdout", KEY_OK, NULL },
	{ "startPort", KEY_OK, NULL },
	{ "globalTTL", KEY_OK, NULL },
	{ "unloadTimeout", KEY_OK, NULL },
	{ "macros", KEY_OK, NULL },
	{ "models", KEY_OK, NULL },
	{ "groups", KEY_OK, NULL },
	{ "routing", KEY_OK, NULL },
	{ "hooks", KEY_OK, NULL },
	{ "apiKeys", KEY_OK, NULL },
	{ "includeAliasesInList", KEY_OK, NULL },
	{ "rpcServers", KEY_OK, NULL },		/* pegpu's own; see parse_rpc_servers() */
	{ "logTimeFormat", KEY_IGNORED, "log lines always carry an ISO 8601 time" },
	{ "logRequests", KEY_IGNORED, "requests are counted in /metrics" },
	{ "metricsMaxInMemory", KEY_IGNORED, "there is no activity store" },
	{ "captureBuffer", KEY_IGNORED, "request captures are not kept" },
	{ "store", KEY_IGNORED, "there is no activity store" },
	{ "ui", KEY_IGNORED, "the web UI is not part of pegpu serve" },
	{ "performance", KEY_IGNORED, "system statistics come from pegpu's own metrics" },
	{ "sendLoadingState", KEY_IGNORED, "loading progress is not injected into replies" },
	{ "upstream", KEY_IGNORED, "every /upstream path may start its model" },
	{ "matrix", KEY_UNSUPPORTED, "use groups (swap/exclusive/persistent) instead" },
	{ "peers", KEY_UNSUPPORTED, "remote peers are not proxied; run them as models with a proxy: URL" },
	{ "profiles", KEY_UNSUPPORTED, "use aliases instead" },
	{ "selectors", KEY_UNSUPPORTED, "use aliases instead" },
	{ NULL, KEY_OK, NULL },
};

static const struct key_def model_keys[] = {
	{ "cmd", KEY_OK, NULL },
	{ "cmdStop", KEY_OK, NULL },
	{ "proxy", KEY_OK, NULL },
	{ "checkEndpoint", KEY_OK, NULL },
	{ "ttl", KEY_OK, NULL },
	{ "unloadTimeout", KEY_OK, NULL },
	{ "env", KEY_OK, NULL },
	{ "aliases", KEY_OK, NULL },
	{ "useModelName", KEY_OK, NULL },
	{ "unlisted", KEY_OK, NULL },
	{ "concurrencyLimit", KEY_OK, NULL },
	{ "name", KEY_OK, NULL },
	{ "description", KEY_OK, NULL },
	{ "macros", KEY_OK, NULL },
	{ "metadata", KEY_OK, NULL },
	{ "filters", KEY_OK, NULL },
	{ "split", KEY_OK, NULL },		/* pegpu's own; see parse_split() */
	{ "sendLoadingState", KEY_IGNORED, "loading progress is not injected into replies" },
	{ "timeouts", KEY_IGNORED, "upstream connections never time out while a reply is pending" },
	{ "compat", KEY_IGNORED, "websockets are not proxied" },
	{ "capabilities", KEY_IGNORED, "/v1/models does not list capabilities" },
	{ NULL, KEY_OK, NULL },
};

static const struct key_def group_keys[] = {
	{ "swap", KEY_OK, NULL },
	{ "exclusive", KEY_OK, NULL },
	{ "persistent", KEY_OK, NULL },
	{ "members", KEY_OK, NULL },
	{ NULL, KEY_OK, NULL },
};

static const struct key_def filter_keys[] = {
	{ "stripParams", KEY_OK, NULL },
	{ "setParams", KEY_OK, NULL },
	{ "setParamsByID", KEY_UNSUPPORTED, "use aliases and separate models instead" },
	{ NULL, KEY_OK, NULL },
};

static const struct key_def split_keys[] = {
	{ "rpc", KEY_OK, NULL },
	{ "hostMemory", KEY_OK, NULL },
	{ "hostDevice", KEY_OK, NULL },
	{ "ctx", KEY_OK, NULL },
	{ "reserve", KEY_OK, NULL },
	{ "expertOffload", KEY_OK, NULL },
	{ "llama", KEY_OK, NULL },
	{ "queryTimeout", KEY_OK, NULL },
	{ NULL, KEY_OK, NULL },
};

static const struct key_def rpc_server_keys[] = {
	{ "endpoint", KEY_OK, NULL },
	{ "cmd", KEY_OK, NULL },
	{ "env", KEY_OK, NULL },
	{ "free", KEY_OK, NULL },
	{ NULL, KEY_OK, NULL },
};

static const struct key_def hooks_keys[] = {
	{ "on_startup", KEY_OK, NULL },
	{ NULL, KEY_OK, NULL },
};

static const struct key_def on_startup_keys[] = {
	{ "preload", KEY_OK, NULL },
	{ NULL, KEY_OK, NULL },
};

static const struct key_def routing_keys[] = {
	{ "router", KEY_OK, NULL },
	{ "scheduler", KEY_OK, NULL },
	{ NULL, KEY_OK, NULL },
};

static const struct key_def router_keys[] = {
	{ "use", KEY_OK, NULL },
	{ "settings", KEY_OK, NULL },
	{ NULL, KEY_OK, NULL },
};

static const struct key_def router_settings_keys[] = {
	{ "groups", KEY_OK, NULL },
	{ "matrix", KEY_UNSUPPORTED, "use groups (swap/exclusive/persistent) instead" },
	{ NULL, KEY_OK, NULL },
};

static const struct key_def scheduler_keys[] = {
	{ "use", KEY_OK, NULL },
	{ "settings", KEY_IGNORED, "queued requests are served in arrival order; priorities are not implemented" },
	{ NULL, KEY_OK, NULL },
};

struct ypair {
	const char *key;	/* the key's scalar value */
	yaml_node_t *knode;
	yaml_node_t *vnode;
};

struct ymap {
	struct ypair *v;
	size_t n, cap;
};

struct loader {
	yaml_document_t doc;
	struct serve_diag *d;
	struct serve_config *cfg;
	struct serve_macros global;
	long json_budget;	/* nodes to_json may still visit (alias bombs) */
};

#define JSON_NODE_BUDGET 100000

/* The scope in which a model's values are expanded. */
struct scope {
	const struct serve_macros *macros;
	int port;		/* > 0: replace ${PORT} */
	bool allow_pid;		/* cmdStop keeps ${PID} for stop time */
};

static int line_of(const yaml_node_t *n)
{
	return n ? (int)n->start_mark.line + 1 : 0;
}

static const char *kind_name(const yaml_node_t *n)
{
	switch (n->type) {
	case YAML_SCALAR_NODE:
		return "a single value";
	case YAML_SEQUENCE_NODE:
		return "a list";
	case YAML_MAPPING_NODE:
		return "a mapping";
	default:
		return "nothing";
	}
}

static const char *scalar_raw(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

/* True for a plain (unquoted) scalar that YAML reads as null. */
static bool is_null(const yaml_node_t *n)
{
	const char *s;

	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	s = scalar_raw(n);
	return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
	       !strcmp(s, "NULL");
}

static void ymap_add(struct ymap *m, const char *key, yaml_node_t *k, yaml_node_t *v)
{
	if (m->n == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 16;
		m->v = sv_realloc(m->v, m->cap * sizeof(*m->v));
	}
	m->v[m->n++] = (struct ypair){ key, k, v };
}

static struct ypair *ymap_find(const struct ymap *m, const char *key)
{
	for (size_t i = 0; i < m->n; i++)
		if (!strcmp(m->v[i].key, key))
			return &m->v[i];
	return NULL;
}

static yaml_node_t *ymap_get(const struct ymap *m, const char *key)
{
	struct ypair *p = ymap_find(m, key);

	return p ? p->vnode : NULL;
}

/*
 * Collect a mapping's pairs.  Merge keys ("<<: *anchor", which llama-swap
 * configs use to share settings between models) add the pairs of the merged
 * mappings that the mapping does not set itself.  Duplicate keys are an
 * error, as in YAML itself.
 */
static void ymap_collect_into(struct loader *L, yaml_node_t *map, struct ymap *m, bool merged,
			      int depth)
{
	yaml_node_pair_t *p;

	if (depth > 8) {
		sv_diag_error(L->d, line_of(map), "merge keys (<<) nest too deeply");
		return;
	}
	for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(&L->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(&L->doc, p->value);
		const char *key;

		if (!k || !v)
			continue;
		if (k->type != YAML_SCALAR_NODE) {
			sv_diag_error(L->d, line_of(k), "a key must be a single word, not %s",
				   kind_name(k));
			continue;
		}
		key = scalar_raw(k);
		if (!strcmp(key, "<<") && k->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
			continue;	/* second pass */
		if (ymap_find(m, key)) {
			if (!merged)
				sv_diag_error(L->d, line_of(k), "'%s' is set twice in this mapping", key);
			continue;
		}
		ymap_add(m, key, k, v);
	}
	for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(&L->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(&L->doc, p->value);

		if (!k || !v || k->type != YAML_SCALAR_NODE || strcmp(scalar_raw(k), "<<") ||
		    k->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
			continue;
		if (v->type == YAML_MAPPING_NODE) {
			ymap_collect_into(L, v, m, true, depth + 1);
		} else if (v->type == YAML_SEQUENCE_NODE) {
			for (yaml_node_item_t *it = v->data.sequence.items.start;
			     it < v->data.sequence.items.top; it++) {
				yaml_node_t *mv = yaml_document_get_node(&L->doc, *it);

				if (mv && mv->type == YAML_MAPPING_NODE)
					ymap_collect_into(L, mv, m, true, depth + 1);
				else
					sv_diag_error(L->d, line_of(v), "'<<' merges mappings only");
			}
		} else {
			sv_diag_error(L->d, line_of(v), "'<<' merges mappings only");
		}
	}
}

/* Collect map's pairs, checking each key against keys.  where names the
 * mapping in messages ("top level", "model 'x'"). */
static void ymap_collect(struct loader *L, yaml_node_t *map, const struct key_def *keys,
			 const char *where, struct ymap *m)
{
	const char *names[64];
	size_t nn = 0;

	memset(m, 0, sizeof(*m));
	ymap_collect_into(L, map, m, false, 0);
	if (!keys)
		return;
	for (const struct key_def *k = keys; k->name && nn < ARRAY_SIZE(names) - 1; k++)
		if (k->kind != KEY_UNSUPPORTED)
			names[nn++] = k->name;
	names[nn] = NULL;
	for (size_t i = 0; i < m->n; i++) {
		const struct key_def *k;
		int line = line_of(m->v[i].knode);

		/* "x-" keys hold YAML anchors (the docker-compose convention);
		 * docs/serve.md says they are skipped. */
		if (keys == top_keys && sv_str_has_prefix(m->v[i].key, "x-")) {
			m->v[i].key = "";
			continue;
		}
		for (k = keys; k->name; k++)
			if (!strcmp(k->name, m->v[i].key))
				break;
		if (!k->name) {
			const char *s = sv_suggest_word(m->v[i].key, names);

			if (s)
				sv_diag_error(L->d, line, "unknown key '%s' in %s (did you mean '%s'?)",
					   m->v[i].key, where, s);
			else
				sv_diag_error(L->d, line, "unknown key '%s' in %s", m->v[i].key, where);
			m->v[i].key = "";	/* so later lookups skip it */
		} else if (k->kind == KEY_IGNORED) {
			sv_diag_warn(L->d, line, "'%s' in %s is a llama-swap setting pegpu serve ignores: %s",
				  k->name, where, k->why);
		} else if (k->kind == KEY_UNSUPPORTED) {
			sv_diag_error(L->d, line, "'%s' in %s is not supported by pegpu serve: %s",
				   k->name, where, k->why);
		}
	}
}

static bool expect(struct loader *L, yaml_node_t *n, yaml_node_type_t t, const char *what)
{
	static const char *const names[] = {
		[YAML_SCALAR_NODE] = "a single value",
		[YAML_SEQUENCE_NODE] = "a list",
		[YAML_MAPPING_NODE] = "a mapping",
	};

	if (n->type == t)
		return true;
	sv_diag_error(L->d, line_of(n), "%s must be %s, not %s", what, names[t], kind_name(n));
	return false;
}

/*
 * A scalar's text with ${env.X}, the scope's macros and ${PORT} expanded.
 * Any macro reference left over is an error (it would otherwise reach the
 * model server's command line verbatim).  NULL after reporting an error.
 */
static char *expand(struct loader *L, yaml_node_t *n, const struct scope *sc, const char *what)
{
	char *missing, *env, *out, *left;

	if (!expect(L, n, YAML_SCALAR_NODE, what))
		return NULL;
	env = sv_macros_expand_env(scalar_raw(n), &missing);
	if (!env) {
		sv_diag_error(L->d, line_of(n), "%s uses ${env.%s}, but %s is not set in pegpu serve's environment",
			   what, missing, missing);
		free(missing);
		return NULL;
	}
	out = sc && sc->macros ? sv_macros_expand(sc->macros, env) : sv_strdup(env);
	free(env);
	if (sc && sc->port > 0) {
		char port[16], *p;

		snprintf(port, sizeof(port), "%d", sc->port);
		p = sv_str_replace_all(out, "${PORT}", port);
		free(out);
		out = p;
	}
	if (sv_macros_find_leftover(out, sc && sc->allow_pid, &left)) {
		if (!strcmp(left, "PORT"))
			sv_diag_error(L->d, line_of(n), "%s uses ${PORT}, but the model's cmd does not; ${PORT} is only given to models whose cmd uses it",
				   what);
		else if (!strcmp(left, "PID"))
			sv_diag_error(L->d, line_of(n), "%s uses ${PID}, which only cmdStop may use", what);
		else
			sv_diag_error(L->d, line_of(n), "%s uses unknown macro ${%s}; define it under macros:",
				   what, left);
		free(left);
		free(out);
		return NULL;
	}
	return out;
}

static bool parse_int(struct loader *L, yaml_node_t *n, const struct scope *sc, const char *what,
		      long min, int *out)
{
	char *s = expand(L, n, sc, what), *end;
	long v;
	bool ok = false;

	if (!s)
		return false;
	errno = 0;
	v = strtol(s, &end, 10);
	if (!*s || *end || errno || v > INT_MAX || v < INT_MIN)
		sv_diag_error(L->d, line_of(n), "%s must be a whole number, not '%s'", what, s);
	else if (v < min)
		sv_diag_error(L->d, line_of(n), "%s must be %ld or more, not %ld", what, min, v);
	else
		ok = true;
	if (ok)
		*out = (int)v;
	free(s);
	return ok;
}

static bool parse_bool(struct loader *L, yaml_node_t *n, const struct scope *sc, const char *what,
		       bool *out)
{
	static const char *const yes[] = { "true", "yes", "on", NULL };
	static const char *const no[] = { "false", "no", "off", NULL };
	char *s = expand(L, n, sc, what);

	if (!s)
		return false;
	for (int i = 0; yes[i]; i++) {
		if (!strcasecmp(s, yes[i]) || !strcasecmp(s, no[i])) {
			*out = !strcasecmp(s, yes[i]);
			free(s);
			return true;
		}
	}
	sv_diag_error(L->d, line_of(n), "%s must be true or false, not '%s'", what, s);
	free(s);
	return false;
}

/* A list of single values (a lone value is accepted as a one-item list,
 * as llama-swap's decoder does for string lists). */
static void parse_strlist(struct loader *L, yaml_node_t *n, const struct scope *sc,
			  const char *what, struct sv_strv *out)
{
	if (is_null(n))
		return;
	if (n->type == YAML_SCALAR_NODE) {
		char *s = expand(L, n, sc, what);

		if (s)
			sv_strv_push_owned(out, s);
		return;
	}
	if (!expect(L, n, YAML_SEQUENCE_NODE, what))
		return;
	for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
	     it++) {
		yaml_node_t *item = yaml_document_get_node(&L->doc, *it);
		char *s = item ? expand(L, item, sc, what) : NULL;

		if (s)
			sv_strv_push_owned(out, s);
	}
}

/* YAML value -> JSON for metadata and filters.setParams: plain scalars get
 * YAML's core types, quoted ones stay strings (unless the whole string was
 * one macro, which takes the macro's type, as llama-swap does). */
static json_t *to_json(struct loader *L, yaml_node_t *n, const struct scope *sc, const char *what,
		       int depth)
{
	json_t *j = NULL;

	if (depth > 32) {
		sv_diag_error(L->d, line_of(n), "%s nests too deeply", what);
		return NULL;
	}
	/* YAML aliases may repeat a subtree exponentially ("billion
	 * laughs"); a config has no business being that large. */
	if (--L->json_budget < 0) {
		if (L->json_budget == -1)
			sv_diag_error(L->d, line_of(n), "%s is too large (more than %d values once YAML aliases are expanded)",
				      what, JSON_NODE_BUDGET);
		return NULL;
	}
	if (n->type == YAML_SCALAR_NODE) {
		const char *raw = scalar_raw(n);
		bool plain = n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
		bool one_macro = raw[0] == '$' && raw[1] == '{' && strchr(raw, '}') == raw + strlen(raw) - 1;
		char *s, *end;
		long long iv;
		double dv;

		if (plain && is_null(n))
			return json_null();
		s = expand(L, n, sc, what);
		if (!s)
			return NULL;
		if (plain || one_macro) {
			if (!strcmp(s, "true") || !strcmp(s, "false")) {
				j = json_boolean(!strcmp(s, "true"));
				goto out;
			}
			errno = 0;
			iv = strtoll(s, &end, 10);
			if (*s && !*end && !errno) {
				j = json_integer(iv);
				goto out;
			}
			dv = strtod(s, &end);
			if (*s && !*end && strspn(s, "+-0123456789.eE") == strlen(s)) {
				j = json_real(dv);
				goto out;
			}
		}
		j = json_string(s);
out:
		free(s);
		return j;
	}
	if (n->type == YAML_SEQUENCE_NODE) {
		j = json_array();
		for (yaml_node_item_t *it = n->data.sequence.items.start;
		     it < n->data.sequence.items.top; it++) {
			yaml_node_t *item = yaml_document_get_node(&L->doc, *it);
			json_t *v = item ? to_json(L, item, sc, what, depth + 1) : NULL;

			if (v)
				json_array_append_new(j, v);
		}
		return j;
	}
	if (n->type == YAML_MAPPING_NODE) {
		struct ymap m;

		j = json_object();
		ymap_collect(L, n, NULL, what, &m);
		for (size_t i = 0; i < m.n; i++) {
			json_t *v = to_json(L, m.v[i].vnode, sc, what, depth + 1);

			if (v)
				json_object_set_new(j, m.v[i].key, v);
		}
		free(m.v);
		return j;
	}
	return json_null();
}

static void parse_macros(struct loader *L, yaml_node_t *n, struct serve_macros *out,
			 const char *where)
{
	struct ymap m;

	if (is_null(n) || !expect(L, n, YAML_MAPPING_NODE, "macros"))
		return;
	ymap_collect(L, n, NULL, where, &m);
	for (size_t i = 0; i < m.n; i++) {
		const char *name = m.v[i].key;
		int line = line_of(m.v[i].knode);
		char *why = sv_macros_check_name(name), *missing, *val;

		if (why) {
			sv_diag_error(L->d, line, "%s", why);
			free(why);
			continue;
		}
		if (m.v[i].vnode->type != YAML_SCALAR_NODE) {
			sv_diag_error(L->d, line, "macro '%s' must be a single value (text, number or true/false), not %s",
				   name, kind_name(m.v[i].vnode));
			continue;
		}
		val = sv_macros_expand_env(scalar_raw(m.v[i].vnode), &missing);
		if (!val) {
			sv_diag_error(L->d, line, "macro '%s' uses ${env.%s}, but %s is not set in pegpu serve's environment",
				   name, missing, missing);
			free(missing);
			continue;
		}
		why = sv_macros_check_value(name, val);
		if (why) {
			sv_diag_error(L->d, line, "%s", why);
			free(why);
			free(val);
			continue;
		}
		/* A macro expands only the macros declared before it:
		 * say so instead of failing later with "unknown macro". */
		for (size_t j = i + 1; j < m.n; j++) {
			if (sv_macros_uses(val, m.v[j].key))
				sv_diag_error(L->d, line, "macro '%s' uses ${%s}, which is declared after it (line %d); declare '%s' first",
					   name, m.v[j].key, line_of(m.v[j].knode), m.v[j].key);
		}
		sv_macros_set(out, name, val, line);
		free(val);
	}
	free(m.v);
}

/* http://host[:port][/base] */
static void parse_proxy(struct loader *L, yaml_node_t *n, struct serve_model *sm)
{
	const char *p = sm->proxy, *host, *hend, *port_s = NULL;
	char *end;
	long port = 80;

	if (strncmp(p, "http://", 7)) {
		if (!strncmp(p, "https://", 8))
			sv_diag_error(L->d, line_of(n), "model '%s': proxy '%s' uses https; model servers are reached over plain http on this machine",
				   sm->id, p);
		else
			sv_diag_error(L->d, line_of(n), "model '%s': proxy '%s' must look like http://127.0.0.1:8080",
				   sm->id, p);
		return;
	}
	host = p + 7;
	if (*host == '[') {
		hend = strchr(host, ']');
		if (!hend)
			goto bad;
		sm->proxy_host = sv_strndup(host + 1, (size_t)(hend - host - 1));
		hend++;
	} else {
		hend = host + strcspn(host, ":/?#");
		if (hend == host)
			goto bad;
		sm->proxy_host = sv_strndup(host, (size_t)(hend - host));
	}
	if (*hend == ':') {
		port_s = hend + 1;
		port = strtol(port_s, &end, 10);
		if (end == port_s || port < 1 || port > 65535 || (*end && *end != '/'))
			goto bad;
		hend = end;
	}
	if (*hend && *hend != '/')
		goto bad;
	sm->proxy_port = (int)port;
	sm->proxy_base = sv_strdup(hend);
	while (*sm->proxy_base && sm->proxy_base[strlen(sm->proxy_base) - 1] == '/')
		sm->proxy_base[strlen(sm->proxy_base) - 1] = '\0';
	/* libevent's resolver takes the first address only, and "localhost"
	 * is often ::1 first while llama-server listens on 127.0.0.1. */
	if (!strcmp(sm->proxy_host, "localhost")) {
		free(sm->proxy_host);
		sm->proxy_host = sv_strdup("127.0.0.1");
	}
	return;
bad:
	sv_diag_error(L->d, line_of(n), "model '%s': cannot read proxy URL '%s'; write it like http://127.0.0.1:8080",
		   sm->id, p);
	free(sm->proxy_host);
	sm->proxy_host = NULL;
}

static void parse_enum(struct loader *L, yaml_node_t *n, const char *what,
		       const char *const *names, int *out);

/* A size such as 12G, 512M or 4096 (bytes); false after reporting. */
static bool parse_size_node(struct loader *L, yaml_node_t *n, const struct scope *sc,
			    const char *what, uint64_t *out)
{
	char *s = expand(L, n, sc, what);
	bool ok;

	if (!s)
		return false;
	ok = !plan_parse_size(s, out);
	if (!ok)
		sv_diag_error(L->d, line_of(n), "%s must be a size like 12G, 512M or 4096 (bytes), not '%s'",
			   what, s);
	free(s);
	return ok;
}

static bool endpoint_ok(struct loader *L, yaml_node_t *n, const char *what, const char *ep)
{
	char host[256], port[8], err[256];

	if (strlen(ep) >= SPLIT_ENDPOINT_LEN ||
	    ggml_rpc_parse_endpoint(ep, host, port, err, sizeof(err))) {
		sv_diag_error(L->d, line_of(n), "%s: '%s' is not an RPC endpoint; write it like 192.168.64.2:50052",
			   what, ep);
		return false;
	}
	return true;
}

static size_t add_rpc_server(struct serve_config *cfg, const char *id, int line)
{
	struct serve_rpc_server *r;

	cfg->rpc_servers = sv_realloc(cfg->rpc_servers,
				      (cfg->n_rpc_servers + 1) * sizeof(*cfg->rpc_servers));
	r = &cfg->rpc_servers[cfg->n_rpc_servers];
	memset(r, 0, sizeof(*r));
	r->id = sv_strdup(id);
	r->line = line;
	return cfg->n_rpc_servers++;
}

/*
 * rpcServers: pegpu's own top-level key.  Each entry names an eGPU's
 * ggml-rpc-server: its endpoint, and optionally the cmd that runs it, in
 * which case pegpu serve starts it with the daemon, restarts it when it
 * dies and restarts the models that were using it.
 */
static void parse_rpc_servers(struct loader *L, yaml_node_t *n)
{
	struct scope sc = { &L->global, 0, false };
	struct serve_config *cfg = L->cfg;
	struct ymap m;

	if (is_null(n) || !expect(L, n, YAML_MAPPING_NODE, "rpcServers"))
		return;
	ymap_collect(L, n, NULL, "rpcServers", &m);
	for (size_t i = 0; i < m.n; i++) {
		char where[300], what[340], *err = NULL;
		struct serve_rpc_server *r;
		struct ymap e;
		yaml_node_t *v;
		size_t idx;

		if (!*m.v[i].key) {
			sv_diag_error(L->d, line_of(m.v[i].knode), "an RPC server's name cannot be empty");
			continue;
		}
		snprintf(where, sizeof(where), "rpcServers: '%s'", m.v[i].key);
		idx = add_rpc_server(cfg, m.v[i].key, line_of(m.v[i].knode));
		r = &cfg->rpc_servers[idx];	/* after the realloc */
		if (!expect(L, m.v[i].vnode, YAML_MAPPING_NODE, where))
			continue;
		ymap_collect(L, m.v[i].vnode, rpc_server_keys, where, &e);
#define WHAT(k) (snprintf(what, sizeof(what), "%s: %s", where, (k)), what)
		if (!(v = ymap_get(&e, "endpoint"))) {
			sv_diag_error(L->d, r->line, "%s has no endpoint: (the host:port llama-server's --rpc connects to, e.g. 192.168.64.2:50052)",
				   where);
		} else if ((r->endpoint = expand(L, v, &sc, WHAT("endpoint")))) {
			if (!endpoint_ok(L, v, where, r->endpoint)) {
				free(r->endpoint);
				r->endpoint = NULL;
			}
		}
		if ((v = ymap_get(&e, "cmd")) && !is_null(v)) {
			char *stripped = v->type == YAML_SCALAR_NODE ?
					 sv_cmdline_strip_comments(scalar_raw(v)) : NULL;
			yaml_node_t tmp = *v;

			if (stripped)
				tmp.data.scalar.value = (yaml_char_t *)stripped;
			r->cmd = expand(L, &tmp, &sc, WHAT("cmd"));
			free(stripped);
			if (r->cmd && sv_cmdline_split(r->cmd, &r->argv, &err)) {
				sv_diag_error(L->d, line_of(v), "%s: cmd: %s", where, err);
				free(err);
			}
		}
		if ((v = ymap_get(&e, "env")))
			parse_strlist(L, v, &sc, WHAT("env"), &r->env);
		if ((v = ymap_get(&e, "free")) && parse_size_node(L, v, &sc, WHAT("free"), &r->free_bytes) &&
		    !r->free_bytes)
			sv_diag_error(L->d, line_of(v), "%s: free: must be more than 0", where);
		for (size_t j = 0; r->endpoint && j + 1 < cfg->n_rpc_servers; j++) {
			const struct serve_rpc_server *o = &cfg->rpc_servers[j];

			if (o->endpoint && !strcmp(o->endpoint, r->endpoint))
				sv_diag_error(L->d, r->line, "%s uses endpoint %s, as '%s' (line %d) does; one server, one name",
					   where, r->endpoint, o->id, o->line);
		}
#undef WHAT
		free(e.v);
	}
	free(m.v);
}

static long find_rpc_server(const struct serve_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_rpc_servers; i++)
		if (!strcmp(cfg->rpc_servers[i].id, name) ||
		    (cfg->rpc_servers[i].endpoint && !strcmp(cfg->rpc_servers[i].endpoint, name)))
			return (long)i;
	return -1;
}

/* The planner owns these llama-server flags for a split model. */
static const char *const planner_flags[] = {
	"--rpc", "-ngl", "--gpu-layers", "--n-gpu-layers", "-dev", "--device", "-ts",
	"--tensor-split", "-ot", "--override-tensor", "--fit", "-sm", "--split-mode", "-mg",
	"--main-gpu", "-ncmoe", "--n-cpu-moe", "-cmoe", "--cpu-moe", NULL,
};

static bool flag_is(const char *arg, const char *flag)
{
	size_t n = strlen(flag);

	return !strncmp(arg, flag, n) && (arg[n] == '\0' || arg[n] == '=');
}

/* The value of flag a or b in argv ("-m X" or "--model=X"); NULL if absent. */
static const char *flag_value(const struct sv_strv *argv, const char *a, const char *b)
{
	for (size_t i = 1; i < argv->n; i++) {
		const char *f = flag_is(argv->v[i], a) ? a : flag_is(argv->v[i], b) ? b : NULL;

		if (!f)
			continue;
		if (argv->v[i][strlen(f)] == '=')
			return argv->v[i] + strlen(f) + 1;
		return i + 1 < argv->n ? argv->v[i + 1] : NULL;
	}
	return NULL;
}

/*
 * split: pegpu's own model key.  The model's layers are placed across the
 * host and the RPC servers by lib/split.c when the model starts (the free
 * memory is only known then); the planner's arguments are appended to cmd,
 * so cmd must leave those flags to it.
 */
static void parse_split(struct loader *L, yaml_node_t *n, const struct scope *sc,
			struct serve_model *sm)
{
	static const char *const llamas[] = { "auto", "current", "legacy", NULL };
	struct serve_config *cfg = L->cfg;
	struct serve_split *sp;
	char where[300], what[340];
	struct sv_strv names = { 0 };
	const char *mp, *c;
	struct ymap m;
	yaml_node_t *v;
	int ival;

	snprintf(where, sizeof(where), "model '%s': split", sm->id);
	if (is_null(n) || !expect(L, n, YAML_MAPPING_NODE, where))
		return;
	sp = sv_calloc(1, sizeof(*sp));
	sm->split = sp;
	sp->reserve = PLAN_DEFAULT_RESERVE;
	sp->expert_offload = true;
	sp->query_timeout = PLAN_DEFAULT_TIMEOUT_S;
#ifdef __APPLE__
	sp->host_device = sv_strdup("MTL0");
#endif
	ymap_collect(L, n, split_keys, where, &m);
#define WHAT(k) (snprintf(what, sizeof(what), "%s: %s", where, (k)), what)
	if (!(v = ymap_get(&m, "rpc")) || is_null(v)) {
		sv_diag_error(L->d, line_of(n), "%s has no rpc: (the eGPU's RPC servers: names from rpcServers: or host:port endpoints)",
			   where);
	} else {
		parse_strlist(L, v, sc, WHAT("rpc"), &names);
		if (!names.n)
			sv_diag_error(L->d, line_of(v), "%s: rpc: lists no server", where);
		sp->rpc = sv_calloc(names.n + 1, sizeof(*sp->rpc));
		for (size_t i = 0; i < names.n; i++) {
			long idx = find_rpc_server(cfg, names.v[i]);

			if (idx < 0 && strchr(names.v[i], ':')) {
				/* an endpoint nobody named: queried, not supervised */
				if (!endpoint_ok(L, v, WHAT("rpc"), names.v[i]))
					continue;
				idx = (long)add_rpc_server(cfg, names.v[i], line_of(v));
				cfg->rpc_servers[idx].endpoint = sv_strdup(names.v[i]);
			} else if (idx < 0) {
				sv_diag_error(L->d, line_of(v), "%s: rpc: '%s' is neither a name under rpcServers: nor a host:port endpoint",
					   where, names.v[i]);
				continue;
			}
			for (size_t j = 0; j < sp->n_rpc; j++)
				if (sp->rpc[j] == (size_t)idx)
					sv_diag_error(L->d, line_of(v), "%s: rpc: '%s' is listed twice", where,
						   names.v[i]);
			sp->rpc[sp->n_rpc++] = (size_t)idx;
		}
		if (sp->n_rpc > SPLIT_MAX_RPC_DEVS)
			sv_diag_error(L->d, line_of(v), "%s: rpc: at most %d servers", where,
				   SPLIT_MAX_RPC_DEVS);
	}
	sv_strv_free(&names);
	if ((v = ymap_get(&m, "hostMemory")) && !is_null(v) &&
	    parse_size_node(L, v, sc, WHAT("hostMemory"), &sp->host_memory) && !sp->host_memory)
		sv_diag_error(L->d, line_of(v), "%s: hostMemory must be more than 0", where);
	if ((v = ymap_get(&m, "hostDevice")) && !is_null(v)) {
		char *d = expand(L, v, sc, WHAT("hostDevice"));

		free(sp->host_device);
		sp->host_device = NULL;
		if (d && (!*d || strlen(d) >= 32 || strpbrk(d, ", \t")))
			sv_diag_error(L->d, line_of(v), "%s: hostDevice '%s' is not a llama.cpp device name like MTL0 or CPU",
				   where, d);
		else if (d && strcasecmp(d, "cpu"))
			sp->host_device = sv_strdup(d);
		free(d);
	}
	if ((v = ymap_get(&m, "ctx")) && parse_int(L, v, sc, WHAT("ctx"), 1, &ival))
		sp->ctx = (uint32_t)ival;
	if ((v = ymap_get(&m, "reserve")))
		parse_size_node(L, v, sc, WHAT("reserve"), &sp->reserve);
	if ((v = ymap_get(&m, "expertOffload")))
		parse_bool(L, v, sc, WHAT("expertOffload"), &sp->expert_offload);
	if ((v = ymap_get(&m, "llama"))) {
		ival = (int)sp->llama;
		parse_enum(L, v, WHAT("llama"), llamas, &ival);
		sp->llama = (enum serve_split_llama)ival;
	}
	if ((v = ymap_get(&m, "queryTimeout")) && parse_int(L, v, sc, WHAT("queryTimeout"), 1, &ival))
		sp->query_timeout = ival;

	/* what cmd must and must not say */
	mp = sm->argv.n ? flag_value(&sm->argv, "-m", "--model") : NULL;
	if (sm->argv.n && !mp)
		sv_diag_error(L->d, line_of(n), "%s: the planner reads the model file, but cmd has no -m PATH (models fetched with -hf/-mu cannot be split)",
			   where);
	sp->model_path = mp ? sv_strdup(mp) : NULL;
	for (size_t i = 1; i < sm->argv.n; i++)
		for (int f = 0; planner_flags[f]; f++)
			if (flag_is(sm->argv.v[i], planner_flags[f]))
				sv_diag_error(L->d, line_of(n), "%s: cmd sets %s, but a split model's placement flags come from the planner; remove it from cmd",
					   where, planner_flags[f]);
	if ((c = sm->argv.n ? flag_value(&sm->argv, "-c", "--ctx-size") : NULL)) {
		char *end;
		unsigned long cv = strtoul(c, &end, 10);

		sp->cmd_has_ctx = true;
		if (*end || !cv || cv > UINT32_MAX)
			sv_diag_error(L->d, line_of(n), "%s: cmd's context size '%s' is not a token count", where, c);
		else if (sp->ctx && sp->ctx != cv)
			sv_diag_error(L->d, line_of(n), "%s: ctx: %u differs from cmd's -c %lu; set it in one place",
				   where, sp->ctx, cv);
		else
			sp->ctx = (uint32_t)cv;
	}
#undef WHAT
	free(m.v);
}

/* Whether cmd asks for ${PORT} once its macros are expanded (a macro such
 * as llama-swap's "latest-llama" example may carry it).  Errors are left
 * for the real expansion to report. */
static bool uses_port(const struct serve_macros *macros, const char *cmd)
{
	char *missing, *env = sv_macros_expand_env(cmd, &missing), *out;
	bool r;

	if (!env) {
		free(missing);
		return sv_macros_uses(cmd, "PORT");
	}
	out = sv_macros_expand(macros, env);
	r = sv_macros_uses(out, "PORT");
	free(out);
	free(env);
	return r;
}

static void parse_model(struct loader *L, const char *id, yaml_node_t *key, yaml_node_t *n,
			struct serve_model *sm, int *next_port)
{
	struct serve_macros macros = { 0 };
	struct scope sc = { &macros, 0, false };
	char where[300], what[340], *err = NULL;
	struct ymap m = { 0 };
	struct ypair *p;
	yaml_node_t *v;

	snprintf(where, sizeof(where), "model '%s'", id);
	sm->id = sv_strdup(id);
	sm->line = line_of(key);
	sm->ttl = -1;
	sm->concurrency_limit = SERVE_DEFAULT_CONCURRENCY;
	if (!expect(L, n, YAML_MAPPING_NODE, where))
		return;
	ymap_collect(L, n, model_keys, where, &m);
#define WHAT(k) (snprintf(what, sizeof(what), "%s: %s", where, (k)), what)

	/* Scope: MODEL_ID first, then the global macros with the model's own
	 * overriding them in place, then the model's new ones. */
	sv_macros_set(&macros, "MODEL_ID", id, sm->line);
	for (size_t i = 0; i < L->global.n; i++)
		sv_macros_set(&macros, L->global.v[i].name, L->global.v[i].value, L->global.v[i].line);
	if ((v = ymap_get(&m, "macros")))
		parse_macros(L, v, &macros, where);

	v = ymap_get(&m, "cmd");
	if (!v) {
		sv_diag_error(L->d, sm->line, "%s has no cmd: (the command that starts its server, e.g. llama-server --port ${PORT} -m model.gguf)",
			   where);
		goto out;
	}
	if (v->type == YAML_SCALAR_NODE) {
		/* Comments go before expansion: a macro named in a comment
		 * must not become part of the command. */
		char *stripped = sv_cmdline_strip_comments(scalar_raw(v));
		yaml_node_t tmp = *v;

		if (uses_port(&macros, stripped))
			sm->port = (*next_port)++;
		sc.port = sm->port;
		tmp.data.scalar.value = (yaml_char_t *)stripped;
		sm->cmd = expand(L, &tmp, &sc, WHAT("cmd"));
		free(stripped);
		if (sm->cmd && sv_cmdline_split(sm->cmd, &sm->argv, &err)) {
			sv_diag_error(L->d, line_of(v), "%s: %s", where, err);
			free(err);
		}
	} else {
		expect(L, v, YAML_SCALAR_NODE, WHAT("cmd"));
	}
	sc.port = sm->port;

	if ((v = ymap_get(&m, "cmdStop")) && !is_null(v)) {
		char *s;
		yaml_node_t tmp = *v;

		if (v->type == YAML_SCALAR_NODE) {
			s = sv_cmdline_strip_comments(scalar_raw(v));
			tmp.data.scalar.value = (yaml_char_t *)s;
			sm->cmd_stop = expand(L, &tmp, &(struct scope){ &macros, sm->port, true },
					      WHAT("cmdStop"));
			free(s);
			if (sm->cmd_stop) {
				struct sv_strv tmpv = { 0 };

				if (sv_cmdline_split(sm->cmd_stop, &tmpv, &err)) {
					sv_diag_error(L->d, line_of(v), "%s: cmdStop: %s", where, err);
					free(err);
				}
				sv_strv_free(&tmpv);
			}
		} else {
			expect(L, v, YAML_SCALAR_NODE, WHAT("cmdStop"));
		}
	}

	if ((v = ymap_get(&m, "proxy")) && !is_null(v)) {
		sm->proxy = expand(L, v, &sc, WHAT("proxy"));
		if (sm->proxy)
			parse_proxy(L, v, sm);
	} else if (!sm->port) {
		sv_diag_error(L->d, sm->line, "%s: its cmd does not use ${PORT} and it sets no proxy:, so pegpu serve cannot know where it listens; add --port ${PORT} to cmd or set proxy: http://127.0.0.1:<port>",
			   where);
	} else {
		sm->proxy = sv_asprintf("http://localhost:%d", sm->port);
		parse_proxy(L, key, sm);
	}

	sm->check_endpoint = sv_strdup(SERVE_DEFAULT_CHECK_ENDPOINT);
	if ((v = ymap_get(&m, "checkEndpoint"))) {
		char *s = expand(L, v, &sc, WHAT("checkEndpoint"));

		free(sm->check_endpoint);
		sm->check_endpoint = NULL;
		if (s && !strcmp(s, "none")) {
			free(s);
		} else if (s && s[0] != '/') {
			sv_diag_error(L->d, line_of(v), "%s: checkEndpoint '%s' must be a path starting with / (like /health) or none",
				   where, s);
			free(s);
		} else {
			sm->check_endpoint = s;
		}
	}

	if ((v = ymap_get(&m, "ttl"))) {
		if (parse_int(L, v, &sc, WHAT("ttl"), -1, &sm->ttl) && sm->ttl < -1)
			sm->ttl = -1;
	}
	if ((v = ymap_get(&m, "unloadTimeout")))
		parse_int(L, v, &sc, WHAT("unloadTimeout"), 0, &sm->unload_timeout);
	if ((v = ymap_get(&m, "env"))) {
		parse_strlist(L, v, &sc, WHAT("env"), &sm->env);
		for (size_t i = 0; i < sm->env.n; i++) {
			const char *eq = strchr(sm->env.v[i], '=');

			if (!eq || eq == sm->env.v[i])
				sv_diag_error(L->d, line_of(v), "%s: env entry '%s' must look like NAME=value",
					   where, sm->env.v[i]);
		}
	}
	if ((v = ymap_get(&m, "aliases")))
		parse_strlist(L, v, &sc, WHAT("aliases"), &sm->aliases);
	if ((v = ymap_get(&m, "useModelName")) && !is_null(v))
		sm->use_model_name = expand(L, v, &sc, WHAT("useModelName"));
	if ((v = ymap_get(&m, "unlisted")))
		parse_bool(L, v, &sc, WHAT("unlisted"), &sm->unlisted);
	if ((v = ymap_get(&m, "concurrencyLimit"))) {
		int lim = 0;

		/* 0 means "the default", as in llama-swap. */
		if (parse_int(L, v, &sc, WHAT("concurrencyLimit"), 0, &lim) && lim > 0)
			sm->concurrency_limit = lim;
	}
	if ((v = ymap_get(&m, "name")) && !is_null(v))
		sm->name = expand(L, v, &sc, WHAT("name"));
	if ((v = ymap_get(&m, "description")) && !is_null(v))
		sm->description = expand(L, v, &sc, WHAT("description"));
	if ((v = ymap_get(&m, "metadata")) && !is_null(v)) {
		if (expect(L, v, YAML_MAPPING_NODE, WHAT("metadata")))
			sm->metadata = to_json(L, v, &sc, WHAT("metadata"), 0);
	}
	if ((v = ymap_get(&m, "filters")) && !is_null(v)) {
		struct ymap f;
		yaml_node_t *fv;

		if (expect(L, v, YAML_MAPPING_NODE, WHAT("filters"))) {
			ymap_collect(L, v, filter_keys, WHAT("filters"), &f);
			if ((fv = ymap_get(&f, "stripParams")) && !is_null(fv)) {
				char *s = expand(L, fv, &sc, WHAT("filters.stripParams"));

				/* "a, b,c": comma separated; model is never stripped */
				for (char *tok = s ? strtok(s, ", \t") : NULL; tok;
				     tok = strtok(NULL, ", \t"))
					if (strcmp(tok, "model"))
						sv_strv_push(&sm->strip_params, tok);
				free(s);
			}
			if ((fv = ymap_get(&f, "setParams")) && !is_null(fv) &&
			    expect(L, fv, YAML_MAPPING_NODE, WHAT("filters.setParams"))) {
				sm->set_params = to_json(L, fv, &sc, WHAT("filters.setParams"), 0);
				if (sm->set_params)
					json_object_del(sm->set_params, "model");
			}
			free(f.v);
		}
	}
	if ((p = ymap_find(&m, "split")))
		parse_split(L, p->vnode, &sc, sm);
#undef WHAT
out:
	free(m.v);
	sv_macros_free(&macros);
}

static void model_free(struct serve_model *sm)
{
	free(sm->id);
	free(sm->cmd);
	sv_strv_free(&sm->argv);
	free(sm->cmd_stop);
	free(sm->proxy);
	free(sm->proxy_host);
	free(sm->proxy_base);
	free(sm->check_endpoint);
	sv_strv_free(&sm->env);
	sv_strv_free(&sm->aliases);
	free(sm->use_model_name);
	free(sm->name);
	free(sm->description);
	json_decref(sm->metadata);
	sv_strv_free(&sm->strip_params);
	json_decref(sm->set_params);
	if (sm->split) {
		free(sm->split->rpc);
		free(sm->split->model_path);
		free(sm->split->host_device);
		free(sm->split);
	}
}

static int cmp_pair_key(const void *a, const void *b)
{
	return strcmp(((const struct ypair *)a)->key, ((const struct ypair *)b)->key);
}

static const char **model_ids(const struct serve_config *cfg)
{
	const char **ids = sv_calloc(cfg->n_models + 1, sizeof(*ids));

	for (size_t i = 0; i < cfg->n_models; i++)
		ids[i] = cfg->models[i].id;
	return ids;
}

/* Report an unknown model name with the closest known one. */
static void unknown_model(struct loader *L, int line, const char *what, const char *name)
{
	const char **ids = model_ids(L->cfg);
	const char *s = sv_suggest_word(name, ids);

	if (s)
		sv_diag_error(L->d, line, "%s names model '%s', which is not defined under models: (did you mean '%s'?)",
			   what, name, s);
	else
		sv_diag_error(L->d, line, "%s names model '%s', which is not defined under models:",
			   what, name);
	free(ids);
}

static void parse_groups(struct loader *L, yaml_node_t *n, long *owner)
{
	struct ymap m;

	if (is_null(n) || !expect(L, n, YAML_MAPPING_NODE, "groups"))
		return;
	ymap_collect(L, n, NULL, "groups", &m);
	L->cfg->groups = sv_calloc(m.n + 1, sizeof(*L->cfg->groups));
	for (size_t i = 0; i < m.n; i++) {
		struct serve_group *g = &L->cfg->groups[L->cfg->n_groups];
		char where[300], what[340];
		struct ymap gm;
		struct sv_strv members = { 0 };
		yaml_node_t *v;
		size_t gi = L->cfg->n_groups++;

		g->id = sv_strdup(m.v[i].key);
		g->line = line_of(m.v[i].knode);
		g->swap = true;
		g->exclusive = true;
		snprintf(where, sizeof(where), "group '%s'", g->id);
		if (!strcmp(g->id, SERVE_DEFAULT_GROUP))
			sv_diag_error(L->d, g->line, "group name '%s' is reserved for models in no group",
				   g->id);
		if (!expect(L, m.v[i].vnode, YAML_MAPPING_NODE, where))
			continue;
		ymap_collect(L, m.v[i].vnode, group_keys, where, &gm);
#define WHAT(k) (snprintf(what, sizeof(what), "%s: %s", where, (k)), what)
		if ((v = ymap_get(&gm, "swap")))
			parse_bool(L, v, NULL, WHAT("swap"), &g->swap);
		if ((v = ymap_get(&gm, "exclusive")))
			parse_bool(L, v, NULL, WHAT("exclusive"), &g->exclusive);
		if ((v = ymap_get(&gm, "persistent")))
			parse_bool(L, v, NULL, WHAT("persistent"), &g->persistent);
		if ((v = ymap_get(&gm, "members"))) {
			struct scope sc = { &L->global, 0, false };

			parse_strlist(L, v, &sc, WHAT("members"), &members);
			for (size_t k = 0; k < members.n; k++) {
				long mi = serve_config_index(L->cfg, members.v[k]);

				if (mi < 0) {
					unknown_model(L, line_of(v), where, members.v[k]);
				} else if (owner[mi] == (long)gi) {
					sv_diag_error(L->d, line_of(v), "%s lists model '%s' twice", where,
						   members.v[k]);
				} else if (owner[mi] >= 0) {
					sv_diag_error(L->d, line_of(v), "model '%s' is in group '%s' and in group '%s'; a model belongs to one group at most",
						   members.v[k], L->cfg->groups[owner[mi]].id, g->id);
				} else {
					owner[mi] = (long)gi;
				}
			}
			sv_strv_free(&members);
		}
#undef WHAT
		free(gm.v);
	}
	free(m.v);
}

static void parse_routing(struct loader *L, yaml_node_t *n, yaml_node_t **groups)
{
	struct ymap m, r;
	yaml_node_t *v, *s;

	if (is_null(n) || !expect(L, n, YAML_MAPPING_NODE, "routing"))
		return;
	ymap_collect(L, n, routing_keys, "routing", &m);
	if ((v = ymap_get(&m, "router")) && expect(L, v, YAML_MAPPING_NODE, "routing.router")) {
		ymap_collect(L, v, router_keys, "routing.router", &r);
		if ((s = ymap_get(&r, "use"))) {
			char *use = expand(L, s, NULL, "routing.router.use");

			if (use && !strcmp(use, "matrix"))
				sv_diag_error(L->d, line_of(s), "routing.router.use: matrix is not supported by pegpu serve; use group");
			else if (use && strcmp(use, "group"))
				sv_diag_error(L->d, line_of(s), "routing.router.use must be group, not '%s'", use);
			free(use);
		}
		if ((s = ymap_get(&r, "settings")) && expect(L, s, YAML_MAPPING_NODE, "routing.router.settings")) {
			struct ymap st;

			ymap_collect(L, s, router_settings_keys, "routing.router.settings", &st);
			*groups = ymap_get(&st, "groups");
			free(st.v);
		}
		free(r.v);
	}
	if ((v = ymap_get(&m, "scheduler")) && expect(L, v, YAML_MAPPING_NODE, "routing.scheduler")) {
		ymap_collect(L, v, scheduler_keys, "routing.scheduler", &r);
		if ((s = ymap_get(&r, "use"))) {
			char *use = expand(L, s, NULL, "routing.scheduler.use");

			if (use && strcmp(use, "fifo"))
				sv_diag_error(L->d, line_of(s), "routing.scheduler.use must be fifo, not '%s'", use);
			free(use);
		}
		free(r.v);
	}
	free(m.v);
}

static void parse_hooks(struct loader *L, yaml_node_t *n)
{
	struct ymap m, o;
	yaml_node_t *v, *p;
	struct scope sc = { &L->global, 0, false };
	struct sv_strv names = { 0 };

	if (is_null(n) || !expect(L, n, YAML_MAPPING_NODE, "hooks"))
		return;
	ymap_collect(L, n, hooks_keys, "hooks", &m);
	if ((v = ymap_get(&m, "on_startup")) && !is_null(v) &&
	    expect(L, v, YAML_MAPPING_NODE, "hooks.on_startup")) {
		ymap_collect(L, v, on_startup_keys, "hooks.on_startup", &o);
		if ((p = ymap_get(&o, "preload"))) {
			parse_strlist(L, p, &sc, "hooks.on_startup.preload", &names);
			for (size_t i = 0; i < names.n; i++) {
				const struct serve_model *sm = serve_config_find(L->cfg, names.v[i]);

				if (!sm)
					unknown_model(L, line_of(p), "hooks.on_startup.preload", names.v[i]);
				else if (!sv_strv_contains(&L->cfg->preload, sm->id))
					sv_strv_push(&L->cfg->preload, sm->id);
			}
			sv_strv_free(&names);
		}
		free(o.v);
	}
	free(m.v);
}

static void parse_enum(struct loader *L, yaml_node_t *n, const char *what,
		       const char *const *names, int *out)
{
	char *s = expand(L, n, NULL, what);

	if (!s)
		return;
	for (int i = 0; names[i]; i++) {
		if (!strcmp(s, names[i])) {
			*out = i;
			free(s);
			return;
		}
	}
	{
		struct sv_buf b = { 0 };
		char *list;

		for (int i = 0; names[i]; i++)
			sv_sbuf_addf(&b, "%s%s", i ? ", " : "", names[i]);
		list = sv_sbuf_take(&b);
		sv_diag_error(L->d, line_of(n), "%s must be one of %s, not '%s'", what, list, s);
		free(list);
	}
	free(s);
}

static void check_aliases(struct loader *L)
{
	struct serve_config *cfg = L->cfg;

	for (size_t i = 0; i < cfg->n_models; i++) {
		for (size_t a = 0; a < cfg->models[i].aliases.n; a++) {
			const char *al = cfg->models[i].aliases.v[a];

			if (serve_config_index(cfg, al) >= 0) {
				sv_diag_error(L->d, cfg->models[i].line, "model '%s': alias '%s' is also a model id",
					   cfg->models[i].id, al);
				continue;
			}
			for (size_t j = 0; j <= i; j++) {
				size_t end = j == i ? a : cfg->models[j].aliases.n;

				for (size_t b = 0; b < end; b++)
					if (!strcmp(cfg->models[j].aliases.v[b], al))
						sv_diag_error(L->d, cfg->models[i].line, "alias '%s' is used by model '%s' and model '%s'; aliases must be unique",
							   al, cfg->models[j].id, cfg->models[i].id);
			}
		}
	}
}

static void parse_top(struct loader *L, yaml_node_t *root)
{
	static const char *const log_to[] = { "proxy", "upstream", "both", "none", NULL };
	static const char *const levels[] = { "debug", "info", "warn", "error", NULL };
	struct serve_config *cfg = L->cfg;
	struct scope sc = { &L->global, 0, false };
	struct ymap m, mm = { 0 };
	yaml_node_t *v, *groups = NULL, *rgroups = NULL;
	long *owner = NULL;
	int next_port, lvl;

	ymap_collect(L, root, top_keys, "the top level", &m);
	if ((v = ymap_get(&m, "macros")))
		parse_macros(L, v, &L->global, "macros");
	if ((v = ymap_get(&m, "healthCheckTimeout")) &&
	    parse_int(L, v, &sc, "healthCheckTimeout", 0, &cfg->health_check_timeout) &&
	    cfg->health_check_timeout < SERVE_MIN_HEALTH_TIMEOUT) {
		sv_diag_warn(L->d, line_of(v), "healthCheckTimeout %d is below the minimum of %d seconds; using %d",
			  cfg->health_check_timeout, SERVE_MIN_HEALTH_TIMEOUT, SERVE_MIN_HEALTH_TIMEOUT);
		cfg->health_check_timeout = SERVE_MIN_HEALTH_TIMEOUT;
	}
	if ((v = ymap_get(&m, "logLevel"))) {
		lvl = (int)cfg->log_level;
		parse_enum(L, v, "logLevel", levels, &lvl);
		cfg->log_level = (enum serve_log_level)lvl;
	}
	if ((v = ymap_get(&m, "logToStdout"))) {
		lvl = (int)cfg->log_to_stdout;
		parse_enum(L, v, "logToStdout", log_to, &lvl);
		cfg->log_to_stdout = (enum serve_log_to)lvl;
	}
	if ((v = ymap_get(&m, "startPort")))
		parse_int(L, v, &sc, "startPort", 1, &cfg->start_port);
	if ((v = ymap_get(&m, "globalTTL")))
		parse_int(L, v, &sc, "globalTTL", 0, &cfg->global_ttl);
	if ((v = ymap_get(&m, "unloadTimeout")) &&
	    parse_int(L, v, &sc, "unloadTimeout", 0, &cfg->unload_timeout) && !cfg->unload_timeout)
		cfg->unload_timeout = SERVE_DEFAULT_UNLOAD_TIMEOUT;
	if ((v = ymap_get(&m, "includeAliasesInList")))
		parse_bool(L, v, &sc, "includeAliasesInList", &cfg->include_aliases_in_list);
	if ((v = ymap_get(&m, "apiKeys"))) {
		parse_strlist(L, v, &sc, "apiKeys", &cfg->api_keys);
		for (size_t i = 0; i < cfg->api_keys.n; i++) {
			if (!*cfg->api_keys.v[i])
				sv_diag_error(L->d, line_of(v), "apiKeys: key %zu is empty", i + 1);
			else if (strpbrk(cfg->api_keys.v[i], " \t\r\n"))
				sv_diag_error(L->d, line_of(v), "apiKeys: key %zu contains a blank", i + 1);
		}
	}

	if ((v = ymap_get(&m, "rpcServers")))
		parse_rpc_servers(L, v);

	/* Models: sorted by id, which is also the order llama-swap gives out
	 * ${PORT} numbers in, so a config gets the same ports here. */
	v = ymap_get(&m, "models");
	if (!v || is_null(v)) {
		sv_diag_error(L->d, v ? line_of(v) : 0, "no models: defined; add at least one model with a cmd:");
	} else if (expect(L, v, YAML_MAPPING_NODE, "models")) {
		ymap_collect(L, v, NULL, "models", &mm);
		qsort(mm.v, mm.n, sizeof(*mm.v), cmp_pair_key);
		cfg->models = sv_calloc(mm.n, sizeof(*cfg->models));
		next_port = cfg->start_port;
		for (size_t i = 0; i < mm.n; i++) {
			if (!*mm.v[i].key) {
				sv_diag_error(L->d, line_of(mm.v[i].knode), "a model id cannot be empty");
				continue;
			}
			parse_model(L, mm.v[i].key, mm.v[i].knode, mm.v[i].vnode,
				    &cfg->models[cfg->n_models++], &next_port);
		}
	}
	check_aliases(L);

	/* Groups: the legacy top-level key or routing.router.settings.groups,
	 * not both (llama-swap refuses that too). */
	groups = ymap_get(&m, "groups");
	if ((v = ymap_get(&m, "routing")))
		parse_routing(L, v, &rgroups);
	if (groups && rgroups)
		sv_diag_error(L->d, line_of(groups), "groups are set both here and under routing.router.settings.groups (line %d); keep one",
			   line_of(rgroups));
	owner = sv_calloc(cfg->n_models + 1, sizeof(*owner));
	for (size_t i = 0; i < cfg->n_models; i++)
		owner[i] = -1;
	if (groups || rgroups)
		parse_groups(L, groups ? groups : rgroups, owner);
	cfg->groups = sv_realloc(cfg->groups, (cfg->n_groups + 1) * sizeof(*cfg->groups));
	cfg->groups[cfg->n_groups] = (struct serve_group){
		.id = sv_strdup(SERVE_DEFAULT_GROUP), .swap = true, .exclusive = true,
	};
	for (size_t i = 0; i < cfg->n_models; i++)
		cfg->models[i].group = owner[i] >= 0 ? (size_t)owner[i] : cfg->n_groups;
	cfg->n_groups++;
	free(owner);

	if ((v = ymap_get(&m, "hooks")))
		parse_hooks(L, v);

	/* Defaults that depend on the global values. */
	for (size_t i = 0; i < cfg->n_models; i++) {
		struct serve_model *sm = &cfg->models[i];

		if (sm->ttl < 0)
			sm->ttl = cfg->global_ttl;
		if (!sm->unload_timeout)
			sm->unload_timeout = cfg->unload_timeout;
	}
	free(mm.v);
	free(m.v);
}

struct serve_config *serve_config_load_string(const char *text, size_t len, const char *name,
					      struct serve_diag *diag)
{
	struct loader L = { .d = diag, .json_budget = JSON_NODE_BUDGET };
	yaml_parser_t parser;
	yaml_node_t *root;
	struct serve_config *cfg = sv_calloc(1, sizeof(*cfg));
	bool have_doc = false;

	cfg->refs = 1;
	cfg->path = sv_strdup(name ? name : "config");
	cfg->health_check_timeout = SERVE_DEFAULT_HEALTH_TIMEOUT;
	cfg->start_port = SERVE_DEFAULT_START_PORT;
	cfg->unload_timeout = SERVE_DEFAULT_UNLOAD_TIMEOUT;
	cfg->log_to_stdout = SERVE_LOG_PROXY;
	cfg->log_level = SERVE_LOG_INFO;
	L.cfg = cfg;

	if (!yaml_parser_initialize(&parser)) {
		sv_diag_error(diag, 0, "cannot initialise the YAML parser");
		goto fail;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &L.doc)) {
		sv_diag_error(diag, (int)parser.problem_mark.line + 1, "YAML syntax: %s%s%s",
			   parser.problem ? parser.problem : "unreadable",
			   parser.context ? " " : "", parser.context ? parser.context : "");
		yaml_parser_delete(&parser);
		goto fail;
	}
	have_doc = true;
	yaml_parser_delete(&parser);
	root = yaml_document_get_root_node(&L.doc);
	if (!root || is_null(root)) {
		sv_diag_error(diag, 0, "the config is empty; it needs at least a models: section");
		goto fail;
	}
	if (!expect(&L, root, YAML_MAPPING_NODE, "the config"))
		goto fail;
	parse_top(&L, root);
	sv_diag_sort(diag);
	if (diag->n_errors)
		goto fail;
	yaml_document_delete(&L.doc);
	sv_macros_free(&L.global);
	return cfg;
fail:
	if (have_doc)
		yaml_document_delete(&L.doc);
	sv_macros_free(&L.global);
	serve_config_unref(cfg);
	return NULL;
}

struct serve_config *serve_config_load_file(const char *path, struct serve_diag *diag)
{
	FILE *f = fopen(path, "rb");
	struct sv_buf b = { 0 };
	char buf[8192];
	size_t n;
	struct serve_config *cfg;

	if (!f) {
		sv_diag_error(diag, 0, "cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		sv_sbuf_add(&b, buf, n);
	if (ferror(f)) {
		sv_diag_error(diag, 0, "cannot read %s: %s", path, strerror(errno));
		fclose(f);
		free(b.p);
		return NULL;
	}
	fclose(f);
	cfg = serve_config_load_string(b.p ? b.p : "", b.len, path, diag);
	free(b.p);
	return cfg;
}

struct serve_config *serve_config_ref(struct serve_config *cfg)
{
	cfg->refs++;
	return cfg;
}

void serve_config_unref(struct serve_config *cfg)
{
	if (!cfg || --cfg->refs)
		return;
	for (size_t i = 0; i < cfg->n_models; i++)
		model_free(&cfg->models[i]);
	free(cfg->models);
	for (size_t i = 0; i < cfg->n_groups; i++)
		free(cfg->groups[i].id);
	free(cfg->groups);
	sv_strv_free(&cfg->api_keys);
	sv_strv_free(&cfg->preload);
	for (size_t i = 0; i < cfg->n_rpc_servers; i++) {
		struct serve_rpc_server *r = &cfg->rpc_servers[i];

		free(r->id);
		free(r->endpoint);
		free(r->cmd);
		sv_strv_free(&r->argv);
		sv_strv_free(&r->env);
	}
	free(cfg->rpc_servers);
	free(cfg->path);
	free(cfg);
}

long serve_config_index(const struct serve_config *cfg, const char *id)
{
	for (size_t i = 0; i < cfg->n_models; i++)
		if (cfg->models[i].id && !strcmp(cfg->models[i].id, id))
			return (long)i;
	return -1;
}

const struct serve_model *serve_config_find(const struct serve_config *cfg, const char *name)
{
	long i = serve_config_index(cfg, name);

	if (i >= 0)
		return &cfg->models[i];
	for (size_t m = 0; m < cfg->n_models; m++)
		if (sv_strv_contains(&cfg->models[m].aliases, name))
			return &cfg->models[m];
	return NULL;
}

static bool str_eq(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

static bool split_same(const struct serve_split *a, const struct serve_split *b)
{
	if (!a || !b)
		return a == b;
	/* the servers themselves are compared by the caller's reload of
	 * rpcServers; here what the plan depends on */
	return a->n_rpc == b->n_rpc && a->host_memory == b->host_memory &&
	       str_eq(a->host_device, b->host_device) && a->ctx == b->ctx &&
	       a->reserve == b->reserve && a->expert_offload == b->expert_offload &&
	       a->llama == b->llama;
}

bool serve_model_same_process(const struct serve_model *a, const struct serve_model *b)
{
	return sv_strv_equal(&a->argv, &b->argv) && sv_strv_equal(&a->env, &b->env) &&
	       str_eq(a->proxy, b->proxy) && str_eq(a->check_endpoint, b->check_endpoint) &&
	       str_eq(a->cmd_stop, b->cmd_stop) && split_same(a->split, b->split);
}

bool serve_models_share_rpc(const struct serve_config *ca, const struct serve_model *a,
			    const struct serve_config *cb, const struct serve_model *b)
{
	if (!a->split || !b->split)
		return false;
	for (size_t i = 0; i < a->split->n_rpc; i++) {
		const char *ea = ca->rpc_servers[a->split->rpc[i]].endpoint;

		for (size_t j = 0; ea && j < b->split->n_rpc; j++) {
			const char *eb = cb->rpc_servers[b->split->rpc[j]].endpoint;

			if (eb && !strcmp(ea, eb))
				return true;
		}
	}
	return false;
}
