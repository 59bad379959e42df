/* tests/tools/cron_tool: the cron next-run computation of src/runbook/cron.c on stdin lines
 * "EPOCH<TAB>EXPRESSION"; answers one line each: the next run (seconds since the epoch,
 * strictly after EPOCH), "never", or "error OFFSET: MESSAGE". For the croniter differential
 * test (tests/e2e/test_cron_oracle.py), which finds it as $BUILD/tests/cron_tool. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <drbook/runbook.h>

int main(void)
{
	char line[4096];

	while (fgets(line, sizeof(line), stdin)) {
		char *tab = strchr(line, '\t'), *end = NULL, msg[256];
		size_t off = 0;
		long long after;
		int64_t next;
		drb_cron c;

		line[strcspn(line, "\n")] = '\0';
		after = tab ? strtoll(line, &end, 10) : 0;
		if (!tab || end != tab) {
			printf("error 0: expected EPOCH<TAB>EXPRESSION\n");
		} else if (drb_cron_parse(&c, tab + 1, &off, msg, sizeof(msg))) {
			printf("error %zu: %s\n", off, msg);
		} else if (drb_cron_next(&c, after, &next)) {
			printf("never\n");
		} else {
			printf("%lld\n", (long long)next);
		}
		fflush(stdout);
	}
	return 0;
}
