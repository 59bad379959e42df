/* The run lock: one run per lock key (the runbook's lock:, or its name) on this machine, so a
 * failover is not started twice by accident. flock(2) on <runs dir>/locks/<key>.lock; the
 * kernel drops it when the process dies, so a crashed run never leaves a stale lock. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine_int.h"

int drb_lock_take(const char *runs_dir, const char *key, int *fd, drb_err *err)
{
	char dir[4096], path[4096 + 300], safe[256], holder[64] = "";
	size_t j = 0;
	int f;

	*fd = -1;
	for (size_t i = 0; key[i] && j < sizeof(safe) - 1; i++) {
		char c = key[i];

		safe[j++] = (c == '/' || c == '\\' || (c == '.' && i == 0)) ? '_' : c;
	}
	safe[j] = '\0';
	snprintf(dir, sizeof(dir), "%s", runs_dir);
	mkdir(dir, 0700);
	snprintf(dir, sizeof(dir), "%s/locks", runs_dir);
	mkdir(dir, 0700);
	snprintf(path, sizeof(path), "%s/%s.lock", dir, safe);
	f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (f < 0)
		return drb_err_set(err, DRB_EIO, "run lock %s: %s", path, strerror(errno));
	if (flock(f, LOCK_EX | LOCK_NB) != 0) {
		ssize_t n = pread(f, holder, sizeof(holder) - 1, 0);

		holder[n > 0 ? n : 0] = '\0';
		holder[strcspn(holder, "\n")] = '\0';
		close(f);
		return drb_err_set(err, DRB_EDENIED,
				   "run lock '%s' is held by another run (%s): refusing to start a "
				   "second one",
				   key, holder[0] ? holder : "unknown pid");
	}
	if (ftruncate(f, 0) == 0) {
		char buf[64];
		int n = snprintf(buf, sizeof(buf), "pid %d\n", (int)getpid());

		if (pwrite(f, buf, (size_t)n, 0) < 0) {
			/* the lock holds without the note */
		}
	}
	*fd = f;
	return 0;
}

void drb_lock_release(int fd)
{
	if (fd >= 0) {
		flock(fd, LOCK_UN);
		close(fd);
	}
}
