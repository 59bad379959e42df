/* Differential libFuzzer target: validate accepts a ${ } template exactly when the run can
 * evaluate it. Each input is one template T. Validate: T goes (escaped, so the YAML string is
 * exactly T) into a runbook's with: and through the real loader. Run: the same T goes through
 * the sandbox's interpolation with the runbook's parameters and for_each variable bound; the
 * run's expressions are compiled as they reach the seam (drb_luai_expr_push is wrapped at link
 * time, -Wl,--wrap) to see whether Lua refused one as syntax. Traps when the run succeeds on a
 * template validate refused, or refuses as malformed (unterminated, empty, does not compile) a
 * template validate accepted. An evaluation error (nil in a string, a raised error) says
 * nothing about the form and is allowed on either side. Built and run by scripts/fuzz. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include <drbook/lua.h>
#include <drbook/luatext.h>
#include <drbook/runbook.h>

#include "lua/internal.h"
#include "runbook/actions.h"
#include "runbook/runbook_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int __real_drb_luai_expr_push(drb_lua *D, const char *expr, size_t len, const char *chunkname,
			      drb_err *err);
int __wrap_drb_luai_expr_push(drb_lua *D, const char *expr, size_t len, const char *chunkname,
			      drb_err *err);

static int run_syntax_error; /* the run handed Lua an expression it cannot compile */

static int compile_fn(lua_State *L)
{
	const drb_buf *b = lua_touserdata(L, 1);

	if (luaL_loadbufferx(L, b->p, b->len, "=run", "t") != LUA_OK)
		return lua_error(L);
	return 0;
}

/* Compiles what the run is about to evaluate in the run's own state, at the depth the run
 * compiles it (a C function under lua_pcall, as sb_run_chunk), and notes a refusal. */
int __wrap_drb_luai_expr_push(drb_lua *D, const char *expr, size_t len, const char *chunkname,
			      drb_err *err)
{
	drb_buf b;
	int status;

	drb_buf_init(&b, len + 64);
	if (drb_expr_wrap(&b, expr, len) == 0) {
		lua_pushcfunction(D->L, compile_fn);
		lua_pushlightuserdata(D->L, &b);
		status = lua_pcall(D->L, 1, 0, 0);
		if (status != LUA_OK && status != LUA_ERRMEM)
			run_syntax_error = 1;
		if (status != LUA_OK)
			lua_pop(D->L, 1);
	}
	drb_buf_free(&b);
	return __real_drb_luai_expr_push(D, expr, len, chunkname, err);
}

static const char HEAD[] = "version: 1\n"
			   "name: fuzz\n"
			   "params:\n"
			   "  a: { type: string, default: x }\n"
			   "  n: { type: int, default: 2 }\n"
			   "  l: { type: list, default: [p, q] }\n"
			   "steps:\n"
			   "  - id: s\n"
			   "    for_each: params.l\n"
			   "    as: svc\n"
			   "    action: http.request\n"
			   "    with:\n"
			   "      body: \"";

/* T as the body of a YAML double-quoted scalar: printable ASCII as is, everything else as an
 * escape, so the loaded string is exactly T (T is UTF-8 without NUL). */
static int yaml_quote(drb_buf *b, const unsigned char *s, size_t n)
{
	int rc = 0;

	for (size_t i = 0; i < n && rc == 0;) {
		unsigned c = s[i], cp, len;

		if (c == '"' || c == '\\') {
			rc = drb_buf_printf(b, "\\%c", c);
			i++;
			continue;
		}
		if (c >= 0x20 && c < 0x7f) {
			rc = drb_buf_append(b, s + i, 1);
			i++;
			continue;
		}
		if (c < 0x80) {
			rc = drb_buf_printf(b, "\\x%02x", c);
			i++;
			continue;
		}
		len = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : 4;
		cp = c & (len == 2 ? 0x1F : len == 3 ? 0x0F : 0x07);
		for (unsigned k = 1; k < len; k++)
			cp = (cp << 6) | (s[i + k] & 0x3F);
		rc = drb_buf_printf(b, "\\U%08x", cp);
		i += len;
	}
	return rc;
}

/* A diagnostic of validate about the form of the template (not about its references). */
static int form_diag(const char *msg)
{
	return strstr(msg, "in with.body does not compile") ||
	       strstr(msg, "unterminated '${' in with.body") ||
	       strstr(msg, "empty '${}' in with.body");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	drb_lua_opts o = {.mem_limit = 8u << 20, .instr_limit = 100000, .time_limit = 2.0};
	drb_lua *L = NULL;
	drb_runbook *rb = NULL;
	drb_diags d;
	drb_err err = {0};
	drb_buf doc;
	json_t *out = NULL, *tmpl = NULL, *params = NULL, *svc = NULL;
	int v_bad = 0, r_bad, rc;

	if (!drb_runbook_is_text(data, size) || size > 4096)
		return 0;
	drb_diags_init(&d, "fuzz.yaml");
	drb_buf_init(&doc, 1 << 20);
	if (drb_buf_puts(&doc, HEAD) || yaml_quote(&doc, data, size) || drb_buf_puts(&doc, "\"\n"))
		__builtin_trap();

	/* validate */
	rc = drb_runbook_load_buffer(&rb, "fuzz.yaml", doc.p, doc.len, &test_opts, &d);
	for (size_t i = 0; i < d.n; i++)
		v_bad |= form_diag(d.v[i].msg);
	if (rb) { /* the escaping is right: the loaded string is T itself */
		const json_t *body = json_object_get(rb->steps[0].with, "body");

		if (json_string_length(body) != size || memcmp(json_string_value(body), data, size))
			__builtin_trap();
	}
	(void)rc;

	/* run */
	tmpl = json_pack("{s:s%}", "body", (const char *)data, size);
	params = json_pack("{s:s, s:i, s:[s,s]}", "a", "x", "n", 2, "l", "p", "q");
	svc = json_string("p");
	if (!tmpl || !params || !svc || drb_lua_new(&L, &o, &err) ||
	    drb_lua_set_global(L, "params", params, &err) ||
	    drb_lua_set_global(L, "svc", svc, &err))
		goto out; /* out of memory: nothing to compare */
	run_syntax_error = 0;
	rc = drb_lua_interpolate(L, tmpl, "tmpl", &out, &err);
	r_bad = run_syntax_error || (rc && (!strncmp(err.msg, "tmpl: unterminated '${' in", 26) ||
					    !strncmp(err.msg, "tmpl: empty expression '${}'", 28)));
	if ((rc == 0 && v_bad) || (r_bad && !v_bad))
		__builtin_trap();
out:
	json_decref(out);
	json_decref(tmpl);
	json_decref(params);
	json_decref(svc);
	drb_lua_free(L);
	drb_runbook_free(rb);
	drb_diags_free(&d);
	drb_buf_free(&doc);
	return 0;
}
