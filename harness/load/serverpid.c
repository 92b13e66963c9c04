/* serverpid.c - the check that `load --server-pid PID` names the process
 * serving the target port, before the load generator signals it or reads
 * its memory: a socket listening on that port (/proc/net/tcp, tcp6) must be
 * one of PID's descriptors (/proc/PID/fd/N -> socket:[inode]). */
#include "loadgen.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_INODES 64

/* Inodes of the sockets listening on port in one /proc/net table. */
static size_t listening_inodes(const char *table, int port, unsigned long *ino,
			       size_t n, size_t k)
{
	char line[512];
	FILE *f = fopen(table, "re");
	if (!f)
		return k;
	while (k < n && fgets(line, sizeof line, f)) {
		char local[128];
		unsigned st, lport;
		unsigned long inode;
		/* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
		if (sscanf(line, " %*d: %127s %*s %x %*s %*s %*s %*u %*u %lu", local,
			   &st, &inode) != 3)
			continue;
		const char *colon = strrchr(local, ':');
		if (!colon || sscanf(colon + 1, "%x", &lport) != 1)
			continue;
		if (st == 0x0A /* TCP_LISTEN */ && (int)lport == port && inode)
			ino[k++] = inode;
	}
	fclose(f);
	return k;
}

int lg_check_server_pid(pid_t pid, int port, char *why, size_t n)
{
	unsigned long ino[MAX_INODES];
	size_t k = listening_inodes("/proc/net/tcp", port, ino, MAX_INODES, 0);
	k = listening_inodes("/proc/net/tcp6", port, ino, MAX_INODES, k);

	char path[64];
	snprintf(path, sizeof path, "/proc/%ld/fd", (long)pid);
	DIR *d = opendir(path);
	if (!d) {
		int e = errno;
		if (e == ENOENT)
			snprintf(why, n, "--server-pid %ld: no such process", (long)pid);
		else
			snprintf(why, n, "--server-pid %ld: cannot read its descriptors "
				 "(%s), so cannot check that it serves port %d",
				 (long)pid, strerror(e), port);
		return -e;
	}
	if (!k) {
		closedir(d);
		snprintf(why, n, "--server-pid %ld: no socket listens on port %d on "
			 "this host (--server-pid is for a server on this host)",
			 (long)pid, port);
		return -ESRCH;
	}
	bool found = false;
	struct dirent *de;
	while (!found && (de = readdir(d))) {
		char fd[340], to[64];
		snprintf(fd, sizeof fd, "%s/%s", path, de->d_name);
		ssize_t l = readlink(fd, to, sizeof to - 1);
		unsigned long si;
		if (l <= 0)
			continue;
		to[l] = 0;
		if (sscanf(to, "socket:[%lu]", &si) != 1)
			continue;
		for (size_t i = 0; i < k && !found; i++)
			found = ino[i] == si;
	}
	closedir(d);
	if (!found) {
		snprintf(why, n, "--server-pid %ld is not the process listening on "
			 "port %d (none of its descriptors is that socket); it will "
			 "not be signalled", (long)pid, port);
		return -ESRCH;
	}
	return 0;
}
