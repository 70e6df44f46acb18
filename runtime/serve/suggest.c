/* SPDX-License-Identifier: Apache-2.0 */
/* "Did you mean ...?" suggestions (see suggest.h). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "suggest.h"
#include "util.h"

size_t sv_suggest_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t *d = sv_calloc((la + 1) * (lb + 1), sizeof(*d));
	size_t r;

#define D(i, j) d[(i) * (lb + 1) + (j)]
	for (size_t i = 0; i <= la; i++)
		D(i, 0) = i;
	for (size_t j = 0; j <= lb; j++)
		D(0, j) = j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			int ca = tolower((unsigned char)a[i - 1]);
			int cb = tolower((unsigned char)b[j - 1]);
			size_t best = D(i - 1, j - 1) + (ca != cb);

			if (D(i - 1, j) + 1 < best)
				best = D(i - 1, j) + 1;
			if (D(i, j - 1) + 1 < best)
				best = D(i, j - 1) + 1;
			if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
			    tolower((unsigned char)a[i - 2]) == cb && D(i - 2, j - 2) + 1 < best)
				best = D(i - 2, j - 2) + 1;
			D(i, j) = best;
		}
	}
	r = D(la, lb);
#undef D
	free(d);
	return r;
}

const char *sv_suggest_word(const char *word, const char *const *candidates)
{
	const char *best = NULL;
	size_t best_d = (size_t)-1;
	/* Allow about one edit in three characters: "tll" -> "ttl" and
	 * "healthcheckTimeout" -> "healthCheckTimeout", but not "foo" -> "ttl". */
	size_t limit = strlen(word) / 3 + 1;

	for (const char *const *c = candidates; *c; c++) {
		size_t dist = sv_suggest_distance(word, *c);

		if (dist < best_d) {
			best_d = dist;
			best = *c;
		}
	}
	return best_d <= limit ? best : NULL;
}
