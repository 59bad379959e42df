/* Tests for src/lua/patterns.c: string.find, match, gmatch and gsub give exactly what the
 * stock Lua 5.4 library gives (a table of ordinary cases and a seeded random comparison,
 * both run against a plain luaL_newstate with the system's liblua), and pathological
 * patterns, which one C call of the stock matcher would chew on for seconds or forever,
 * end with DRB_ELIMIT within a second, also under the script's own pcall; the state stays
 * usable afterwards. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#include "lua/lua_test.h"

/* Defined in both states: ser() turns results into one comparable string (count, then each
 * value with its type), gm() collects what a gmatch iterator yields. */
static const char helpers[] = "function ser(...)\n"
			      "  local t = table.pack(...)\n"
			      "  local o = {tostring(t.n)}\n"
			      "  for i = 1, t.n do\n"
			      "    local v = t[i]\n"
			      "    o[#o + 1] = (math.type(v) or type(v)) .. ':' .. tostring(v)\n"
			      "  end\n"
			      "  return table.concat(o, '|')\n"
			      "end\n"
			      "function gm(s, p, init)\n"
			      "  local it, o = string.gmatch(s, p, init), {}\n"
			      "  while #o < 100 do\n"
			      "    local r = table.pack(it())\n"
			      "    if r[1] == nil then break end\n"
			      "    o[#o + 1] = ser(table.unpack(r, 1, r.n))\n"
			      "  end\n"
			      "  return table.concat(o, ';')\n"
			      "end\n";

typedef struct pt_fix {
	lt_fix lt;	   /* the sandbox (first member: the lt_ helpers take it) */
	lua_State *S;	   /* a stock state with the system library's string functions */
	char out[2][8192]; /* last results: [0] stock, [1] sandbox */
} pt_fix;

static int pt_open(void **state, long long instr)
{
	pt_fix *f = calloc(1, sizeof(*f));
	drb_err e = {0};

	*state = f;
	if (!f || lt_open(&f->lt, 0, instr, 0) != 0)
		return -1;
	f->S = luaL_newstate();
	if (!f->S)
		return -1;
	luaL_openlibs(f->S);
	/* the same chunk name in both, for messages raised inside gm() */
	if (luaL_loadbuffer(f->S, helpers, strlen(helpers), "=helpers") != LUA_OK ||
	    lua_pcall(f->S, 0, 0, 0) != LUA_OK)
		return -1;
	if (drb_lua_run(f->lt.L, helpers, "helpers", NULL, &e) != 0) {
		fprintf(stderr, "helpers: %s\n", e.msg);
		return -1;
	}
	return 0;
}

static int pt_setup(void **state)
{
	return pt_open(state, 0);
}

/* a small budget, for tests that hit it many times */
static int pt_setup_small(void **state)
{
	return pt_open(state, 1000000);
}

static int pt_teardown(void **state)
{
	pt_fix *f = *state;

	if (!f)
		return 0;
	if (f->S)
		lua_close(f->S);
	drb_lua_free(f->lt.L);
	if (f->lt.root[0])
		lt_rmtree(f->lt.root);
	free(f);
	return 0;
}

/* Reads the global OUT of S into out (binary safe; NUL bytes shown as \0). */
static void pt_take(lua_State *S, char *out, size_t outn)
{
	size_t n = 0, j = 0;
	const char *s;

	lua_getglobal(S, "OUT");
	s = lua_tolstring(S, -1, &n);
	for (size_t i = 0; s && i < n && j + 3 < outn; i++) {
		if (s[i] == '\0') {
			out[j++] = '\\';
			out[j++] = '0';
		} else {
			out[j++] = s[i];
		}
	}
	out[j] = '\0';
	lua_pop(S, 1);
	lua_pushnil(S);
	lua_setglobal(S, "OUT");
}

/* Runs "OUT = <code>" in both states; 1 when both ran and gave the same text. */
static int pt_both(pt_fix *f, const char *code)
{
	char script[4096];
	drb_err e = {0};
	int rc;

	snprintf(script, sizeof(script), "OUT = %s", code);
	/* the sandbox names chunks "@" + chunkname: the same here, for identical messages */
	if (luaL_loadbuffer(f->S, script, strlen(script), "@test.yaml:1:1") != LUA_OK ||
	    lua_pcall(f->S, 0, 0, 0) != LUA_OK) {
		fprintf(stderr, "stock: %s: %s\n", code, lua_tostring(f->S, -1));
		lua_pop(f->S, 1);
		return 0;
	}
	pt_take(f->S, f->out[0], sizeof(f->out[0]));
	rc = drb_lua_run(f->lt.L, script, "test.yaml:1:1", NULL, &e);
	if (rc != 0) {
		fprintf(stderr, "sandbox: %s: rc %d: %s\n", code, rc, e.msg);
		return 0;
	}
	pt_take(drb_lua_state(f->lt.L), f->out[1], sizeof(f->out[1]));
	if (strcmp(f->out[0], f->out[1]) != 0) {
		fprintf(stderr, "%s\n  stock:   %s\n  sandbox: %s\n", code, f->out[0], f->out[1]);
		return 0;
	}
	return 1;
}

/* expr is evaluated inside pcall in both states; results (or the error) must agree. */
static int pt_same(pt_fix *f, const char *expr)
{
	char code[2048];

	snprintf(code, sizeof(code), "ser(pcall(function() return %s end))", expr);
	return pt_both(f, code);
}

static const char *const cases[] = {
    /* find: plain text, init, negative init, empty pattern, plain flag */
    "string.find('hello world', 'o w')",
    "string.find('hello world', 'o', 6)",
    "string.find('hello world', 'l+')",
    "string.find('hello', 'l', -2)",
    "string.find('hello', 'l', -100)",
    "string.find('hello', '', 10)",
    "string.find('hello', '', 6)",
    "string.find('hello', '')",
    "string.find('', '')",
    "string.find('', 'a*')",
    "string.find('hello', 'xyz', -100)",
    "string.find('a.b', '.', 1, true)",
    "string.find('a+b', '+', 1, true)",
    "string.find('a+b', 'a+b')",
    "string.find('a+b', 'a+b', 1, true)",
    "string.find('a+b', 'a%+b')",
    "string.find('hello\\0world', '\\0w', 1, true)",
    "string.find('hello\\0world', 'o\\0w')",
    "string.find('hello\\0world', '%z')",
    "string.find('hello\\0world', '[\\0]')",
    "string.find(12345, 34)",
    "string.find('abc', 'b', 2.0)",
    "('hello'):find('l')",
    "('hello'):find('l', 4)",
    /* captures, position captures, back-references */
    "string.find('key = value', '(%w+)%s*=%s*(%w+)')",
    "string.find('hello', '()ll()')",
    "string.find('THE (quick) fox', '%((%a+)%)')",
    "string.find('x = [[a]] y', '%[%[(.-)%]%]')",
    "string.find('abcabc', '(abc)%1')",
    "string.find('xyyx', '(.)(.)%2%1')",
    "string.find('abcab', '(a(b)c)%2')",
    /* anchors */
    "string.find('  trim  ', '^%s*(.-)%s*$')",
    "string.find('abc', '^b')",
    "string.find('abc', '^a')",
    "string.find('abc', 'c$')",
    "string.find('a$c', 'a$c')",
    "string.find('abc', '^abc$')",
    "string.find('abc', '^', 2)",
    "string.find('abc', '$')",
    "string.find('a^b', 'a^b')",
    /* %b and %f */
    "string.find('f(a(b)c)d', '%b()')",
    "string.find('f(a(b)c d', '%b()')",
    "string.find('[[x]]', '%b[]')",
    "string.find('<a<b>>', '%b<>', 2)",
    "string.find('THE (quick) fox', '%f[%a]%a+', 5)",
    "string.match('THE (quick) fox', '%f[%l]%a+')",
    "string.match('hello', '%f[%z]')",
    "string.find('hello', '%f[%A]')",
    "string.match('one two', '%f[%w]%w+$')",
    /* classes and sets */
    "string.find('[x]', '[]]')",
    "string.find('a-b', '[a%-]+')",
    "string.find('Hello123', '[^%d]+')",
    "string.find('abc', '[b-]')",
    "string.find('a]b', '[%]]')",
    "string.match('Hello, World!', '%p')",
    "string.match('\\t x', '%s+')",
    "string.match('Hello', '%u%l+')",
    "string.match('hello', '%u')",
    "string.match('0x1F', '^0[xX](%x+)$')",
    "string.match('a\\1b', '%c')",
    "string.match('hello world', '%g+')",
    "string.match('abc123', '%W')",
    "string.match('abc123', '%D+')",
    "string.match('abc', '[%a_][%w_]*')",
    "string.match('AbC', '[A-Z]+')",
    "string.match('z', '[a-]')",
    /* match */
    "string.match('2024-05-01', '(%d+)-(%d+)-(%d+)')",
    "string.match('hello', '.-')",
    "string.match('hello', '()')",
    "string.match('hello', '()', 3)",
    "string.match('  x ', '^%s*(.-)%s*$')",
    "string.match('key=val', '(%w+)=(%w*)')",
    "string.match('key=', '(%w+)=(%w*)')",
    "string.match('hello world', '%w+', 6)",
    "string.match('hello world', '%w+', -3)",
    "string.match('abc', '((a)(b))')",
    "string.match('x', 'y')",
    "string.match('aaa', 'a*?')",
    "string.match('ab', 'a?b?c?')",
    "string.match('b', 'a?b')",
    "string.match('aaab', 'a-b')",
    "string.match('aaab', 'a+')",
    "string.match('aaab', 'a*b')",
    "string.match('a.b.c', '^(.-)%.(.*)$')",
    "string.match('a,b,,c', '([^,]*),([^,]*),([^,]*)')",
    "string.match(string.rep('a', 10), string.rep('a?', 10) .. string.rep('a', 10))",
    "string.match('hello', '', 10)",
    "string.match('hello', '', 6)",
    /* gmatch, with the 5.4 init argument */
    "gm('one two  three', '%a+')",
    "gm('k1=v1, k2=v2', '(%w+)=(%w+)')",
    "gm('abc', '')",
    "gm('abc', '()')",
    "gm('abc', '()b()')",
    "gm('hello world', '%a+', 3)",
    "gm('hello world', '%a+', -5)",
    "gm('hello', 'l*')",
    "gm('a,b,,c', '([^,]*)')",
    "gm('xyz', '.', 10)",
    "gm('xyz', '.', 4)",
    "gm('xyz', '.', -1)",
    "gm('^a^a', '^a')",
    "gm('f(a)(b(c))', '%b()')",
    "gm('THE (quick) fox', '%f[%a]%a+')",
    /* gsub: strings with %0..%9 and %%, tables, functions, the count, the limit */
    "string.gsub('hello world', 'o', '0')",
    "string.gsub('hello world', 'o', '0', 1)",
    "string.gsub('hello world', 'o', '0', 0)",
    "string.gsub('hello world', 'o', '0', -1)",
    "string.gsub('hello world', 'o', '0', 2.0)",
    "string.gsub('hello world', '(%w+)', '<%1>')",
    "string.gsub('hello world', '%w+', '%0 %0')",
    "string.gsub('hello', '', '-')",
    "string.gsub('', '', '-')",
    "string.gsub('abc', '%w', '%%')",
    "string.gsub('abc', '%w', '%%%0')",
    "string.gsub('hello world', '(%w+) (%w+)', '%2 %1')",
    "string.gsub('abc', '(b)', '[%0%1]')",
    "string.gsub('hello', '()l', '%1')",
    "string.gsub('abc', '^a', 'X')",
    "string.gsub('aaa', '^a', 'X')",
    "string.gsub('aaa', '^', 'X')",
    "string.gsub('abc', '$', 'X')",
    "string.gsub('abc', 'b*', '-')",
    "string.gsub('hello', 'x', 'y')",
    "string.gsub('abc', '.', 5)",
    "string.gsub('abc', '.', 1.5)",
    "string.gsub('hello world', '%s', '')",
    "('x = 1'):gsub('%s', '')",
    "string.gsub('$name is $age', '%$(%w+)', {name = 'Bob', age = 42})",
    "string.gsub('$name $unknown', '%$(%w+)', {name = 'Bob'})",
    "string.gsub('$name', '%$(%w+)', {name = false})",
    "string.gsub('hello', 'l', {l = 1.5})",
    "string.gsub('hello', '()l', {[3] = 'L'})",
    "string.gsub('abc', '%w', function(c) return c:upper() .. '.' end)",
    "string.gsub('abc', '%w', function(c) if c == 'b' then return false end return 'X' end)",
    "string.gsub('abc', '%w', function() end)",
    "string.gsub('k=v, a=b', '(%w+)=(%w+)', function(k, v) return v .. '=' .. k end)",
    "string.gsub('abc', '()', function(p) return p end)",
    "string.gsub('abc def', '%f[%w]%w+', string.upper)",
    "string.gsub('f(a)(b(c))', '%b()', '[]')",
    /* errors: the stock messages */
    "string.find('a', '%')",
    "string.find('a', '[a')",
    "string.find('a', '[')",
    "string.find('a', '[^')",
    "string.find('a', '[a%')",
    "string.find('a', '(a')",
    "string.match('a', '(a')",
    "string.find('a', 'a)')",
    "string.find('aa', '%1')",
    "string.find('aa', '(a)%2')",
    "string.find('aa', '(a%1)')",
    "string.find('a', '%b')",
    "string.find('a', '%ba')",
    "string.find('a', '%f')",
    "string.find('a', '%fa')",
    "string.find('a', '%f[a')",
    "string.match(string.rep('a', 300), string.rep('(a)', 33))",
    "string.match(string.rep('a', 300), string.rep('a?', 300) .. 'b')",
    "string.match(string.rep('a', 100), string.rep('(', 40))",
    "string.gsub('abc', '(a)', '%2')",
    "string.gsub('abc', 'a', '%2')",
    "string.gsub('abc', 'a', '%x')",
    "string.gsub('abc', 'a', '%')",
    "string.gsub('abc', 'a', true)",
    "string.gsub('abc', 'a')",
    "string.gsub('abc', 'a', function() return {} end)",
    "string.gsub('abc', 'a', {a = true})",
    "string.gsub('abc', '(a', 'x')",
    "string.gsub('abc', 'a', 'x', 'many')",
    "string.find(nil, 'a')",
    "string.find('a')",
    "string.find('a', {})",
    "string.find('abc', 'b', 1.5)",
    "string.match()",
    "string.gmatch('abc')",
    "gm('abc', '%')",
    "gm('abc', '(()')",
    "gm('abc', '%1')",
    "('abc'):find('[')",
};

/* Every ordinary case gives the stock library's result or error message. */
static void test_same_as_stock(void **state)
{
	pt_fix *f = *state;
	int bad = 0;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		bad += !pt_same(f, cases[i]);
	assert_int_equal(bad, 0);
	/* a few spelled out, so that a stock library gone wrong would show too */
	assert_true(pt_same(f, "string.find('key = value', '(%w+)%s*=%s*(%w+)')"));
	assert_string_equal(f->out[1], "5|boolean:true|integer:1|integer:11|string:key|"
				       "string:value");
	assert_true(pt_same(f, "string.gsub('$name $x', '%$(%w+)', {name = 'Bob'})"));
	assert_string_equal(f->out[1], "3|boolean:true|string:Bob $x|integer:2");
	assert_true(pt_same(f, "gm('abc', '()')"));
	assert_string_equal(
	    f->out[1], "2|boolean:true|string:1|integer:1;1|integer:2;1|integer:3;1|integer:4");
	assert_true(pt_same(f, "string.find('a', '%')"));
	assert_string_equal(
	    f->out[1], "2|boolean:false|string:test.yaml:1:1:1: malformed pattern (ends with '%')");
	assert_true(pt_same(f, "string.find('a', '[a')"));
	assert_string_equal(
	    f->out[1], "2|boolean:false|string:test.yaml:1:1:1: malformed pattern (missing ']')");
	assert_true(pt_same(f, "string.match(string.rep('a', 300), string.rep('a?', 300) .. 'b')"));
	assert_string_equal(f->out[1],
			    "2|boolean:false|string:test.yaml:1:1:1: pattern too complex");
	assert_true(pt_same(f, "string.gsub('abc', '(a)', '%2')"));
	assert_string_equal(f->out[1],
			    "2|boolean:false|string:test.yaml:1:1:1: invalid capture index %2");
	assert_true(pt_same(f, "string.find('aa', '%1')"));
	assert_string_equal(f->out[1],
			    "2|boolean:false|string:test.yaml:1:1:1: invalid capture index %1");
}

/* A seeded random comparison: short subjects and patterns built from the pattern syntax
 * (valid or not), each run through find, match, gsub and gmatch with a random init. */
static void test_random_same_as_stock(void **state)
{
	pt_fix *f = *state;
	static const char subj_chars[] = "aab(b)c%-.[]^$ 1";
	static const char *const tokens[] = {
	    "a",  "b", ".", "%a", "%d", "%s", "%w", "[ab]", "[^a]",   "[a-c]",	"(",  ")",
	    "()", "*", "+", "-",  "?",	"^",  "$",  "%b()", "%f[%w]", "%f[%W]", "%1", "%2",
	    "%",  "[", "]", "%%", "%.", "x",  "%(", " ",    "[%]]",   "%z",	"%0",
	};
	static const char *const repls[] = {"<%0>", "%1", "%%", "x", "%2%1", "%"};
	unsigned long long seed = 0x9e3779b97f4a7c15ULL;
	lua_State *B = drb_lua_state(f->lt.L);
	int bad = 0;

	for (int n = 0; n < 3000 && bad < 10; n++) {
		char subj[16], pat[64];
		int ls, nt, init;
		const char *repl;

		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		ls = (int)((seed >> 33) % 11);
		for (int i = 0; i < ls; i++) {
			seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
			subj[i] = subj_chars[(seed >> 33) % (sizeof(subj_chars) - 1)];
		}
		subj[ls] = '\0';
		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		nt = 1 + (int)((seed >> 33) % 6);
		pat[0] = '\0';
		for (int i = 0; i < nt; i++) {
			seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
			strcat(pat, tokens[(seed >> 33) % (sizeof(tokens) / sizeof(tokens[0]))]);
		}
		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		init = (int)((seed >> 33) % 16) - 4;
		repl = repls[(seed >> 40) % (sizeof(repls) / sizeof(repls[0]))];
		for (int k = 0; k < 2; k++) {
			lua_State *X = k ? B : f->S;

			lua_pushstring(X, subj);
			lua_setglobal(X, "S");
			lua_pushstring(X, pat);
			lua_setglobal(X, "P");
			lua_pushinteger(X, init);
			lua_setglobal(X, "I");
			lua_pushstring(X, repl);
			lua_setglobal(X, "R");
		}
		if (!pt_both(f, "ser(pcall(string.find, S, P, I)) .. ' # ' .. "
				"ser(pcall(string.match, S, P, I)) .. ' # ' .. "
				"ser(pcall(string.gsub, S, P, R)) .. ' # ' .. "
				"ser(pcall(string.gsub, S, P, R, 1)) .. ' # ' .. "
				"ser(pcall(gm, S, P, I)) .. ' # ' .. "
				"ser(pcall(string.find, S, P, I, true))")) {
			fprintf(stderr, "  subject '%s', pattern '%s', init %d, repl '%s'\n", subj,
				pat, init, repl);
			bad++;
		}
	}
	assert_int_equal(bad, 0);
}

/* ---- the budget ---- */

struct pt_case {
	pt_fix *f;
	const char *code;
	int expr; /* drb_lua_eval rather than drb_lua_run */
};

/* One attempt: the script must end with DRB_ELIMIT "instruction limit exceeded". */
static int pt_limit_attempt(void *arg)
{
	struct pt_case *c = arg;
	double t0 = drb_mono_now();
	drb_err e = {0};
	json_t *out = NULL;
	int rc = c->expr ? drb_lua_eval(c->f->lt.L, c->code, "rb.yaml:7:3", &out, &e)
			 : drb_lua_run(c->f->lt.L, c->code, "rb.yaml:7:3", &out, &e);

	json_decref(out);
	if (getenv("PT_TIMES")) /* PT_TIMES=1 shows how long each script took */
		fprintf(stderr, "%.3f s  %s\n", drb_mono_now() - t0, c->code);
	if (rc != DRB_ELIMIT || !strstr(e.msg, "rb.yaml:7:3") ||
	    !strstr(e.msg, "instruction limit exceeded")) {
		fprintf(stderr, "%s: rc %d: %s\n", c->code, rc, e.msg);
		return 0;
	}
	return out == NULL;
}

/* The state still works after a limit: a plain pattern call and ordinary code. */
static void pt_alive(pt_fix *f)
{
	drb_err e = {0};
	json_t *out = NULL;

	assert_int_equal(drb_lua_eval(f->lt.L,
				      "{string.match('k=v', '(%w)='), (('a,b'):gsub(',', ';')), "
				      "string.find('hello world', 'o w')}",
				      "x", &out, &e),
			 0);
	assert_string_equal(lt_dump(out), "[\"k\",\"a;b\",5,7]");
	json_decref(out);
}

/* Pathological patterns, one C call each in the stock library (exponential or worse
 * backtracking, quadratic scans), end with DRB_ELIMIT within a second under the default
 * budget, whichever of the four functions runs them. */
static void test_pathological_stopped(void **state)
{
	pt_fix *f = *state;
	static const char *const runs[] = {
	    "return string.find(string.rep('a', 3000), '.-.-.-b')",
	    "local s = string.rep('a', 3000) return s:find('.-.-.-b')",
	    "return string.match(string.rep('a', 3000), '(.-)(.-)(.-)(.-)x')",
	    "return (string.rep('a', 3000)):match('(.-)(.-)(.-)(.-)x')",
	    "return string.gsub(string.rep('a', 3000), '.-.-.-b', 'x')",
	    "return string.gsub(string.rep('a', 3000), '(.-)(.-)(.-)(.-)x', '%1')",
	    "return string.gsub(string.rep('a', 3000), '.-.-.-b', function() return 'y' end)",
	    "for m in string.gmatch(string.rep('a', 3000), '.-.-.-b') do end",
	    "for a, b in string.rep('a', 3000):gmatch('(.-)(.-)(.-)(.-)x') do end",
	    "return string.find(string.rep('a', 3000), '.*.*.*b')",
	    "return string.find(string.rep('a', 3000), 'a*a*a*a*b')",
	    "return string.find(string.rep('(', 300000), '%b()')",
	    "return string.find(string.rep('a', 300000), '(.*)%1b')",
	    "return string.find(string.rep('a', 3000000), string.rep('a', 100000) .. 'b', 1, "
	    "true)",
	};
	struct pt_case c = {f, "string.find(string.rep('a', 3000), '.-.-.-b')", 1};

	assert_true(lt_stops_within_1s(pt_limit_attempt, &c));
	c.expr = 0;
	for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
		c.code = runs[i];
		assert_true(lt_stops_within_1s(pt_limit_attempt, &c));
	}
	pt_alive(f);
}

/* The script's own pcall around the pathological call catches the error, but the budget
 * stays spent: the entry still ends with DRB_ELIMIT, and so do further pattern calls. */
static void test_pcall_cannot_swallow(void **state)
{
	pt_fix *f = *state;
	static const char *const runs[] = {
	    "local ok, e = pcall(string.find, string.rep('a', 3000), '.-.-.-b') "
	    "return {ok, e}",
	    "local ok = pcall(function() return string.rep('a', 3000):find('.-.-.-b') end) "
	    "return 'escaped'",
	    "pcall(string.gsub, string.rep('a', 3000), '.-.-.-b', 'x') "
	    "return string.find('abc', 'b')",
	    "while true do pcall(string.match, string.rep('a', 3000), '(.-)(.-)(.-)(.-)x') "
	    "end",
	    "local it = string.gmatch(string.rep('a', 3000), '.-.-.-b') "
	    "for i = 1, 10 do pcall(it) end return 'escaped'",
	    "xpcall(string.find, function() return 'handled' end, string.rep('a', 3000), "
	    "'.-.-.-b') return 'escaped'",
	};
	struct pt_case c = {f, NULL, 0};

	for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
		c.code = runs[i];
		assert_true(lt_stops_within_1s(pt_limit_attempt, &c));
	}
	c.expr = 1;
	c.code = "select(2, pcall(string.find, string.rep('a', 3000), '.-.-.-b'))";
	assert_true(lt_stops_within_1s(pt_limit_attempt, &c));
	pt_alive(f);
}

/* The steps count against the same budget as instructions: many small pattern calls in one
 * entry add up (a loop whose VM instructions alone would stay within the budget), and the
 * budget is per entry, so the same calls spread over entries pass. */
static void test_steps_share_the_budget(void **state)
{
	pt_fix *f = *state;
	struct pt_case c = {f, NULL, 0};
	drb_err e = {0};
	json_t *out = NULL;

	/* about 10 VM instructions and about 2000 matcher steps per iteration: the loop's
	 * instructions alone stay far below the budget of a million */
	c.code = "local s = string.rep('a', 16) "
		 "for i = 1, 1000 do s:find('.-.-b') end return 'done'";
	assert_true(pt_limit_attempt(&c));
	for (int i = 0; i < 5; i++) {
		assert_int_equal(drb_lua_run(f->lt.L,
					     "local s = string.rep('a', 16) "
					     "for i = 1, 50 do s:find('.-.-b') end return 'done'",
					     "x", &out, &e),
				 0);
		assert_string_equal(lt_dump(out), "\"done\"");
		json_decref(out);
		out = NULL;
	}
	/* the same loop without the pattern work passes in one entry */
	assert_int_equal(drb_lua_run(f->lt.L,
				     "local s = string.rep('a', 16) "
				     "for i = 1, 1000 do s:len() end return 'done'",
				     "x", &out, &e),
			 0);
	json_decref(out);
	pt_alive(f);
}

/* A gmatch iterator kept across entries and stopped by the budget again and again keeps
 * reporting the budget, never "pattern too complex" (its recursion counter is reset). */
static void test_gmatch_iterator_survives(void **state)
{
	pt_fix *f = *state;
	struct pt_case c = {f, "it()", 0};
	drb_err e = {0};
	json_t *out = NULL;

	assert_int_equal(drb_lua_run(f->lt.L,
				     "it = string.gmatch(string.rep('a', 3000), "
				     "'(.-)(.-)(.-)(.-)(.-)(.-)(.-)(.-)x') "
				     "ok = string.gmatch('a=1, b=2', '(%w+)=(%w+)')",
				     "x", NULL, &e),
			 0);
	for (int i = 0; i < 60; i++)
		assert_true(pt_limit_attempt(&c));
	assert_int_equal(drb_lua_eval(f->lt.L, "{ok()}", "x", &out, &e), 0);
	assert_string_equal(lt_dump(out), "[\"a\",\"1\"]");
	json_decref(out);
	assert_int_equal(drb_lua_eval(f->lt.L, "{ok()}", "x", &out, &e), 0);
	assert_string_equal(lt_dump(out), "[\"b\",\"2\"]");
	json_decref(out);
	pt_alive(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_same_as_stock, pt_setup, pt_teardown),
	    cmocka_unit_test_setup_teardown(test_random_same_as_stock, pt_setup, pt_teardown),
	    cmocka_unit_test_setup_teardown(test_pathological_stopped, pt_setup, pt_teardown),
	    cmocka_unit_test_setup_teardown(test_pcall_cannot_swallow, pt_setup, pt_teardown),
	    cmocka_unit_test_setup_teardown(test_steps_share_the_budget, pt_setup_small,
					    pt_teardown),
	    cmocka_unit_test_setup_teardown(test_gmatch_iterator_survives, pt_setup_small,
					    pt_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
