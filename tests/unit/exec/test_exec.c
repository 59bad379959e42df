/* Tests for src/providers/exec/exec.c: no shell, captured and capped output, exit codes and
 * signals, environment, stdin, cwd, and that a timeout or cancel kills the whole process
 * group and leaves no child, zombie or fd behind. */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <drbook/action.h>
#include <drbook/util.h>

#include <drbook/exec.h>
#include "http/direct_seam.h"

typedef struct fixture {
	direct_seam seam;
	volatile int cancel;
	drb_action_ctx ctx;
	char tmpdir[64];
} fixture;

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

/* No child of ours is left, running or zombie. */
static void assert_no_children(void)
{
	errno = 0;
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
}

/* Whether some process of group pgid is still running (a zombie does not count). */
static int group_has_live(pid_t pgid)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	int live = 0;

	assert_non_null(d);
	while ((de = readdir(d)) && !live) {
		char path[300], buf[512], *rp, state;
		long pg = 0;
		FILE *fp;

		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		fp = fopen(path, "r");
		if (!fp)
			continue;
		if (fgets(buf, sizeof(buf), fp) && (rp = strrchr(buf, ')')) &&
		    sscanf(rp + 1, " %c %*d %ld", &state, &pg) == 2 && pg == (long)pgid &&
		    state != 'Z' && state != 'X')
			live = 1;
		fclose(fp);
	}
	closedir(d);
	return live;
}

/* The group is gone: no member left, or (when an orphaned grandchild awaits the system's
 * reaper, which is not ours) only zombies. */
static void assert_group_dead(pid_t pgid)
{
	double until = drb_mono_now() + 3;

	while (kill(-pgid, 0) == 0 && drb_mono_now() < until)
		drb_sleep_s(0.02);
	if (kill(-pgid, 0) == 0)
		assert_false(group_has_live(pgid));
	else
		assert_int_equal(errno, ESRCH);
}

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	direct_seam_init(&f->seam);
	f->ctx.seam = &f->seam.seam;
	f->ctx.step_id = "cmd";
	f->ctx.cancel = &f->cancel;
	snprintf(f->tmpdir, sizeof(f->tmpdir), "/tmp/drb-exec-XXXXXX");
	if (!mkdtemp(f->tmpdir)) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	char cmd[128];

	direct_seam_free(&f->seam);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", f->tmpdir);
	free(f);
	return 0;
}

/* Runs exec with arguments given as a JSON object. */
static int run_json(fixture *f, json_t *args, json_t **result, drb_err *e)
{
	int rc;

	assert_non_null(args);
	*result = NULL;
	rc = drb_action_exec.fn(&f->ctx, args, result, e);
	json_decref(args);
	return rc;
}

static int run(fixture *f, const char *args_json, json_t **result, drb_err *e)
{
	json_error_t je;
	json_t *args = json_loads(args_json, 0, &je);

	if (!args)
		fail_msg("bad test JSON: %s", je.text);
	return run_json(f, args, result, e);
}

static const char *str(const json_t *r, const char *k)
{
	const char *s = json_string_value(json_object_get(r, k));

	assert_non_null(s);
	return s;
}

static long long num(const json_t *r, const char *k)
{
	const json_t *v = json_object_get(r, k);

	assert_true(json_is_integer(v));
	return json_integer_value(v);
}

/* echo: stdout captured, exit 0, flags false, a duration; the call went through the seam
 * as service "exec", operation argv[0], request with the argv. */
static void test_echo(void **state)
{
	fixture *f = *state;
	json_t *r = NULL;
	drb_err e = {0};

	assert_int_equal(run(f, "{\"argv\": [\"echo\", \"hello\", 42]}", &r, &e), 0);
	assert_int_equal(num(r, "exit_code"), 0);
	assert_string_equal(str(r, "stdout"), "hello 42\n");
	assert_string_equal(str(r, "stderr"), "");
	assert_true(json_is_false(json_object_get(r, "stdout_truncated")));
	assert_true(json_is_false(json_object_get(r, "stderr_truncated")));
	assert_true(num(r, "duration_ms") >= 0);
	assert_null(json_object_get(r, "signal"));
	json_decref(r);
	assert_int_equal(f->seam.calls, 1);
	assert_string_equal(f->seam.service, "exec");
	assert_string_equal(f->seam.operation, "echo");
	assert_string_equal(
	    json_string_value(json_array_get(json_object_get(f->seam.request, "argv"), 2)), "42");
	assert_int_equal(drb_action_exec.mode, DRB_ACT_STEP);
	assert_no_children();
}

/* stdout and stderr apart; a non-zero exit is a result, not an action error. */
static void test_exit_code_and_stderr(void **state)
{
	fixture *f = *state;
	json_t *r = NULL;
	drb_err e = {0};

	assert_int_equal(
	    run(f, "{\"argv\": [\"sh\", \"-c\", \"echo out; echo err >&2; exit 3\"]}", &r, &e), 0);
	assert_int_equal(num(r, "exit_code"), 3);
	assert_string_equal(str(r, "stdout"), "out\n");
	assert_string_equal(str(r, "stderr"), "err\n");
	json_decref(r);

	/* Killed by a signal: 128 + signal, like a shell, and the signal itself. */
	assert_int_equal(run(f, "{\"argv\": [\"sh\", \"-c\", \"kill -TERM $$\"]}", &r, &e), 0);
	assert_int_equal(num(r, "exit_code"), 128 + SIGTERM);
	assert_int_equal(num(r, "signal"), SIGTERM);
	json_decref(r);
	assert_no_children();
}

/* Arguments reach the program verbatim: no shell splits, quotes or expands them. */
static void test_no_shell(void **state)
{
	fixture *f = *state;
	json_t *r = NULL;
	drb_err e = {0};

	assert_int_equal(run(f,
			     "{\"argv\": [\"printf\", \"%s|\", \"a b\", \"'q'\", \"\\\"d\\\"\", "
			     "\"$HOME\", \"*\", \"; rm -rf /\", \"`id`\"]}",
			     &r, &e),
			 0);
	assert_string_equal(str(r, "stdout"), "a b|'q'|\"d\"|$HOME|*|; rm -rf /|`id`|");
	json_decref(r);
}

/* A timeout kills the whole group (the shell and its sleep) within about the timeout,
 * reaps it, and says so. */
static void test_timeout_kills_group(void **state)
{
	fixture *f = *state;
	json_t *r = NULL, *args;
	drb_err e = {0};
	char pidfile[128], script[256], buf[32] = "";
	double t0 = drb_mono_now(), took;
	FILE *fp;
	long pgid;

	snprintf(pidfile, sizeof(pidfile), "%s/pid", f->tmpdir);
	snprintf(script, sizeof(script), "echo $$ > %s; sleep 30; echo never", pidfile);
	args = json_pack("{s:[s,s,s], s:s}", "argv", "sh", "-c", script, "timeout", "500ms");
	assert_int_equal(run_json(f, args, &r, &e), DRB_ETIMEOUT);
	took = drb_mono_now() - t0;
	assert_true(took >= 0.45);
	assert_true(took < 0.5 + 1.5);
	assert_null(r);
	assert_non_null(strstr(e.msg, "exec: 'sh': did not finish within 500ms"));
	fp = fopen(pidfile, "r");
	assert_non_null(fp);
	assert_non_null(fgets(buf, sizeof(buf), fp));
	fclose(fp);
	pgid = strtol(buf, NULL, 10);
	assert_true(pgid > 1);
	/* Nobody of that group survives: not the shell, not its sleep. */
	assert_group_dead((pid_t)pgid);
	assert_no_children();
}

/* A program that ignores SIGTERM gets SIGKILL after the 2 s grace. */
static void test_timeout_sigkill(void **state)
{
	fixture *f = *state;
	json_t *r = NULL;
	drb_err e = {0};
	double t0 = drb_mono_now(), took;

	assert_int_equal(run(f,
			     "{\"argv\": [\"sh\", \"-c\", \"trap '' TERM; sleep 30\"], "
			     "\"timeout\": 0.3}",
			     &r, &e),
			 DRB_ETIMEOUT);
	took = drb_mono_now() - t0;
	assert_true(took >= 2.2);
	assert_true(took < 4.5);
	assert_no_children();
}

/* The step's deadline applies when it comes before the exec's own timeout. */
static void test_deadline(void **state)
{
	fixture *f = *state;
	json_t *r = NULL;
	drb_err e = {0};
	double t0 = drb_mono_now();

	f->ctx.deadline = t0 + 0.3;
	assert_int_equal(run(f, "{\"argv\": [\"sleep\", \"30\"]}", &r, &e), DRB_ETIMEOUT);
	assert_true(drb_mono_now() - t0 < 2.0);
	assert_non_null(strstr(e.msg, "deadline"));
	assert_no_children();
}

static void *cancel_later(void *arg)
{
	fixture *f = arg;

	drb_sleep_s(0.2);
	f->cancel = 1;
	return NULL;
}

/* Cancelling the run kills the program too, with DRB_EINTERRUPTED (not retryable). */
static void test_cancel(void **state)
{
	fixture *f = *state;
	json_t *r = NULL;
	drb_err e = {0};
	pthread_t t;
	double t0 = drb_mono_now();

	assert_int_equal(pthread_create(&t, NULL, cancel_later, f), 0);
	assert_int_equal(run(f, "{\"argv\": [\"sleep\", \"30\"]}", &r, &e), DRB_EINTERRUPTED);
	pthread_join(t, NULL);
	assert_true(drb_mono_now() - t0 < 2.0);
	assert_no_children();
}

/* Output beyond 64 KiB is read and dropped, flagged truncated, and the program finishes
 * normally (it is not blocked on a full pipe). */
static void test_truncation(void **state)
{
	fixture *f = *state;
	json_t *r = NULL;
	drb_err e = {0};

	assert_int_equal(
	    run(f, "{\"argv\": [\"head\", \"-c\", \"200000\", \"/dev/zero\"]}", &r, &e), 0);
	assert_int_equal(num(r, "exit_code"), 0);
	assert_int_equal(json_string_length(json_object_get(r, "stdout")), 65536);
	assert_true(json_is_true(json_object_get(r, "stdout_truncated")));
	assert_true(json_is_false(json_object_get(r, "stderr_truncated")));
	json_decref(r);

	assert_int_equal(
	    run(f, "{\"argv\": [\"sh\", \"-c\", \"head -c 100000 /dev/zero >&2; echo ok\"]}", &r,
		&e),
	    0);
	assert_int_equal(json_string_length(json_object_get(r, "stderr")), 65536);
	assert_true(json_is_true(json_object_get(r, "stderr_truncated")));
	assert_string_equal(str(r, "stdout"), "ok\n");
	json_decref(r);
}

/* Bytes that are not UTF-8 still make a JSON string. */
static void test_binary_output(void **state)
{
	fixture *f = *state;
	json_t *r = NULL;
	drb_err e = {0};

	assert_int_equal(run(f, "{\"argv\": [\"printf\", \"a\\\\377b\"]}", &r, &e), 0);
	assert_string_equal(str(r, "stdout"), "a\xef\xbf\xbd"
					      "b");
	json_decref(r);
}

/* A missing program is an error of the action, not an exit code. */
static void test_missing_program(void **state)
{
	fixture *f = *state;
	json_t *r = NULL;
	drb_err e = {0};
	char path[128], json[256];
	FILE *fp;

	assert_int_equal(run(f, "{\"argv\": [\"nosuch\"]}", &r, &e), DRB_ENOTFOUND);
	assert_string_equal(e.msg, "exec: 'nosuch': No such file or directory");
	assert_int_equal(run(f, "{\"argv\": [\"/nonexistent/prog\"]}", &r, &e), DRB_ENOTFOUND);
	assert_string_equal(e.msg, "exec: '/nonexistent/prog': No such file or directory");

	/* A file without the execute bit is refused as such. */
	snprintf(path, sizeof(path), "%s/notexec", f->tmpdir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("#!/bin/sh\necho hi\n", fp);
	fclose(fp);
	chmod(path, 0644);
	snprintf(json, sizeof(json), "{\"argv\": [\"%s\"]}", path);
	assert_int_equal(run(f, json, &r, &e), DRB_EDENIED); /* root too: no x bit at all */
	assert_null(r);
	assert_no_children();
}

/* env adds to the inherited environment (and replaces); the audit request hides values. */
static void test_env(void **state)
{
	fixture *f = *state;
	json_t *r = NULL;
	drb_err e = {0};
	char *dump = NULL;
	int leaked;

	setenv("DRB_TEST_INHERITED", "inherited", 1);
	setenv("DRB_TEST_REPLACED", "old", 1);
	assert_int_equal(run(f,
			     "{\"argv\": [\"sh\", \"-c\", \"printf '%s|%s|%s' "
			     "\\\"$DRB_TEST_VAR\\\" \\\"$DRB_TEST_INHERITED\\\" "
			     "\\\"$DRB_TEST_REPLACED\\\"\"], "
			     "\"env\": {\"DRB_TEST_VAR\": \"s3cr3t value\", "
			     "\"DRB_TEST_REPLACED\": 7}}",
			     &r, &e),
			 0);
	assert_string_equal(str(r, "stdout"), "s3cr3t value|inherited|7");
	json_decref(r);
	assert_string_equal(json_string_value(json_object_get(
				json_object_get(f->seam.request, "env"), "DRB_TEST_VAR")),
			    "***");
	dump = json_dumps(f->seam.request, 0);
	assert_non_null(dump);
	leaked = strstr(dump, "s3cr3t") != NULL;
	free(dump);
	assert_false(leaked);
	unsetenv("DRB_TEST_INHERITED");
	unsetenv("DRB_TEST_REPLACED");

	assert_int_equal(run(f, "{\"argv\": [\"true\"], \"env\": {\"A=B\": \"x\"}}", &r, &e),
			 DRB_EINVAL);
	assert_int_equal(run(f, "{\"argv\": [\"true\"], \"env\": [1]}", &r, &e), DRB_EINVAL);
}

/* stdin is fed to the program; a program that does not read it does not hurt us. */
static void test_stdin(void **state)
{
	fixture *f = *state;
	json_t *r = NULL, *args;
	drb_err e = {0};
	char *big = malloc(1 << 20);

	assert_int_equal(run(f, "{\"argv\": [\"cat\"], \"stdin\": \"hello\\nworld\"}", &r, &e), 0);
	assert_string_equal(str(r, "stdout"), "hello\nworld");
	json_decref(r);

	/* 1 MiB to a program that exits at once: EPIPE, no SIGPIPE killing the test. */
	assert_non_null(big);
	memset(big, 'x', (1 << 20) - 1);
	big[(1 << 20) - 1] = '\0';
	args = json_pack("{s:[s], s:s}", "argv", "true", "stdin", big);
	free(big);
	assert_int_equal(run_json(f, args, &r, &e), 0);
	assert_int_equal(num(r, "exit_code"), 0);
	json_decref(r);
	assert_int_equal(json_integer_value(json_object_get(f->seam.request, "stdin_bytes")),
			 (1 << 20) - 1);
	assert_null(json_object_get(f->seam.request, "stdin"));

	/* Without stdin the program reads end of file at once (not our terminal). */
	assert_int_equal(run(f, "{\"argv\": [\"cat\"], \"timeout\": 5}", &r, &e), 0);
	assert_string_equal(str(r, "stdout"), "");
	json_decref(r);
}

/* cwd is honoured; a missing one is reported as such. */
static void test_cwd(void **state)
{
	fixture *f = *state;
	json_t *r = NULL, *args;
	drb_err e = {0};
	char want[128];

	args = json_pack("{s:[s], s:s}", "argv", "pwd", "cwd", f->tmpdir);
	assert_int_equal(run_json(f, args, &r, &e), 0);
	snprintf(want, sizeof(want), "%s\n", f->tmpdir);
	assert_string_equal(str(r, "stdout"), want);
	json_decref(r);
	assert_int_equal(run(f, "{\"argv\": [\"pwd\"], \"cwd\": \"/nonexistent-dir\"}", &r, &e),
			 DRB_ENOTFOUND);
	assert_non_null(strstr(e.msg, "cwd '/nonexistent-dir'"));
	assert_no_children();
}

/* Argument errors are refused before anything runs. */
static void test_bad_args(void **state)
{
	fixture *f = *state;
	json_t *r = NULL;
	drb_err e = {0};

	assert_int_equal(run(f, "{}", &r, &e), DRB_EINVAL);
	assert_int_equal(run(f, "{\"argv\": []}", &r, &e), DRB_EINVAL);
	assert_int_equal(run(f, "{\"argv\": \"echo hi\"}", &r, &e), DRB_EINVAL);
	assert_int_equal(run(f, "{\"argv\": [\"echo\", {\"a\": 1}]}", &r, &e), DRB_EINVAL);
	assert_int_equal(run(f, "{\"argv\": [\"\"]}", &r, &e), DRB_EINVAL);
	assert_int_equal(run(f, "{\"argv\": [\"echo\"], \"shell\": true}", &r, &e), DRB_EINVAL);
	assert_int_equal(run(f, "{\"argv\": [\"echo\"], \"timeout\": 0}", &r, &e), DRB_EINVAL);
	assert_int_equal(run(f, "{\"argv\": [\"echo\"], \"timeout\": \"soon\"}", &r, &e),
			 DRB_EINVAL);
	assert_int_equal(run(f, "{\"argv\": [\"echo\"], \"stdin\": 5}", &r, &e), DRB_EINVAL);
	assert_int_equal(f->seam.calls, 0);
}

/* Many runs, every path: not one fd more afterwards. */
static void test_no_fd_leak(void **state)
{
	fixture *f = *state;
	json_t *r = NULL;
	drb_err e = {0};
	int before = count_fds(), i;

	assert_true(before > 0);
	for (i = 0; i < 5; i++) {
		assert_int_equal(run(f, "{\"argv\": [\"echo\", \"x\"]}", &r, &e), 0);
		json_decref(r);
		assert_int_equal(run(f, "{\"argv\": [\"cat\"], \"stdin\": \"abc\"}", &r, &e), 0);
		json_decref(r);
		assert_int_equal(run(f, "{\"argv\": [\"nosuch\"]}", &r, &e), DRB_ENOTFOUND);
		assert_int_equal(run(f, "{\"argv\": [\"/nonexistent\"]}", &r, &e), DRB_ENOTFOUND);
		assert_int_equal(
		    run(f, "{\"argv\": [\"sleep\", \"5\"], \"timeout\": 0.05}", &r, &e),
		    DRB_ETIMEOUT);
	}
	assert_int_equal(count_fds(), before);
	assert_no_children();
}

/* The program sees only 0, 1 and 2: our own fds (this test's included) do not leak in. */
static void test_fds_not_inherited(void **state)
{
	fixture *f = *state;
	json_t *r = NULL;
	drb_err e = {0};
	int fd = dup(0); /* without close-on-exec on purpose */

	assert_true(fd > 2);
	assert_int_equal(run(f, "{\"argv\": [\"ls\", \"/proc/self/fd\"]}", &r, &e), 0);
	/* ls itself opens the directory as fd 3. */
	assert_string_equal(str(r, "stdout"), "0\n1\n2\n3\n");
	json_decref(r);
	close(fd);
}

int main(void)
{
#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_echo),
	    T(test_exit_code_and_stderr),
	    T(test_no_shell),
	    T(test_timeout_kills_group),
	    T(test_timeout_sigkill),
	    T(test_deadline),
	    T(test_cancel),
	    T(test_truncation),
	    T(test_binary_output),
	    T(test_missing_program),
	    T(test_env),
	    T(test_stdin),
	    T(test_cwd),
	    T(test_bad_args),
	    T(test_no_fd_leak),
	    T(test_fds_not_inherited),
	};
#undef T
	/* The engine ignores SIGPIPE in some setups and not in others: test the harder one. */
	signal(SIGPIPE, SIG_DFL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
