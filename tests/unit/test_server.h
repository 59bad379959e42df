/* Test helper shared by every test that needs a local Python server (the HTTP client's and
 * the http.request action's tests with tests/tools/fault_server.py, the notify tests with
 * tests/unit/notify/fake_hooks.py): starts the script on a free loopback port (it prints the
 * port as its first line and exits when its stdin closes) and stops it. Header-only on
 * purpose (the build turns every test_*.c into a program; this is not one). */
#ifndef DRB_TEST_SERVER_H
#define DRB_TEST_SERVER_H

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

typedef struct test_server {
	pid_t pid;
	int stdin_fd; /* closing it makes the server exit (--watch-stdin), even if we crash */
	int port;
	char base[64]; /* "http://127.0.0.1:PORT" */
} test_server;

/* Starts script (a path relative to the source tree); returns 0, or -1 with a message on
 * stderr (python3 missing, script missing, no port within 15 s): a missing dependency fails
 * the test, never skips it. */
static int test_server_start(test_server *fs, const char *rel_script)
{
	char script[4096], line[32];
	int out[2] = {-1, -1}, in[2] = {-1, -1};
	size_t got = 0;
	int rc = -1;

	memset(fs, 0, sizeof(*fs));
	fs->pid = -1;
	fs->stdin_fd = -1;
	snprintf(script, sizeof(script), "%s/%s", DRB_SOURCE_DIR, rel_script);
	if (access(script, R_OK) != 0) {
		fprintf(stderr, "test server: %s: %s\n", script, strerror(errno));
		goto out;
	}
	if (pipe(out) != 0 || pipe(in) != 0) {
		perror("test server: pipe");
		goto out;
	}
	/* Close-on-exec so later children (the exec tests) do not hold the server's stdin. */
	fcntl(out[0], F_SETFD, FD_CLOEXEC);
	fcntl(out[1], F_SETFD, FD_CLOEXEC);
	fcntl(in[0], F_SETFD, FD_CLOEXEC);
	fcntl(in[1], F_SETFD, FD_CLOEXEC);
	fs->pid = fork();
	if (fs->pid < 0) {
		perror("test server: fork");
		goto out;
	}
	if (fs->pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		execlp("python3", "python3", script, "--watch-stdin", (char *)NULL);
		fprintf(stderr, "test server: cannot run python3: %s\n", strerror(errno));
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
			fprintf(stderr, "test server: no port within 15 s\n");
			goto out;
		}
		n = read(out[0], line + got, 1);
		if (n <= 0) {
			fprintf(stderr, "test server: exited before printing its port\n");
			goto out;
		}
		if (line[got] == '\n')
			break;
		got++;
	}
	line[got] = '\0';
	fs->port = (int)strtol(line, NULL, 10);
	if (fs->port <= 0 || fs->port > 65535) {
		fprintf(stderr, "test server: bad port line '%s'\n", line);
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
static void test_server_stop(test_server *fs)
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
