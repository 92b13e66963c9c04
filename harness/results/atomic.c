/* atomic.c - result files written atomically (a temporary file, fsync,
 * rename, fsync of the directory), and the check that one can be created,
 * made before anything runs. */
#include "results.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

/* The directory part of path, in buf. */
static void dir_of(const char *path, char *buf, size_t n)
{
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s", path);
	snprintf(buf, n, "%s", dirname(tmp));
}

int axb_write_atomic(const char *path, const char *data, size_t len)
{
	char tmp[4200], dir[4096];
	int fd, err = 0;

	snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
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

int axb_check_writable(const char *path)
{
	char tmp[4200];
	struct stat st;

	if (!*path)
		return -ENOENT;
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return -EISDIR;
	snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	close(fd);
	unlink(tmp);
	return 0;
}
