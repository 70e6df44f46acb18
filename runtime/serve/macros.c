/* SPDX-License-Identifier: Apache-2.0 */
/* Config macros (see macros.h for the rules, which follow llama-swap's). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "macros.h"
#include "util.h"

#define MACRO_NAME_MAX 63

void sv_macros_free(struct serve_macros *m)
{
	for (size_t i = 0; i < m->n; i++) {
		free(m->v[i].name);
		free(m->v[i].value);
	}
	free(m->v);
	memset(m, 0, sizeof(*m));
}

void sv_macros_copy(struct serve_macros *dst, const struct serve_macros *src)
{
	memset(dst, 0, sizeof(*dst));
	for (size_t i = 0; i < src->n; i++)
		sv_macros_set(dst, src->v[i].name, src->v[i].value, src->v[i].line);
}

const struct serve_macro *sv_macros_get(const struct serve_macros *m, const char *name)
{
	for (size_t i = 0; i < m->n; i++)
		if (!strcmp(m->v[i].name, name))
			return &m->v[i];
	return NULL;
}

void sv_macros_set(struct serve_macros *m, const char *name, const char *value, int line)
{
	for (size_t i = 0; i < m->n; i++) {
		if (!strcmp(m->v[i].name, name)) {
			free(m->v[i].value);
			m->v[i].value = sv_strdup(value);
			m->v[i].line = line;
			return;
		}
	}
	if (m->n == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 8;
		m->v = sv_realloc(m->v, m->cap * sizeof(*m->v));
	}
	m->v[m->n].name = sv_strdup(name);
	m->v[m->n].value = sv_strdup(value);
	m->v[m->n].line = line;
	m->n++;
}

static bool name_char(int c)
{
	return isalnum(c) || c == '_' || c == '-';
}

char *sv_macros_check_name(const char *name)
{
	if (!*name)
		return sv_strdup("a macro name cannot be empty");
	if (strlen(name) > MACRO_NAME_MAX)
		return sv_asprintf("macro name '%s' is longer than %d characters", name,
				 MACRO_NAME_MAX);
	for (const char *p = name; *p; p++)
		if (!name_char((unsigned char)*p))
			return sv_asprintf("macro name '%s' may only contain letters, digits, '_' and '-'",
					 name);
	if (!strcmp(name, "PID") || !strcmp(name, "PORT") || !strcmp(name, "MODEL_ID"))
		return sv_asprintf("macro name '%s' is reserved (pegpu serve sets it)", name);
	return NULL;
}

bool sv_macros_uses(const char *s, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = strstr(s, "${"); p; p = strstr(p + 2, "${"))
		if (!strncmp(p + 2, name, n) && p[2 + n] == '}')
			return true;
	return false;
}

char *sv_macros_check_value(const char *name, const char *value)
{
	if (sv_macros_uses(value, name))
		return sv_asprintf("macro '%s' refers to itself", name);
	return NULL;
}

char *sv_macros_expand(const struct serve_macros *m, const char *s)
{
	char *cur = sv_strdup(s);

	for (size_t i = m->n; i-- > 0;) {
		char *pat, *next;

		if (!strstr(cur, "${"))
			break;
		pat = sv_asprintf("${%s}", m->v[i].name);
		next = sv_str_replace_all(cur, pat, m->v[i].value);
		free(pat);
		free(cur);
		cur = next;
	}
	return cur;
}

/* If p points at "${env.NAME}", return NAME's length and set *start. */
static size_t env_ref(const char *p, const char **start)
{
	const char *q;

	if (strncmp(p, "${env.", 6))
		return 0;
	q = p + 6;
	if (!(isalpha((unsigned char)*q) || *q == '_'))
		return 0;
	while (isalnum((unsigned char)*q) || *q == '_')
		q++;
	if (*q != '}')
		return 0;
	*start = p + 6;
	return (size_t)(q - (p + 6));
}

char *sv_macros_expand_env(const char *s, char **missing)
{
	struct sv_buf b = { 0 };

	*missing = NULL;
	while (*s) {
		const char *name;
		size_t n = env_ref(s, &name);

		if (n) {
			char *var = sv_strndup(name, n);
			const char *val = getenv(var);

			if (!val) {
				*missing = var;
				free(sv_sbuf_take(&b));
				return NULL;
			}
			free(var);
			sv_sbuf_adds(&b, val);
			s = name + n + 1;
			continue;
		}
		sv_sbuf_add(&b, s, 1);
		s++;
	}
	return sv_sbuf_take(&b);
}

bool sv_macros_find_leftover(const char *s, bool allow_pid, char **name)
{
	for (const char *p = strstr(s, "${"); p; p = strstr(p + 2, "${")) {
		const char *q = p + 2, *env;
		size_t n = env_ref(p, &env);

		if (n) {
			*name = sv_asprintf("env.%.*s", (int)n, env);
			return true;
		}
		while (name_char((unsigned char)*q))
			q++;
		if (*q != '}' || q == p + 2)
			continue;
		if (allow_pid && q - (p + 2) == 3 && !strncmp(p + 2, "PID", 3))
			continue;
		*name = sv_strndup(p + 2, (size_t)(q - (p + 2)));
		return true;
	}
	return false;
}
