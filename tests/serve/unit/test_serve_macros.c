/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests: config macros (llama-swap rules) and cmd splitting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cmdline.h"
#include "macros.h"

static void expand_order(void **state)
{
	struct serve_macros m = { 0 };
	char *s;

	(void)state;
	/* Each macro may use those declared before it: expansion runs from
	 * the last to the first. */
	sv_macros_set(&m, "MODEL_ID", "llama", 1);
	sv_macros_set(&m, "default_ctx", "4096", 2);
	sv_macros_set(&m, "default_args", "--ctx-size ${default_ctx} --alias ${MODEL_ID}", 3);
	s = sv_macros_expand(&m, "srv ${default_args} ${default_ctx}");
	assert_string_equal(s, "srv --ctx-size 4096 --alias llama 4096");
	free(s);

	/* Overriding keeps the position (a model's own macro replaces the
	 * global one in place) */
	sv_macros_set(&m, "default_ctx", "16384", 9);
	assert_int_equal(m.n, 3);
	assert_int_equal(sv_macros_get(&m, "default_ctx")->line, 9);
	s = sv_macros_expand(&m, "${default_args}");
	assert_string_equal(s, "--ctx-size 16384 --alias llama");
	free(s);

	/* ... also for macros added later that use earlier ones */
	sv_macros_set(&m, "late", "x", 10);
	sv_macros_set(&m, "early_user", "${late}", 11);
	s = sv_macros_expand(&m, "${early_user}");
	assert_string_equal(s, "x");
	free(s);
	sv_macros_free(&m);

	/* but a macro using one declared after it stays unexpanded (the
	 * config loader reports it) */
	sv_macros_set(&m, "a", "${b}", 1);
	sv_macros_set(&m, "b", "B", 2);
	s = sv_macros_expand(&m, "${a}");
	assert_string_equal(s, "${b}");
	free(s);
	sv_macros_free(&m);
}

static void env_macros(void **state)
{
	char *missing, *s;

	(void)state;
	setenv("PEGPU_T_HOME", "/home/t", 1);
	unsetenv("PEGPU_T_UNSET");
	s = sv_macros_expand_env("${env.PEGPU_T_HOME}/models and ${env.PEGPU_T_HOME}", &missing);
	assert_non_null(s);
	assert_string_equal(s, "/home/t/models and /home/t");
	free(s);
	s = sv_macros_expand_env("x ${env.PEGPU_T_UNSET} y", &missing);
	assert_null(s);
	assert_string_equal(missing, "PEGPU_T_UNSET");
	free(missing);
	/* not an env reference: left for the other passes */
	s = sv_macros_expand_env("${envX} ${env.} $env.A", &missing);
	assert_string_equal(s, "${envX} ${env.} $env.A");
	free(s);
}

static void names_and_leftovers(void **state)
{
	char *why, *name;

	(void)state;
	assert_null(sv_macros_check_name("good_name-2"));
	why = sv_macros_check_name("PORT");
	assert_non_null(strstr(why, "reserved"));
	free(why);
	why = sv_macros_check_name("MODEL_ID");
	assert_non_null(why);
	free(why);
	why = sv_macros_check_name("bad name");
	assert_non_null(strstr(why, "letters, digits"));
	free(why);
	why = sv_macros_check_name("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	assert_non_null(strstr(why, "longer than 63"));
	free(why);
	why = sv_macros_check_value("self", "x ${self}");
	assert_non_null(strstr(why, "refers to itself"));
	free(why);

	assert_true(sv_macros_find_leftover("a ${PID} b ${nope}", true, &name));
	assert_string_equal(name, "nope");
	free(name);
	assert_false(sv_macros_find_leftover("kill ${PID}", true, &name));
	assert_true(sv_macros_find_leftover("kill ${PID}", false, &name));
	assert_string_equal(name, "PID");
	free(name);
	assert_true(sv_macros_find_leftover("${env.GONE}", false, &name));
	assert_string_equal(name, "env.GONE");
	free(name);
	assert_false(sv_macros_find_leftover("$PORT ${} ${a b}", false, &name));
	assert_true(sv_macros_uses("--port ${PORT}", "PORT"));
	assert_false(sv_macros_uses("--port ${PORTS}", "PORT"));
}

static void check_argv(const char *cmd, const char *const *want)
{
	struct sv_strv argv = { 0 };
	char *err = NULL;
	size_t n = 0;

	assert_int_equal(sv_cmdline_split(cmd, &argv, &err), 0);
	assert_null(err);
	while (want[n])
		n++;
	assert_int_equal(argv.n, n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(argv.v[i], want[i]);
	assert_null(argv.v[n]);
	sv_strv_free(&argv);
}

static void split_like_llama_swap(void **state)
{
	/* The shape of llama-swap's own SanitizeCommand test: continuation
	 * lines, both quote kinds, comment lines and blank lines. */
	static const char *const want[] = {
		"python", "model1.py", "-a", "double quotes", "--arg2", "single quotes", "-s",
		"--arg3", "123", "--arg4", "\"string in string\"", "-c", "'single quoted'", NULL,
	};
	static const char *const esc[] = { "a b", "c\"d", "e$f", "g\\h", "", "i'j", "k\\l", NULL };

	(void)state;
	check_argv("python model1.py \\\n"
		   "\t-a \"double quotes\" \\\n"
		   "\t--arg2 'single quotes'\n"
		   "\t-s\n"
		   "\t# comment 1\n"
		   "\t--arg3 123 \\\n"
		   "\n"
		   "\t  # comment 2\n"
		   "\t--arg4 '\"string in string\"'\n"
		   "\n\n"
		   "\t# this will get stripped out as well as the white space above\n"
		   "\t-c \"'single quoted'\"\n\t",
		   want);
	check_argv("a\\ b \"c\\\"d\" \"e\\$f\" 'g\\h' '' \"i'j\" \"k\\l\"", esc);
}

static void split_errors(void **state)
{
	struct sv_strv argv = { 0 };
	char *err = NULL, *s;

	(void)state;
	assert_int_equal(sv_cmdline_split("", &argv, &err), -1);
	assert_non_null(strstr(err, "empty"));
	free(err);
	assert_int_equal(sv_cmdline_split("# only a comment\n   \n", &argv, &err), -1);
	free(err);
	assert_int_equal(sv_cmdline_split("srv 'unterminated", &argv, &err), -1);
	assert_non_null(strstr(err, "single quote"));
	free(err);
	assert_int_equal(sv_cmdline_split("srv \"unterminated", &argv, &err), -1);
	assert_non_null(strstr(err, "double quote"));
	free(err);
	assert_int_equal(argv.n, 0);

	s = sv_cmdline_strip_comments("  # c\nsrv --x\n#d\n--y");
	assert_string_equal(s, "srv --x\n--y");
	free(s);
}

static void join_quotes(void **state)
{
	char *argv[] = { "srv", "-m", "/a b/c.gguf", "it's", "", NULL };
	char *s = sv_cmdline_join(argv);

	(void)state;
	assert_string_equal(s, "srv -m '/a b/c.gguf' 'it'\\''s' ''");
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(expand_order),
		cmocka_unit_test(env_macros),
		cmocka_unit_test(names_and_leftovers),
		cmocka_unit_test(split_like_llama_swap),
		cmocka_unit_test(split_errors),
		cmocka_unit_test(join_quotes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
