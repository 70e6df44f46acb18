/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Config macros, with llama-swap's semantics:
 *   - ${env.NAME} is replaced by the environment variable first; an unset
 *     variable is an error;
 *   - a macro list is ordered; expansion walks it from the last macro to the
 *     first, each replacing every ${name}; so a macro may use the macros
 *     declared before it, and model macros override global ones in place;
 *   - ${MODEL_ID} is the first macro of every model's list, ${PORT} is
 *     applied after all others, ${PID} survives only in cmdStop;
 *   - names match ^[a-zA-Z0-9_-]+$, are shorter than 64 characters and are
 *     not PID, PORT or MODEL_ID.
 */
#ifndef PEGPU_SERVE_MACROS_H
#define PEGPU_SERVE_MACROS_H

#include <stdbool.h>
#include <stddef.h>

struct serve_macro {
	char *name;
	char *value;
	int line;
};

struct serve_macros {
	struct serve_macro *v;
	size_t n, cap;
};

void sv_macros_free(struct serve_macros *m);
void sv_macros_copy(struct serve_macros *dst, const struct serve_macros *src);
/* Override the macro of the same name in place, or append. */
void sv_macros_set(struct serve_macros *m, const char *name, const char *value, int line);
const struct serve_macro *sv_macros_get(const struct serve_macros *m, const char *name);

/* NULL if name is a valid user macro name, else why not (caller frees). */
char *sv_macros_check_name(const char *name);
/* NULL if value is acceptable for macro name (no self reference), else why not. */
char *sv_macros_check_value(const char *name, const char *value);

/* Expand s with m (see above); returns a new string. */
char *sv_macros_expand(const struct serve_macros *m, const char *s);

/*
 * Replace every ${env.NAME} in s.  Returns a new string, or NULL with
 * *missing set (caller frees) to the first variable that is not set.
 */
char *sv_macros_expand_env(const char *s, char **missing);

/*
 * Find the first macro reference left in s: ${NAME} with a valid macro name
 * or ${env.NAME}.  allow_pid skips ${PID}.  Returns true and sets *name
 * (caller frees, "env.X" for environment references).
 */
bool sv_macros_find_leftover(const char *s, bool allow_pid, char **name);

/* True if s contains ${name}. */
bool sv_macros_uses(const char *s, const char *name);

#endif /* PEGPU_SERVE_MACROS_H */
