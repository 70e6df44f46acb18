/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Turn a config `cmd:` string into argv the way llama-swap does, so configs
 * written for it start the same programs:
 *   1. lines whose first non-blank character is '#' are dropped (comments
 *      in `cmd: |` blocks);
 *   2. a line ending in a backslash is joined to the next;
 *   3. the rest is split into words with POSIX shell quoting: blanks and
 *      newlines separate words, '...' is literal, "..." allows \\ \" \$ \`
 *      escapes, a backslash outside quotes escapes the next character.
 * There is no shell: no variables, globbing, pipes or redirections.
 */
#ifndef PEGPU_SERVE_CMDLINE_H
#define PEGPU_SERVE_CMDLINE_H

#include "util.h"

/* Step 1 alone: cmd without its comment lines (a new string). */
char *sv_cmdline_strip_comments(const char *cmd);

/*
 * Steps 1-3: fill argv (empty on entry).  Returns 0, or -1 with *err set
 * (caller frees) for an unterminated quote or an empty command.
 */
int sv_cmdline_split(const char *cmd, struct sv_strv *argv, char **err);

/* argv joined with spaces, quoting words that need it (for logs). */
char *sv_cmdline_join(char *const *argv);

#endif /* PEGPU_SERVE_CMDLINE_H */
