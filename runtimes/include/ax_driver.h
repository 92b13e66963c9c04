/*
 * ax_driver.h - the contract between the ax core and an engine driver.
 *
 * A driver is one .c file exporting exactly one `const struct ax_driver`;
 * everything else in it is static. The core hands the driver operations
 * (struct ax_op) and timers (struct ax_timer); the driver completes each
 * accepted operation EXACTLY ONCE by calling ax_op_complete (never from
 * inside its submit function: completions are delivered from poll, or from
 * cancel for engines that cancel synchronously), and fires each armed timer
 * at most once, never before its deadline.
 *
 * The vtable is versioned and append-only (like SQLite's VFS): a new member
 * goes at the end and bumps AX_DRIVER_VERSION; the core checks `version`
 * before touching a member newer than what the driver was built against.
 *
 * Engine headers (uv.h, event2/, liburing.h) are included by drivers only.
 * What every driver needs besides (fd table, deferred completions,
 * non-blocking system-call steps, engine_flags parser, wake eventfd,
 * counters) is the core's driver kit, runtimes/core/kit.h.
 *
 * A driver built outside axbench is a shared object that exports one
 * struct ax_driver_entry named ax_driver_entry (the AX_DRIVER_ENTRY macro
 * below); ax_driver_load checks it and registers its driver. The headers
 * such a driver may include are ax.h, this one, kit.h and theap.h (what
 * `cmake --install` installs; docs/adding-a-runtime.md "Out of tree").
 */
#ifndef AX_DRIVER_H
#define AX_DRIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "ax.h"

#define AX_DRIVER_VERSION 1

/* The binary interface between the core and a driver built apart from it,
 * besides the vtable's own appended members (AX_DRIVER_VERSION): the
 * layout and meaning of struct ax_op, ax_timer, ax_driver_stats, the
 * kit's and the timer heap's structs and inline functions (kit.h,
 * theap.h), and the set of core functions a driver may call (the export
 * list, runtimes/driver.exports). Bumped by any incompatible change of
 * those; the core loads only a driver built with its own value. */
#define AX_DRIVER_ABI 1

/* Operation kinds. */
enum ax_op_kind {
	AX_OP_ACCEPT,  /* fd: listener. res: new fd (non-blocking, cloexec)  */
	AX_OP_CONNECT, /* addr/addrlen: peer. res: connected fd; the driver
	                  creates the socket (non-blocking, cloexec)         */
	AX_OP_READ,    /* fd, buf, len. res: bytes > 0, 0 at EOF, -errno.
	                  A driver that receives ahead into buffers of its own
	                  (io_uring recv=multishot) copies into buf, keeps
	                  what exceeds len for the fd's next READ, completes a
	                  cancelled READ that is in no kernel request at once
	                  with -ECANCELED (the receiving goes on, its bytes
	                  stay queued), delivers EOF / -errno after the
	                  queued bytes, and drops the queue in close_fd
	                  ([AX-TCP-17]) */
	AX_OP_WRITE,   /* fd, buf, len. res: len, or -errno; the driver writes
	                  ALL bytes (resubmitting after short writes) with
	                  MSG_NOSIGNAL semantics                             */
	AX_OP_PREAD,   /* fd, buf, len, off. res: bytes or -errno. Only for
	                  drivers with AX_FEAT_FILE; the core runs file I/O
	                  on its blocking pool for the others             */
	AX_OP_PWRITE,  /* fd, buf, len, off. res: bytes or -errno            */
	AX_OP_CALL,    /* fn(arg) on the engine's own thread pool; only for
	                  drivers with AX_FEAT_NATIVE_POOL. res: 0; the
	                  function's value goes to call_result              */
	AX_OP__COUNT
};

struct ax_op;
typedef void (*ax_op_done_fn)(struct ax_op *op);

/* One operation. Owned by the core (embedded in the waiting task); the
 * driver may use `drv` as scratch space and must not keep a pointer to the
 * op after completing it. */
struct ax_op {
	enum ax_op_kind kind;
	int fd;
	void *buf;
	size_t len;
	int64_t off;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	intptr_t (*call_fn)(void *);
	void *call_arg;
	intptr_t call_result;
	int64_t res;             /* set by ax_op_complete */
	ax_op_done_fn done;      /* core's completion hook */
	void *owner;             /* core's (the waiting task) */
	/* Driver scratch: an intrusive link and a few words, so that most
	 * drivers need no allocation per operation. */
	struct ax_op *drv_next;
	struct ax_op *drv_prev;
	uint64_t drv_u64[4];
	void *drv_ptr[4];
};

/* Complete op with res. Call exactly once per accepted op, on the runtime's
 * thread. Cheap: it only makes the waiting task ready. */
static inline void ax_op_complete(struct ax_op *op, int64_t res)
{
	op->res = res;
	op->done(op);
}

struct ax_timer;
typedef void (*ax_timer_fire_fn)(struct ax_timer *t);

/* One timer. Owned by the core; `deadline` is absolute ax_now() time.
 * `seq` increases with every arm on a runtime; drivers fire timers with equal
 * deadlines in increasing seq order ([AX-TIME-2]). */
struct ax_timer {
	int64_t deadline;
	uint64_t seq;
	ax_timer_fire_fn fire;
	void *owner;
	/* Driver scratch. */
	size_t drv_index;
	void *drv_ptr[2];
};

/* Reserved: an interface the core may offer drivers in a later version.
 * No member of the vtable receives it yet; drivers read time with ax_now()
 * (CLOCK_MONOTONIC, never cached: [AX-TIME-4]). */
struct ax_core_ops {
	int64_t (*now)(void);
};

/* Engine counters a driver reports. */
struct ax_driver_stats {
	uint64_t polls;   /* engine waits / loop iterations */
	uint64_t events;  /* completions and timer fires delivered */
	uint64_t syscalls; /* system calls made, when the driver counts them */
};

/* The vtable. Members marked "optional" may be NULL. */
struct ax_driver {
	uint32_t version;        /* AX_DRIVER_VERSION at build time */
	const char *name;        /* "epoll", "libuv", ... */
	const char *summary;     /* one line */
	uint32_t features;       /* AX_FEAT_* */

	/* Can this driver run here? Returns 0, or -errno and writes a one-line
	 * reason to why (n bytes). Must not leave anything behind. */
	int (*probe)(char *why, size_t n);

	/* Create engine state. opts is the runtime's options. Returns 0 and
	 * stores the state in *state, or -errno. */
	int (*init)(void **state, const struct ax_rt_opts *opts);

	/* Destroy engine state. Called only when no op is in flight and no
	 * timer is armed. Releases every descriptor and allocation. */
	void (*fini)(void *state);

	/* Start op. Returns 0 (accepted: it will complete exactly once) or
	 * -errno (not started, will never complete). The core never hands a
	 * driver a second READ or ACCEPT, or a second WRITE, on a descriptor
	 * whose side is pending: it refuses those itself ([AX-TCP-9]). */
	int (*submit)(void *state, struct ax_op *op);

	/* Ask an accepted, not yet completed op to stop. The op still completes
	 * exactly once: with -ECANCELED, or with its real result if it raced.
	 * The completion may happen inside this call or from a later poll; the
	 * core waits for it before the task resumes. */
	void (*cancel)(void *state, struct ax_op *op);

	/* Arm timer t (not armed). Returns 0 or -errno. */
	int (*timer_arm)(void *state, struct ax_timer *t);

	/* Disarm t if armed. Synchronous: after return t never fires. */
	void (*timer_cancel)(void *state, struct ax_timer *t);

	/* Wait for events and deliver completions and timer fires.
	 * block=false: do not wait. block=true: wait until at least one
	 * completion, timer fire or wake; the driver computes its own timeout
	 * from its timers. Returns the number of completions and fires
	 * delivered (>= 0) or -errno on an engine failure. */
	int (*poll)(void *state, bool block);

	/* Interrupt a blocking poll. Thread-safe, async-signal-unsafe; may be
	 * called many times; a wake before poll makes the next poll return. */
	void (*wake)(void *state);

	/* Close fd for the core: drop any state kept for it and make its
	 * pending ops complete with -EBADF or -ECANCELED (at once, inside this
	 * call, or from a later poll; a completion engine cancels them and lets them finish).
	 * The driver closes fd itself (libuv closes it through uv_close) and
	 * returns 0 or -errno from close. */
	int (*close_fd)(void *state, int fd);

	/* optional: a one-line description of the configuration in use. */
	const char *(*engine_info)(void *state);

	/* optional: counters. */
	void (*stats)(void *state, struct ax_driver_stats *st);

	/* optional: the readiness fast path. Try op at once without waiting.
	 * Returns 1 when it finished (op->res is set; no completion will be
	 * delivered), or 0 when it would wait: the core then calls submit,
	 * which continues from any progress recorded in the op's scratch
	 * (e.g. bytes of a write already sent). Called only for ACCEPT, READ
	 * and WRITE. The core bounds how many ops in a row one task finishes
	 * this way before it yields, so a busy connection cannot starve the
	 * others. */
	int (*try_now)(void *state, struct ax_op *op);
};

/* Add a driver that is not compiled into the registry (a runtime author's
 * own engine, a test's), after the compiled-in ones in preference order;
 * from then on ax_rt_create, ax_driver_count and friends know it by its
 * name. d must stay valid for the life of the process.
 * Returns 0, or -EINVAL when d lacks a name or a mandatory member (init,
 * fini, submit, cancel, timer_arm, timer_cancel, poll, wake, close_fd),
 * -EPROTO when d->version is not one this core implements (0, or newer
 * than AX_DRIVER_VERSION: a vtable from a later axbench is refused, never
 * half used), -EEXIST when a driver of that name exists, -ENOSPC when the
 * table of registered drivers (8) is full. Thread-safe, but call it before
 * creating the runtimes that should see it.                      [AX-DRV-1] */
int ax_driver_register(const struct ax_driver *d);

/* ------------------------------------------------------------------ */
/* Drivers in shared objects                                           */
/* ------------------------------------------------------------------ */

#define AX_DRIVER_ENTRY_MAGIC 0x52445841u /* "AXDR" read little-endian */
#define AX_DRIVER_ENTRY_SYMBOL "ax_driver_entry"

/* What a driver's shared object exports, under the name
 * AX_DRIVER_ENTRY_SYMBOL: its vtable and what it was compiled against.
 * magic and abi come first and keep their places in every later ABI, so
 * that any core can read them and refuse a driver it cannot serve. */
struct ax_driver_entry {
	uint32_t magic;       /* AX_DRIVER_ENTRY_MAGIC */
	uint32_t abi;         /* AX_DRIVER_ABI */
	uint32_t api;         /* AX_API_VERSION (ax.h) */
	uint32_t entry_size;  /* sizeof(struct ax_driver_entry) */
	/* the sizes of the structs the core and the driver share, a check
	 * against a layout changed without an ABI bump or a mismatched
	 * compiler target */
	uint32_t driver_size; /* sizeof(struct ax_driver) */
	uint32_t op_size;     /* sizeof(struct ax_op) */
	uint32_t timer_size;  /* sizeof(struct ax_timer) */
	uint32_t opts_size;   /* sizeof(struct ax_rt_opts) */
	const struct ax_driver *driver;
};

/* Define the entry of a driver's shared object, for the vtable at drv:
 *     AX_DRIVER_ENTRY(&my_driver);
 * at file scope, once. Exported even under -fvisibility=hidden. */
#define AX_DRIVER_ENTRY(drv)                                               \
	__attribute__((visibility("default"), used))                        \
	const struct ax_driver_entry ax_driver_entry = {                     \
		.magic = AX_DRIVER_ENTRY_MAGIC,                              \
		.abi = AX_DRIVER_ABI,                                        \
		.api = AX_API_VERSION,                                       \
		.entry_size = sizeof(struct ax_driver_entry),                \
		.driver_size = sizeof(struct ax_driver),                     \
		.op_size = sizeof(struct ax_op),                             \
		.timer_size = sizeof(struct ax_timer),                       \
		.opts_size = sizeof(struct ax_rt_opts),                      \
		.driver = (drv),                                             \
	}

/* Load the driver of the shared object at path (dlopen, RTLD_NOW |
 * RTLD_LOCAL: every symbol it needs is resolved now) and register it
 * (ax_driver_register). The core functions a driver calls (ax_now, the
 * kit, the timer heap) must be exported by the program: axbench exports
 * exactly the list runtimes/driver.exports. Nothing of the object runs
 * before its entry passed the checks, except its ELF constructors.
 * Returns 0 and stores the driver in *out (out may be NULL), or -errno
 * and writes a one-line reason to why (n bytes; the caller names the
 * path):
 *   -EINVAL   path is empty or has no '/' (dlopen would search the
 *             library path for it);
 *   -ENOENT   no file at path;
 *   -ELIBBAD  dlopen refused it (not a shared object, another machine,
 *             a symbol it needs is missing: dlerror's text);
 *   -ENOEXEC  it exports no AX_DRIVER_ENTRY_SYMBOL: not an ax driver;
 *   -EPROTO   the symbol is not a struct ax_driver_entry (a function,
 *             an object too small), a wrong magic, AX_DRIVER_ABI,
 *             AX_API_VERSION or struct size, or a vtable version this
 *             core does not implement;
 *   -EINVAL   the entry names no driver, or as ax_driver_register;
 *   -EEXIST, -ENOSPC  as ax_driver_register.
 * On an error the object is unloaded; a loaded driver stays for the life
 * of the process. Thread-safe as ax_driver_register.             [AX-DRV-2] */
int ax_driver_load(const char *path, const struct ax_driver **out, char *why,
		   size_t n);

/* The registry (runtimes/registry.c): compiled-in drivers in preference
 * order, then the registered ones. ax__driver_at(i) for i < ax__driver_n(). */
size_t ax__driver_n(void);
size_t ax__driver_compiled_n(void); /* the compiled-in ones come first */
const struct ax_driver *ax__driver_at(size_t i);

#endif /* AX_DRIVER_H */
