/* Test helper for the notify tests (adapted from tests/unit/http/fault_server.h): starts
 * tests/unit/notify/fake_hooks.py, a fake Slack webhook and PagerDuty endpoint, on a free
 * loopback port and stops it. Header-only: the build turns every test_*.c into a program. */
#ifndef DRB_TEST_HOOKS_SERVER_H
#define DRB_TEST_HOOKS_SERVER_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct hooks_server {
	pid_t pid;
	int stdin_fd; /* closing it makes the server exit (--watch-stdin), even if we crash */
	int port;
	char base[64]; /* "http://127.0.0.1:PORT" */
} hooks_server;

/* Starts the server; returns 0, or -1 with a message on stderr (python3 missing, script
 * missing, no port within 15 s): a missing dependency fails the test, never skips it. */
static int hooks_server_start(hooks_server *fs)
{
	char script[4096], line[32];
	int out[2] = {-1, -1}, in[2] = {-1, -1};
	size_t got = 0;
	int rc = -1;

	memset(fs, 0, sizeof(*fs));
	fs->pid = -1;
	fs->stdin_fd = -1;
	snprintf(script, sizeof(script), "%s/tests/unit/notify/fake_hooks.py", DRB_SOURCE_DIR);
	if (access(script, R_OK) != 0) {
		fprintf(stderr, "hooks server: %s: %s\n", script, strerror(errno));
		goto out;
	}
	if (pipe(out) != 0 || pipe(in) != 0) {
		perror("hooks server: pipe");
		goto out;
	}
	/* Close-on-exec so later children (the exec tests) do not hold the server's stdin. */
	fcntl(out[0], F_SETFD, FD_CLOEXEC);
	fcntl(out[1], F_SETFD, FD_CLOEXEC);
	fcntl(in[0], F_SETFD, FD_CLOEXEC);
	fcntl(in[1], F_SETFD, FD_CLOEXEC);
	fs->pid = fork();
	if (fs->pid < 0) {
		perror("hooks server: fork");
		goto out;
	}
	if (fs->pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		execlp("python3", "python3", script, "--watch-stdin", (char *)NULL);
		fprintf(stderr, "hooks server: cannot run python3: %s\n", strerror(errno));
		_exit(127);
	}
	close(out[1]);
	out[1] = -1;
	close(in[0]);
	in[0] = -1;
	fs->stdin_fd = in[1];
	in[1] = -1;
	while (got < sizeof(line) - 1) {
		struct pollfd p = {.fd = out[0], .events = POLLIN};
		ssize_t n;

		if (poll(&p, 1, 15000) <= 0) {
			fprintf(stderr, "hooks server: no port within 15 s\n");
			goto out;
		}
		n = read(out[0], line + got, 1);
		if (n <= 0) {
			fprintf(stderr, "hooks server: exited before printing its port\n");
			goto out;
		}
		if (line[got] == '\n')
			break;
		got++;
	}
	line[got] = '\0';
	fs->port = (int)strtol(line, NULL, 10);
	if (fs->port <= 0 || fs->port > 65535) {
		fprintf(stderr, "hooks server: bad port line '%s'\n", line);
		goto out;
	}
	snprintf(fs->base, sizeof(fs->base), "http://127.0.0.1:%d", fs->port);
	rc = 0;
out:
	if (out[0] >= 0)
		close(out[0]); /* the server prints nothing after the port */
	if (out[1] >= 0)
		close(out[1]);
	if (in[0] >= 0)
		close(in[0]);
	if (in[1] >= 0)
		close(in[1]);
	if (rc != 0 && fs->pid > 0) {
		kill(fs->pid, SIGKILL);
		waitpid(fs->pid, NULL, 0);
		fs->pid = -1;
	}
	return rc;
}

/* Stops and reaps the server; safe to call twice or after a failed start. */
static void hooks_server_stop(hooks_server *fs)
{
	if (fs->stdin_fd >= 0)
		close(fs->stdin_fd);
	fs->stdin_fd = -1;
	if (fs->pid > 0) {
		kill(fs->pid, SIGTERM);
		waitpid(fs->pid, NULL, 0);
	}
	fs->pid = -1;
}

#endif
