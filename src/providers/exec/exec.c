/* The `exec` action: runs a program (no shell) in its own process group, captures
 * capped stdout/stderr, feeds stdin, and on timeout or cancel kills the whole group and reaps
 * it, so that a runbook step can never leave a stray process, fd or zombie behind. */

/* pipe2 with O_CLOEXEC (POSIX.1-2024; glibc declares it under _GNU_SOURCE): a pipe created
 * without it could leak into a child another thread forks at the same moment. */
#define _GNU_SOURCE 1

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <drbook/action.h>
#include <drbook/http.h>
#include <drbook/util.h>

#include <drbook/exec.h>

extern char **environ;

#define CAPTURE_MAX ((size_t)64 << 10) /* per stream, as the catalog promises */
#define DEFAULT_TIMEOUT_S 60.0
#define TERM_GRACE_S 2.0 /* SIGTERM, then SIGKILL after this */
#define EXIT_DRAIN_S 1.0 /* after the child exits, how long a grandchild may hold a pipe */
#define STDIN_MAX ((size_t)16 << 20)

/* Everything perform needs; built from the arguments before anything runs. */
typedef struct exec_job {
	char **argv; /* NULL-terminated, owned */
	size_t argc;
	char **envp; /* NULL-terminated; entries point into environ or into env_owned */
	char **env_owned;
	size_t n_owned;
	const char *cwd;
	const char *input; /* stdin bytes or NULL */
	size_t input_len;
	double timeout_s;
	double deadline; /* ctx->deadline */
	const volatile int *cancel;
	drb_seam *seam;	  /* records the child's pid (exec.child) */
	pid_t drbook_pid; /* the guardian's parent: if it is gone, the group dies */
	int death_sig;	  /* what the kernel sends the guardian when drbook dies */
} exec_job;

static void job_free(exec_job *j)
{
	size_t i;

	if (!j)
		return;
	for (i = 0; j->argv && i < j->argc; i++)
		free(j->argv[i]);
	free(j->argv);
	for (i = 0; i < j->n_owned; i++)
		free(j->env_owned[i]);
	free(j->env_owned);
	free(j->envp);
	memset(j, 0, sizeof(*j));
}

/* A scalar argument as text: runbooks write argv: [scale, "${params.desired}"] and the
 * whole-value interpolation keeps the integer type. */
static int scalar_text(const json_t *v, char **out)
{
	char num[64];

	*out = NULL;
	if (json_is_string(v)) {
		if (strlen(json_string_value(v)) != json_string_length(v))
			return DRB_EINVAL; /* an embedded NUL would silently cut the argument */
		*out = drb_strdup(json_string_value(v));
	} else if (json_is_integer(v)) {
		snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
		*out = drb_strdup(num);
	} else if (json_is_real(v)) {
		snprintf(num, sizeof(num), "%.17g", json_real_value(v));
		*out = drb_strdup(num);
	} else if (json_is_boolean(v)) {
		*out = drb_strdup(json_is_true(v) ? "true" : "false");
	} else
		return DRB_EINVAL;
	return *out ? 0 : DRB_ENOMEM;
}

static int build_argv(exec_job *j, const json_t *args, drb_err *err)
{
	const json_t *a = json_object_get(args, "argv");
	size_t i;
	int rc;

	if (!json_is_array(a) || json_array_size(a) == 0)
		return drb_err_set(err, DRB_EINVAL,
				   "argument 'argv' must be a non-empty list of strings");
	j->argv = calloc(json_array_size(a) + 1, sizeof(char *));
	if (!j->argv)
		return drb_err_set(err, DRB_ENOMEM, "exec: out of memory");
	for (i = 0; i < json_array_size(a); i++) {
		rc = scalar_text(json_array_get(a, i), &j->argv[i]);
		if (rc == DRB_ENOMEM)
			return drb_err_set(err, rc, "exec: out of memory");
		if (rc != 0)
			return drb_err_set(err, rc, "argument 'argv' item %zu must be a string",
					   i + 1);
		j->argc++;
	}
	if (!j->argv[0][0])
		return drb_err_set(err, DRB_EINVAL, "argument 'argv': the program name is empty");
	return 0;
}

/* The inherited environment with the step's variables added or replaced. */
static int build_env(exec_job *j, const json_t *args, drb_err *err)
{
	const json_t *env = json_object_get(args, "env");
	size_t n_inherit = 0, n = 0, i;
	const char *key;
	json_t *v;

	while (environ && environ[n_inherit])
		n_inherit++;
	if (env && !json_is_null(env) && !json_is_object(env))
		return drb_err_set(err, DRB_EINVAL, "argument 'env' must be a mapping");
	j->env_owned = calloc(json_object_size(env) + 1, sizeof(char *));
	j->envp = calloc(n_inherit + json_object_size(env) + 1, sizeof(char *));
	if (!j->env_owned || !j->envp)
		return drb_err_set(err, DRB_ENOMEM, "exec: out of memory");
	json_object_foreach((json_t *)env, key, v)
	{
		char *text = NULL;
		size_t klen = strlen(key);
		drb_buf b;
		int rc;

		if (!klen || strchr(key, '='))
			return drb_err_set(err, DRB_EINVAL,
					   "argument 'env': bad variable name '%s'", key);
		rc = scalar_text(v, &text);
		if (rc != 0) {
			free(text);
			return drb_err_set(err, rc == DRB_ENOMEM ? rc : DRB_EINVAL,
					   "argument 'env': '%s' must be a string", key);
		}
		drb_buf_init(&b, klen + strlen(text) + 2);
		rc = drb_buf_printf(&b, "%s=%s", key, text);
		free(text);
		if (rc != 0) {
			drb_buf_free(&b);
			return drb_err_set(err, DRB_ENOMEM, "exec: out of memory");
		}
		j->env_owned[j->n_owned++] = drb_buf_steal(&b);
	}
	for (i = 0; i < n_inherit; i++) {
		const char *eq = strchr(environ[i], '=');
		size_t k, nl = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);

		for (k = 0; k < j->n_owned; k++)
			if (!strncmp(j->env_owned[k], environ[i], nl) && j->env_owned[k][nl] == '=')
				break;
		if (k == j->n_owned)
			j->envp[n++] = environ[i];
	}
	for (i = 0; i < j->n_owned; i++)
		j->envp[n++] = j->env_owned[i];
	j->envp[n] = NULL;
	return 0;
}

/* Finds the program the way execvp would (the parent's PATH), before forking, so that a
 * missing program is an ordinary error and the child runs no allocator. */
static int resolve(const char *prog, char *out, size_t n, drb_err *err)
{
	const char *path = getenv("PATH"), *p;
	int saw_eacces = 0;

	if (strchr(prog, '/')) {
		if (snprintf(out, n, "%s", prog) >= (int)n)
			return drb_err_set(err, DRB_EINVAL, "exec: program path too long");
		return 0;
	}
	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (p = path;; p++) {
		const char *end = strchr(p, ':');
		size_t dl = end ? (size_t)(end - p) : strlen(p);
		struct stat st;

		if (dl == 0)
			snprintf(out, n, "./%s", prog); /* an empty PATH entry is the cwd */
		else
			snprintf(out, n, "%.*s/%s", (int)dl, p, prog);
		if (stat(out, &st) == 0 && S_ISREG(st.st_mode)) {
			if (access(out, X_OK) == 0)
				return 0;
			saw_eacces = 1;
		}
		if (!end)
			break;
		p = end;
	}
	if (saw_eacces)
		return drb_err_set(err, DRB_EDENIED, "exec: '%s': %s", prog, strerror(EACCES));
	return drb_err_set(err, DRB_ENOTFOUND, "exec: '%s': %s", prog, strerror(ENOENT));
}

/* The guardian's answer to drbook's death (PR_SET_PDEATHSIG): the whole group goes, the
 * program's own children included. */
static void guardian_orphaned(int sig)
{
	(void)sig;
	kill(0, SIGKILL);
}

static void close_from(int first)
{
#ifdef SYS_close_range
	if (syscall(SYS_close_range, (unsigned)first, ~0U, 0U) == 0)
		return;
#endif
	long max = sysconf(_SC_OPEN_MAX);

	if (max < 0 || max > 65536)
		max = 65536;
	for (long fd = first; fd < max; fd++)
		close((int)fd);
}

/* Child side, between fork and exec: only async-signal-safe calls. The forked child leads a
 * new process group and stays as its guardian: it forks the program and waits for it, then
 * exits as the program did. If drbook dies first, even by kill -9, the kernel tells the
 * guardian (PR_SET_PDEATHSIG) and it kills the whole group, so no step's program (nor
 * anything it started) outlives the run and a resume never starts a second copy beside it.
 * A failure before exec goes back as a tag byte and errno through the close-on-exec pipe. */
static void child(const exec_job *j, const char *path, int in_fd, int out_fd, int err_fd,
		  int report_fd)
{
	struct {
		char tag;
		int e;
	} why = {'E', 0};
	struct sigaction dfl, orphan;
	sigset_t none, stop;
	int sig, status;
	pid_t prog;

	setpgid(0, 0);
	/* The engine may block or ignore signals (a signal thread, SIGPIPE); the program must
	 * start with the defaults or it would not die on our SIGTERM, nor on a broken pipe. */
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	for (sig = 1; sig < 32; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			sigaction(sig, &dfl, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	memset(&orphan, 0, sizeof(orphan));
	orphan.sa_handler = guardian_orphaned;
	sigemptyset(&orphan.sa_mask);
	if (sigaction(j->death_sig, &orphan, NULL) != 0 ||
	    prctl(PR_SET_PDEATHSIG, j->death_sig) != 0) {
		why.tag = 'G';
		goto fail;
	}
	if (getppid() != j->drbook_pid) /* drbook died before the guard was set */
		kill(0, SIGKILL);
	/* The group's SIGTERM is for the program, which may shut down gracefully: the guardian
	 * ignores it and stays until the program ends (or the group's SIGKILL). Blocked across
	 * the fork so that neither side dies of one in between. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGHUP);
	sigaddset(&stop, SIGQUIT);
	sigprocmask(SIG_BLOCK, &stop, NULL);
	prog = fork();
	if (prog < 0) {
		why.tag = 'G';
		goto fail;
	}
	if (prog > 0) {
		struct sigaction ign;

		memset(&ign, 0, sizeof(ign));
		ign.sa_handler = SIG_IGN;
		sigemptyset(&ign.sa_mask);
		for (sig = 1; sig < 32; sig++)
			if (sigismember(&stop, sig))
				sigaction(sig, &ign, NULL);
		sigprocmask(SIG_UNBLOCK, &stop, NULL);
		close_from(3); /* the guardian holds nothing of drbook's: no log, no lock */
		while (waitpid(prog, &status, 0) < 0)
			if (errno != EINTR)
				_exit(127);
		if (WIFEXITED(status))
			_exit(WEXITSTATUS(status));
		sig = WTERMSIG(status);
		sigaction(sig, &dfl, NULL);
		kill(getpid(), sig);
		_exit(128 + sig);
	}
	/* the program: if the guardian is killed, the program goes with it */
	sigaction(j->death_sig, &dfl, NULL);
	sigprocmask(SIG_UNBLOCK, &stop, NULL);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0)
		goto fail;
	if (j->cwd && chdir(j->cwd) != 0) {
		why.tag = 'C';
		goto fail;
	}
	/* Fds another thread opened without close-on-exec must not reach the program. */
#ifdef SYS_close_range
	if (syscall(SYS_close_range, 3U, (unsigned)report_fd - 1U, 0U) != 0 ||
	    syscall(SYS_close_range, (unsigned)report_fd + 1U, ~0U, 0U) != 0)
#endif
	{
		long fd, max = sysconf(_SC_OPEN_MAX);

		if (max < 0 || max > 65536)
			max = 65536;
		for (fd = 3; fd < max; fd++)
			if (fd != report_fd)
				close((int)fd);
	}
	execve(path, j->argv, j->envp);
fail:
	why.e = errno;
	if (write(report_fd, &why, sizeof(why)) < 0) {
		/* nothing left to tell anyone */
	}
	_exit(127);
}

/* One captured stream: up to CAPTURE_MAX kept, the rest read and dropped. */
typedef struct stream {
	int fd;
	drb_buf b;
	int truncated;
} stream;

static void drain(stream *s)
{
	char tmp[16384];
	ssize_t n = read(s->fd, tmp, sizeof(tmp));

	if (n > 0) {
		if (drb_buf_append(&s->b, tmp, (size_t)n) != 0) {
			if (s->b.len < s->b.max)
				drb_buf_append(&s->b, tmp, s->b.max - s->b.len);
			s->truncated = 1;
		}
		return;
	}
	if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
		close(s->fd);
		s->fd = -1;
	}
}

/* Whether the child has exited, without reaping it: the zombie keeps its pid, and so the
 * process group id, reserved until we have signalled the group. */
static int exited(pid_t pid)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0)
		return errno == ECHILD;
	return si.si_pid == pid;
}

typedef struct run_state {
	pid_t pid;
	stream out, err;
	int in_fd; /* our end of the child's stdin, or -1 */
	size_t in_off;
	int pipe_blocked; /* SIGPIPE blocked in this thread while writing stdin */
	int epipe;
	sigset_t old_mask;
} run_state;

/* One round of I/O: waits up to slice_s for output or stdin space. */
static void pump(run_state *st, const exec_job *j, double slice_s)
{
	struct pollfd p[3];
	int n = 0, io = -1, ie = -1, ii = -1, i;

	if (st->out.fd >= 0) {
		io = n;
		p[n++] = (struct pollfd){.fd = st->out.fd, .events = POLLIN};
	}
	if (st->err.fd >= 0) {
		ie = n;
		p[n++] = (struct pollfd){.fd = st->err.fd, .events = POLLIN};
	}
	if (st->in_fd >= 0) {
		ii = n;
		p[n++] = (struct pollfd){.fd = st->in_fd, .events = POLLOUT};
	}
	i = poll(p, (nfds_t)n, (int)(slice_s * 1000) + 1);
	if (i <= 0)
		return;
	if (io >= 0 && p[io].revents)
		drain(&st->out);
	if (ie >= 0 && p[ie].revents)
		drain(&st->err);
	if (ii >= 0 && p[ii].revents) {
		ssize_t w = -1;

		if (p[ii].revents & POLLOUT)
			w = write(st->in_fd, j->input + st->in_off, j->input_len - st->in_off);
		if (w > 0)
			st->in_off += (size_t)w;
		else if (w < 0 && errno == EPIPE)
			st->epipe = 1;
		/* The program stopped reading (or has all of it): it sees end of file. */
		if (st->in_off >= j->input_len || (w < 0 && errno != EAGAIN && errno != EINTR) ||
		    !(p[ii].revents & POLLOUT)) {
			close(st->in_fd);
			st->in_fd = -1;
		}
	}
}

/* SIGTERM to the group, SIGKILL after the grace, and SIGKILL again for whatever of the
 * group outlived the leader. Does not reap. */
static void kill_group(run_state *st, const exec_job *j)
{
	double until = drb_mono_now() + TERM_GRACE_S;

	kill(-st->pid, SIGTERM);
	while (!exited(st->pid) && drb_mono_now() < until)
		pump(st, j, 0.02);
	kill(-st->pid, SIGKILL);
}

static json_t *response_of(int status, run_state *st, double took_s)
{
	json_t *r = json_object();
	json_t *so = drb_http_json_text(st->out.b.p, st->out.b.len);
	json_t *se = drb_http_json_text(st->err.b.p, st->err.b.len);
	int code = 0, sig = 0, bad = 0;

	if (!r || !so || !se) {
		json_decref(r);
		json_decref(so);
		json_decref(se);
		return NULL;
	}
	if (WIFEXITED(status))
		code = WEXITSTATUS(status);
	else if (WIFSIGNALED(status)) {
		sig = WTERMSIG(status);
		code = 128 + sig; /* as a shell reports it */
	}
	/* json_object_set_new takes the value even when it fails: no early exit, no leak. */
	bad |= json_object_set_new(r, "stdout", so);
	bad |= json_object_set_new(r, "stderr", se);
	bad |= json_object_set_new(r, "status", json_integer(code));
	bad |= json_object_set_new(r, "exit_code", json_integer(code));
	if (sig)
		bad |= json_object_set_new(r, "signal", json_integer(sig));
	bad |= json_object_set_new(r, "stdout_truncated", json_boolean(st->out.truncated));
	bad |= json_object_set_new(r, "stderr_truncated", json_boolean(st->err.truncated));
	bad |= json_object_set_new(r, "duration_ms", json_integer((json_int_t)(took_s * 1000)));
	if (bad) {
		json_decref(r);
		return NULL;
	}
	return r;
}

/* The kernel's start time of pid (clock ticks since boot, /proc/PID/stat field 22): with the
 * boot id it tells a still-running process from a later one that reused the pid. -1 when
 * the process is gone. */
long long drb_exec_start_ticks(int pid)
{
	char path[64], buf[1024], state = 0;
	const char *p;
	long long ticks = -1;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')'); /* the command name may hold spaces and parentheses */
	if (!p || sscanf(p + 2,
			 "%c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d "
			 "%*d %*d %lld",
			 &state, &ticks) != 2)
		return -1;
	/* a zombie no one reaped (its parent, drbook, is gone) does not run */
	return state == 'Z' || state == 'X' ? -1 : ticks;
}

int drb_exec_boot_id(char *out, size_t n)
{
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");
	int ok = f && fgets(out, (int)n, f);

	if (f)
		fclose(f);
	if (!ok)
		return -1;
	out[strcspn(out, "\n")] = '\0';
	return 0;
}

/* Records the running child (exec.child: pid = its process group, start ticks, boot id,
 * host) before anything else, so that a resume after a crash can tell whether it runs. */
static int note_child(const exec_job *j, pid_t pid, drb_err *err)
{
	char boot[64] = "", host[256] = "";
	json_t *d;
	int rc;

	if (!j->seam || !j->seam->note)
		return 0;
	drb_exec_boot_id(boot, sizeof(boot));
	gethostname(host, sizeof(host) - 1);
	d = json_pack("{s:i, s:I, s:s, s:s, s:s}", "pid", (int)pid, "start_ticks",
		      (json_int_t)drb_exec_start_ticks(pid), "boot_id", boot, "host", host,
		      "program", j->argv[0]);
	if (!d)
		return drb_err_set(err, DRB_ENOMEM, "exec: out of memory");
	rc = j->seam->note(j->seam, "exec.child", d, err);
	json_decref(d);
	if (rc)
		drb_err_prefix(err,
			       "exec: '%s': the child could not be recorded, so it was "
			       "stopped: ",
			       j->argv[0]);
	return rc;
}

/* The seam's perform callback: the real fork/exec and supervision. */
static int exec_perform(void *arg, json_t **response, drb_err *err)
{
	const exec_job *j = arg;
	char path[4096];
	int in_p[2] = {-1, -1}, out_p[2] = {-1, -1}, err_p[2] = {-1, -1}, rep[2] = {-1, -1};
	int null_fd = -1, status = 0, rc = 0, reaped = 0, why_timeout = 0, cancelled = 0;
	run_state st;
	double t0 = drb_mono_now(), end, exit_seen = 0;
	struct {
		char tag;
		int e;
	} why;
	ssize_t n;

	memset(&st, 0, sizeof(st));
	st.pid = -1;
	st.in_fd = st.out.fd = st.err.fd = -1;
	drb_buf_init(&st.out.b, CAPTURE_MAX);
	drb_buf_init(&st.err.b, CAPTURE_MAX);
	*response = NULL;
	rc = resolve(j->argv[0], path, sizeof(path), err);
	if (rc != 0)
		goto out;
	if (pipe2(out_p, O_CLOEXEC) != 0 || pipe2(err_p, O_CLOEXEC) != 0 ||
	    pipe2(rep, O_CLOEXEC) != 0 || (j->input && pipe2(in_p, O_CLOEXEC) != 0) ||
	    (!j->input && (null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)) {
		rc = drb_err_set(err, DRB_EIO, "exec: '%s': %s", j->argv[0], strerror(errno));
		goto out;
	}
	st.pid = fork();
	if (st.pid < 0) {
		rc = drb_err_set(err, DRB_EIO, "exec: '%s': fork: %s", j->argv[0], strerror(errno));
		goto out;
	}
	if (st.pid == 0)
		child(j, path, j->input ? in_p[0] : null_fd, out_p[1], err_p[1], rep[1]);
	/* Also here: kill(-pid) must find the group even if the child has not run yet. */
	setpgid(st.pid, st.pid);
	close(out_p[1]);
	close(err_p[1]);
	close(rep[1]);
	out_p[1] = err_p[1] = rep[1] = -1;
	if (j->input) {
		close(in_p[0]);
		in_p[0] = -1;
	}
	/* Blocks until exec succeeded (the pipe closes) or the child reports why not. */
	do
		n = read(rep[0], &why, sizeof(why));
	while (n < 0 && errno == EINTR);
	if (n == (ssize_t)sizeof(why)) {
		waitpid(st.pid, NULL, 0);
		reaped = 1;
		if (why.tag == 'G')
			rc = drb_err_set(err, DRB_EIO, "exec: '%s': cannot set up the guard: %s",
					 j->argv[0], strerror(why.e));
		else if (why.tag == 'C')
			rc = drb_err_set(err, why.e == ENOENT ? DRB_ENOTFOUND : DRB_EIO,
					 "exec: cwd '%s': %s", j->cwd, strerror(why.e));
		else
			rc = drb_err_set(err,
					 why.e == ENOENT   ? DRB_ENOTFOUND
					 : why.e == EACCES ? DRB_EDENIED
							   : DRB_EIO,
					 "exec: '%s': %s", j->argv[0], strerror(why.e));
		goto out;
	}
	if ((rc = note_child(j, st.pid, err)))
		goto out; /* not recorded, so not left running: out kills the group */

	st.out.fd = out_p[0];
	st.err.fd = err_p[0];
	out_p[0] = err_p[0] = -1;
	if (j->input) {
		sigset_t pipe_set;

		st.in_fd = in_p[1];
		in_p[1] = -1;
		fcntl(st.in_fd, F_SETFL, fcntl(st.in_fd, F_GETFL) | O_NONBLOCK);
		/* A program that exits without reading its stdin must not kill us with
		 * SIGPIPE: block it in this thread, and consume it below if it came. */
		sigemptyset(&pipe_set);
		sigaddset(&pipe_set, SIGPIPE);
		pthread_sigmask(SIG_BLOCK, &pipe_set, &st.old_mask);
		st.pipe_blocked = 1;
	}
	end = t0 + j->timeout_s;
	if (j->deadline > 0 && j->deadline < end) {
		end = j->deadline;
		why_timeout = 1;
	}
	for (;;) {
		double now = drb_mono_now(), left = end - now;
		int open = st.out.fd >= 0 || st.err.fd >= 0 || st.in_fd >= 0;

		if (j->cancel && *j->cancel) {
			cancelled = 1;
			break;
		}
		if (left <= 0)
			break;
		if (!exit_seen && exited(st.pid))
			exit_seen = now;
		/* Done when the child exited and its pipes closed, or some grandchild
		 * still holds them after a short drain. */
		if (exit_seen && (!open || now - exit_seen > EXIT_DRAIN_S))
			break;
		pump(&st, j, open ? (left < 0.1 ? left : 0.1) : (left < 0.02 ? left : 0.02));
	}
	if (!exit_seen) {
		kill_group(&st, j);
		waitpid(st.pid, &status, 0);
		reaped = 1;
		if (cancelled)
			rc = drb_err_set(err, DRB_EINTERRUPTED,
					 "exec: '%s': run cancelled: killed the process group",
					 j->argv[0]);
		else if (why_timeout)
			rc = drb_err_set(err, DRB_ETIMEOUT,
					 "exec: '%s': the step's deadline passed: killed the "
					 "process group",
					 j->argv[0]);
		else {
			char d[32];

			drb_duration_format(j->timeout_s, d, sizeof(d));
			rc = drb_err_set(err, DRB_ETIMEOUT,
					 "exec: '%s': did not finish within %s: killed the "
					 "process group",
					 j->argv[0], d);
		}
		goto out;
	}
	waitpid(st.pid, &status, 0);
	reaped = 1;
	*response = response_of(status, &st, drb_mono_now() - t0);
	if (!*response)
		rc = drb_err_set(err, DRB_ENOMEM, "exec: out of memory");
out:
	if (st.pid > 0 && !reaped) {
		kill(-st.pid, SIGKILL);
		waitpid(st.pid, NULL, 0);
	}
	if (st.in_fd >= 0)
		close(st.in_fd);
	if (st.pipe_blocked) {
		sigset_t pending;
		struct timespec zero = {0, 0};

		sigemptyset(&pending);
		if (st.epipe && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) &&
		    !sigismember(&st.old_mask, SIGPIPE)) {
			sigset_t pipe_set;

			sigemptyset(&pipe_set);
			sigaddset(&pipe_set, SIGPIPE);
			sigtimedwait(&pipe_set, NULL, &zero);
		}
		pthread_sigmask(SIG_SETMASK, &st.old_mask, NULL);
	}
	for (int i = 0; i < 2; i++) {
		if (in_p[i] >= 0)
			close(in_p[i]);
		if (out_p[i] >= 0)
			close(out_p[i]);
		if (err_p[i] >= 0)
			close(err_p[i]);
		if (rep[i] >= 0)
			close(rep[i]);
	}
	if (null_fd >= 0)
		close(null_fd);
	if (st.out.fd >= 0)
		close(st.out.fd);
	if (st.err.fd >= 0)
		close(st.err.fd);
	drb_buf_free(&st.out.b);
	drb_buf_free(&st.err.b);
	return rc;
}

/* What the audit log records: the command, never the environment's values nor stdin. */
static json_t *redacted_request(const exec_job *j, const json_t *args)
{
	json_t *req = json_object(), *argv = json_array(), *env = json_object();
	const json_t *e = json_object_get(args, "env");
	const char *key;
	json_t *v;
	size_t i;

	if (!req || !argv || !env)
		goto fail;
	for (i = 0; i < j->argc; i++)
		if (json_array_append_new(argv, json_string(j->argv[i])) != 0)
			goto fail;
	json_object_foreach((json_t *)e, key, v)
	{
		if (json_object_set_new(env, key, json_string("***")) != 0)
			goto fail;
	}
	if (json_object_set_new(req, "argv", argv) != 0) {
		argv = NULL;
		goto fail;
	}
	argv = NULL;
	if (json_object_set_new(req, "env", env) != 0) {
		env = NULL;
		goto fail;
	}
	env = NULL;
	if (json_object_set_new(req, "cwd", j->cwd ? json_string(j->cwd) : json_null()) ||
	    json_object_set_new(req, "timeout_s", json_real(j->timeout_s)) ||
	    (j->input &&
	     json_object_set_new(req, "stdin_bytes", json_integer((json_int_t)j->input_len))))
		goto fail;
	return req;
fail:
	json_decref(argv);
	json_decref(env);
	json_decref(req);
	return NULL;
}

/* The action result from the (live or replayed) response. */
static int result_of(const json_t *resp, json_t **result, drb_err *err)
{
	static const char *const keep[] = {
	    "exit_code",	"signal",	    "stdout",	   "stderr",
	    "stdout_truncated", "stderr_truncated", "duration_ms", NULL};

	return drb_result_pick(resp, keep, "exit_code", "exec", result, err);
}

static int exec_fn(drb_action_ctx *ctx, const json_t *args, json_t **result, drb_err *err)
{
	exec_job j;
	json_t *req = NULL, *resp = NULL;
	const json_t *in;
	drb_call call = {.service = "exec"};
	int rc;

	memset(&j, 0, sizeof(j));
	*result = NULL;
	j.timeout_s = DEFAULT_TIMEOUT_S;
	j.deadline = ctx->deadline;
	j.cancel = ctx->cancel;
	j.seam = ctx->seam;
	j.drbook_pid = getpid();
	j.death_sig = SIGRTMIN + 2; /* no program expects it; computed here, not after fork */
	rc = drb_args_check(drb_action_exec.schema, args, err);
	if (rc == 0)
		rc = build_argv(&j, args, err);
	if (rc == 0)
		rc = drb_arg_duration_opt(args, "timeout", &j.timeout_s, err);
	if (rc == 0)
		rc = drb_arg_string_opt(args, "cwd", &j.cwd, err);
	if (rc == 0)
		rc = build_env(&j, args, err);
	if (rc != 0)
		goto out;
	if (!(j.timeout_s > 0)) {
		rc = drb_err_set(err, DRB_EINVAL, "argument 'timeout' must be positive");
		goto out;
	}
	in = json_object_get(args, "stdin");
	if (in && !json_is_null(in)) {
		if (!json_is_string(in)) {
			rc = drb_err_set(err, DRB_EINVAL, "argument 'stdin' must be a string");
			goto out;
		}
		j.input = json_string_value(in);
		j.input_len = json_string_length(in);
		if (j.input_len > STDIN_MAX) {
			rc = drb_err_set(err, DRB_ELIMIT,
					 "argument 'stdin' is larger than %zu bytes", STDIN_MAX);
			goto out;
		}
	}
	req = redacted_request(&j, args);
	if (!req) {
		rc = drb_err_set(err, DRB_ENOMEM, "exec: out of memory");
		goto out;
	}
	call.operation = j.argv[0];
	call.request = req;
	rc = ctx->seam->call(ctx->seam, &call, exec_perform, &j, &resp, err);
	if (rc == 0)
		rc = result_of(resp, result, err);
out:
	json_decref(req);
	json_decref(resp);
	job_free(&j);
	return rc;
}

static const char *const exec_positional[] = {"argv...", NULL};

const drb_action drb_action_exec = {
    .name = "exec",
    .mode = DRB_ACT_STEP,
    .mode_of = NULL,
    .positional = exec_positional,
    .fn = exec_fn,
    .schema =
	&(const drb_action_schema){
	    .doc = "Runs a program without a shell",
	    .args =
		(const drb_arg_spec[]){
		    {"argv", DRB_T_LIST, 1, NULL, NULL, "program and arguments; no shell"},
		    {"timeout", DRB_T_DURATION, 0, "60s", NULL, "killed (and failed) after this"},
		    {"env", DRB_T_MAP, 0, NULL, NULL,
		     "variables added to the inherited environment"},
		    {"cwd", DRB_T_STRING, 0, NULL, NULL, "working directory"},
		    {"stdin", DRB_T_STRING, 0, NULL, NULL, "text written to the program's input"},
		    {NULL, 0, 0, NULL, NULL, NULL}},
	    .result =
		(const drb_field_spec[]){
		    {"exit_code", DRB_T_INT, "the program's exit code"},
		    {"signal", DRB_T_INT, "the signal that ended it, or absent"},
		    {"stdout", DRB_T_STRING, "standard output (truncated)"},
		    {"stderr", DRB_T_STRING, "standard error (truncated)"},
		    {"stdout_truncated", DRB_T_BOOL, "stdout was cut"},
		    {"stderr_truncated", DRB_T_BOOL, "stderr was cut"},
		    {"duration_ms", DRB_T_INT, "how long it ran"},
		    {NULL, 0, NULL}}},
};
