/* Tests for src/core/luatext.c: the Lua tokenizer and the one ${ } template scanner that
 * validate and run share. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <drbook/luatext.h>

/* Tokens as "kind:text" joined by spaces (N name, S string, 0 number, O operator, E error). */
static void tokens(const char *src, char *out, size_t cap)
{
	static const char kinds[] = "xNS0OE";
	drb_lex lx;
	drb_tok t;
	size_t len = 0;

	out[0] = '\0';
	drb_lex_init(&lx, src, strlen(src));
	while (drb_lex_next(&lx, &t) != DRB_TOK_EOF) {
		len += (size_t)snprintf(out + len, cap - len, "%s%c:%.*s", len ? " " : "",
					kinds[t.kind], (int)t.n, t.p);
		assert_true(len < cap);
		if (t.kind == DRB_TOK_ERROR)
			break;
	}
}

/* Lua's lexical rules: strings with escapes, long strings, comments, numbers, operators. */
static void test_lex(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
	    {"params.x", "N:params O:. N:x"},
	    {"a..b ~= c...", "N:a O:.. N:b O:~= N:c O:..."},
	    {"'it''s'", "S:'it' S:'s'"},
	    {"\"a\\\"}\" x", "S:\"a\\\"}\" N:x"},
	    {"'a\\\nb' y", "S:'a\\\nb' N:y"},
	    {"'a\\z\n   b' y", "S:'a\\z\n   b' N:y"},
	    {"'a\nb'", "E:'a"},
	    {"[[ } ]] z", "S:[[ } ]] N:z"},
	    {"[==[ ]] ]=] ]==]", "S:[==[ ]] ]=] ]==]"},
	    {"t[1] t[ [[x]] ]", "N:t O:[ 0:1 O:] N:t O:[ S:[[x]] O:]"},
	    {"a -- } comment\nb", "N:a N:b"},
	    {"a --[[ } ]] b", "N:a N:b"},
	    {"a --[==[\n]]\n]==] b", "N:a N:b"},
	    {"a --[[ never closed", "N:a E:[[ never closed"},
	    {"[=[ never", "E:[=[ never"},
	    {"0x1p-2 3e+5 .5 1..2", "0:0x1p-2 0:3e+5 0:.5 0:1..2"},
	    {"a.b:c{d=1}", "N:a O:. N:b O:: N:c O:{ N:d O:= 0:1 O:}"},
	    {"x // y >> 2 :: l", "N:x O:// N:y O:>> 0:2 O::: N:l"},
	    {"--", ""},
	    {"", ""},
	};
	char got[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tokens(cases[i].in, got, sizeof(got));
		if (strcmp(got, cases[i].want))
			fprintf(stderr, "case %zu: got '%s'\n", i, got);
		assert_string_equal(got, cases[i].want);
	}
}

/* Keywords are names the checks must never take for variables. */
static void test_keywords(void **state)
{
	drb_lex lx;
	drb_tok t;
	const char *src = "end endx nil _nil function";
	int want[] = {1, 0, 1, 0, 1}, i = 0;

	drb_lex_init(&lx, src, strlen(src));
	while (drb_lex_next(&lx, &t) == DRB_TOK_NAME)
		assert_int_equal(drb_tok_is_keyword(&t), want[i++]);
	assert_int_equal(i, 5);
}

/* Lines are counted through comments and long strings. */
static void test_lines(void **state)
{
	drb_lex lx;
	drb_tok t;
	const char *src = "a\n--[[\n\n]] b [[\n]] c";

	drb_lex_init(&lx, src, strlen(src));
	drb_lex_next(&lx, &t);
	assert_int_equal(t.line, 1);
	drb_lex_next(&lx, &t);
	assert_true(drb_tok_is(&t, DRB_TOK_NAME, "b"));
	assert_int_equal(t.line, 4);
	drb_lex_next(&lx, &t);
	drb_lex_next(&lx, &t);
	assert_true(drb_tok_is(&t, DRB_TOK_NAME, "c"));
	assert_int_equal(t.line, 5);
}

/* The template as "<expr>" and "[text]" parts, or "!U"/"!E" for unterminated/empty. */
static void parts(const char *src, char *out, size_t cap)
{
	drb_tmpl t;
	drb_tmpl_part p;
	size_t len = 0;
	int rc;

	out[0] = '\0';
	drb_tmpl_init(&t, src, strlen(src));
	while ((rc = drb_tmpl_next(&t, &p)) == 1) {
		len += (size_t)snprintf(out + len, cap - len, p.expr ? "<%.*s>" : "[%.*s]",
					(int)p.n, p.p);
		assert_true(len < cap);
	}
	if (rc < 0)
		snprintf(out + len, cap - len, "!%c@%zu", p.error == DRB_TMPL_EMPTY ? 'E' : 'U',
			 p.off);
}

/* The scanner: nesting, strings and comments holding braces, the $${ escape, errors. */
static void test_tmpl(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
	    {"plain", "[plain]"},
	    {"${a}", "<a>"},
	    {"x ${ a.b } y ${c}", "[x ]< a.b >[ y ]<c>"},
	    {"${ {1,{2}} }", "< {1,{2}} >"},
	    {"${'}'}", "<'}'>"},
	    {"${\"a\\\"}\"}", "<\"a\\\"}\">"},
	    {"${[[}]]}", "<[[}]]>"},
	    {"${[==[ ]] } ]==]}", "<[==[ ]] } ]==]>"},
	    {"${ 1 --[[ } ]] }", "< 1 --[[ } ]] >"},
	    {"${ 1 -- }\n}", "< 1 -- }\n>"},
	    {"${t[1]}", "<t[1]>"},
	    {"$${not} ${yes}", "[${not} ]<yes>"},
	    {"a $${b}", "[a ][${b}]"},
	    {"$$${x}", "[$][${x}]"},
	    {"cost $5 ${x}$", "[cost $5 ]<x>[$]"},
	    {"${a", "!U@0"},
	    {"ok ${'}", "[ok ]!U@3"},
	    {"${ 1 -- }", "!U@0"},
	    {"${ --[[ }", "!U@0"},
	    {"${ 'a\n' }", "!U@0"},
	    {"${}", "!E@0"},
	    {"a ${  } b", "[a ]!E@2"},
	    {"${ --[[x]] }", "!E@0"},
	    {"$ {a} {b}", "[$ {a} {b}]"},
	    {"", ""},
	};
	char got[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		parts(cases[i].in, got, sizeof(got));
		if (strcmp(got, cases[i].want))
			fprintf(stderr, "case %zu '%s': got '%s'\n", i, cases[i].in, got);
		assert_string_equal(got, cases[i].want);
	}
}

/* Only a template that is exactly one ${expr} keeps its value's type. */
static void test_whole(void **state)
{
	const char *e = NULL;
	size_t n = 0;

	assert_int_equal(drb_tmpl_whole("${ x }", 6, &e, &n), 1);
	assert_int_equal(n, 3);
	assert_memory_equal(e, " x ", 3);
	assert_int_equal(drb_tmpl_whole("${ {a = 1} }", 12, &e, &n), 1);
	assert_int_equal(drb_tmpl_whole("${x} ", 5, &e, &n), 0);
	assert_int_equal(drb_tmpl_whole(" ${x}", 5, &e, &n), 0);
	assert_int_equal(drb_tmpl_whole("${x}${y}", 8, &e, &n), 0);
	assert_int_equal(drb_tmpl_whole("${}", 3, &e, &n), 0);
	assert_int_equal(drb_tmpl_whole("${x", 3, &e, &n), 0);
	assert_int_equal(drb_tmpl_whole("$${x}", 5, &e, &n), 0);
}

/* The chunk both validate and run compile an expression as. */
static void test_expr_wrap(void **state)
{
	drb_buf b;

	drb_buf_init(&b, 64);
	assert_int_equal(drb_expr_wrap(&b, "a -- c", 6), 0);
	assert_string_equal(b.p, "return (a -- c\n)");
	drb_buf_free(&b);
	drb_buf_init(&b, 12);
	assert_int_equal(drb_expr_wrap(&b, "long expression", 15), DRB_ELIMIT);
	drb_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_lex),	  cmocka_unit_test(test_keywords),
	    cmocka_unit_test(test_lines), cmocka_unit_test(test_tmpl),
	    cmocka_unit_test(test_whole), cmocka_unit_test(test_expr_wrap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
