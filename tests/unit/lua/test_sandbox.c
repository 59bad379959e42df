/* Tests for src/lua/sandbox.c and src/lua/actions.c: what the sandbox refuses, the limits
 * (instructions, wall clock, memory) and that the state survives them, require, print, os,
 * actions registered from C and custom actions registered from Lua. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#include "lua/lua_test.h"

/* Runs a script that must fail with code; returns the message for further checks. */
static const char *fails(lt_fix *f, const char *script, int code)
{
	static drb_err e;
	json_t *out = NULL;
	int rc;

	drb_err_clear(&e);
	rc = drb_lua_run(f->L, script, "test.yaml:1:1", &out, &e);
	if (rc != code)
		fprintf(stderr, "script %s: rc %d (%s), want %d\n", script, rc, e.msg, code);
	assert_int_equal(rc, code);
	assert_null(out);
	return e.msg;
}

/* Runs a script that must succeed and return a value; returns its compact JSON text. */
static const char *runs(lt_fix *f, const char *script)
{
	drb_err e = {0};
	json_t *out = NULL;
	const char *s;
	int rc = drb_lua_run(f->L, script, "test.yaml:1:1", &out, &e);

	if (rc)
		fprintf(stderr, "script %s: %s\n", script, e.msg);
	assert_int_equal(rc, 0);
	s = lt_dump(out);
	json_decref(out);
	return s;
}

/* Only the allowed libraries exist; everything that reaches the host is absent. */
static void test_globals_trimmed(void **state)
{
	lt_fix *f = *state;

	assert_string_equal(runs(f, "return {io == nil, debug == nil, package == nil, "
				    "dofile == nil, loadfile == nil, string.dump == nil, "
				    "coroutine == nil, os.execute == nil, os.exit == nil, "
				    "os.getenv == nil, os.remove == nil, os.rename == nil, "
				    "os.tmpname == nil, type(string.format), type(table.concat), "
				    "type(math.floor), type(utf8.char)}"),
			    "[true,true,true,true,true,true,true,true,true,true,true,true,true,"
			    "\"function\",\"function\",\"function\",\"function\"]");
}

/* Each way out to the host fails with a script error and the process carries on. */
static void test_refusals(void **state)
{
	lt_fix *f = *state;
	static const char *const bad[] = {
	    "io.open('/etc/passwd')",
	    "os.execute('true')",
	    "os.exit(1)",
	    "os.getenv('HOME')",
	    "loadfile('/etc/passwd')",
	    "dofile('/etc/passwd')",
	    "string.dump(print)",
	    "package.loadlib('libc.so.6', 'system')",
	    "debug.getregistry()",
	    "debug.sethook()",
	    "collectgarbage('stop')",
	    "os.remove('/tmp/x')",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_non_null(strstr(fails(f, bad[i], DRB_ESCRIPT), "test.yaml:1:1"));
	assert_non_null(strstr(fails(f, "collectgarbage('stop')", DRB_ESCRIPT),
			       "collectgarbage option 'stop' is not available"));
	assert_string_equal(runs(f, "return collectgarbage('count') > 0"), "true");
}

/* load takes text only: a real binary chunk (made by a plain Lua state) is refused, text
 * chunks and the env argument still work. */
static void test_load_text_only(void **state)
{
	lt_fix *f = *state;
	lua_State *plain = luaL_newstate();
	lua_State *S = drb_lua_state(f->L);
	const char *bin;
	size_t n;

	assert_non_null(plain);
	luaL_openlibs(plain);
	assert_int_equal(luaL_dostring(plain, "return string.dump(function() return 42 end)"), 0);
	bin = lua_tolstring(plain, -1, &n);
	assert_true(n > 4 && memcmp(bin, "\033Lua", 4) == 0);
	lua_pushlstring(S, bin, n);
	lua_setglobal(S, "bin");
	lua_close(plain);

	assert_string_equal(runs(f, "local fn, e = load(bin) return {fn == nil, e}"),
			    "[true,\"attempt to load a binary chunk (mode is 't')\"]");
	/* asking for binary mode does not help */
	assert_string_equal(runs(f, "return load(bin, 'x', 'b') == nil"), "true");
	assert_string_equal(runs(f, "return load('return 1 + 1')()"), "2");
	assert_string_equal(runs(f, "return load('return x', 'c', 't', {x = 5})()"), "5");
}

/* require refuses the host libraries, names that could walk the file system and folders
 * other than lib_dir and runbook_dir. */
static void test_require_refusals(void **state)
{
	lt_fix *f = *state;
	drb_err e = {0};

	assert_non_null(strstr(fails(f, "require 'os'", DRB_ESCRIPT),
			       "module 'os' is not available in the sandbox"));
	assert_non_null(strstr(fails(f, "require 'io'", DRB_ESCRIPT),
			       "module 'io' is not available in the sandbox"));
	assert_non_null(strstr(fails(f, "require 'debug'", DRB_ESCRIPT),
			       "module 'debug' is not available in the sandbox"));
	assert_non_null(strstr(fails(f, "require '../x'", DRB_ESCRIPT), "is not allowed"));
	assert_non_null(strstr(fails(f, "require 'a/b'", DRB_ESCRIPT), "is not allowed"));
	assert_non_null(strstr(fails(f, "require 'a..b'", DRB_ESCRIPT), "is not allowed"));
	assert_non_null(strstr(fails(f, "require '/etc/passwd'", DRB_ESCRIPT), "is not allowed"));
	/* a module that exists, but outside both folders */
	assert_int_equal(lt_write(f->outside, "evil.lua", "return 'escaped'"), 0);
	assert_int_equal(lt_write(f->root, "evil.lua", "return 'escaped'"), 0);
	assert_non_null(strstr(fails(f, "require 'evil'", DRB_ESCRIPT), "module 'evil' not found"));
	assert_int_equal(drb_lua_require(f->L, "outside.evil", &e), DRB_ESCRIPT);
	assert_non_null(strstr(e.msg, "not found"));
	assert_int_equal(drb_lua_require(f->L, "os", &e), DRB_ESCRIPT);
}

/* Modules load from lib_dir first, then runbook_dir; dots are folders; results are cached;
 * errors name the file; a cycle is an error. */
static void test_require_modules(void **state)
{
	lt_fix *f = *state;
	drb_err e = {0};

	assert_int_equal(lt_write(f->lib, "drbook/util.lua",
				  "loads = (loads or 0) + 1\n"
				  "return { twice = function(x) return 2 * x end }\n"),
			 0);
	assert_int_equal(lt_write(f->rb, "local_mod.lua", "return 'runbook ' .. ..."), 0);
	assert_int_equal(lt_write(f->rb, "broken.lua", "local x = \n\n = 1\n"), 0);
	assert_int_equal(lt_write(f->rb, "cyc_a.lua", "return require 'cyc_b'"), 0);
	assert_int_equal(lt_write(f->rb, "cyc_b.lua", "return require 'cyc_a'"), 0);
	assert_int_equal(lt_write(f->rb, "fails.lua", "error('module exploded')"), 0);

	assert_string_equal(runs(f, "return require('drbook.util').twice(21)"), "42");
	assert_int_equal(drb_lua_require(f->L, "drbook.util", &e), 0);
	assert_string_equal(runs(f, "require 'drbook.util' return loads"), "1");
	assert_string_equal(runs(f, "return require 'local_mod'"), "\"runbook local_mod\"");
	assert_string_equal(runs(f, "return require('string') == string"), "true");
	assert_non_null(strstr(fails(f, "require 'broken'", DRB_ESCRIPT), "broken.lua:3:"));
	assert_non_null(strstr(fails(f, "require 'cyc_a'", DRB_ESCRIPT), "circular require"));
	assert_non_null(strstr(fails(f, "require 'fails'", DRB_ESCRIPT), "module exploded"));
	/* a failed module is not cached as loaded */
	assert_non_null(strstr(fails(f, "require 'fails'", DRB_ESCRIPT), "module exploded"));
}

struct loop_case {
	lt_fix *f;
	const char *code;
	int expr; /* evaluate as an expression rather than run as a script */
};

static int loop_attempt(void *arg)
{
	struct loop_case *c = arg;
	drb_err e = {0};
	json_t *out = NULL;
	int rc = c->expr ? drb_lua_eval(c->f->L, c->code, "rb.yaml:4:2", &out, &e)
			 : drb_lua_run(c->f->L, c->code, "rb.yaml:4:2", &out, &e);

	json_decref(out);
	if (rc != DRB_ELIMIT || !strstr(e.msg, "rb.yaml:4:2") ||
	    !strstr(e.msg, "instruction limit exceeded")) {
		fprintf(stderr, "%s: rc %d: %s\n", c->code, rc, e.msg);
		return 0;
	}
	return out == NULL;
}

/* An endless loop ends with DRB_ELIMIT within a second (default budget), also when the
 * script tries to catch the error with pcall; the state works afterwards. */
static void test_instruction_limit(void **state)
{
	lt_fix *f = *state;
	static const char *const loops[] = {
	    "while true do end",
	    "pcall(function() while true do end end) while true do end",
	    "while true do pcall(function() while true do end end) end",
	    "local ok = pcall(function() while true do end end) return 'escaped'",
	    "while true do xpcall(function() while true do end end, function() return 1 end) end",
	};
	struct loop_case c = {f, "(function() while true do end end)()", 1};
	drb_err e = {0};
	json_t *out = NULL;

	assert_true(lt_stops_within_1s(loop_attempt, &c));
	c.code = "(function() pcall(function() while true do end end) while true do end end)()";
	assert_true(lt_stops_within_1s(loop_attempt, &c));
	c.expr = 0;
	for (size_t i = 0; i < sizeof(loops) / sizeof(loops[0]); i++) {
		c.code = loops[i];
		assert_true(lt_stops_within_1s(loop_attempt, &c));
	}
	/* an endless tail call costs more per instruction: only the outcome is checked */
	assert_non_null(strstr(fails(f, "local function t() return t() end return t()", DRB_ELIMIT),
			       "instruction limit exceeded"));
	assert_int_equal(drb_lua_eval(f->L, "1 + 1", "x", &out, &e), 0);
	assert_string_equal(lt_dump(out), "2");
	json_decref(out);
}

static int setup_budget(void **state)
{
	lt_fix *f = calloc(1, sizeof(*f));

	*state = f;
	return f ? lt_open(f, 0, 200000, 0) : -1;
}

static int setup_clock(void **state)
{
	lt_fix *f = calloc(1, sizeof(*f));

	*state = f;
	return f ? lt_open(f, 0, 1000000000000000LL, 0.2) : -1;
}

static int setup_small(void **state)
{
	lt_fix *f = calloc(1, sizeof(*f));

	*state = f;
	return f ? lt_open(f, 4 * 1024 * 1024, 0, 0) : -1;
}

/* The budget is per entry: many small entries together may exceed it. */
static void test_budget_per_entry(void **state)
{
	lt_fix *f = *state;

	for (int i = 0; i < 10; i++)
		assert_string_equal(
		    runs(f, "local n = 0 for i = 1, 30000 do n = n + 1 end return n"), "30000");
	assert_non_null(strstr(fails(f, "for i = 1, 1e9 do end", DRB_ELIMIT), "instruction"));
}

/* The wall-clock guard stops a loop even with an enormous instruction budget. */
static void test_time_limit(void **state)
{
	lt_fix *f = *state;
	double t0 = drb_mono_now();

	assert_non_null(strstr(fails(f, "while true do end", DRB_ELIMIT), "time limit exceeded"));
	assert_true(drb_mono_now() - t0 < 1.0);
	assert_string_equal(runs(f, "return 'alive'"), "\"alive\"");
}

/* A memory bomb ends with DRB_ELIMIT and a clear message; the state stays usable. */
static void test_memory_limit(void **state)
{
	lt_fix *f = *state;

	assert_non_null(strstr(fails(f, "return string.rep('x', 1e9)", DRB_ELIMIT),
			       "memory limit of 64 MiB exceeded"));
	assert_string_equal(runs(f, "return #string.rep('x', 1000)"), "1000");
	/* caught and raised again: still the cap */
	assert_non_null(
	    strstr(fails(f, "local ok, e = pcall(string.rep, 'x', 1e9) error(e)", DRB_ELIMIT),
		   "memory limit"));
}

/* Growth in small steps against a small cap; afterwards the memory is given back. */
static void test_memory_growth(void **state)
{
	lt_fix *f = *state;

	assert_non_null(strstr(fails(f,
				     "local t = {} for i = 1, 1e7 do "
				     "t[i] = 'value number ' .. i end",
				     DRB_ELIMIT),
			       "memory limit of 4 MiB exceeded"));
	assert_string_equal(runs(f, "collectgarbage() return collectgarbage('count') < 1024"),
			    "true");
	assert_string_equal(runs(f, "return ('ok'):upper()"), "\"OK\"");
}

/* A cap too small for the libraries themselves fails drb_lua_new cleanly. */
static void test_memory_cap_at_setup(void **state)
{
	drb_lua_opts o;
	drb_lua *L = NULL;
	drb_err e = {0};

	memset(&o, 0, sizeof(o));
	o.mem_limit = 8 * 1024; /* the state with its libraries needs about 16 KiB */
	assert_int_equal(drb_lua_new(&L, &o, &e), DRB_ELIMIT);
	assert_null(L);
	assert_non_null(strstr(e.msg, "memory limit of 8192 bytes exceeded"));
}

/* Runaway recursion, in Lua and through C (pcall), ends as an error, not a crash. */
static void test_recursion(void **state)
{
	lt_fix *f = *state;
	drb_err e = {0};
	json_t *out = NULL;
	int rc;

	rc = drb_lua_run(f->L, "local function r() return 1 + r() end return r()", "rec", &out, &e);
	assert_true(rc == DRB_ESCRIPT || rc == DRB_ELIMIT);
	assert_non_null(strstr(e.msg, "rec"));
	rc =
	    drb_lua_run(f->L, "local function r() pcall(r) end r() return 'done'", "rec", &out, &e);
	assert_true(rc == 0 || rc == DRB_ESCRIPT || rc == DRB_ELIMIT);
	json_decref(out);
	assert_string_equal(runs(f, "return 'alive'"), "\"alive\"");
}

/* Error messages carry the chunk name given by the caller. */
static void test_chunkname(void **state)
{
	lt_fix *f = *state;
	drb_err e = {0};
	json_t *out = NULL;
	int b = 0;

	assert_int_equal(drb_lua_run(f->L, "local x\n return x.y", "region.yaml:12:5", &out, &e),
			 DRB_ESCRIPT);
	assert_non_null(strstr(e.msg, "region.yaml:12:5:2:"));
	assert_non_null(strstr(e.msg, "attempt to index"));
	assert_null(strstr(e.msg, "stack traceback")); /* only in the traceback accessor */
	assert_non_null(strstr(drb_lua_last_traceback(f->L), "stack traceback"));
	/* a long name keeps its tail: the line and column */
	assert_int_equal(drb_lua_run(f->L, "error('boom')",
				     "/very/long/path/to/the/runbooks/folder/of/this/team/"
				     "region-failover.yaml:90:7 (script)",
				     &out, &e),
			 DRB_ESCRIPT);
	assert_non_null(strstr(e.msg, "region-failover.yaml:90:7 (script):1: boom"));
	assert_int_equal(drb_lua_eval(f->L, "1 +", "rb.yaml:3:4", &out, &e), DRB_ESCRIPT);
	assert_non_null(strstr(e.msg, "rb.yaml:3:4"));
	assert_int_equal(drb_lua_eval_bool(f->L, "error({})", "rb.yaml:9:9", &b, &e), DRB_ESCRIPT);
	assert_non_null(strstr(e.msg, "error object is a table value"));
}

/* print and drbook.log go to the callback, one tab-separated line per call. */
static void test_print(void **state)
{
	lt_fix *f = *state;

	runs(f, "print('a', 1, true, nil, 2.5) drbook.log('via log') return 0");
	assert_int_equal(f->nprinted, 2);
	assert_string_equal(f->printed[0], "a\t1\ttrue\tnil\t2.5");
	assert_string_equal(f->printed[1], "via log");
}

/* os keeps time, clock and date, all in UTC whatever the host's zone. */
static void test_os_utc(void **state)
{
	lt_fix *f = *state;

	setenv("TZ", "America/New_York", 1);
	tzset();
	assert_string_equal(runs(f,
				 "return {os.date('%H:%M', 0), os.date('!%H', 0), "
				 "os.date('*t', 0).hour, os.time{year=1970, month=1, day=1, "
				 "hour=0}, os.time{year=2026, month=11, day=25, hour=16, min=39, "
				 "sec=6}, type(os.clock()), os.difftime(10, 4), "
				 "math.type(os.time())}"),
			    "[\"00:00\",\"00\",0,0,1795624746,\"number\",6.0,\"integer\"]");
	unsetenv("TZ");
	tzset();
	assert_non_null(strstr(fails(f, "return os.time{year=2026}", DRB_ESCRIPT), "month"));
}

/* Globals the engine sets are visible to expressions; eval_bool wants a boolean. */
static void test_globals_and_bool(void **state)
{
	lt_fix *f = *state;
	drb_err e = {0};
	json_t *p = lt_json("{\"replica\":\"prod-db-eu\",\"max_lag\":60.0,\"desired\":2}");
	json_t *r = lt_json("{\"status\":\"available\",\"replica_source\":null}");
	json_t *lag = lt_json("{\"replay_lag_s\":12.5}");
	int b = -1;

	assert_int_equal(drb_lua_set_global(f->L, "params", p, &e), 0);
	assert_int_equal(drb_lua_set_step(f->L, "promote", "ok", r, &e), 0);
	assert_int_equal(drb_lua_set_step(f->L, "lag", NULL, lag, &e), 0);
	assert_int_equal(drb_lua_set_result(f->L, lag, &e), 0);
	assert_int_equal(
	    drb_lua_eval_bool(f->L,
			      "steps.promote.result.status == 'available' and "
			      "steps.promote.result.replica_source == nil and "
			      "steps.promote.status == 'ok' and steps.lag.status == nil",
			      "t", &b, &e),
	    0);
	assert_int_equal(b, 1);
	assert_int_equal(
	    drb_lua_eval_bool(f->L, "result.replay_lag_s <= params.max_lag", "t", &b, &e), 0);
	assert_int_equal(b, 1);
	assert_int_equal(drb_lua_eval_bool(f->L,
					   "math.type(params.max_lag) == 'float' and "
					   "math.type(params.desired) == 'integer'",
					   "t", &b, &e),
			 0);
	assert_int_equal(b, 1);
	assert_int_equal(drb_lua_eval_bool(f->L, "nil", "t", &b, &e), 0);
	assert_int_equal(b, 0);
	assert_int_equal(drb_lua_eval_bool(f->L, "params.desired", "rb.yaml:7:3", &b, &e),
			 DRB_ESCRIPT);
	assert_non_null(strstr(e.msg, "must be a boolean, got number"));
	assert_int_equal(drb_lua_set_result(f->L, NULL, &e), 0);
	assert_int_equal(drb_lua_eval_bool(f->L, "result == nil", "t", &b, &e), 0);
	assert_int_equal(b, 1);
	json_decref(p);
	json_decref(r);
	json_decref(lag);
}

/* ---- actions registered from C ---- */

struct fake_engine {
	char last_args[1024];
	int calls;
};

static int fake_invoke(void *ud, const drb_action *a, const json_t *args, json_t **result,
		       drb_err *err)
{
	struct fake_engine *fe = ud;
	const char *id = json_string_value(json_object_get(args, "id"));

	fe->calls++;
	snprintf(fe->last_args, sizeof(fe->last_args), "%s", lt_dump(args));
	if (id && strcmp(id, "fail") == 0)
		return drb_err_set(err, DRB_ETRANSIENT, "Throttling: Rate exceeded");
	*result =
	    json_pack("{s:s, s:s, s:O}", "action", a->name, "status", "available", "args", args);
	return 0;
}

static const drb_action act_describe = {.name = "aws.rds.describe_db_instance", .mode = DRB_ACT_RO};
static const char *const pg_positional[] = {"connection", "sql", "args...", NULL};
static const drb_action act_query = {
    .name = "pg.query", .mode = DRB_ACT_RO, .positional = pg_positional};
static const char *const exec_positional[] = {"argv", NULL};
static const drb_action act_exec = {
    .name = "exec", .mode = DRB_ACT_STEP, .positional = exec_positional};

static void register_all(lt_fix *f, struct fake_engine *fe)
{
	drb_err e = {0};

	assert_int_equal(drb_lua_register_action(f->L, &act_describe, fake_invoke, fe, &e), 0);
	assert_int_equal(drb_lua_register_action(f->L, &act_query, fake_invoke, fe, &e), 0);
	assert_int_equal(drb_lua_register_action(f->L, &act_exec, fake_invoke, fe, &e), 0);
}

/* A table argument is the arguments object; the result comes back as a table. */
static void test_action_table_args(void **state)
{
	lt_fix *f = *state;
	struct fake_engine fe = {{0}, 0};

	register_all(f, &fe);
	assert_string_equal(runs(f, "local r = aws.rds.describe_db_instance{id = 'db1', "
				    "region = 'eu-west-1'} return {r.status, r.action, r.args.id}"),
			    "[\"available\",\"aws.rds.describe_db_instance\",\"db1\"]");
	assert_string_equal(fe.last_args, "{\"id\":\"db1\",\"region\":\"eu-west-1\"}");
	runs(f, "return aws.rds.describe_db_instance()");
	assert_string_equal(fe.last_args, "{}");
	assert_int_equal(fe.calls, 2);
}

/* Positional arguments follow the action's names; "args..." collects the rest. */
static void test_action_positional(void **state)
{
	lt_fix *f = *state;
	struct fake_engine fe = {{0}, 0};

	register_all(f, &fe);
	runs(f, "return pg.query('dr_db', 'select $1, $2', 7, 'x')");
	assert_string_equal(
	    fe.last_args,
	    "{\"args\":[7,\"x\"],\"connection\":\"dr_db\",\"sql\":\"select $1, $2\"}");
	runs(f, "return pg.query('dr_db', 'select 1')");
	assert_string_equal(fe.last_args, "{\"connection\":\"dr_db\",\"sql\":\"select 1\"}");
	runs(f, "return pg.query{connection = 'c', sql = 's'}");
	assert_string_equal(fe.last_args, "{\"connection\":\"c\",\"sql\":\"s\"}");
	runs(f, "return exec{'ls', '-l'}");
	assert_string_equal(fe.last_args, "{\"argv\":[\"ls\",\"-l\"]}");
	/* refusals: too many, a function, named-only action called positionally; bad
	 * arguments keep their code (invalid) when the script does not catch them */
	assert_non_null(strstr(fails(f, "exec({'ls'}, 'extra')", DRB_EINVAL), "too many"));
	assert_non_null(strstr(fails(f, "pg.query('c', print)", DRB_EINVAL),
			       "a function value cannot be converted"));
	assert_non_null(strstr(fails(f, "aws.rds.describe_db_instance('db1')", DRB_EINVAL),
			       "aws.rds.describe_db_instance: expects one table"));
}

/* An error from invoke is a Lua error a script can catch; uncaught, it keeps its code. */
static void test_action_error(void **state)
{
	lt_fix *f = *state;
	struct fake_engine fe = {{0}, 0};
	drb_err e = {0};
	json_t *out = NULL;

	register_all(f, &fe);
	assert_string_equal(runs(f, "local ok, e = pcall(aws.rds.describe_db_instance, "
				    "{id = 'fail'}) return {ok, e}"),
			    "[false,\"aws.rds.describe_db_instance: Throttling: Rate exceeded\"]");
	assert_int_equal(
	    drb_lua_run(f->L, "aws.rds.describe_db_instance{id = 'fail'}", "s", &out, &e),
	    DRB_ETRANSIENT);
	assert_string_equal(e.msg, "aws.rds.describe_db_instance: Throttling: Rate exceeded");
	/* caught and replaced by another error: a plain script error */
	assert_int_equal(drb_lua_run(f->L,
				     "pcall(aws.rds.describe_db_instance, {id = 'fail'}) "
				     "error('mine')",
				     "s", &out, &e),
			 DRB_ESCRIPT);
}

/* Registering below something that is not a table fails cleanly. */
static void test_action_register_conflict(void **state)
{
	lt_fix *f = *state;
	struct fake_engine fe = {{0}, 0};
	drb_err e = {0};
	static const drb_action bad = {.name = "print.x", .mode = DRB_ACT_RO};
	static const drb_action badname = {.name = "a..b", .mode = DRB_ACT_RO};

	assert_int_equal(drb_lua_register_action(f->L, &bad, fake_invoke, &fe, &e), DRB_ESCRIPT);
	assert_non_null(strstr(e.msg, "'print' is a function"));
	assert_int_equal(drb_lua_register_action(f->L, &badname, fake_invoke, &fe, &e), DRB_EINVAL);
}

/* Custom actions: a module in runbook_dir registers them with drbook.action. */
static void test_custom_actions(void **state)
{
	lt_fix *f = *state;
	drb_err e = {0};
	json_t *args = lt_json("{\"n\":21,\"name\":\"orders\"}");
	json_t *res = NULL;

	assert_int_equal(
	    lt_write(f->rb, "checks.lua",
		     "drbook.action('check_rows', {mode = 'ro'}, function(args)\n"
		     "  return {n = args.n * 2, name = args.name}\n"
		     "end)\n"
		     "drbook.action('fix_rows', {mode = 'mut'}, function(args)\n"
		     "  error('cannot fix ' .. args.name)\n"
		     "end)\n"
		     "drbook.action('spin', {mode = 'ro'}, function() while true do end end)\n"),
	    0);
	assert_int_equal(
	    lt_write(f->rb, "badmode.lua", "drbook.action('x', {mode = 'rw'}, function() end)"), 0);
	assert_int_equal(drb_lua_require(f->L, "checks", &e), 0);
	assert_int_equal(drb_lua_custom_mode(f->L, "check_rows"), 0);
	assert_int_equal(drb_lua_custom_mode(f->L, "fix_rows"), 1);
	assert_int_equal(drb_lua_custom_mode(f->L, "nope"), -1);
	assert_int_equal(drb_lua_call_custom(f->L, "check_rows", args, &res, &e), 0);
	assert_string_equal(lt_dump(res), "{\"n\":42,\"name\":\"orders\"}");
	json_decref(res);
	assert_int_equal(drb_lua_call_custom(f->L, "fix_rows", args, &res, &e), DRB_ESCRIPT);
	assert_non_null(strstr(e.msg, "checks.lua:5: cannot fix orders"));
	assert_null(res);
	assert_int_equal(drb_lua_call_custom(f->L, "spin", args, &res, &e), DRB_ELIMIT);
	assert_int_equal(drb_lua_call_custom(f->L, "nope", args, &res, &e), DRB_ENOTFOUND);
	assert_int_equal(drb_lua_require(f->L, "badmode", &e), DRB_ESCRIPT);
	assert_non_null(strstr(e.msg, "mode must be"));
	assert_non_null(
	    strstr(fails(f, "drbook.action('check_rows', {mode = 'ro'}, print)", DRB_ESCRIPT),
		   "already registered"));
	json_decref(args);
}

/* The lock is recursive. */
static void test_lock(void **state)
{
	lt_fix *f = *state;

	drb_lua_lock(f->L);
	drb_lua_lock(f->L);
	assert_string_equal(runs(f, "return 1"), "1");
	drb_lua_unlock(f->L);
	drb_lua_unlock(f->L);
	drb_lua_free(NULL);
}

struct counter_job {
	drb_lua *L;
	int failures;
};

static void *count_up(void *arg)
{
	struct counter_job *j = arg;

	for (int i = 0; i < 200; i++) {
		drb_err e = {0};
		json_t *out = NULL;

		if (drb_lua_run(j->L, "counter = (counter or 0) + 1", "thread", &out, &e) != 0)
			j->failures++;
		json_decref(out);
	}
	return NULL;
}

/* Entries from two threads are serialised by the sandbox's own lock. */
static void test_threads(void **state)
{
	lt_fix *f = *state;
	struct counter_job j = {f->L, 0};
	pthread_t t1, t2;

	assert_int_equal(pthread_create(&t1, NULL, count_up, &j), 0);
	assert_int_equal(pthread_create(&t2, NULL, count_up, &j), 0);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	assert_int_equal(j.failures, 0);
	assert_string_equal(runs(f, "return counter"), "400");
}

/* Finalizers run with hooks off (no budget): a script cannot create one. Were it possible,
 * collectgarbage() would hang here and the test would time out. */
static void test_no_finalizers(void **state)
{
	lt_fix *f = *state;

	assert_non_null(strstr(fails(f,
				     "keep = setmetatable({}, {__gc = function() while true do "
				     "end end}) keep = nil collectgarbage()",
				     DRB_ESCRIPT),
			       "__gc metamethods are not available"));
	/* added later, __gc has no effect in Lua 5.4 */
	assert_string_equal(
	    runs(f, "local mt = {} local t = setmetatable({}, mt) "
		    "mt.__gc = function() while true do end end t = nil "
		    "collectgarbage() collectgarbage() return getmetatable(setmetatable("
		    "{}, {__index = {}})) ~= nil"),
	    "true");
}

/* Hostile code where Lua runs error handlers with hooks off: xpcall's message handler is
 * called after the protected call returned, under the budget; an error object's __tostring
 * is never called by the sandbox's own handler. Each stops within a second. */
static void test_hostile_handlers(void **state)
{
	lt_fix *f = *state;
	static const char *const loops[] = {
	    "xpcall(function() while true do end end, function() while true do end end)",
	    "return xpcall(function() while true do end end, function() while true do end end)",
	    "xpcall(function() while true do end end, function() xpcall(function() while true "
	    "do end end, function() while true do end end) end)",
	    "while true do xpcall(error, function() while true do end end) end",
	    "local ok = pcall(xpcall, function() while true do end end, function() while true "
	    "do end end) return ok",
	    "return pcall(function() while true do end end)",
	};
	struct loop_case c = {f, NULL, 0};

	for (size_t i = 0; i < sizeof(loops) / sizeof(loops[0]); i++) {
		c.code = loops[i];
		assert_true(lt_stops_within_1s(loop_attempt, &c));
	}
	c.expr = 1;
	c.code = "xpcall(function() while true do end end, function() while true do end end)";
	assert_true(lt_stops_within_1s(loop_attempt, &c));
	/* an error object whose __tostring loops: the message names its type instead */
	assert_non_null(strstr(fails(f,
				     "error(setmetatable({}, {__tostring = function() while true "
				     "do end end}))",
				     DRB_ESCRIPT),
			       "error object is a table value"));
	/* xpcall keeps its meaning for ordinary code */
	assert_string_equal(runs(f, "return {xpcall(function(a, b) return a + b, 'x' end, "
				    "print, 1, 2)}"),
			    "[true,3,\"x\"]");
	assert_string_equal(runs(f, "local ok, m = xpcall(function() error('bad', 0) end, "
				    "function(e) return 'handled ' .. e end) return {ok, m}"),
			    "[false,\"handled bad\"]");
	assert_string_equal(runs(f, "local ok, m = xpcall(function() error('bad', 0) end, "
				    "function(e) error('worse', 0) end) return {ok, m}"),
			    "[false,\"worse\"]");
	assert_string_equal(runs(f, "return 'alive'"), "\"alive\"");
}

static volatile int stop_flag;
static volatile double stop_deadline;

static int setup_stoppable(void **state)
{
	lt_fix *f = calloc(1, sizeof(*f));

	*state = f;
	if (!f)
		return -1;
	stop_flag = 0;
	stop_deadline = 0;
	f->cancel = &stop_flag;
	f->stop_at = &stop_deadline;
	return lt_open(f, 0, 1000000000000000LL, 1000);
}

static void *raise_flag_later(void *arg)
{
	struct timespec ts = {0, 300 * 1000 * 1000};

	(void)arg;
	nanosleep(&ts, NULL);
	stop_flag = 1;
	return NULL;
}

/* Set from another thread (as the signal handler does), the stop flag ends a loop that no
 * budget would end soon, also inside a message handler; the run's deadline likewise. */
static void test_stopped_from_outside(void **state)
{
	lt_fix *f = *state;
	pthread_t t;
	double t0 = drb_mono_now();
	const char *m;

	assert_int_equal(pthread_create(&t, NULL, raise_flag_later, NULL), 0);
	m = fails(f, "xpcall(function() while true do end end, function() while true do end end)",
		  DRB_EINTERRUPTED);
	pthread_join(t, NULL);
	assert_non_null(strstr(m, "interrupted"));
	assert_true(drb_mono_now() - t0 < 2.0);
	stop_flag = 0;
	stop_deadline = drb_mono_now() + 0.3;
	t0 = drb_mono_now();
	m = fails(f, "while true do pcall(function() while true do end end) end", DRB_ETIMEOUT);
	assert_non_null(strstr(m, "deadline"));
	assert_true(drb_mono_now() - t0 < 2.0);
	stop_deadline = 0;
	assert_string_equal(runs(f, "return 'alive'"), "\"alive\"");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_globals_trimmed, lt_setup, lt_teardown),
	    cmocka_unit_test_setup_teardown(test_refusals, lt_setup, lt_teardown),
	    cmocka_unit_test_setup_teardown(test_load_text_only, lt_setup, lt_teardown),
	    cmocka_unit_test_setup_teardown(test_require_refusals, lt_setup, lt_teardown),
	    cmocka_unit_test_setup_teardown(test_require_modules, lt_setup, lt_teardown),
	    cmocka_unit_test_setup_teardown(test_instruction_limit, lt_setup, lt_teardown),
	    cmocka_unit_test_setup_teardown(test_budget_per_entry, setup_budget, lt_teardown),
	    cmocka_unit_test_setup_teardown(test_time_limit, setup_clock, lt_teardown),
	    cmocka_unit_test_setup_teardown(test_memory_limit, lt_setup, lt_teardown),
	    cmocka_unit_test_setup_teardown(test_memory_growth, setup_small, lt_teardown),
	    cmocka_unit_test(test_memory_cap_at_setup),
	    cmocka_unit_test_setup_teardown(test_recursion, lt_setup, lt_teardown),
	    cmocka_unit_test_setup_teardown(test_chunkname, lt_setup, lt_teardown),
	    cmocka_unit_test_setup_teardown(test_print, lt_setup, lt_teardown),
	    cmocka_unit_test_setup_teardown(test_os_utc, lt_setup, lt_teardown),
	    cmocka_unit_test_setup_teardown(test_globals_and_bool, lt_setup, lt_teardown),
	    cmocka_unit_test_setup_teardown(test_action_table_args, lt_setup, lt_teardown),
	    cmocka_unit_test_setup_teardown(test_action_positional, lt_setup, lt_teardown),
	    cmocka_unit_test_setup_teardown(test_action_error, lt_setup, lt_teardown),
	    cmocka_unit_test_setup_teardown(test_action_register_conflict, lt_setup, lt_teardown),
	    cmocka_unit_test_setup_teardown(test_custom_actions, lt_setup, lt_teardown),
	    cmocka_unit_test_setup_teardown(test_lock, lt_setup, lt_teardown),
	    cmocka_unit_test_setup_teardown(test_threads, lt_setup, lt_teardown),
	    cmocka_unit_test_setup_teardown(test_no_finalizers, lt_setup, lt_teardown),
	    cmocka_unit_test_setup_teardown(test_hostile_handlers, lt_setup, lt_teardown),
	    cmocka_unit_test_setup_teardown(test_stopped_from_outside, setup_stoppable,
					    lt_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
