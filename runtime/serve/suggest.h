/* SPDX-License-Identifier: Apache-2.0 */
/* "Did you mean ...?" for misspelled config keys and model names. */
#ifndef PEGPU_SERVE_SUGGEST_H
#define PEGPU_SERVE_SUGGEST_H

#include <stddef.h>

/*
 * The candidate closest to word, compared case-insensitively by edit
 * distance (transpositions count as one edit), or NULL when none is close
 * enough to be a plausible typo.  candidates ends with NULL.
 */
const char *sv_suggest_word(const char *word, const char *const *candidates);

/* Edit distance with adjacent transpositions, case-insensitive. */
size_t sv_suggest_distance(const char *a, const char *b);

#endif /* PEGPU_SERVE_SUGGEST_H */
