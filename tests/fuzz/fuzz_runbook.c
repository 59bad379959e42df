/* libFuzzer target for the runbook loader: any bytes in, diagnostics or a model out, never a
 * crash, a leak or unbounded work. Built and run by scripts/fuzz (part of scripts/test); by hand:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Itests/unit \
 *     tests/fuzz/fuzz_runbook.c src/runbook/[a-z]*.c src/core/[a-z]*.c \
 *     $(pkg-config --cflags --libs yaml-0.1 jansson lua5.4 libcurl) -lssl -lcrypto -lm \
 *     -o fuzz_runbook
 *   ./fuzz_runbook -max_total_time=120 -max_len=4096 tests/corpus/valid tests/corpus/invalid */
#include <stddef.h>
#include <stdint.h>

#include <drbook/runbook.h>

#include "runbook/actions.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	drb_runbook *rb = NULL;
	drb_diags d;
	int rc;

	drb_diags_init(&d, "fuzz.yaml");
	rc = drb_runbook_load_buffer(&rb, "fuzz.yaml", (const char *)data, size, &test_opts, &d);
	/* the contract: a model exactly when there is no diagnostic */
	if ((rc == 0) != (rb != NULL) || (rc == 0) != (d.n == 0))
		__builtin_trap();
	if (rb) {
		json_t *params = NULL;
		drb_err err;

		if (drb_runbook_bind_params(rb, NULL, 0, &params, &err) == 0)
			json_decref(params);
		for (size_t i = 0; i < rb->n_steps; i++)
			if (drb_runbook_step(rb, rb->steps[i].id) == NULL)
				__builtin_trap();
	}
	drb_runbook_free(rb);
	drb_diags_free(&d);
	return 0;
}
