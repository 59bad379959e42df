/* Fault-injection shim for tests (LD_PRELOAD=libdrb_fault.so): counts write(2)-family and
 * fsync(2)-family calls on files whose path matches a pattern, and makes the Nth such call
 * fail with a chosen errno, so a test can prove that every audit record is written once and
 * fsync'd, and that a full disk or an I/O error stops a run. Configured by environment, read
 * at every call (a test may change it between calls in one process):
 *   DRB_FAULT_MATCH=GLOB   fnmatch(3) pattern for the file's path (from /proc/self/fd);
 *                          unset: the shim only passes calls through
 *   DRB_FAULT_LOG=FILE     appends "CALL PATH" for each matching call (CALL is write, pwrite,
 *                          writev, fsync or fdatasync), in the order they happen
 *   DRB_FAULT_FAIL=CALL:N[+]:ERRNO   the Nth matching call of CALL (counted from 1 over the
 *                          whole process) fails with ERRNO (a name such as EIO, ENOSPC,
 *                          EDQUOT, or a number) without doing anything; with '+' the Nth and
 *                          every later one. CALL "sync" counts fsync and fdatasync together.
 *   DRB_FAULT_KILL=N       the process kills itself with SIGKILL right after the Nth matching
 *                          fsync or fdatasync returned: with the audit log as the match, the
 *                          death of a machine just after record N became durable
 *   DRB_FAULT_KILL_AFTER=TEXT  the same, after the first fsync that follows a matching write
 *                          whose bytes contain TEXT (a record picked by its content, such as
 *                          "event":"call","step":"promote", when parallel steps make its
 *                          number vary from run to run)
 *   DRB_FAULT_KILL_NTH=N   with DRB_FAULT_KILL_AFTER: after the Nth such write, not the first
 *                          (a waiting step's second poll)
 * Not part of drbook: built by tests/CMakeLists.txt as $BUILD/tests/libdrb_fault.so. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

enum { C_WRITE, C_PWRITE, C_WRITEV, C_FSYNC, C_FDATASYNC, C_N };
static const char *const call_names[C_N] = {"write", "pwrite", "writev", "fsync", "fdatasync"};
static long counts[C_N];
static long sync_count; /* fsync and fdatasync together, for CALL "sync" */
static int armed;	/* a write held DRB_FAULT_KILL_AFTER's text: die after the next sync */
static long seen;	/* writes that held it so far */

static const struct {
	const char *name;
	int value;
} errnos[] = {{"EIO", EIO},	{"ENOSPC", ENOSPC}, {"EDQUOT", EDQUOT}, {"EROFS", EROFS},
	      {"EBADF", EBADF}, {"EINTR", EINTR},   {"EAGAIN", EAGAIN}, {"EFBIG", EFBIG},
	      {"EPERM", EPERM}, {"EACCES", EACCES}, {NULL, 0}};

static int parse_errno(const char *s)
{
	char *end = NULL;
	long v;

	for (int i = 0; errnos[i].name; i++)
		if (!strcmp(s, errnos[i].name))
			return errnos[i].value;
	v = strtol(s, &end, 10);
	return end && end != s && !*end && v > 0 ? (int)v : EIO;
}

/* The path behind fd when it matches DRB_FAULT_MATCH, else 0. */
static int matches(int fd, char *path, size_t n)
{
	const char *pat = getenv("DRB_FAULT_MATCH");
	char link[64];
	ssize_t len;

	if (!pat || !*pat)
		return 0;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	len = readlink(link, path, n - 1);
	if (len <= 0)
		return 0;
	path[len] = '\0';
	return fnmatch(pat, path, 0) == 0;
}

static void log_call(int call, const char *path)
{
	const char *file = getenv("DRB_FAULT_LOG");
	char line[4200];
	int fd, n;

	if (!file || !*file)
		return;
	n = snprintf(line, sizeof(line), "%s %s\n", call_names[call], path);
	if (n <= 0 || (size_t)n >= sizeof(line))
		return;
	/* raw system calls: the shim must not see its own writes */
	fd = (int)syscall(SYS_openat, AT_FDCWD, file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
			  0600);
	if (fd < 0)
		return;
	(void)syscall(SYS_write, fd, line, (size_t)n);
	(void)syscall(SYS_close, fd);
}

/* Counts a matching call; returns the errno it must fail with, or 0 to let it through.
 * *kill_after is set when the process must die once the call is done (DRB_FAULT_KILL). */
static int intercept(int call, int fd, int *kill_after)
{
	char path[4096], name[16];
	const char *spec = getenv("DRB_FAULT_FAIL");
	long nth = 0, mine;
	int every = 0, e = 0;
	const char *p, *q;

	if (!matches(fd, path, sizeof(path)))
		return 0;
	mine = __atomic_add_fetch(&counts[call], 1, __ATOMIC_SEQ_CST);
	if (call == C_FSYNC || call == C_FDATASYNC) {
		long s = __atomic_add_fetch(&sync_count, 1, __ATOMIC_SEQ_CST);

		const char *k = getenv("DRB_FAULT_KILL");

		if (spec && !strncmp(spec, "sync:", 5))
			mine = s;
		if (kill_after && k && *k && strtol(k, NULL, 10) == s)
			*kill_after = 1;
		if (kill_after && __atomic_exchange_n(&armed, 0, __ATOMIC_SEQ_CST))
			*kill_after = 1;
	}
	log_call(call, path);
	if (!spec || !(p = strchr(spec, ':')) || (size_t)(p - spec) >= sizeof(name))
		return 0;
	memcpy(name, spec, (size_t)(p - spec));
	name[p - spec] = '\0';
	if (strcmp(name, call_names[call]) != 0 &&
	    !(!strcmp(name, "sync") && (call == C_FSYNC || call == C_FDATASYNC)))
		return 0;
	nth = strtol(p + 1, (char **)&q, 10);
	if (*q == '+') {
		every = 1;
		q++;
	}
	if (*q == ':')
		e = parse_errno(q + 1);
	if (nth <= 0 || !e)
		return 0;
	return (mine == nth || (every && mine > nth)) ? e : 0;
}

#define REAL(type, name, args)                                                                     \
	static type(*real_##name) args;                                                            \
	if (!real_##name)                                                                          \
		real_##name = (type(*) args)dlsym(RTLD_NEXT, #name);

/* Arms the kill when a matching write holds DRB_FAULT_KILL_AFTER's text. */
static void arm(int fd, const void *buf, size_t n)
{
	const char *t = getenv("DRB_FAULT_KILL_AFTER"), *nth = getenv("DRB_FAULT_KILL_NTH");
	long want = nth && *nth ? atol(nth) : 1;
	char path[4096];

	if (t && *t && buf && matches(fd, path, sizeof(path)) && memmem(buf, n, t, strlen(t)) &&
	    __atomic_add_fetch(&seen, 1, __ATOMIC_SEQ_CST) == (want > 0 ? want : 1))
		__atomic_store_n(&armed, 1, __ATOMIC_SEQ_CST);
}

ssize_t write(int fd, const void *buf, size_t n)
{
	int e = intercept(C_WRITE, fd, NULL);

	arm(fd, buf, n);

	REAL(ssize_t, write, (int, const void *, size_t))
	if (e) {
		errno = e;
		return -1;
	}
	return real_write(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	int e = intercept(C_PWRITE, fd, NULL);

	REAL(ssize_t, pwrite, (int, const void *, size_t, off_t))
	if (e) {
		errno = e;
		return -1;
	}
	return real_pwrite(fd, buf, n, off);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	int e = intercept(C_WRITEV, fd, NULL);

	REAL(ssize_t, writev, (int, const struct iovec *, int))
	if (e) {
		errno = e;
		return -1;
	}
	return real_writev(fd, iov, cnt);
}

int fsync(int fd)
{
	int die = 0, e = intercept(C_FSYNC, fd, &die), rc;

	REAL(int, fsync, (int))
	if (e) {
		errno = e;
		return -1;
	}
	rc = real_fsync(fd);
	if (die && rc == 0)
		(void)syscall(SYS_kill, (long)getpid(), (long)SIGKILL);
	return rc;
}

int fdatasync(int fd)
{
	int die = 0, e = intercept(C_FDATASYNC, fd, &die), rc;

	REAL(int, fdatasync, (int))
	if (e) {
		errno = e;
		return -1;
	}
	rc = real_fdatasync(fd);
	if (die && rc == 0)
		(void)syscall(SYS_kill, (long)getpid(), (long)SIGKILL);
	return rc;
}
