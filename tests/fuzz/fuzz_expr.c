/* libFuzzer target for the Lua sandbox: any bytes as an expression, a script and a ${ }
 * template, evaluated under small instruction and memory limits, must end in a value or a
 * clean error, never a crash, an escape from the sandbox or unbounded work. Built and run by
 * scripts/fuzz. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <drbook/lua.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	drb_lua_opts o = {.mem_limit = 8u << 20, .instr_limit = 200000, .time_limit = 2.0};
	drb_lua *L = NULL;
	drb_err err = {0};
	json_t *out = NULL, *tmpl = NULL;
	char *text = malloc(size + 1);

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (drb_lua_new(&L, &o, &err) == 0) {
		if (drb_lua_eval(L, text, "fuzz", &out, &err) == 0)
			json_decref(out);
		out = NULL;
		if (drb_lua_run(L, text, "fuzz", &out, &err) == 0)
			json_decref(out);
		out = NULL;
		tmpl = json_pack("{s:s}", "v", text);
		if (tmpl && drb_lua_interpolate(L, tmpl, "fuzz", &out, &err) == 0)
			json_decref(out);
		json_decref(tmpl);
	}
	drb_lua_free(L);
	free(text);
	return 0;
}
