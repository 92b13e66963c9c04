/* atomic.c - result files written safely: claimed before anything runs
 * (the path is a regular file or a new name, its directory writable, and a
 * lock on PATH.lock held for the whole run so that a second writer is
 * refused), then written atomically (a temporary file, fsync, rename,
 * fsync of the directory) after checking again that the path still names a
 * regular file or nothing (docs/harness.md, "Result files"). */
#include "results.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* The directory part of path, in buf. */
static void dir_of(const char *path, char *buf, size_t n)
{
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s", path);
	snprintf(buf, n, "%s", dirname(tmp));
}

/* What a file of mode m is, in words, for an error line. */
static const char *kind_of(mode_t m)
{
	if (S_ISDIR(m))
		return "a directory";
	if (S_ISCHR(m))
		return "a character device";
	if (S_ISBLK(m))
		return "a block device";
	if (S_ISFIFO(m))
		return "a FIFO";
	if (S_ISSOCK(m))
		return "a socket";
	if (S_ISLNK(m))
		return "a symbolic link";
	return "not a regular file";
}

/* 0 when path names a regular file or nothing; else -errno with the
 * reason in why. A symbolic link is refused, even to a regular file:
 * the rename would replace the link, not write through it. */
static int check_target(const char *path, char *why, size_t n)
{
	struct stat st;
	if (lstat(path, &st)) {
		if (errno == ENOENT)
			return 0;
		snprintf(why, n, "%s: %s", path, strerror(errno));
		return -errno;
	}
	if (S_ISREG(st.st_mode))
		return 0;
	if (S_ISLNK(st.st_mode)) {
		char to[4096];
		ssize_t k = readlink(path, to, sizeof to - 1);
		to[k > 0 ? k : 0] = 0;
		snprintf(why, n, "%s is a symbolic link (to %s); results are written "
			 "only to a regular file or a new path: give the target's own "
			 "path", path, k > 0 ? to : "?");
		return -ELOOP;
	}
	snprintf(why, n, "%s is %s, not a regular file; results are written only "
		 "to a regular file or a new path", path, kind_of(st.st_mode));
	return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
}

int axb_write_atomic(const char *path, const char *data, size_t len)
{
	char tmp[4200], dir[4096], why[256];
	int fd, err = 0;

	/* the path was checked when it was claimed; something may have
	 * been put there since (a device, a link): never replace it */
	if ((err = check_target(path, why, sizeof why)))
		return err;
	snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	err = axb_write_all(fd, data, len);
	if (!err && fsync(fd))
		err = -errno;
	if (close(fd) && !err)
		err = -errno;
	if (err)
		goto unlink_tmp;
	if (rename(tmp, path)) {
		err = -errno;
		goto unlink_tmp;
	}
	/* make the rename itself durable */
	dir_of(path, dir, sizeof dir);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	return 0;

unlink_tmp:
	unlink(tmp);
	return err;
}

/* The locks this process holds, released (and their files removed) at
 * exit by the process that took them. */
#define MAX_CLAIMS 8
static struct claim {
	char lock[4200];
	int fd;
} claims[MAX_CLAIMS];
static size_t nclaims;
static pid_t claims_owner;

static void release_claims(void)
{
	if (getpid() != claims_owner)
		return; /* a forked child: the locks are the parent's */
	for (size_t i = 0; i < nclaims; i++) {
		/* unlinked while still held: a waiting writer that opened the
		 * old file sees it was replaced and takes a fresh one */
		unlink(claims[i].lock);
		close(claims[i].fd);
	}
	nclaims = 0;
}

/* Lock PATH.lock (created if missing) for this process, its pid inside.
 * The classic race of removable lock files is closed by checking, once
 * locked, that the name still refers to the locked file. */
static int take_lock(const char *path, char *why, size_t n)
{
	char lock[4200];
	snprintf(lock, sizeof lock, "%s.lock", path);
	for (int attempt = 0; attempt < 100; attempt++) {
		int fd = open(lock, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (fd < 0) {
			int e = errno;
			snprintf(why, n, "cannot create the lock file %s: %s", lock,
				 strerror(e));
			return -e;
		}
		struct stat a, b;
		if (fstat(fd, &a) || !S_ISREG(a.st_mode)) {
			close(fd);
			snprintf(why, n, "the lock file %s is not a regular file", lock);
			return -EINVAL;
		}
		if (flock(fd, LOCK_EX | LOCK_NB)) {
			int e = errno;
			char buf[32] = "";
			ssize_t k = pread(fd, buf, sizeof buf - 1, 0);
			buf[k > 0 ? k : 0] = 0;
			buf[strcspn(buf, "\n")] = 0;
			close(fd);
			if (e != EWOULDBLOCK) {
				snprintf(why, n, "cannot lock %s: %s", lock, strerror(e));
				return -e;
			}
			snprintf(why, n, "%s is being written by another axbench "
				 "(process %s holds %s); wait for it to finish or choose "
				 "another path", path, buf[0] ? buf : "?", lock);
			return -EBUSY;
		}
		if (stat(lock, &b) || a.st_ino != b.st_ino || a.st_dev != b.st_dev) {
			close(fd); /* removed or replaced meanwhile: again */
			continue;
		}
		char pid[32];
		int k = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
		if (ftruncate(fd, 0) == 0)
			(void)!pwrite(fd, pid, (size_t)k, 0);
		if (nclaims == MAX_CLAIMS) {
			close(fd);
			snprintf(why, n, "too many result files claimed at once");
			return -EMFILE;
		}
		if (!claims_owner) {
			claims_owner = getpid();
			atexit(release_claims);
		}
		snprintf(claims[nclaims].lock, sizeof claims[nclaims].lock, "%s", lock);
		claims[nclaims++].fd = fd;
		return 0;
	}
	snprintf(why, n, "cannot lock %s: it keeps being replaced", lock);
	return -EAGAIN;
}

int axb_claim_output(const char *path, char *why, size_t n)
{
	char tmp[4200];
	int err;

	if (!*path) {
		snprintf(why, n, "an empty path cannot hold results");
		return -ENOENT;
	}
	if (strlen(path) > 4000) {
		snprintf(why, n, "the result path is too long");
		return -ENAMETOOLONG;
	}
	if ((err = check_target(path, why, n)))
		return err;
	/* the directory exists and takes new files (the temporary file of
	 * every rewrite is created there) */
	snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0) {
		err = -errno;
		snprintf(why, n, "cannot write %s: %s", path, strerror(-err));
		return err;
	}
	close(fd);
	unlink(tmp);
	return take_lock(path, why, n);
}
