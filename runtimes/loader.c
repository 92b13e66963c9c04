/* loader.c - drivers from shared objects (ax_driver_load, [AX-DRV-2]):
 * dlopen, the entry's checks from the fields every ABI keeps (magic, abi)
 * to the ones this ABI defines, then the registry's own checks
 * (ax_driver_register). A refused object is unloaded; a loaded one never
 * is, since its vtable is registered for the life of the process. */
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "ax_driver.h"

/* A size the entry records against this core's, or true when they match;
 * else the reason in why. */
static bool same_size(const char *what, uint32_t theirs, size_t ours,
		      char *why, size_t n)
{
	if (theirs == ours)
		return true;
	snprintf(why, n, "sizeof(struct %s) is %u in the driver and %zu in this core: "
		 "rebuild the driver against this core's headers", what, theirs, ours);
	return false;
}

/* The entry's checks, in the order its fields can be trusted. First, before
 * any is read: the symbol is data, with room for the two fields every ABI
 * keeps (a function of that name, or a smaller object, is not read past its
 * end); then the magic and the versions; then the sizes, the symbol's own
 * included. Returns 0 or -EPROTO/-EINVAL with the reason in why. */
static int check_entry(const struct ax_driver_entry *e, char *why, size_t n)
{
	Dl_info info;
	const ElfW(Sym) *sym = NULL;
	size_t st_size = sizeof *e;
	if (dladdr1(e, &info, (void **)&sym, RTLD_DL_SYMENT) && sym) {
		/* ELF64_ST_TYPE is ELF32_ST_TYPE: the low 4 bits */
		unsigned type = ELF64_ST_TYPE(sym->st_info);
		st_size = (size_t)sym->st_size;
		if (type != STT_OBJECT ||
		    st_size < offsetof(struct ax_driver_entry, abi) + sizeof e->abi) {
			snprintf(why, n, "%s is not a struct ax_driver_entry (%s of %zu "
				 "bytes): define it with AX_DRIVER_ENTRY",
				 AX_DRIVER_ENTRY_SYMBOL,
				 type == STT_FUNC ? "a function" : "an object", st_size);
			return -EPROTO;
		}
	}
	if (e->magic != AX_DRIVER_ENTRY_MAGIC) {
		snprintf(why, n, "%s is not a struct ax_driver_entry (magic 0x%08x, "
			 "expected 0x%08x)", AX_DRIVER_ENTRY_SYMBOL, e->magic,
			 AX_DRIVER_ENTRY_MAGIC);
		return -EPROTO;
	}
	if (e->abi != AX_DRIVER_ABI) {
		snprintf(why, n, "driver ABI %u, this core implements ABI %u "
			 "(AX_DRIVER_ABI): rebuild the driver against this core's headers",
			 e->abi, AX_DRIVER_ABI);
		return -EPROTO;
	}
	if (e->api != AX_API_VERSION) {
		snprintf(why, n, "driver built against ax.h version %u, this core has "
			 "version %u (AX_API_VERSION): rebuild the driver against this "
			 "core's headers", e->api, AX_API_VERSION);
		return -EPROTO;
	}
	if (!same_size("ax_driver_entry", e->entry_size, sizeof *e, why, n) ||
	    !same_size("ax_driver_entry", (uint32_t)st_size, sizeof *e, why, n) ||
	    !same_size("ax_driver", e->driver_size, sizeof(struct ax_driver), why, n) ||
	    !same_size("ax_op", e->op_size, sizeof(struct ax_op), why, n) ||
	    !same_size("ax_timer", e->timer_size, sizeof(struct ax_timer), why, n) ||
	    !same_size("ax_rt_opts", e->opts_size, sizeof(struct ax_rt_opts), why, n))
		return -EPROTO;
	if (!e->driver) {
		snprintf(why, n, "%s names no driver (driver is NULL)", AX_DRIVER_ENTRY_SYMBOL);
		return -EINVAL;
	}
	if (e->driver->version == 0 || e->driver->version > AX_DRIVER_VERSION) {
		snprintf(why, n, "driver '%s' has vtable version %u, this core implements "
			 "1..%u (AX_DRIVER_VERSION)", e->driver->name ? e->driver->name : "?",
			 e->driver->version, AX_DRIVER_VERSION);
		return -EPROTO;
	}
	return 0;
}

int ax_driver_load(const char *path, const struct ax_driver **out, char *why,
		   size_t n)
{
	char scratch[1];
	if (!why || !n) {
		why = scratch;
		n = sizeof scratch;
	}
	why[0] = 0;
	if (!path || !*path) {
		snprintf(why, n, "no path given");
		return -EINVAL;
	}
	/* a name without '/' would be searched on the library path */
	if (!strchr(path, '/')) {
		snprintf(why, n, "not a path: give one with a '/' (./%s)", path);
		return -EINVAL;
	}
	/* stat first: dlopen's "cannot open shared object file" says the
	 * same for a missing file and a missing dependency */
	struct stat st;
	if (stat(path, &st) < 0) {
		int e = errno;
		snprintf(why, n, "%s", strerror(e));
		return e == ENOENT || e == ENOTDIR ? -ENOENT : -e;
	}
	dlerror();
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		const char *e = dlerror();
		snprintf(why, n, "dlopen refused it: %s", e ? e : "no reason given");
		return -ELIBBAD;
	}
	dlerror();
	const struct ax_driver_entry *entry = dlsym(h, AX_DRIVER_ENTRY_SYMBOL);
	const char *e = dlerror();
	int r;
	if (e || !entry) {
		snprintf(why, n, "it exports no %s, so it is not an ax driver (see "
			 "AX_DRIVER_ENTRY in ax_driver.h)", AX_DRIVER_ENTRY_SYMBOL);
		r = -ENOEXEC;
		goto unload;
	}
	r = check_entry(entry, why, n);
	if (r)
		goto unload;
	const struct ax_driver *d = entry->driver;
	r = ax_driver_register(d);
	if (r == -EEXIST)
		snprintf(why, n, "a driver named '%s' is known already (compiled in or "
			 "loaded before)", d->name);
	else if (r == -ENOSPC)
		snprintf(why, n, "the table of loaded and registered drivers is full");
	else if (r == -EINVAL)
		snprintf(why, n, "driver '%s' lacks a name or a mandatory vtable member "
			 "(ax_driver_register)", d->name ? d->name : "");
	else if (r)
		snprintf(why, n, "cannot register driver '%s': %s", d->name ? d->name : "",
			 strerror(-r));
	if (r)
		goto unload;
	if (out)
		*out = d;
	return 0;

unload:
	dlclose(h);
	return r;
}
