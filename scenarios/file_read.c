/*
 * file_read.c - file reads through ax_pread: a file of `file_size` bytes
 * read in `chunk` blocks by `depth` concurrent tasks, sequentially and in a
 * random order, page cache warm; then with O_DIRECT (page cache bypassed)
 * where the file system allows it. The check: every block's content
 * matches the pattern written for its offset.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scenario.h"

struct fr {
	int fd;
	int64_t size, chunk, nblocks;
	int64_t next;            /* next block index to claim */
	const int64_t *order;    /* block order, NULL = sequential */
	int64_t bad;
	int64_t err;
	bool direct;
};

/* The pattern: every 8-byte word holds its own file offset. */
static void fr_fill(unsigned char *buf, int64_t off, int64_t n)
{
	for (int64_t i = 0; i + 8 <= n; i += 8) {
		int64_t v = off + i;
		memcpy(buf + i, &v, 8);
	}
}

static bool fr_ok(const unsigned char *buf, int64_t off, int64_t n)
{
	for (int64_t i = 0; i + 8 <= n; i += 8) {
		int64_t v;
		memcpy(&v, buf + i, 8);
		if (v != off + i)
			return false;
	}
	return true;
}

static intptr_t fr_worker(void *arg)
{
	struct fr *f = arg;
	unsigned char *buf = NULL;
	if (posix_memalign((void **)&buf, 4096, (size_t)f->chunk) != 0)
		return -ENOMEM;
	while (f->next < f->nblocks && !f->err) {
		int64_t b = f->next++;
		if (f->order)
			b = f->order[b];
		int64_t off = b * f->chunk;
		ssize_t n = ax_pread(f->fd, buf, (size_t)f->chunk, off);
		if (n < 0) {
			f->err = n;
			break;
		}
		if (n != f->chunk || !fr_ok(buf, off, n))
			f->bad++;
	}
	free(buf);
	return 0;
}

static int fr_pass(struct fr *f, int64_t depth, int64_t *elapsed)
{
	ax_task *t[64];
	f->next = 0;
	f->bad = f->err = 0;
	int64_t t0 = ax_now();
	for (int64_t i = 0; i < depth; i++)
		ax_spawn(&t[i], fr_worker, f, "reader");
	for (int64_t i = 0; i < depth; i++)
		ax_join(t[i], NULL);
	*elapsed = ax_now() - t0;
	return f->err ? (int)f->err : 0;
}

static intptr_t fr_run(struct axs_ctx *ctx)
{
	struct fr f = {.size = axs_param(ctx, "file_size"),
		       .chunk = axs_param(ctx, "chunk")};
	int64_t depth = axs_param(ctx, "depth");
	const char *dir = getenv("AX_FILE_DIR") ? getenv("AX_FILE_DIR") : "/var/tmp";
	char path[512];
	int r = 0;
	f.nblocks = f.size / f.chunk;
	f.size = f.nblocks * f.chunk;
	snprintf(path, sizeof path, "%s/axbench-file-XXXXXX", dir);
	f.fd = mkstemp(path);
	if (f.fd < 0) {
		axs_fail(ctx, "cannot create a test file in %s: %s", dir, strerror(errno));
		return -errno;
	}
	unlink(path);

	/* write the file with the pattern (not timed) */
	unsigned char *buf = malloc((size_t)f.chunk);
	int64_t *order = malloc((size_t)f.nblocks * sizeof *order);
	if (!buf || !order) {
		r = -ENOMEM;
		goto out;
	}
	for (int64_t b = 0; b < f.nblocks; b++) {
		fr_fill(buf, b * f.chunk, f.chunk);
		if (ax_pwrite(f.fd, buf, (size_t)f.chunk, b * f.chunk) != f.chunk) {
			axs_fail(ctx, "writing the test file failed");
			r = -EIO;
			goto out;
		}
	}
	/* a fixed shuffle, so every runtime reads the same order */
	uint64_t x = 88172645463325252ull;
	for (int64_t b = 0; b < f.nblocks; b++)
		order[b] = b;
	for (int64_t b = f.nblocks - 1; b > 0; b--) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		int64_t j = (int64_t)(x % (uint64_t)(b + 1)), tmp = order[b];
		order[b] = order[j];
		order[j] = tmp;
	}

	int64_t el;
	const char *names[2] = {"seq_warm_mib_s", "rand_warm_mib_s"};
	for (int pass = 0; pass < 2; pass++) {
		f.order = pass ? order : NULL;
		if ((r = fr_pass(&f, depth, &el)) < 0 || f.bad) {
			axs_fail(ctx, "%s: %ld bad blocks, error %d", names[pass],
				   (long)f.bad, r);
			goto out;
		}
		axs_metric(ctx, names[pass],
			     (double)f.size / 1048576.0 * 1e9 / (double)el, "MiB/s", +1);
	}

	/* cold: O_DIRECT bypasses the page cache where the file system can */
	char self[64];
	snprintf(self, sizeof self, "/proc/self/fd/%d", f.fd);
	int dfd = open(self, O_RDONLY | O_DIRECT | O_CLOEXEC);
	if (dfd < 0) {
		axs_metric(ctx, "o_direct_supported", 0, "bool", 0);
	} else {
		int ofd = f.fd;
		f.fd = dfd;
		f.order = order;
		r = fr_pass(&f, depth, &el);
		f.fd = ofd;
		close(dfd);
		if (r == -EINVAL) {
			axs_metric(ctx, "o_direct_supported", 0, "bool", 0);
			r = 0;
		} else if (r < 0 || f.bad) {
			axs_fail(ctx, "O_DIRECT: %ld bad blocks, error %d",
				   (long)f.bad, r);
			goto out;
		} else {
			axs_metric(ctx, "o_direct_supported", 1, "bool", 0);
			axs_metric(ctx, "rand_direct_mib_s",
				     (double)f.size / 1048576.0 * 1e9 / (double)el,
				     "MiB/s", +1);
		}
	}
out:
	free(buf);
	free(order);
	close(f.fd);
	return r;
}

static const struct axs_param_def fr_params[] = {
	{"file_size", AXS_P_BYTES, "256m", "size of the file read", 1 << 16, 1ll << 40},
	{"chunk", AXS_P_BYTES, "64k", "bytes per ax_pread", 4096, 64 << 20},
	{"depth", AXS_P_INT, "4", "concurrent reading tasks", 1, 64},
};

const struct axs_scenario axs_file_read = {
	.name = "file_read",
	.summary = "ax_pread throughput: sequential and random, warm and O_DIRECT",
	.kind = AXS_LOCAL,
	.params = fr_params,
	.nparams = sizeof fr_params / sizeof fr_params[0],
	.run = fr_run,
};
