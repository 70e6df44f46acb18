/* SPDX-License-Identifier: Apache-2.0 */
/* Config `cmd:` strings to argv, llama-swap compatible (see cmdline.h). */
#include <stdlib.h>
#include <string.h>

#include "cmdline.h"

static const char *skip_blanks(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\r'))
		p++;
	return p;
}

/* Trim trailing blanks of [s, end): returns the new end. */
static const char *rtrim(const char *s, const char *end)
{
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
		end--;
	return end;
}

/* Steps 1 and 2; join_continuations selects step 2. */
static char *preprocess(const char *cmd, bool join_continuations)
{
	struct sv_buf b = { 0 };
	const char *line = cmd;
	bool first = true;

	for (;;) {
		const char *nl = strchr(line, '\n');
		const char *end = nl ? nl : line + strlen(line);
		const char *t = skip_blanks(line, end);
		const char *te = rtrim(t, end);

		if (t < end && *t == '#')
			goto next;	/* a comment line disappears with its newline */
		if (!first)
			sv_sbuf_add(&b, "\n", 1);
		first = false;
		if (join_continuations && te > t && te[-1] == '\\') {
			/* Replace "\<newline>" by a space, like the shell would
			 * join the lines; the newline added next is a blank too. */
			sv_sbuf_add(&b, t, (size_t)(te - 1 - t));
			sv_sbuf_add(&b, " ", 1);
		} else {
			sv_sbuf_add(&b, line, (size_t)(end - line));
		}
next:
		if (!nl)
			break;
		line = nl + 1;
	}
	return sv_sbuf_take(&b);
}

char *sv_cmdline_strip_comments(const char *cmd)
{
	return preprocess(cmd, false);
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int sv_cmdline_split(const char *cmd, struct sv_strv *argv, char **err)
{
	char *text = preprocess(cmd, true);
	const char *p = text;
	struct sv_buf word = { 0 };
	bool in_word = false;
	int ret = -1;

	*err = NULL;
	while (*p) {
		char c = *p;

		if (is_blank(c)) {
			if (in_word)
				sv_strv_push_owned(argv, sv_sbuf_take(&word));
			in_word = false;
			p++;
			continue;
		}
		in_word = true;
		if (c == '\\') {
			if (p[1] == '\n') {		/* line continuation */
				p += 2;
				continue;
			}
			if (p[1])
				sv_sbuf_add(&word, p + 1, 1);
			p += p[1] ? 2 : 1;
		} else if (c == '\'') {
			const char *q = strchr(p + 1, '\'');

			if (!q) {
				*err = sv_strdup("unterminated single quote (') in cmd");
				goto out;
			}
			sv_sbuf_add(&word, p + 1, (size_t)(q - p - 1));
			if (!word.p)
				sv_sbuf_add(&word, "", 0);	/* '' is an empty word */
			p = q + 1;
		} else if (c == '"') {
			p++;
			if (!word.p)
				sv_sbuf_add(&word, "", 0);
			while (*p && *p != '"') {
				if (*p == '\\' && p[1] && strchr("\\\"$`\n", p[1])) {
					if (p[1] != '\n')
						sv_sbuf_add(&word, p + 1, 1);
					p += 2;
				} else {
					sv_sbuf_add(&word, p++, 1);
				}
			}
			if (*p != '"') {
				*err = sv_strdup("unterminated double quote (\") in cmd");
				goto out;
			}
			p++;
		} else {
			sv_sbuf_add(&word, p++, 1);
		}
	}
	if (in_word)
		sv_strv_push_owned(argv, sv_sbuf_take(&word));
	if (argv->n == 0) {
		*err = sv_strdup("cmd is empty");
		goto out;
	}
	ret = 0;
out:
	free(word.p);
	free(text);
	if (ret)
		sv_strv_free(argv);
	return ret;
}

char *sv_cmdline_join(char *const *argv)
{
	struct sv_buf b = { 0 };

	for (size_t i = 0; argv && argv[i]; i++) {
		const char *a = argv[i];

		if (i)
			sv_sbuf_add(&b, " ", 1);
		if (*a && !strpbrk(a, " \t\n'\"\\$`")) {
			sv_sbuf_adds(&b, a);
			continue;
		}
		sv_sbuf_add(&b, "'", 1);
		for (; *a; a++) {
			if (*a == '\'')
				sv_sbuf_adds(&b, "'\\''");
			else
				sv_sbuf_add(&b, a, 1);
		}
		sv_sbuf_add(&b, "'", 1);
	}
	return sv_sbuf_take(&b);
}
