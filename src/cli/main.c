/* drbook's command line: parses arguments, loads runbooks, hands them to the engine and maps
 * every outcome to the exit codes of docs/cli.md in one place (exit_for). */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include <drbook/audit.h>
#include <drbook/engine.h>
#include <drbook/report.h>
#include <drbook/runbook.h>
#include <drbook/util.h>

#include "catalog.h"
#include "progress.h"
#include "readiness.h"

#define DRB_VERSION "0.1.0"
#define MAX_LIST 64

static volatile int interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted++; /* the engine: the first stops the run, a second skips its rollbacks */
}

static const char usage_main[] =
    "usage: drbook COMMAND [ARGS]\n"
    "\n"
    "Disaster-recovery runbooks, executed and recorded.\n"
    "\n"
    "commands:\n"
    "  validate RUNBOOK...         check runbooks; print nothing but errors\n"
    "  plan RUNBOOK [-p k=v]...    run preflight, show what would change, change nothing\n"
    "  run RUNBOOK [-p k=v]...     execute a runbook\n"
    "  resume AUDIT                continue an interrupted run from its audit log\n"
    "  audit verify AUDIT          check an audit log's hash chain and MACs\n"
    "  report AUDIT                what a run did: timeline, steps, RTO/RPO (md, html, json)\n"
    "  replay AUDIT                re-run a recorded run's decisions offline\n"
    "  gameday SCHEDULE            run the drills of a game-day schedule that are due\n"
    "  readiness RUNBOOK...        could each failover start now? (preflight; metrics)\n"
    "  actions [--json]            the action catalog: arguments, results, modes\n"
    "\n"
    "Run 'drbook COMMAND --help' for a command's options. Exit codes: 0 success, 1 the run\n"
    "failed (or a log is tampered), 2 usage or invalid runbook, 3 refused before any change.\n"
    "See docs/cli.md.\n";

static const char usage_validate[] =
    "usage: drbook validate RUNBOOK...\n"
    "\n"
    "Checks each runbook against format v1 and prints every problem as FILE:LINE:COL: message.\n"
    "Expressions, ${ } templates and lua scripts are compiled and read for references: an\n"
    "undeclared params.X or a for_each variable used where it is not bound is an error.\n"
    "Prints nothing and exits 0 when all are valid; exits 2 otherwise. Nothing is executed.\n";

static const char usage_run[] =
    "usage: drbook run RUNBOOK [options]\n"
    "\n"
    "Executes the runbook: preflight (read-only), then the steps, logging every step, call and\n"
    "decision to the audit log.\n"
    "\n"
    "options:\n"
    "  -p, --param KEY=VALUE      set a parameter (repeatable)\n"
    "      --drill                mark the run as a drill (visible to the runbook as `drill`)\n"
    "      --shadow               a shadow drill: run the runbook's shadow: section (setup\n"
    "                             makes drill- copies, params point the steps at them,\n"
    "                             teardown always runs) and refuse, before sending it, any\n"
    "                             change to a resource that is not a shadow resource (step\n"
    "                             fails with shadow_violation, rollback, teardown, exit 1);\n"
    "                             a runbook without shadow: exits 2. Implies --drill\n"
    "      --audit FILE           audit log path (default ./drbook-runs/RUN_ID.jsonl)\n"
    "      --audit-key-file F     HMAC key for the audit log (or DRBOOK_AUDIT_KEY_FILE)\n"
    "      --approve STEP         approve the approval step STEP (repeatable)\n"
    "      --yes                  approve every approval step\n"
    "      --incident-start TIME  measure RTO from this RFC 3339 time instead of run start\n"
    "      --runs-dir DIR         where logs live (default ./drbook-runs); run locks\n"
    "                             live in DRBOOK_LOCK_DIR (default /run/drbook/locks)\n"
    "      --sign-key-file F      Ed25519 private key (PEM) signing the log's head at\n"
    "                             run.start, run.end and every 100 records (or\n"
    "                             DRBOOK_SIGN_KEY_FILE)\n"
    "      --evidence s3://BUCKET/PREFIX\n"
    "                             copy the log to PREFIX/RUN_ID/ after every step and at\n"
    "                             the end (or DRBOOK_EVIDENCE); unwritable at start: exit 3,\n"
    "                             a copy failing later stops the run before its next step\n"
    "      --json                 one JSON event per line on stdout\n"
    "      --quiet                print nothing but errors\n"
    "  -h, --help                 this text\n"
    "\n"
    "Exit codes: 0 succeeded, 1 failed (rolled back where declared), 2 usage or invalid\n"
    "runbook, 3 refused before any change (preflight, approval, run lock).\n";

static const char usage_plan[] =
    "usage: drbook plan RUNBOOK [options]\n"
    "\n"
    "Runs the preflight checks (read-only actions only) and prints each step that would run\n"
    "with what it waits for (needs), its interpolated arguments, its for_each items, its\n"
    "when decision and its rollback, then the critical path of the step graph. Calls no\n"
    "mutating action.\n"
    "\n"
    "RTO forecast: from the past runs and drills of the same runbook in the runs folder\n"
    "(and, with --evidence, the newest 200 runs shipped to the evidence bucket), each step's\n"
    "predicted duration (median and p95) is shown beside it, with the critical path by\n"
    "predicted duration and the predicted RTO; a warning when it exceeds the runbook's RTO\n"
    "target, \"no history\" when there is no past run.\n"
    "\n"
    "options:\n"
    "  -p, --param KEY=VALUE      set a parameter (repeatable)\n"
    "      --drill                plan as a drill\n"
    "      --audit FILE           audit log path (default ./drbook-runs/RUN_ID.jsonl)\n"
    "      --audit-key-file F     HMAC key for the audit log (or DRBOOK_AUDIT_KEY_FILE)\n"
    "      --runs-dir DIR         where logs live (default ./drbook-runs)\n"
    "      --evidence s3://BUCKET/PREFIX\n"
    "                             also forecast from the runs shipped there (or\n"
    "                             DRBOOK_EVIDENCE); read only, never fatal to the plan\n"
    "      --json                 one JSON event per line on stdout\n"
    "      --quiet                print nothing but errors\n"
    "\n"
    "Exit codes: 0 preflight passed, 2 usage or invalid runbook, 3 preflight refused.\n";

static const char usage_resume[] =
    "usage: drbook resume AUDIT|s3://BUCKET/PREFIX/RUN_ID [options]\n"
    "\n"
    "Continues the interrupted run recorded in AUDIT. Completed steps are not run again. A\n"
    "step that started but did not end is re-run only when it is idempotent, read-only, or its\n"
    "done_when check says it did not take effect; otherwise resume stops (exit 3) and names\n"
    "the step. Appends to the same log. From s3://..., the log (and runbook) is downloaded\n"
    "to the runs folder first and resumed there, shipping back to the same place.\n"
    "\n"
    "options:\n"
    "      --assume-done STEP     the interrupted STEP took effect: record it and go on\n"
    "      --retry STEP           run the interrupted STEP again\n"
    "      --approve STEP, --yes  approvals still to be given\n"
    "      --audit-key-file F     the log's HMAC key (or DRBOOK_AUDIT_KEY_FILE)\n"
    "      --sign-key-file F      sign the log's heads (or DRBOOK_SIGN_KEY_FILE)\n"
    "      --evidence s3://B/P    ship the log there (default: where run.start says)\n"
    "      --runs-dir DIR         where an s3:// log is downloaded (default ./drbook-runs)\n"
    "      --json, --quiet        output as for run\n"
    "The run takes its run locks again (DRBOOK_LOCK_DIR, default /run/drbook/locks).\n";

static const char usage_audit[] =
    "usage: drbook audit verify AUDIT|s3://BUCKET/PREFIX/RUN_ID [--key-file F]\n"
    "                           [--public-key P]\n"
    "\n"
    "Verifies the hash chain (and the HMACs, with a key) of an audit log. Prints the first\n"
    "bad line. Exit codes: 0 intact, 1 tampered (or wrong key), 2 usage or unreadable file.\n"
    "A truncated last line is reported as an interrupted write (a warning, exit 0).\n"
    "With --public-key (Ed25519, PEM) the signed heads are checked too and the log is\n"
    "proven up to its last head: a bad signature, no head, or a log whose run.end and\n"
    "final head are missing ('truncated') exit 1. An s3:// operand is downloaded from the\n"
    "evidence bucket to a scratch folder and verified.\n";

static const char usage_report[] =
    "usage: drbook report AUDIT [--format md|html|json] [--key-file F]\n"
    "\n"
    "Reads a run back from its audit log: outcome, RTO and RPO against targets, the critical\n"
    "path, every step (start, duration, attempts, calls, error), notifications, rollbacks and\n"
    "the timeline of events, with the log's integrity verdict. Markdown by default; html is\n"
    "one self-contained page that draws the run as an SVG Gantt chart (docs/operations.md).\n"
    "Exit codes: 0 written (even for a failed run), 1 the log is not intact (the report is\n"
    "still written), 2 usage or unreadable log.\n";

static const char usage_replay[] =
    "usage: drbook replay AUDIT [--runbook FILE] [--key-file F] [--json|--quiet] [--audit FILE]\n"
    "\n"
    "Verifies the log's hash chain first (and its MACs with --key-file/--audit-key-file or\n"
    "DRBOOK_AUDIT_KEY_FILE, as 'audit verify' does) and refuses a tampered log, naming the\n"
    "line and the reason, before anything is replayed. Then runs the recorded run's runbook\n"
    "again, offline: every AWS, PostgreSQL, HTTP and exec call is answered from the log's\n"
    "call records, approvals are the recorded ones, and nothing waits (sleep, until polling,\n"
    "retry backoff and approval timeouts take no real time). Then compares each step's status\n"
    "and result, and the run's status, RTO and RPO (from the recorded timestamps, where both\n"
    "are known), with the recorded ones and lists every difference (step, field, recorded,\n"
    "replayed). With --runbook, a changed runbook is tried against the recorded answers.\n"
    "Nothing outside the process is touched.\n"
    "Exit codes: 0 the same decisions, 1 they differ or the log is tampered, 2 usage or\n"
    "unreadable log.\n";

static const char usage_gameday[] =
    "usage: drbook gameday SCHEDULE [--due|--list|--history] [options]\n"
    "\n"
    "Runs, as drills, the drills of the schedule that are due, one after the other, each with\n"
    "its own audit log and run lock: an 'every' drill when it never ran or its last run (from\n"
    "the logs in the runs folder) is that old; a 'cron' drill when a firing time (UTC) has\n"
    "passed since its last run, at most 'catch_up' ago. No drill starts inside a blackout\n"
    "window. A drill that misses its RTO or RPO target fails. A drill marked 'shadow: true'\n"
    "runs as 'run --shadow' (on drill- copies; production only read). The schedule's\n"
    "notifications go out from the drill's run.\n"
    "\n"
    "options:\n"
    "      --due                  print the names of the due drills; run nothing\n"
    "      --list                 every drill: schedule, last run, outcome, next due, blackout\n"
    "      --history              every drill run so far, RTO/RPO against targets, and each\n"
    "                             scenario's RTO trend; runs nothing\n"
    "      --format text|html|json  --history's format (html: with an SVG trend chart)\n"
    "      --runs-dir DIR         where logs and run locks live (default ./drbook-runs)\n"
    "      --audit-key-file F     HMAC key for the drills' logs (or DRBOOK_AUDIT_KEY_FILE)\n"
    "      --json                 JSON: events of the drills run, --list and --history as JSON\n"
    "      --quiet                print nothing but errors\n"
    "\n"
    "Exit codes: 0 every drill run succeeded (or nothing was due), 1 a drill failed (or missed\n"
    "a target), 2 usage or an invalid schedule or runbook, 3 a drill was refused.\n"
    "See docs/gameday.md.\n";

static const char usage_readiness[] =
    "usage: drbook readiness RUNBOOK... [options]\n"
    "\n"
    "Says whether each runbook's failover could start now: runs its preflight checks, all of\n"
    "them, read-only, as `plan` does (no mutating call, no run lock taken: a readiness check\n"
    "never takes the lock from a real failover). A check the runbook skips in readiness\n"
    "checks (when: run.mode ~= \"readiness\") passes. The last check's log of each runbook is\n"
    "kept as RUNS/readiness/NAME.jsonl.\n"
    "\n"
    "options:\n"
    "  -p, --param KEY=VALUE      set a parameter of every runbook that declares KEY\n"
    "                             (repeatable; a KEY no runbook declares is an error)\n"
    "      --metrics-file F       write Prometheus metrics to F atomically (for\n"
    "                             node_exporter's textfile collector): drbook_ready,\n"
    "                             drbook_check_ok, drbook_last_run_success/_rto_seconds/\n"
    "                             _rpo_seconds (the runs folder's last run, drill, shadow)\n"
    "      --notify CHANNEL       slack, pagerduty or sns (repeatable): tell people when a\n"
    "                             runbook turns not ready and when it is ready again (once\n"
    "                             per change); configured as for the notify action\n"
    "      --runs-dir DIR         where run logs live (default ./drbook-runs)\n"
    "      --audit-key-file F     HMAC key for the checks' logs (or DRBOOK_AUDIT_KEY_FILE)\n"
    "      --json                 the result as one JSON document on stdout\n"
    "      --quiet                print nothing but errors\n"
    "\n"
    "Exit codes: 0 every runbook ready, 1 the metrics file could not be written, 2 usage or\n"
    "an invalid runbook (nothing checked), 3 one or more not ready. See docs/operations.md.\n";

typedef struct cli {
	char *params[MAX_LIST];
	size_t n_params;
	char *approve[MAX_LIST];
	size_t n_approve;
	char *assume[MAX_LIST];
	size_t n_assume;
	char *retry[MAX_LIST];
	size_t n_retry;
	const char *audit, *key_file, *incident, *runs_dir, *format, *runbook;
	const char *sign_key_file, *public_key, *evidence, *metrics_file;
	char *notify[MAX_LIST];
	size_t n_notify;
	int drill, shadow, yes, json, quiet, due, list, history;
} cli;

static int push(char **v, size_t *n, char *s, const char *what)
{
	if (*n >= MAX_LIST) {
		fprintf(stderr, "drbook: too many %s options (max %d)\n", what, MAX_LIST);
		return -1;
	}
	v[(*n)++] = s;
	return 0;
}

/* The runs shipped to the evidence bucket (newest FORECAST_EVIDENCE_RUNS), appended to runs
 * unless the runs folder has them already (the same run id). They are downloaded to a scratch
 * folder that is removed afterwards. 0, or the error (runs keeps what it had). */
#define FORECAST_EVIDENCE_RUNS 200
static int evidence_runs(const char *url, json_t *runs, size_t *fetched, drb_err *err)
{
	char tmpl[4096];
	const char *tmp = getenv("TMPDIR");
	json_t *more = NULL, *r, *have;
	size_t i, j;
	DIR *d;
	struct dirent *e;
	int rc;

	*fetched = 0;
	snprintf(tmpl, sizeof(tmpl), "%s/drbook-forecast-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(tmpl))
		return drb_err_set(err, DRB_EIO, "%s: %s", tmpl, strerror(errno));
	rc = drb_evidence_fetch_runs(url, tmpl, FORECAST_EVIDENCE_RUNS, fetched, err);
	if (rc == 0)
		rc = drb_report_runs(tmpl, &more, err);
	json_array_foreach(more, i, r)
	{
		const char *id = json_string_value(json_object_get(r, "run")), *other;
		int dup = 0;

		json_array_foreach(runs, j, have)
		{
			other = json_string_value(json_object_get(have, "run"));
			dup |= id && other && !strcmp(id, other);
		}
		if (!dup)
			json_array_append(runs, r);
	}
	json_decref(more);
	d = opendir(tmpl);
	while (d && (e = readdir(d)) != NULL) {
		char f[4400];

		if (e->d_name[0] == '.')
			continue;
		snprintf(f, sizeof(f), "%s/%s", tmpl, e->d_name);
		unlink(f);
	}
	if (d)
		closedir(d);
	rmdir(tmpl);
	return rc;
}

/* plan: each step's predicted duration from the past runs and drills of the runbook in the
 * runs folder (the logs `gameday --history` reads) and, with an evidence bucket, those shipped
 * there, and the predicted RTO against the target. A folder or bucket that cannot be read is
 * said in the forecast, never fatal to the plan. */
static void plan_forecast(const drb_runbook *rb, const char *runs_dir, const char *evidence,
			  drb_run_result *res)
{
	const char *dir = runs_dir ? runs_dir : "drbook-runs";
	json_t *runs = NULL, *pre = json_array();
	drb_err err = {0}, everr = {0};
	size_t fetched = 0;
	int evrc = 0;

	for (size_t i = 0; pre && i < rb->n_preflight; i++)
		json_array_append_new(pre, json_string(rb->preflight[i].id));
	if (pre && drb_report_runs(dir, &runs, &err) == 0 && evidence)
		evrc = evidence_runs(evidence, runs, &fetched, &everr);
	if (!pre || !runs ||
	    drb_report_forecast(runs, rb->name, res->plan, pre, rb->target_rto_s, &res->forecast,
				&err)) {
		json_decref(res->forecast);
		res->forecast = json_pack("{s:I, s:b, s:s}", "runs", (json_int_t)0, "history", 0,
					  "error", err.msg[0] ? err.msg : "out of memory");
	}
	if (res->forecast) {
		json_object_set_new(res->forecast, "runs_dir", json_string(dir));
		if (evidence) {
			json_object_set_new(res->forecast, "evidence", json_string(evidence));
			json_object_set_new(res->forecast, "evidence_logs",
					    json_integer((json_int_t)fetched));
			if (evrc)
				json_object_set_new(res->forecast, "evidence_error",
						    json_string(everr.msg));
		}
	}
	json_decref(runs);
	json_decref(pre);
}

/* Parses options of run/plan/resume; returns the index of the first operand or -1. */
/* Parses the options of a command; `allowed` lists the long option names that command takes
 * (space separated, "help" is always allowed). Returns the index of the first operand or -1. */
static int parse(int argc, char **argv, cli *c, const char *usage, const char *allowed)
{
	enum {
		O_DRILL = 256,
		O_AUDIT,
		O_KEY,
		O_APPROVE,
		O_YES,
		O_JSON,
		O_QUIET,
		O_INCIDENT,
		O_ASSUME,
		O_RETRY,
		O_RUNS,
		O_FORMAT,
		O_RUNBOOK,
		O_DUE,
		O_LIST,
		O_HISTORY,
		O_SIGN,
		O_PUB,
		O_EVIDENCE,
		O_METRICS,
		O_NOTIFY,
		O_SHADOW
	};
	static const struct option opts[] = {
	    {"param", required_argument, NULL, 'p'},
	    {"drill", no_argument, NULL, O_DRILL},
	    {"shadow", no_argument, NULL, O_SHADOW},
	    {"audit", required_argument, NULL, O_AUDIT},
	    {"audit-key-file", required_argument, NULL, O_KEY},
	    {"key-file", required_argument, NULL, O_KEY},
	    {"approve", required_argument, NULL, O_APPROVE},
	    {"yes", no_argument, NULL, O_YES},
	    {"json", no_argument, NULL, O_JSON},
	    {"quiet", no_argument, NULL, O_QUIET},
	    {"incident-start", required_argument, NULL, O_INCIDENT},
	    {"assume-done", required_argument, NULL, O_ASSUME},
	    {"retry", required_argument, NULL, O_RETRY},
	    {"runs-dir", required_argument, NULL, O_RUNS},
	    {"format", required_argument, NULL, O_FORMAT},
	    {"runbook", required_argument, NULL, O_RUNBOOK},
	    {"due", no_argument, NULL, O_DUE},
	    {"list", no_argument, NULL, O_LIST},
	    {"history", no_argument, NULL, O_HISTORY},
	    {"sign-key-file", required_argument, NULL, O_SIGN},
	    {"public-key", required_argument, NULL, O_PUB},
	    {"evidence", required_argument, NULL, O_EVIDENCE},
	    {"metrics-file", required_argument, NULL, O_METRICS},
	    {"notify", required_argument, NULL, O_NOTIFY},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int ch, idx = -1;

	/* glibc permutes argv, so options may follow the operand: drbook run x.yaml -p a=b */
	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "p:h", opts, &idx)) != -1) {
		const char *name = ch == 'p' ? "param" : ch == 'h' ? "help" : NULL;
		char want[64];

		if (!name && ch != '?' && ch != ':' && idx >= 0)
			name = opts[idx].name;
		snprintf(want, sizeof(want), " %s ", name ? name : "");
		if (name && strcmp(name, "help") && !strstr(allowed, want)) {
			fprintf(stderr, "drbook: option --%s does not apply here\n\n%s", name,
				usage);
			return -1;
		}
		idx = -1;
		switch (ch) {
		case 'p':
			if (!strchr(optarg, '=')) {
				fprintf(stderr, "drbook: -p expects KEY=VALUE, got '%s'\n", optarg);
				return -1;
			}
			if (push(c->params, &c->n_params, optarg, "-p"))
				return -1;
			break;
		case O_DRILL:
			c->drill = 1;
			break;
		case O_SHADOW:
			c->shadow = 1;
			break;
		case O_AUDIT:
			c->audit = optarg;
			break;
		case O_KEY:
			c->key_file = optarg;
			break;
		case O_APPROVE:
			if (push(c->approve, &c->n_approve, optarg, "--approve"))
				return -1;
			break;
		case O_YES:
			c->yes = 1;
			break;
		case O_JSON:
			c->json = 1;
			break;
		case O_QUIET:
			c->quiet = 1;
			break;
		case O_INCIDENT:
			c->incident = optarg;
			break;
		case O_ASSUME:
			if (push(c->assume, &c->n_assume, optarg, "--assume-done"))
				return -1;
			break;
		case O_RETRY:
			if (push(c->retry, &c->n_retry, optarg, "--retry"))
				return -1;
			break;
		case O_RUNS:
			if (!*optarg) {
				fprintf(stderr, "drbook: --runs-dir needs a folder, not an empty "
						"string\n");
				return -1;
			}
			c->runs_dir = optarg;
			break;
		case O_FORMAT:
			c->format = optarg;
			break;
		case O_RUNBOOK:
			c->runbook = optarg;
			break;
		case O_DUE:
			c->due = 1;
			break;
		case O_LIST:
			c->list = 1;
			break;
		case O_HISTORY:
			c->history = 1;
			break;
		case O_SIGN:
			c->sign_key_file = optarg;
			break;
		case O_PUB:
			c->public_key = optarg;
			break;
		case O_EVIDENCE:
			c->evidence = optarg;
			break;
		case O_METRICS:
			c->metrics_file = optarg;
			break;
		case O_NOTIFY:
			if (strcmp(optarg, "slack") && strcmp(optarg, "pagerduty") &&
			    strcmp(optarg, "sns")) {
				fprintf(
				    stderr,
				    "drbook: --notify takes slack, pagerduty or sns, not '%s'\n",
				    optarg);
				return -1;
			}
			if (push(c->notify, &c->n_notify, optarg, "--notify"))
				return -1;
			break;
		case 'h':
			fputs(usage, stdout);
			exit(0);
		default:
			fprintf(stderr, "drbook: unknown or incomplete option '%s'\n\n%s",
				argv[optind - 1], usage);
			return -1;
		}
	}
	return optind;
}

/* The engine's own Lua library: DRBOOK_LUA_DIR, else where the build put it. */
static const char *lua_dir(void)
{
	const char *d = getenv("DRBOOK_LUA_DIR");

	return d && *d ? d : DRB_LUA_DIR;
}

/* Loads and validates a runbook (drb_engine_load). Prints the problems. Returns 0 or
 * DRB_EINVAL. */
static int load(const char *path, drb_runbook **out)
{
	drb_diags d;
	int rc;

	drb_diags_init(&d, path);
	rc = drb_engine_load(path, lua_dir(), out, &d);
	if (rc)
		drb_diags_print(&d, stderr);
	drb_diags_free(&d);
	return rc;
}

/* A secret key others on the machine can read is no secret: say so (the run goes on, since
 * refusing at 3 a.m. over a mode bit helps nobody). */
static void warn_loose_key(const char *path, const char *what)
{
	struct stat st;

	if (stat(path, &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)))
		fprintf(stderr,
			"drbook: warning: %s %s is readable or writable by group or others "
			"(mode %03o): chmod 600 it\n",
			what, path, (unsigned)(st.st_mode & 0777));
}

static int load_key(const cli *c, unsigned char **key, size_t *len)
{
	const char *f = c->key_file ? c->key_file : getenv("DRBOOK_AUDIT_KEY_FILE");
	drb_err err = {0};

	*key = NULL;
	*len = 0;
	if (!f || !*f)
		return 0;
	warn_loose_key(f, "audit key file");
	if (drb_audit_key_load(f, key, len, &err)) {
		fprintf(stderr, "drbook: audit key: %s\n", err.msg);
		return -1;
	}
	return 0;
}

static void free_key(unsigned char *key, size_t len)
{
	if (key) {
		OPENSSL_cleanse(key, len);
		free(key);
	}
}

/* --sign-key-file (or DRBOOK_SIGN_KEY_FILE): the Ed25519 key that signs the log's heads. */
static int load_sign_key(const cli *c, drb_audit_signkey **out)
{
	const char *f = c->sign_key_file ? c->sign_key_file : getenv("DRBOOK_SIGN_KEY_FILE");
	drb_err err = {0};

	*out = NULL;
	if (!f || !*f)
		return 0;
	warn_loose_key(f, "signing key file");
	if (drb_audit_signkey_load(out, f, 1, &err)) {
		fprintf(stderr, "drbook: %s\n", err.msg);
		return -1;
	}
	return 0;
}

/* --evidence (or DRBOOK_EVIDENCE); "" from the environment means none. */
static const char *evidence_of(const cli *c)
{
	const char *e = c->evidence ? c->evidence : getenv("DRBOOK_EVIDENCE");

	return e && *e ? e : NULL;
}

/* The one place where error codes become exit codes. */
static int exit_for(int code)
{
	switch (code) {
	case 0:
		return DRB_EXIT_OK;
	case DRB_EINVAL:
	case DRB_ENOTFOUND:
		return DRB_EXIT_USAGE;
	case DRB_EDENIED:
		return DRB_EXIT_REFUSED;
	default:
		return DRB_EXIT_FAILED;
	}
}

static int cmd_validate(int argc, char **argv)
{
	int bad = 0;

	if (argc < 2) {
		fputs(usage_validate, stderr);
		return DRB_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		fputs(usage_validate, stdout);
		return 0;
	}
	for (int i = 1; i < argc; i++) {
		drb_runbook *rb = NULL;

		if (load(argv[i], &rb))
			bad = 1;
		drb_runbook_free(rb);
	}
	return bad ? DRB_EXIT_USAGE : DRB_EXIT_OK;
}

static void fill_opts(drb_engine_opts *o, cli *c, const unsigned char *key, size_t klen)
{
	memset(o, 0, sizeof(*o));
	o->params_kv = c->params;
	o->n_params_kv = c->n_params;
	o->drill = c->drill || c->shadow; /* a shadow drill is a drill */
	o->shadow = c->shadow;
	o->audit_path = c->audit;
	o->runs_dir = c->runs_dir;
	o->key = key;
	o->key_len = klen;
	o->approve = c->approve;
	o->n_approve = c->n_approve;
	o->yes = c->yes;
	o->incident_start = c->incident;
	o->assume_done = c->assume;
	o->n_assume_done = c->n_assume;
	o->retry_steps = c->retry;
	o->n_retry_steps = c->n_retry;
	o->interrupt = &interrupted;
	o->lua_dir = lua_dir();
}

static int cmd_run(int argc, char **argv, drb_run_mode mode)
{
	cli c = {0};
	drb_runbook *rb = NULL;
	drb_engine_opts o;
	drb_run_result res;
	drb_progress *p = NULL;
	drb_err err = {0};
	unsigned char *key = NULL;
	size_t klen = 0;
	drb_audit_signkey *sk = NULL;
	const char *usage = mode == DRB_MODE_PLAN ? usage_plan : usage_run;
	int first = parse(argc, argv, &c, usage,
			  mode == DRB_MODE_PLAN
			      ? " param drill audit audit-key-file key-file runs-dir json quiet "
				"incident-start evidence "
			      : " param drill shadow audit audit-key-file key-file approve yes "
				"incident-start runs-dir json quiet sign-key-file evidence "),
	    rc;

	memset(&res, 0, sizeof(res));
	if (first < 0)
		return DRB_EXIT_USAGE;
	if (first >= argc || argc - first != 1) {
		fprintf(stderr, "drbook: %s needs exactly one RUNBOOK\n\n%s", argv[0], usage);
		return DRB_EXIT_USAGE;
	}
	if (load(argv[first], &rb))
		return DRB_EXIT_USAGE;
	if (load_key(&c, &key, &klen) || (mode != DRB_MODE_PLAN && load_sign_key(&c, &sk))) {
		rc = DRB_EXIT_USAGE;
		goto out;
	}
	fill_opts(&o, &c, key, klen);
	o.mode = mode;
	o.sign_key = sk;
	if (mode != DRB_MODE_PLAN)
		o.evidence = evidence_of(&c);
	p = drb_progress_new(c.json, c.quiet, &o.sink);
	rc = drb_engine_run(rb, &o, &res, &err);
	if (rc) {
		drb_progress_free(p);
		p = NULL;
		fprintf(stderr, "drbook: %s\n", err.msg);
		rc = exit_for(rc);
		goto out;
	}
	if (mode == DRB_MODE_PLAN && res.plan)
		plan_forecast(rb, c.runs_dir, evidence_of(&c), &res);
	drb_progress_finish(p, rb, &res);
	/* the reason also goes to stderr, unless a person already reads it in the summary */
	if (res.exit_code && res.error[0] && (c.quiet || c.json || !isatty(STDOUT_FILENO)))
		fprintf(stderr, "drbook: %s\n", res.error);
	rc = res.exit_code;
out:
	drb_progress_free(p);
	drb_run_result_free(&res);
	drb_runbook_free(rb);
	free_key(key, klen);
	drb_audit_signkey_free(sk);
	return rc;
}

static int cmd_resume(int argc, char **argv)
{
	cli c = {0};
	drb_engine_opts o;
	drb_run_result res;
	drb_progress *p = NULL;
	drb_err err = {0};
	unsigned char *key = NULL;
	size_t klen = 0;
	drb_audit_signkey *sk = NULL;
	char logp[4096], rbp[4096], base[1200];
	const char *audit;
	int first = parse(argc, argv, &c, usage_resume,
			  " assume-done retry approve yes audit-key-file key-file runs-dir json "
			  "quiet sign-key-file evidence "),
	    rc;

	memset(&res, 0, sizeof(res));
	if (first < 0)
		return DRB_EXIT_USAGE;
	if (first >= argc || argc - first != 1) {
		fprintf(stderr, "drbook: resume needs exactly one AUDIT log\n\n%s", usage_resume);
		return DRB_EXIT_USAGE;
	}
	audit = argv[first];
	if (load_key(&c, &key, &klen))
		return DRB_EXIT_USAGE;
	if (load_sign_key(&c, &sk)) {
		free_key(key, klen);
		return DRB_EXIT_USAGE;
	}
	fill_opts(&o, &c, key, klen);
	o.sign_key = sk;
	o.evidence = evidence_of(&c);
	if (!strncmp(argv[first], "s3://", 5)) {
		/* another machine: fetch the log into the runs folder, resume it there, and keep
		 * shipping to the same place */
		rc = drb_evidence_fetch(argv[first], c.runs_dir, logp, sizeof(logp), rbp,
					sizeof(rbp), base, sizeof(base), &err);
		if (rc) {
			fprintf(stderr, "drbook: resume: %s\n", err.msg);
			rc = exit_for(rc);
			goto out;
		}
		audit = logp;
		o.runbook_fallback = rbp[0] ? rbp : NULL;
		if (!o.evidence)
			o.evidence = base;
	}
	p = drb_progress_new(c.json, c.quiet, &o.sink);
	rc = drb_engine_resume(audit, &o, &res, &err);
	if (rc) {
		drb_progress_free(p);
		p = NULL;
		fprintf(stderr, "drbook: resume: %s\n", err.msg);
		rc = rc == DRB_EINTEGRITY ? DRB_EXIT_FAILED : exit_for(rc);
		goto out;
	}
	drb_progress_finish(p, NULL, &res);
	if (res.exit_code && res.error[0] && (c.quiet || c.json || !isatty(STDOUT_FILENO)))
		fprintf(stderr, "drbook: %s\n", res.error);
	rc = res.exit_code;
out:
	drb_progress_free(p);
	drb_run_result_free(&res);
	free_key(key, klen);
	drb_audit_signkey_free(sk);
	return rc;
}

static int cmd_audit(int argc, char **argv)
{
	cli c = {0};
	drb_verify_result vr;
	drb_err err = {0};
	unsigned char *key = NULL;
	size_t klen = 0;
	drb_audit_signkey *pub = NULL;
	char dir[4096] = "", local[4096] = "";
	const char *path;
	int first, rc;

	if (argc < 2 ||
	    (strcmp(argv[1], "verify") && strcmp(argv[1], "-h") && strcmp(argv[1], "--help"))) {
		fputs(usage_audit, stderr);
		return DRB_EXIT_USAGE;
	}
	if (argv[1][0] == '-') {
		fputs(usage_audit, stdout);
		return 0;
	}
	first = parse(argc - 1, argv + 1, &c, usage_audit,
		      " key-file audit-key-file quiet public-key ");
	if (first < 0)
		return DRB_EXIT_USAGE;
	if (first >= argc - 1 || argc - 1 - first != 1) {
		fputs(usage_audit, stderr);
		return DRB_EXIT_USAGE;
	}
	if (load_key(&c, &key, &klen))
		return DRB_EXIT_USAGE;
	if (c.public_key && drb_audit_signkey_load(&pub, c.public_key, 0, &err)) {
		free_key(key, klen);
		fprintf(stderr, "drbook: audit verify: %s\n", err.msg);
		return DRB_EXIT_USAGE;
	}
	memset(&vr, 0, sizeof(vr));
	path = argv[1 + first];
	if (!strncmp(path, "s3://", 5)) {
		/* verified from a private scratch copy, removed afterwards */
		const char *tmp = getenv("TMPDIR");
		char rbp[4096], base[1200];

		snprintf(dir, sizeof(dir), "%s/drbook-verify-XXXXXX", tmp && *tmp ? tmp : "/tmp");
		if (!mkdtemp(dir)) {
			fprintf(stderr,
				"drbook: audit verify: %s: cannot create a scratch folder\n", dir);
			rc = DRB_EXIT_USAGE;
			goto done;
		}
		rc = drb_evidence_fetch(path, dir, local, sizeof(local), rbp, sizeof(rbp), base,
					sizeof(base), &err);
		if (rbp[0])
			unlink(rbp);
		if (rc) {
			fprintf(stderr, "drbook: audit verify: %s\n", err.msg);
			rc = DRB_EXIT_USAGE;
			goto done;
		}
		path = local;
	}
	rc = drb_audit_verify_signed(path, key, klen, pub, &vr, &err);
	path = argv[1 + first];
	if (rc) {
		fprintf(stderr, "drbook: audit verify: %s\n", err.msg);
		rc = DRB_EXIT_USAGE;
	} else if (vr.kind == DRB_VERIFY_OK) {
		if (!c.quiet)
			printf("%s: ok: %s\n", path, vr.msg);
	} else if (vr.kind == DRB_VERIFY_TRUNCATED) {
		/* a crash, not tampering: every complete record verified (exit 1 means tampered) */
		fprintf(stderr, "%s:%ld: warning: %s\n", path, vr.line, vr.msg);
		if (!c.quiet)
			printf(
			    "%s: ok up to line %ld (%ld complete records verified); the last line "
			    "is an interrupted write\n",
			    path, vr.line - 1, vr.records);
	} else {
		fprintf(stderr, "%s:%ld: %s\n", path, vr.line, vr.msg);
		rc = DRB_EXIT_FAILED;
	}
done:
	if (local[0])
		unlink(local);
	if (dir[0])
		rmdir(dir);
	free_key(key, klen);
	drb_audit_signkey_free(pub);
	return rc;
}

static int cmd_replay(int argc, char **argv)
{
	cli c = {0};
	drb_engine_opts o;
	drb_run_result res;
	drb_progress *p = NULL;
	drb_err err = {0};
	json_t *diff = NULL, *d;
	size_t i;
	unsigned char *key = NULL;
	size_t klen = 0;
	int first = parse(argc, argv, &c, usage_replay,
			  " runbook json quiet audit runs-dir key-file audit-key-file "),
	    rc;

	memset(&res, 0, sizeof(res));
	if (first < 0)
		return DRB_EXIT_USAGE;
	if (first >= argc || argc - first != 1) {
		fputs(usage_replay, stderr);
		return DRB_EXIT_USAGE;
	}
	if (load_key(&c, &key, &klen))
		return DRB_EXIT_USAGE;
	fill_opts(&o, &c, key, klen);
	c.yes = 0;
	p = drb_progress_new(c.json, c.quiet, &o.sink);
	o.sink.ask = NULL;
	rc = drb_engine_replay(argv[first], c.runbook, &o, &res, &err);
	if (rc) {
		drb_progress_free(p);
		free_key(key, klen);
		fprintf(stderr, "drbook: replay: %s\n", err.msg);
		/* a tampered log is the log's verdict, like 'audit verify': 1 */
		return rc == DRB_EINTEGRITY ? DRB_EXIT_FAILED : DRB_EXIT_USAGE;
	}
	diff = res.plan;
	res.plan = NULL;
	drb_progress_finish(p, NULL, &res);
	if (!c.quiet && !c.json) {
		printf("\nreplay of %s: %s\n", argv[first],
		       json_array_size(diff) ? "decisions DIVERGED" : "the same decisions");
		json_array_foreach(diff, i, d)
		    printf("  %-24s %-7s recorded %-14s replayed %s\n",
			   json_string_value(json_object_get(d, "step")),
			   json_string_value(json_object_get(d, "field")),
			   json_string_value(json_object_get(d, "recorded")),
			   json_string_value(json_object_get(d, "replayed")));
	} else if (c.json) {
		json_t *o2 = json_pack("{s:s, s:O}", "event", "replay", "diff", diff);
		char *txt = json_dumps(o2, JSON_COMPACT | JSON_PRESERVE_ORDER);

		if (txt)
			printf("%s\n", txt);
		free(txt);
		json_decref(o2);
	}
	rc = res.exit_code;
	json_decref(diff);
	drb_progress_free(p);
	drb_run_result_free(&res);
	free_key(key, klen);
	return rc;
}

/* Which exit code wins when several drills end differently: failed, usage, refused, ok. */
static int severity(int code)
{
	switch (code) {
	case DRB_EXIT_FAILED:
		return 3;
	case DRB_EXIT_USAGE:
		return 2;
	case DRB_EXIT_REFUSED:
		return 1;
	default:
		return 0;
	}
}

/* The newest run of drill among runs (drb_report_runs, oldest first); NULL when none. */
static const json_t *last_run(const json_t *runs, const char *drill)
{
	for (size_t i = json_array_size(runs); i-- > 0;) {
		const json_t *r = json_array_get(runs, i);

		if (!strcmp(json_string_value(json_object_get(r, "gameday")) ?: "", drill))
			return r;
	}
	return NULL;
}

/* --history: every drill of the schedule from the runs folder's logs, and the trends. A
 * drill's runbook gives the targets for logs that did not record them. */
static int gameday_history(const drb_schedule *s, const char *runs_dir, drb_report_format fmt)
{
	drb_history_drill *hd = calloc(s->n_drills, sizeof(*hd));
	drb_runbook **rbs = calloc(s->n_drills, sizeof(*rbs));
	json_t *runs = NULL, *h = NULL;
	drb_err err = {0};
	int rc = DRB_EXIT_OK;

	if (!hd || !rbs) {
		fprintf(stderr, "drbook: out of memory\n");
		rc = DRB_EXIT_FAILED;
		goto out;
	}
	for (size_t i = 0; i < s->n_drills; i++) {
		drb_diags d;

		drb_diags_init(&d, s->drills[i].runbook);
		hd[i] = (drb_history_drill){s->drills[i].name, s->drills[i].runbook, -1, -1};
		/* a runbook that no longer loads still has a history */
		if (drb_runbook_load(&rbs[i], s->drills[i].runbook, NULL, &d) == 0) {
			hd[i].target_rto_s = rbs[i]->target_rto_s;
			hd[i].target_rpo_s = rbs[i]->target_rpo_s;
		}
		drb_diags_free(&d);
	}
	if (drb_report_runs(runs_dir, &runs, &err) ||
	    drb_report_history(runs, hd, s->n_drills, &h, &err) ||
	    drb_report_history_write(h, fmt, stdout, &err)) {
		fprintf(stderr, "drbook: gameday --history: %s\n", err.msg);
		rc = DRB_EXIT_FAILED;
	}
out:
	for (size_t i = 0; rbs && i < s->n_drills; i++)
		drb_runbook_free(rbs[i]);
	free(rbs);
	free(hd);
	json_decref(runs);
	json_decref(h);
	return rc;
}

/* One drill, run now: as a drill, granted what the schedule grants, its missed targets a
 * failure, its notifications sent by the run (so they are in its log). */
static int gameday_drill(const drb_drill *dr, cli *c, const char *runs, const unsigned char *key,
			 size_t klen)
{
	drb_runbook *rb = NULL;
	drb_engine_opts o;
	drb_run_result res;
	drb_progress *p;
	drb_err err = {0};
	int code;

	memset(&res, 0, sizeof(res));
	if (!c->quiet && !c->json)
		printf("== drill %s: %s%s\n", dr->name, dr->runbook,
		       dr->shadow ? " (shadow)" : "");
	if (load(dr->runbook, &rb))
		return DRB_EXIT_USAGE;
	fill_opts(&o, c, key, klen);
	o.drill = 1;
	o.shadow = dr->shadow;
	o.params_kv = dr->params;
	o.n_params_kv = dr->n_params;
	o.approve = dr->approve;
	o.n_approve = dr->n_approve;
	o.yes = dr->yes;
	o.runs_dir = runs;
	o.audit_path = NULL;
	o.gameday = dr->name;
	o.notify = dr->notify;
	o.n_notify = dr->n_notify;
	o.targets_required = 1;
	p = drb_progress_new(c->json, c->quiet, &o.sink);
	o.sink.ask = NULL; /* game days answer no questions */
	if (drb_engine_run(rb, &o, &res, &err)) {
		fprintf(stderr, "drbook: drill %s: %s\n", dr->name, err.msg);
		code = DRB_EXIT_USAGE;
	} else {
		drb_progress_finish(p, rb, &res);
		code = res.exit_code;
		if (code && c->quiet && res.error[0])
			fprintf(stderr, "drbook: drill %s: %s\n", dr->name, res.error);
	}
	drb_progress_free(p);
	drb_run_result_free(&res);
	drb_runbook_free(rb);
	return code;
}

static int cmd_gameday(int argc, char **argv)
{
	cli c = {0};
	drb_schedule *s = NULL;
	drb_diags d;
	drb_err err = {0};
	json_t *runs = NULL, *listing = NULL;
	const char *runs_dir;
	int first = parse(argc, argv, &c, usage_gameday,
			  " due list history format runs-dir json quiet audit-key-file key-file "),
	    rc = DRB_EXIT_OK, ran[4] = {0}, blacked = 0;
	drb_report_format fmt = DRB_REPORT_MD;
	unsigned char *key = NULL;
	size_t klen = 0;

	if (first < 0)
		return DRB_EXIT_USAGE;
	if (first >= argc || argc - first != 1 || c.due + c.list + c.history > 1 ||
	    (c.format && !c.history)) {
		fputs(usage_gameday, stderr);
		return DRB_EXIT_USAGE;
	}
	if (c.format && !strcmp(c.format, "html"))
		fmt = DRB_REPORT_HTML;
	else if ((c.format && !strcmp(c.format, "json")) || c.json)
		fmt = DRB_REPORT_JSON;
	else if (c.format && strcmp(c.format, "text") && strcmp(c.format, "md")) {
		fprintf(stderr, "drbook: --format must be text, html or json\n");
		return DRB_EXIT_USAGE;
	}
	runs_dir = c.runs_dir ? c.runs_dir : "drbook-runs";
	drb_diags_init(&d, argv[first]);
	if (drb_schedule_load(&s, argv[first], &d)) {
		drb_diags_print(&d, stderr);
		drb_diags_free(&d);
		return DRB_EXIT_USAGE;
	}
	drb_diags_free(&d);
	if (c.history) {
		rc = gameday_history(s, runs_dir, fmt);
		goto out;
	}
	if (load_key(&c, &key, &klen)) { /* drills sign their logs like any run */
		rc = DRB_EXIT_USAGE;
		goto out;
	}
	if (drb_report_runs(runs_dir, &runs, &err)) {
		fprintf(stderr, "drbook: gameday: %s\n", err.msg);
		rc = DRB_EXIT_FAILED;
		goto out;
	}
	if (c.list && c.json)
		listing = json_array();
	else if (c.list)
		printf("%-32s %-26s %-24s %-12s %s\n", "drill", "schedule", "last run", "outcome",
		       "next due");
	for (size_t i = 0; i < s->n_drills && !interrupted; i++) {
		const drb_drill *dr = &s->drills[i];
		const json_t *last = last_run(runs, dr->name);
		const drb_blackout *bo;
		/* drills run one after the other: each is judged at its own start */
		int64_t now_s = drb_wall_ms() / 1000, at = 0, until = 0,
			last_s = json_integer_value(json_object_get(last, "started_ms")) / 1000;
		int due = drb_schedule_due(dr, last_s, now_s, &at), code;
		char sched[64], next[160], when[32];

		bo = drb_schedule_blackout(s, dr, due ? now_s : at, &until);
		if (c.list) {
			if (dr->has_cron) {
				snprintf(sched, sizeof(sched), "cron %s", dr->cron_src);
			} else {
				char e[32];

				drb_duration_format(dr->every_s, e, sizeof(e));
				snprintf(sched, sizeof(sched), "every %s", e);
			}
			if (dr->shadow && strlen(sched) + 8 < sizeof(sched))
				strcat(sched, ", shadow");
			if (!dr->enabled) {
				snprintf(next, sizeof(next), "disabled");
			} else {
				if (due)
					snprintf(next, sizeof(next), "now");
				else
					drb_rfc3339_s(at * 1000, next);
				if (bo) {
					drb_rfc3339_s(until * 1000, when);
					snprintf(next + strlen(next), sizeof(next) - strlen(next),
						 ", blackout until %s%s%s", when,
						 bo->reason ? ": " : "",
						 bo->reason ? bo->reason : "");
				}
			}
			if (listing) {
				json_array_append_new(
				    listing,
				    json_pack(
					"{s:s, s:s, s:s?, s:s?, s:b, s:s}", "drill", dr->name,
					"schedule", sched, "last_run",
					json_string_value(json_object_get(last, "started_at")),
					"last_outcome",
					json_string_value(json_object_get(last, "outcome")), "due",
					due && !bo, "next_due", next));
				continue;
			}
			printf("%-32s %-26s %-24s %-12s %s\n", dr->name, sched,
			       last ? json_string_value(json_object_get(last, "started_at")) : "-",
			       last ? json_string_value(json_object_get(last, "outcome")) : "never",
			       next);
			continue;
		}
		if (!due)
			continue;
		if (bo) {
			/* due, but no drill may start now; it stays due (cron: within catch_up) */
			blacked++;
			drb_rfc3339_s(until * 1000, when);
			if (!c.quiet && !c.json && !c.due)
				printf("== drill %s: due, not run: blackout until %s%s%s\n",
				       dr->name, when, bo->reason ? ": " : "",
				       bo->reason ? bo->reason : "");
			continue;
		}
		if (c.due) {
			printf("%s\n", dr->name);
			continue;
		}
		code = gameday_drill(dr, &c, runs_dir, key, klen);
		ran[code == DRB_EXIT_OK	       ? 0
		    : code == DRB_EXIT_FAILED  ? 1
		    : code == DRB_EXIT_REFUSED ? 2
					       : 3]++;
		if (severity(code) > severity(rc))
			rc = code;
	}
	if (listing) {
		char *txt = json_dumps(listing, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

		if (txt)
			printf("%s\n", txt);
		free(txt);
	} else if (!c.list && !c.due && !c.quiet && !c.json) {
		printf(
		    "game day: %d drill(s) ran: %d succeeded, %d failed, %d refused, %d invalid; "
		    "%d due in a blackout window\n",
		    ran[0] + ran[1] + ran[2] + ran[3], ran[0], ran[1], ran[2], ran[3], blacked);
	}
out:
	json_decref(runs);
	json_decref(listing);
	drb_schedule_free(s);
	free_key(key, klen);
	return rc;
}

static int cmd_report(int argc, char **argv)
{
	cli c = {0};
	drb_report_format fmt = DRB_REPORT_MD;
	drb_err err = {0};
	json_t *model = NULL;
	unsigned char *key = NULL;
	size_t klen = 0;
	int first = parse(argc, argv, &c, usage_report, " format key-file audit-key-file "), rc;

	if (first < 0)
		return DRB_EXIT_USAGE;
	if (first >= argc || argc - first != 1) {
		fputs(usage_report, stderr);
		return DRB_EXIT_USAGE;
	}
	if (c.format && !strcmp(c.format, "html")) {
		fmt = DRB_REPORT_HTML;
	} else if (c.format && !strcmp(c.format, "json")) {
		fmt = DRB_REPORT_JSON;
	} else if (c.format && strcmp(c.format, "md")) {
		fprintf(stderr, "drbook: --format must be md, html or json\n");
		return DRB_EXIT_USAGE;
	}
	if (load_key(&c, &key, &klen))
		return DRB_EXIT_USAGE;
	rc = drb_report_build(argv[first], key, klen, &model, &err);
	free_key(key, klen);
	if (rc) {
		fprintf(stderr, "drbook: report: %s\n", err.msg);
		return DRB_EXIT_USAGE;
	}
	if (drb_report_write(model, fmt, stdout, &err)) {
		fprintf(stderr, "drbook: report: %s\n", err.msg);
		rc = DRB_EXIT_FAILED;
	} else {
		rc = json_is_true(json_object_get(json_object_get(model, "integrity"), "ok"))
			 ? DRB_EXIT_OK
			 : DRB_EXIT_FAILED;
	}
	json_decref(model);
	return rc;
}

/* ---- readiness ---------------------------------------------------------------------------- */

/* The mode a run counts under in drbook_last_run_success: run, drill or shadow; NULL for
 * plans and readiness checks. */
static const char *run_mode_label(const json_t *run)
{
	const char *m = json_string_value(json_object_get(run, "mode"));

	if (m && (!strcmp(m, "plan") || !strcmp(m, "readiness")))
		return NULL;
	if (m && !strcmp(m, "shadow"))
		return "shadow";
	return json_is_true(json_object_get(run, "drill")) ? "drill" : "run";
}

/* The newest run of runbook `name` in each mode, from the runs folder's logs as read by
 * drb_report_runs (gameday --history's reader). A new array. */
static json_t *last_runs_of(const json_t *runs, const char *name)
{
	static const char *const modes[] = {"run", "drill", "shadow"};
	json_t *out = json_array();

	for (size_t m = 0; out && m < 3; m++)
		for (size_t i = json_array_size(runs); i-- > 0;) {
			const json_t *r = json_array_get(runs, i);
			const char *label = run_mode_label(r);
			const char *outcome = json_string_value(json_object_get(r, "outcome"));
			json_t *o;

			if (!label || strcmp(label, modes[m]) ||
			    strcmp(json_string_value(json_object_get(r, "name")) ?: "", name))
				continue;
			o = json_pack("{s:s, s:b, s:s?, s:O?, s:O?, s:O?, s:O?}", "mode", modes[m],
				      "success", outcome && !strcmp(outcome, "succeeded"), "status",
				      outcome, "rto_s", json_object_get(r, "rto_s"), "rpo_s",
				      json_object_get(r, "rpo_s"), "run", json_object_get(r, "run"),
				      "ended_at", json_object_get(r, "ended_at"));
			if (o)
				json_array_append_new(out, o);
			break;
		}
	return out;
}

/* A runbook name as a file name: anything but letters, digits, '-' and '_' becomes '_'. */
static void file_name_of(const char *name, char *out, size_t n)
{
	size_t i = 0;

	for (; name[i] && i + 1 < n; i++)
		out[i] = isalnum((unsigned char)name[i]) || name[i] == '-' || name[i] == '_'
			     ? name[i]
			     : '_';
	out[i] = '\0';
}

/* What the last readiness check of a runbook said ("ready", "not-ready"), or "" when there
 * was none: notifications go out on a change only. */
static void readiness_state(const char *path, char *out, size_t n)
{
	FILE *f = fopen(path, "r");

	out[0] = '\0';
	if (!f)
		return;
	if (!fgets(out, (int)n, f))
		out[0] = '\0';
	out[strcspn(out, "\n")] = '\0';
	fclose(f);
}

static void readiness_state_write(const char *path, const char *state)
{
	char tmp[4600];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	f = fopen(tmp, "w");
	if (!f)
		return;
	fprintf(f, "%s\n", state);
	if (fclose(f) != 0 || rename(tmp, path) != 0)
		unlink(tmp);
}

/* The -p values rb declares (pointers borrowed from c->params). */
static size_t params_for(const drb_runbook *rb, const cli *c, char **out)
{
	size_t n = 0;

	for (size_t i = 0; i < c->n_params; i++) {
		size_t k = strcspn(c->params[i], "=");

		for (size_t j = 0; j < rb->n_params; j++)
			if (strlen(rb->params[j].name) == k &&
			    !strncmp(rb->params[j].name, c->params[i], k))
				out[n++] = c->params[i];
	}
	return n;
}

/* One notification per --notify channel, sent by the check's own run on `failure` (it turned
 * not ready) or `success` (ready again). Freed with notify_entries_free. */
static drb_notify *notify_entries(const cli *c, const char *name, int failure)
{
	drb_notify *v = calloc(c->n_notify + 1, sizeof(*v));
	char text[512], key[200], safe[200];

	if (!v)
		return NULL;
	/* the name is text, not a template: no ${ of it may be evaluated */
	snprintf(safe, sizeof(safe), "%s", name);
	for (char *p = safe; (p = strstr(p, "${"));)
		*p = '$', p[1] = ' ';
	snprintf(text, sizeof(text), "drbook readiness: %s %s", safe,
		 failure ? "is NOT READY: ${run.error}" : "is ready again");
	snprintf(key, sizeof(key), "drbook-readiness-%s", safe);
	for (size_t i = 0; i < c->n_notify; i++) {
		v[i].on = calloc(1, sizeof(char *));
		if (v[i].on) {
			v[i].on[0] = strdup(failure ? "failure" : "success");
			v[i].n_on = v[i].on[0] ? 1 : 0;
		}
		v[i].call.action = strdup("notify");
		v[i].call.with =
		    json_pack("{s:s, s:s, s:s, s:s}", "channel", c->notify[i], "text", text,
			      "severity", failure ? "error" : "info", "dedup_key", key);
	}
	return v;
}

static void notify_entries_free(drb_notify *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++) {
		if (v[i].on)
			free(v[i].on[0]);
		free(v[i].on);
		free(v[i].call.action);
		json_decref(v[i].call.with);
	}
	free(v);
}

/* One runbook's readiness: its preflight as a readiness check; the model's entry (new). */
static json_t *readiness_one(const drb_runbook *rb, cli *c, const char *dir, const json_t *runs,
			     const unsigned char *key, size_t klen)
{
	char *pv[MAX_LIST], fname[256], logp[4400], tmpp[4500], statep[4400], prev[32];
	drb_engine_opts o;
	drb_run_result res;
	drb_notify *nt = NULL;
	drb_err err = {0};
	json_t *checks = json_array(), *one;
	int failure, ready;
	double t0 = drb_mono_now();

	file_name_of(rb->name, fname, sizeof(fname));
	snprintf(logp, sizeof(logp), "%s/%s.jsonl", dir, fname);
	snprintf(tmpp, sizeof(tmpp), "%s/%s.jsonl.tmp.%ld", dir, fname, (long)getpid());
	snprintf(statep, sizeof(statep), "%s/%s.state", dir, fname);
	readiness_state(statep, prev, sizeof(prev));
	/* news: a failure unless the last check said so already; ready after not ready */
	failure = strcmp(prev, "not-ready") != 0;
	fill_opts(&o, c, key, klen);
	o.mode = DRB_MODE_PLAN;
	o.readiness = 1;
	o.params_kv = pv;
	o.n_params_kv = params_for(rb, c, pv);
	o.audit_path = tmpp;
	if (c->n_notify && (failure || !strcmp(prev, "not-ready"))) {
		nt = notify_entries(c, rb->name, failure);
		o.notify = nt;
		o.n_notify = nt ? c->n_notify : 0;
	}
	memset(&res, 0, sizeof(res));
	unlink(tmpp);
	if (drb_engine_run(rb, &o, &res, &err)) {
		/* bad parameters and the like: not ready, and why */
		res.exit_code = DRB_EXIT_USAGE;
		snprintf(res.error, sizeof(res.error), "%s", err.msg);
	}
	if (!res.audit_path[0] || rename(tmpp, logp) != 0)
		unlink(tmpp);
	for (size_t j = 0; j < res.n_steps; j++) {
		const char *id = res.steps[j].id, *s = res.steps[j].status;
		int critical = 1;

		for (size_t k = 0; id && k < rb->n_preflight; k++)
			if (!strcmp(rb->preflight[k].id, id))
				critical = rb->preflight[k].critical;
		json_array_append_new(
		    checks, json_pack("{s:s?, s:b, s:s, s:b, s:o?}", "check", id, "ok",
				      !strcmp(s, "ok") || !strcmp(s, "skipped"), "status", s,
				      "critical", critical, "error",
				      res.steps[j].error ? json_string(res.steps[j].error) : NULL));
	}
	ready = res.exit_code == DRB_EXIT_OK;
	one = json_pack("{s:s, s:s, s:b, s:s, s:s?, s:f, s:s?, s:o, s:o}", "runbook", rb->name,
			"path", rb->path, "ready", ready, "status", ready ? "ready" : "not ready",
			"error", res.error[0] ? res.error : NULL, "duration_s", drb_mono_now() - t0,
			"audit", res.audit_path[0] ? logp : NULL, "checks", checks, "last_runs",
			last_runs_of(runs, rb->name));
	readiness_state_write(statep, ready ? "ready" : "not-ready");
	notify_entries_free(nt, nt ? c->n_notify : 0);
	drb_run_result_free(&res);
	return one;
}

static int cmd_readiness(int argc, char **argv)
{
	cli c = {0};
	int first =
		parse(argc, argv, &c, usage_readiness,
		      " param metrics-file notify runs-dir audit-key-file key-file json quiet "),
	    rc = DRB_EXIT_OK, n;
	drb_runbook **rbs = NULL;
	unsigned char *key = NULL;
	size_t klen = 0;
	json_t *runs = NULL, *model = NULL, *list;
	const char *runs_dir;
	char dir[4096];
	drb_err err = {0};

	if (first < 0)
		return DRB_EXIT_USAGE;
	if (first >= argc) {
		fprintf(stderr, "drbook: readiness needs at least one RUNBOOK\n\n%s",
			usage_readiness);
		return DRB_EXIT_USAGE;
	}
	n = argc - first;
	runs_dir = c.runs_dir ? c.runs_dir : "drbook-runs";
	rbs = calloc((size_t)n, sizeof(*rbs));
	if (!rbs)
		return DRB_EXIT_FAILED;
	/* every runbook valid and every -p declared somewhere, before anything is checked */
	for (int i = 0; i < n; i++)
		if (load(argv[first + i], &rbs[i]))
			rc = DRB_EXIT_USAGE;
	for (size_t p = 0; rc == DRB_EXIT_OK && p < c.n_params; p++) {
		size_t k = strcspn(c.params[p], "=");
		int declared = 0;

		for (int i = 0; i < n; i++)
			for (size_t j = 0; j < rbs[i]->n_params; j++)
				declared |= strlen(rbs[i]->params[j].name) == k &&
					    !strncmp(rbs[i]->params[j].name, c.params[p], k);
		if (!declared) {
			fprintf(stderr,
				"drbook: -p %.*s: no runbook given declares this parameter\n",
				(int)k, c.params[p]);
			rc = DRB_EXIT_USAGE;
		}
	}
	if (rc != DRB_EXIT_OK)
		goto out;
	if (load_key(&c, &key, &klen)) {
		rc = DRB_EXIT_USAGE;
		goto out;
	}
	snprintf(dir, sizeof(dir), "%s/readiness", runs_dir);
	if ((mkdir(runs_dir, 0750) && errno != EEXIST) || (mkdir(dir, 0750) && errno != EEXIST)) {
		fprintf(stderr, "drbook: readiness: cannot create %s: %s\n", dir, strerror(errno));
		rc = DRB_EXIT_FAILED;
		goto out;
	}
	if (drb_report_runs(runs_dir, &runs, &err)) {
		fprintf(stderr, "drbook: readiness: the runs folder %s: %s\n", runs_dir, err.msg);
		rc = DRB_EXIT_FAILED;
		goto out;
	}
	model = json_pack("{s:b, s:I, s:[]}", "ready", 1, "checked_at_s",
			  (json_int_t)(drb_wall_ms() / 1000), "runbooks");
	list = json_object_get(model, "runbooks");
	for (int i = 0; i < n && !interrupted; i++) {
		json_t *one = readiness_one(rbs[i], &c, dir, runs, key, klen);

		if (!one || !json_is_true(json_object_get(one, "ready"))) {
			json_object_set_new(model, "ready", json_false());
			rc = DRB_EXIT_REFUSED;
		}
		if (one)
			json_array_append_new(list, one);
	}
	if (interrupted) {
		fprintf(stderr, "drbook: readiness: interrupted\n");
		rc = DRB_EXIT_FAILED;
		goto out;
	}
	if (c.metrics_file && drb_readiness_metrics_write(model, c.metrics_file, &err)) {
		fprintf(stderr, "drbook: readiness: %s\n", err.msg);
		rc = DRB_EXIT_FAILED;
	}
	if (c.json) {
		json_dumpf(model, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		fputc('\n', stdout);
	} else if (!c.quiet) {
		drb_readiness_text(model, stdout);
	}
out:
	for (int i = 0; rbs && i < n; i++)
		drb_runbook_free(rbs[i]);
	free(rbs);
	free_key(key, klen);
	json_decref(runs);
	json_decref(model);
	return rc;
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	int rc;

	if (argc < 2) {
		fputs(usage_main, stderr);
		return DRB_EXIT_USAGE;
	}
	/* One malloc arena for every thread. Steps that run side by side run on threads of
	 * their own, so with glibc's default each worker allocates from a second arena, which
	 * cannot reuse what the main thread freed after loading (the YAML tree): a 10,000-step
	 * run peaked at 44 MB of RSS instead of 33. drbook's threads wait on the network, not on
	 * malloc's lock. */
	mallopt(M_ARENA_MAX, 1);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	/* The handler only counts (the run's watcher acts on the count), and the engine's own
	 * thread may be running a step when a signal comes: its system calls restart rather than
	 * fail with EINTR half-way (a write to the output, a read of an answer). */
	sa.sa_flags = SA_RESTART;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		fputs(usage_main, stdout);
		rc = 0;
	} else if (!strcmp(argv[1], "--version")) {
		printf("drbook %s\n", DRB_VERSION);
		rc = 0;
	} else if (!strcmp(argv[1], "validate")) {
		rc = cmd_validate(argc - 1, argv + 1);
	} else if (!strcmp(argv[1], "run")) {
		rc = cmd_run(argc - 1, argv + 1, DRB_MODE_RUN);
	} else if (!strcmp(argv[1], "plan")) {
		rc = cmd_run(argc - 1, argv + 1, DRB_MODE_PLAN);
	} else if (!strcmp(argv[1], "resume")) {
		rc = cmd_resume(argc - 1, argv + 1);
	} else if (!strcmp(argv[1], "audit")) {
		rc = cmd_audit(argc - 1, argv + 1);
	} else if (!strcmp(argv[1], "gameday")) {
		rc = cmd_gameday(argc - 1, argv + 1);
	} else if (!strcmp(argv[1], "readiness")) {
		rc = cmd_readiness(argc - 1, argv + 1);
	} else if (!strcmp(argv[1], "replay")) {
		rc = cmd_replay(argc - 1, argv + 1);
	} else if (!strcmp(argv[1], "report")) {
		rc = cmd_report(argc - 1, argv + 1);
	} else if (!strcmp(argv[1], "actions")) {
		rc = drb_cli_actions(argc - 1, argv + 1);
	} else {
		fprintf(stderr, "drbook: unknown command '%s'\n\n%s", argv[1], usage_main);
		rc = DRB_EXIT_USAGE;
	}
	curl_global_cleanup();
	return rc;
}
