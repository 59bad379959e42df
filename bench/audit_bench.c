/* Audit log throughput: records per second through drb_audit_append (one write(2) and one
 * fsync per record, chained SHA-256, optional HMAC), from one or several threads. Built and run
 * by bench/audit.sh against the static libraries of build-bench; not part of the test suite. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include <drbook/audit.h>
#include <drbook/error.h>
#include <drbook/util.h>

typedef struct worker {
	drb_audit *log;
	const json_t *data;
	long n;
	int rc;
	drb_err err;
} worker;

static void *append_loop(void *arg)
{
	worker *w = arg;

	for (long i = 0; i < w->n && w->rc == 0; i++)
		w->rc = drb_audit_append(w->log, "step.end", "scale[1]", w->data, &w->err);
	return NULL;
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
	char *end = NULL;
	long v = strtol(s, &end, 10);

	if (!*s || *end || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

/* usage: audit_bench PATH RECORDS THREADS hmac|nohmac
 * PATH must not exist (the log is created there and left for the caller to verify and remove).
 * Prints: records threads mode seconds records_per_s bytes. */
int main(int argc, char **argv)
{
	/* A step.end as the engine writes it for an ECS update: a typical record of ~300 bytes. */
	static const char sample[] =
	    "{\"status\":\"ok\",\"attempts\":1,\"duration_ms\":203,"
	    "\"result\":{\"desired\":2,\"running\":0},\"cluster\":\"prod-eu\","
	    "\"service\":\"payment\",\"region\":\"eu-west-1\"}";
	static const unsigned char key[32] = "drbook-bench-hmac-key-32-bytes!";
	drb_audit *log = NULL;
	json_t *data = NULL;
	worker *ws = NULL;
	pthread_t *th = NULL;
	drb_err err = {0};
	long records, threads, started = 0;
	int hmac, rc = 1;
	double t0, dt;

	if (argc != 5 || parse_long(argv[2], 1, 10000000, &records) ||
	    parse_long(argv[3], 1, 64, &threads) ||
	    (strcmp(argv[4], "hmac") && strcmp(argv[4], "nohmac"))) {
		fprintf(stderr, "usage: audit_bench PATH RECORDS THREADS(1-64) hmac|nohmac\n");
		return 2;
	}
	hmac = !strcmp(argv[4], "hmac");
	data = json_loads(sample, 0, NULL);
	ws = calloc((size_t)threads, sizeof(*ws));
	th = calloc((size_t)threads, sizeof(*th));
	if (!data || !ws || !th) {
		fprintf(stderr, "audit_bench: out of memory\n");
		goto out;
	}
	if (drb_audit_create(&log, argv[1], "bench-run", hmac ? key : NULL, hmac ? sizeof(key) : 0,
			     &err) != 0) {
		fprintf(stderr, "audit_bench: %s\n", err.msg);
		goto out;
	}
	t0 = drb_mono_now();
	for (long i = 0; i < threads; i++) {
		/* the remainder goes to the first threads so the total is exactly RECORDS */
		ws[i] = (worker){
		    .log = log, .data = data, .n = records / threads + (i < records % threads)};
		if (pthread_create(&th[i], NULL, append_loop, &ws[i]) != 0) {
			fprintf(stderr, "audit_bench: cannot start thread %ld\n", i);
			break;
		}
		started++;
	}
	for (long i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	dt = drb_mono_now() - t0;
	if (started < threads)
		goto out;
	for (long i = 0; i < threads; i++)
		if (ws[i].rc != 0) {
			fprintf(stderr, "audit_bench: append: %s\n", ws[i].err.msg);
			goto out;
		}
	if (drb_audit_seq(log) != records) {
		fprintf(stderr, "audit_bench: %ld records written, %ld expected\n",
			drb_audit_seq(log), records);
		goto out;
	}
	{
		long size = -1;
		FILE *f = fopen(argv[1], "rb");

		if (f && fseek(f, 0, SEEK_END) == 0)
			size = ftell(f);
		if (f)
			fclose(f);
		printf("%ld %ld %s %.3f %.0f %ld\n", records, threads, argv[4], dt, records / dt,
		       size);
	}
	rc = 0;
out:
	drb_audit_close(log);
	json_decref(data);
	free(ws);
	free(th);
	return rc;
}
