/* Live progress and the run summary. On a terminal a ticker thread redraws one line per
 * running step (spinner, elapsed time, attempt) under the lines of finished steps; elsewhere
 * each event is one plain line; --json prints each event as one JSON object per line. */
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>
#include <fcntl.h>

#include <drbook/report.h>
#include <drbook/util.h>

#include "progress.h"

#define MAX_LIVE 64

typedef struct live {
	char uid[128];
	char action[96];
	double t0;
	int attempt;
} live;

struct drb_progress {
	drb_out_mode mode;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* wakes the ticker */
	pthread_t ticker;
	int ticker_on, stop, paused;
	live run[MAX_LIVE];
	size_t n_run;
	int drawn; /* live lines currently on screen */
	unsigned spin;
};

static const char *const spinner[] = {"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"};

/* Called with mu held. */
static void clear_live(drb_progress *p)
{
	if (p->drawn > 0)
		fprintf(stdout, "\x1b[%dA\x1b[J", p->drawn);
	p->drawn = 0;
}

static void draw_live(drb_progress *p)
{
	double now = drb_mono_now();

	if (p->paused)
		return;
	for (size_t i = 0; i < p->n_run; i++) {
		char el[32];

		drb_duration_format(floor((now - p->run[i].t0) * 10) / 10, el, sizeof(el));
		fprintf(stdout, "  \x1b[36m%s\x1b[0m %-28s %-36s %8s", spinner[p->spin % 10],
			p->run[i].uid, p->run[i].action, el);
		if (p->run[i].attempt > 1)
			fprintf(stdout, "  attempt %d", p->run[i].attempt);
		fputs("\x1b[K\n", stdout);
	}
	p->drawn = (int)p->n_run;
	fflush(stdout);
}

static void *tick(void *arg)
{
	drb_progress *p = arg;

	for (;;) {
		pthread_mutex_lock(&p->mu);
		if (p->stop) {
			pthread_mutex_unlock(&p->mu);
			return NULL;
		}
		if (!p->paused && p->n_run) {
			p->spin++;
			clear_live(p);
			draw_live(p);
		}
		drb_cond_wait_s(&p->cv, &p->mu, 0.1); /* stop_ticker wakes it */
		pthread_mutex_unlock(&p->mu);
	}
}

static live *find_live(drb_progress *p, const char *uid)
{
	for (size_t i = 0; i < p->n_run; i++)
		if (!strcmp(p->run[i].uid, uid))
			return &p->run[i];
	return NULL;
}

static const char *str(const json_t *d, const char *k)
{
	const char *s = json_string_value(json_object_get(d, k));

	return s ? s : "";
}

static void on_event(void *ud, const char *ts, const char *event, const char *step,
		     const json_t *data)
{
	drb_progress *p = ud;
	char line[2048];

	pthread_mutex_lock(&p->mu);
	if (p->mode == DRB_OUT_JSON) {
		json_t *o = json_pack("{s:s, s:s, s:s?, s:O}", "ts", ts, "event", event, "step",
				      step, "data", data);
		char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

		if (s) {
			fputs(s, stdout);
			fputc('\n', stdout);
			fflush(stdout);
		}
		free(s);
		json_decref(o);
	} else if (p->mode == DRB_OUT_PLAIN) {
		if (drb_report_event_text(event, step, data, 0, line, sizeof(line))) {
			fprintf(stdout, "%.8s %s\n", ts + 11, line);
			fflush(stdout);
		}
	} else if (p->mode == DRB_OUT_LIVE) {
		live *l;

		clear_live(p);
		if (drb_event_of(event) == DRB_EV_STEP_START && step && p->n_run < MAX_LIVE &&
		    !json_object_get(data, "for_each")) {
			l = &p->run[p->n_run++];
			snprintf(l->uid, sizeof(l->uid), "%s", step);
			snprintf(l->action, sizeof(l->action), "%s", str(data, "action"));
			l->t0 = drb_mono_now();
			l->attempt = 1;
		} else if (drb_event_of(event) == DRB_EV_STEP_RETRY && step &&
			   (l = find_live(p, step))) {
			l->attempt = (int)json_integer_value(json_object_get(data, "attempt")) + 1;
		} else if (drb_event_of(event) == DRB_EV_STEP_END && step &&
			   (l = find_live(p, step))) {
			*l = p->run[--p->n_run];
		}
		if (drb_report_event_text(event, step, data, 1, line, sizeof(line)))
			fprintf(stdout, "%s\n", line);
		draw_live(p);
	}
	pthread_mutex_unlock(&p->mu);
}

/* Approval on the terminal: y/yes approves, anything else denies, silence times out. */
static int on_ask(void *ud, const char *step, const char *message, double timeout_s)
{
	drb_progress *p = ud;
	char buf[64] = "", w[32];
	int fd = open("/dev/tty", O_RDWR | O_CLOEXEC), answer = -1;
	double end = drb_mono_now() + timeout_s;
	size_t len = 0;

	if (fd < 0)
		return -1;
	pthread_mutex_lock(&p->mu);
	p->paused = 1;
	clear_live(p);
	pthread_mutex_unlock(&p->mu);
	drb_duration_format(timeout_s, w, sizeof(w));
	dprintf(fd,
		"\n\x1b[1mAPPROVAL %s\x1b[0m: %s\nType 'yes' to approve (times out in %s): ", step,
		message, w);
	for (;;) {
		struct pollfd pfd = {fd, POLLIN, 0};
		double left = end - drb_mono_now();
		ssize_t n;

		if (left <= 0)
			break;
		if (poll(&pfd, 1, left > 1 ? 1000 : (int)(left * 1000) + 1) <= 0)
			continue;
		n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n <= 0) {
			answer = 0;
			break;
		}
		len += (size_t)n;
		buf[len] = '\0';
		if (strchr(buf, '\n') || len >= sizeof(buf) - 1) {
			buf[strcspn(buf, "\r\n")] = '\0';
			answer = (!strcmp(buf, "y") || !strcmp(buf, "yes")) ? 1 : 0;
			break;
		}
	}
	if (answer < 0)
		dprintf(fd, "\n(no answer)\n");
	close(fd);
	pthread_mutex_lock(&p->mu);
	p->paused = 0;
	pthread_mutex_unlock(&p->mu);
	return answer;
}

drb_progress *drb_progress_new(int json, int quiet, drb_sink *sink)
{
	drb_progress *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	pthread_mutex_init(&p->mu, NULL);
	drb_cond_init_mono(&p->cv);
	if (json)
		p->mode = DRB_OUT_JSON;
	else if (quiet)
		p->mode = DRB_OUT_QUIET;
	else if (isatty(STDOUT_FILENO) && getenv("TERM") && strcmp(getenv("TERM"), "dumb"))
		p->mode = DRB_OUT_LIVE;
	else
		p->mode = DRB_OUT_PLAIN;
	sink->event = on_event;
	sink->ask = isatty(STDIN_FILENO) ? on_ask : NULL;
	sink->ud = p;
	if (p->mode == DRB_OUT_LIVE && pthread_create(&p->ticker, NULL, tick, p) == 0)
		p->ticker_on = 1;
	return p;
}

static void stop_ticker(drb_progress *p)
{
	if (!p->ticker_on)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = 1;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	pthread_join(p->ticker, NULL);
	p->ticker_on = 0;
	pthread_mutex_lock(&p->mu);
	clear_live(p);
	p->n_run = 0;
	pthread_mutex_unlock(&p->mu);
}

/* "RTO 12.3s (target 15m: met)"; verdict is run.end's targets verdict (met, missed,
 * unknown). */
static void fmt_target(char *out, size_t n, const char *what, double v, double target,
		       const char *verdict)
{
	char a[32], b[32];

	if (v < 0) {
		if (target >= 0) {
			drb_duration_format(target, b, sizeof(b));
			snprintf(out, n, "%s not measured (target %s: %s)", what, b,
				 *verdict ? verdict : "unknown");
		} else {
			snprintf(out, n, "%s not measured", what);
		}
		return;
	}
	drb_duration_format(v, a, sizeof(a));
	if (target >= 0) {
		drb_duration_format(target, b, sizeof(b));
		snprintf(out, n, "%s %s (target %s: %s)", what, a, b,
			 !strcmp(verdict, "missed") ? "MISSED"
			 : *verdict		    ? verdict
						    : (v <= target ? "met" : "MISSED"));
	} else {
		snprintf(out, n, "%s %s", what, a);
	}
}

static void print_json_line(const char *label, const json_t *v)
{
	char *w = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);

	printf("      %s %s\n", label, w ? w : "{}");
	free(w);
}

/* One unit of the plan: arguments, when decision, rollback (indent: children go deeper). */
static void print_plan_unit(const json_t *u, const char *indent)
{
	const json_t *rb = json_object_get(u, "rollback");
	const char *when = json_string_value(json_object_get(u, "when_result"));
	char label[64];

	snprintf(label, sizeof(label), "%swith", indent);
	print_json_line(label, json_object_get(u, "with"));
	if (json_object_get(u, "unresolved"))
		printf("      %s(some values depend on earlier steps)\n", indent);
	if (when)
		printf("      %swhen: %s\n", indent,
		       !strcmp(when, "run")    ? "true now: runs"
		       : !strcmp(when, "skip") ? "false now: skipped"
					       : "decided during the run");
	if (rb) {
		snprintf(label, sizeof(label), "%srollback %s", indent,
			 json_string_value(json_object_get(rb, "action")));
		print_json_line(label, json_object_get(rb, "with"));
	}
}

/* The forecast of the plan's step i (drb_report_forecast's steps, in plan order). */
static void print_step_forecast(const json_t *f, size_t i)
{
	const json_t *s = json_array_get(json_object_get(f, "steps"), i);
	char med[32], p95[32];

	if (!s)
		return;
	if (!json_integer_value(json_object_get(s, "samples"))) {
		printf("      predicted: no history for this step\n");
		return;
	}
	drb_duration_format(json_real_value(json_object_get(s, "median_s")), med, sizeof(med));
	drb_duration_format(json_real_value(json_object_get(s, "p95_s")), p95, sizeof(p95));
	printf("      predicted %s (p95 %s, %lld runs)\n", med, p95,
	       (long long)json_integer_value(json_object_get(s, "samples")));
}

/* The RTO forecast under the plan: the predicted critical path and RTO against the target. */
static void print_forecast(const json_t *f)
{
	const json_t *id;
	char a[32], b[32], t[32], where[2400];
	const char *ev;
	double target = -1, med, p95;
	size_t k;

	if (!f)
		return;
	if (json_is_number(json_object_get(f, "target_rto_s")))
		target = json_number_value(json_object_get(f, "target_rto_s"));
	if (json_object_get(f, "error")) {
		printf("\n  RTO forecast: not available (%s)\n",
		       json_string_value(json_object_get(f, "error")));
		return;
	}
	ev = json_string_value(json_object_get(f, "evidence"));
	snprintf(where, sizeof(where), "%s%s%s", json_string_value(json_object_get(f, "runs_dir")),
		 ev ? " and " : "", ev ? ev : "");
	if (json_object_get(f, "evidence_error"))
		printf("\n  RTO forecast: the evidence bucket could not be read (%s): the runs "
		       "folder only\n",
		       json_string_value(json_object_get(f, "evidence_error")));
	if (!json_is_true(json_object_get(f, "history"))) {
		printf("\n  RTO forecast: no history (no past run or drill of this runbook in %s)\n",
		       where);
		return;
	}
	med = json_real_value(json_object_get(f, "rto_median_s"));
	p95 = json_real_value(json_object_get(f, "rto_p95_s"));
	drb_duration_format(json_real_value(json_object_get(f, "critical_path_median_s")), a,
			    sizeof(a));
	drb_duration_format(json_real_value(json_object_get(f, "critical_path_p95_s")), b,
			    sizeof(b));
	printf("\n  RTO forecast from %lld past runs in %s:\n",
	       (long long)json_integer_value(json_object_get(f, "runs")), where);
	printf("    predicted critical path:");
	json_array_foreach(json_object_get(f, "critical_path"), k, id)
	    printf("%s %s", k ? " ->" : "", json_string_value(id));
	printf("\n    critical path %s (p95 %s)", a, b);
	drb_duration_format(json_real_value(json_object_get(f, "preflight_median_s")), a,
			    sizeof(a));
	printf(", with preflight %s\n", a);
	drb_duration_format(med, a, sizeof(a));
	drb_duration_format(p95, b, sizeof(b));
	if (target >= 0) {
		drb_duration_format(target, t, sizeof(t));
		printf("    predicted RTO %s (p95 %s), target %s\n", a, b, t);
		if (med > target)
			printf("  warning: the predicted critical path (%s) exceeds the RTO target "
			       "(%s)\n",
			       a, t);
		else if (p95 > target)
			printf("  warning: the predicted RTO at p95 (%s) exceeds the RTO target "
			       "(%s)\n",
			       b, t);
	} else {
		printf("    predicted RTO %s (p95 %s), no RTO target\n", a, b);
	}
}

static void print_plan(const drb_runbook *rb, const drb_run_result *res)
{
	size_t i, k;
	json_t *s, *c, *id;

	printf("\nPlan for %s (nothing was changed):\n", rb->name);
	json_array_foreach(res->plan, i, s)
	{
		const json_t *needs = json_object_get(s, "needs");

		printf("  %2zu. %-24s %-34s %s\n", i + 1,
		       json_string_value(json_object_get(s, "id")),
		       json_string_value(json_object_get(s, "action")),
		       json_is_true(json_object_get(s, "mutating")) ? "[changes]" : "[read-only]");
		if (!json_array_size(needs)) {
			printf("      starts at once\n");
		} else {
			printf("      after");
			json_array_foreach(needs, k, id)
			    printf("%s %s", k ? "," : "", json_string_value(id));
			printf("\n");
		}
		if (json_object_get(s, "when"))
			printf("      when %s\n", json_string_value(json_object_get(s, "when")));
		print_step_forecast(res->forecast, i);
		if (json_object_get(s, "for_each")) {
			const json_t *kids = json_object_get(s, "children");
			long long over = json_integer_value(json_object_get(s, "items_over_cap"));

			if (kids)
				printf("      for each %s: %zu items\n",
				       json_string_value(json_object_get(s, "for_each")),
				       json_array_size(kids));
			else if (over)
				printf(
				    "      for each %s: %lld items, more than the %d allowed: the "
				    "run will fail this step\n",
				    json_string_value(json_object_get(s, "for_each")), over,
				    DRB_FOR_EACH_MAX);
			else
				printf("      for each %s: items known only during the run\n",
				       json_string_value(json_object_get(s, "for_each")));
			json_array_foreach(kids, k, c)
			{
				char *it = json_dumps(json_object_get(c, "item"),
						      JSON_COMPACT | JSON_ENCODE_ANY);

				printf("      [%zu] %s %s\n", k + 1, it ? it : "?",
				       json_is_true(json_object_get(c, "mutating"))
					   ? "[changes]"
					   : "[read-only]");
				free(it);
				print_plan_unit(c, "    ");
			}
			if (kids)
				continue;
		}
		print_plan_unit(s, "");
	}
	if (json_array_size(res->critical_path)) {
		printf("\n  critical path (%zu steps):", json_array_size(res->critical_path));
		json_array_foreach(res->critical_path, k, id)
		    printf("%s %s", k ? " ->" : "", json_string_value(id));
		printf("\n");
	}
	print_forecast(res->forecast);
}

void drb_progress_finish(drb_progress *p, const drb_runbook *rb, const drb_run_result *res)
{
	if (!p)
		return;
	stop_ticker(p);
	if (p->mode == DRB_OUT_JSON) {
		json_t *o =
		    json_pack("{s:s, s:s, s:s, s:i, s:s, s:o?, s:O?}", "event", "summary", "run",
			      res->run_id, "status", res->status, "exit_code", res->exit_code,
			      "audit", res->audit_path, "steps",
			      drb_step_lines_json(res->steps, res->n_steps), "plan", res->plan);
		char *txt;

		if (res->critical_path)
			json_object_set(o, "critical_path", res->critical_path);
		if (res->forecast)
			json_object_set(o, "forecast", res->forecast);
		if (res->rto_s >= 0)
			json_object_set_new(o, "rto_s", json_real(res->rto_s));
		if (res->rpo_s >= 0)
			json_object_set_new(o, "rpo_s", json_real(res->rpo_s));
		if (res->rto_verdict[0])
			json_object_set_new(o, "targets",
					    json_pack("{s:s, s:s}", "rto", res->rto_verdict, "rpo",
						      res->rpo_verdict));
		if (res->error[0])
			json_object_set_new(o, "error", json_string(res->error));
		txt = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
		if (txt)
			printf("%s\n", txt);
		free(txt);
		json_decref(o);
	} else if (p->mode != DRB_OUT_QUIET) {
		char line[256];
		int color = p->mode == DRB_OUT_LIVE;

		if (res->plan)
			print_plan(rb, res);
		printf("\n%s%s%s  %s  run %s  (exit %d)\n",
		       color ? (res->exit_code ? "\x1b[1;31m" : "\x1b[1;32m") : "", res->status,
		       color ? "\x1b[0m" : "", rb ? rb->name : "", res->run_id, res->exit_code);
		if (res->error[0])
			printf("  %s\n", res->error);
		if (res->n_steps && !res->plan) {
			printf("\n  %-30s %-13s %9s %s\n", "step", "status", "duration",
			       "attempts");
			for (size_t i = 0; i < res->n_steps; i++) {
				const drb_step_line *s = &res->steps[i];
				char d[32];

				drb_duration_format((double)s->duration_ms / 1000.0, d, sizeof(d));
				printf("  %-30s %-13s %9s %d\n", s->id, s->status, d, s->attempts);
			}
		}
		if (!res->plan) {
			fmt_target(line, sizeof(line), "RTO", res->rto_s, res->target_rto_s,
				   res->rto_verdict);
			printf("\n  %s\n", line);
			fmt_target(line, sizeof(line), "RPO", res->rpo_s, res->target_rpo_s,
				   res->rpo_verdict);
			printf("  %s\n", line);
		}
		if (res->audit_path[0])
			printf("  audit log: %s\n", res->audit_path);
	}
	fflush(stdout);
}

void drb_progress_free(drb_progress *p)
{
	if (!p)
		return;
	stop_ticker(p);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p);
}
