/* source.c - what `axbench ergo` measures (the engines, the scenarios and
 * where their sources are) and the static metrics computed from the text
 * of those sources (docs/ergonomics.md). */
#include "ergo.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* What is measured: scenarios, engines, and where their sources are   */
/* ------------------------------------------------------------------ */

static const char *const ax_prefixes[] = {"ax_", "AX_", NULL};
static const char *const ax_exact[] = {NULL};
static const char *const epoll_prefixes[] = {"epoll_", "EPOLL", NULL};
static const char *const epoll_exact[] = {NULL};
static const char *const uv_prefixes[] = {"uv_", "UV_", NULL};
static const char *const uv_exact[] = {NULL};
static const char *const ev_prefixes[] = {
	"event_", "evutil_", "bufferevent_", "evbuffer_", "evconnlistener_",
	"evtimer_", "evthread_", "EV_", "EVENT_", "BEV_", "LEV_", NULL,
};
static const char *const ev_exact[] = {"event", NULL};
static const char *const uring_prefixes[] = {"io_uring_", "IORING_", NULL};
static const char *const uring_exact[] = {"io_uring", NULL};

/* The scenario API (scenarios/include/scenario.h) is not an engine API. */
static const char *const harness_prefixes[] = {"axs_", "AXS_", NULL};

const struct axb_ergo_engine axb_ergo_engines[] = {
	{"epoll", "epoll", epoll_prefixes, epoll_exact},
	{"libuv", "libuv", uv_prefixes, uv_exact},
	{"libevent", "libevent", ev_prefixes, ev_exact},
	{"io_uring", "uring", uring_prefixes, uring_exact},
};
const size_t axb_ergo_nengines = sizeof axb_ergo_engines / sizeof axb_ergo_engines[0];

static const struct axb_ergo_engine ax_engine = {"ax", NULL, ax_prefixes, ax_exact};

#define SERVE_UTIL_SOURCES                                                     \
	{"scenarios/serve_util.c", {{NULL, NULL}, {NULL, NULL}}},              \
	{"scenarios/serve_util.h", {{"struct axs_conn {", "/* Link c"},      \
				    {"struct axs_start {", "/* Accept on lfd"}}}

const struct axb_ergo_scenario axb_ergo_scenarios[] = {
	{"tcp_echo", "echo",
	 {{"scenarios/tcp_echo.c", {{NULL, "static const struct axs_param_def"}, {NULL, NULL}}},
	  SERVE_UTIL_SOURCES},
	 "echoed message"},
	{"timers", "timers",
	 {{"scenarios/timers.c", {{NULL, "static intptr_t tm_busy"},
				  {"static intptr_t tm_run", "/* 2. "}}}},
	 "timer armed and fired"},
	{"rpc_fanout", "rpc",
	 {{"scenarios/rpc_fanout.c", {{NULL, "static const struct axs_param_def"}, {NULL, NULL}}},
	  SERVE_UTIL_SOURCES},
	 "front request"},
};
const size_t axb_ergo_nscenarios = sizeof axb_ergo_scenarios / sizeof axb_ergo_scenarios[0];

/* ------------------------------------------------------------------ */
/* Source analysis                                                     */
/* ------------------------------------------------------------------ */

char *axb_ergo_read_text(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	size_t cap = 8192, n = 0;
	char *s = malloc(cap);
	size_t k;
	while (s && (k = fread(s + n, 1, cap - n - 1, f)) > 0) {
		n += k;
		if (cap - n < 4096) {
			char *t = realloc(s, cap *= 2);
			if (!t) {
				free(s);
				s = NULL;
			}
			s = t;
		}
	}
	fclose(f);
	if (s) {
		s[n] = 0;
		*len = n;
	}
	return s;
}

/* A copy of C source s with comments blanked and string and character
 * literals emptied (their quotes kept), newlines preserved, so that
 * offsets and line numbers stay those of s. */
static char *strip_c(const char *s, size_t n)
{
	char *o = malloc(n + 1);
	if (!o)
		return NULL;
	memcpy(o, s, n + 1);
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '/' && s[i + 1] == '/') {
			for (; i < n && s[i] != '\n'; i++)
				o[i] = ' ';
			i--;
		} else if (s[i] == '/' && s[i + 1] == '*') {
			size_t j = i;
			for (; j < n && !(s[j] == '*' && s[j + 1] == '/' && j > i + 1); j++)
				if (s[j] != '\n')
					o[j] = ' ';
			if (j < n)
				o[j] = o[j + 1] = ' ';
			i = j + 1;
		} else if (s[i] == '"' || s[i] == '\'') {
			char q = s[i];
			size_t j = i + 1;
			for (; j < n && s[j] != q && s[j] != '\n'; j++) {
				if (s[j] == '\\' && j + 1 < n) {
					o[j] = ' ';
					j++;
				}
				o[j] = ' ';
			}
			i = j;
		}
	}
	return o;
}

/* The implementation's text: the selected lines of the file, with
 * unbalanced braces (a function cut at a region's end) closed. */
static char *extract(const char *path, const struct axb_ergo_region *rg, size_t nrg,
		     char *why, size_t whyn)
{
	size_t len;
	char *s = axb_ergo_read_text(path, &len);
	if (!s) {
		snprintf(why, whyn, "cannot read %.200s: %s", path, strerror(errno));
		return NULL;
	}
	char *out = malloc(len + 64);
	size_t on = 0;
	for (size_t r = 0; r < nrg && out; r++) {
		if (r > 0 && !rg[r].from && !rg[r].to)
			break;
		char *p = s;
		if (rg[r].from) {
			char *hit = strstr(s, rg[r].from);
			if (!hit) {
				snprintf(why, whyn, "%.200s: no line with '%s'", path, rg[r].from);
				free(out);
				out = NULL;
				break;
			}
			while (hit > s && hit[-1] != '\n')
				hit--;
			p = hit;
		}
		char *e = s + len;
		if (rg[r].to) {
			char *hit = strstr(p, rg[r].to);
			if (hit) {
				while (hit > p && hit[-1] != '\n')
					hit--;
				e = hit;
			}
		}
		memcpy(out + on, p, (size_t)(e - p));
		on += (size_t)(e - p);
	}
	free(s);
	if (!out)
		return NULL;
	out[on] = 0;
	char *code = strip_c(out, on);
	int depth = 0;
	for (size_t i = 0; code && i < on; i++)
		depth += code[i] == '{' ? 1 : code[i] == '}' ? -1 : 0;
	free(code);
	for (; depth > 0 && on + 3 < len + 64; depth--) {
		memcpy(out + on, "}\n", 3);
		on += 2;
	}
	return out;
}

struct ident {
	const char *p;
	size_t n;
};

static bool id_is(const struct ident *t, const char *s)
{
	return strlen(s) == t->n && !memcmp(t->p, s, t->n);
}

static bool id_has_prefix(const struct ident *t, const char *pfx)
{
	size_t k = strlen(pfx);
	return t->n >= k && !memcmp(t->p, pfx, k);
}

static bool id_has_suffix(const struct ident *t, const char *sfx)
{
	size_t k = strlen(sfx);
	return t->n >= k && !memcmp(t->p + t->n - k, sfx, k);
}

static bool id_in(const struct ident *t, json_t *names)
{
	size_t i;
	json_t *v;
	json_array_foreach(names, i, v)
		if (id_is(t, json_string_value(v)))
			return true;
	return false;
}

static void add_unique(json_t *arr, const struct ident *t)
{
	if (!id_in(t, arr))
		json_array_append_new(arr, json_stringn(t->p, t->n));
}

static bool is_id_start(char c)
{
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_id_char(char c)
{
	return is_id_start(c) || (c >= '0' && c <= '9');
}

static char next_char(const char *s, size_t i)
{
	while (s[i] == ' ' || s[i] == '\t' || s[i] == '\n')
		i++;
	return s[i];
}

/* The identifier right before offset i (skipping blanks), or {NULL, 0}. */
static struct ident ident_before(const char *s, size_t i)
{
	struct ident t = {NULL, 0};
	while (i > 0 && (s[i - 1] == ' ' || s[i - 1] == '\t' || s[i - 1] == '\n'))
		i--;
	size_t e = i;
	while (i > 0 && is_id_char(s[i - 1]))
		i--;
	if (e > i && is_id_start(s[i])) {
		t.p = s + i;
		t.n = e - i;
	}
	return t;
}

/* The function whose call's argument list encloses offset i, or {NULL, 0}
 * when i is not inside a call (an initialiser, an assignment). */
static struct ident enclosing_call(const char *s, size_t i)
{
	int depth = 0;
	while (i-- > 0) {
		char c = s[i];
		if (c == ')')
			depth++;
		else if (c == '(' && depth-- == 0)
			return ident_before(s, i);
		else if (depth == 0 && (c == ';' || c == '{' || c == '}'))
			break;
	}
	return (struct ident){NULL, 0};
}

static bool engine_ident(const struct axb_ergo_engine *en, const struct ident *t)
{
	for (size_t k = 0; harness_prefixes[k]; k++)
		if (id_has_prefix(t, harness_prefixes[k]))
			return false;
	for (size_t k = 0; en->prefixes[k]; k++)
		if (id_has_prefix(t, en->prefixes[k]))
			return true;
	for (size_t k = 0; en->exact[k]; k++)
		if (id_is(t, en->exact[k]))
			return true;
	return false;
}

/* A release: close, free, munmap, or any *_free, *_close, *_destroy,
 * *_exit function the implementation does not define itself. */
static bool release_ident(const struct ident *t)
{
	return id_is(t, "free") || id_is(t, "close") || id_is(t, "munmap") ||
	       id_has_suffix(t, "_free") || id_has_suffix(t, "_close") ||
	       id_has_suffix(t, "_destroy") || id_has_suffix(t, "_exit");
}

/* A hand-written event loop's wait: the loop around it dispatches the
 * engine's events itself (libuv and libevent run their own loops and call
 * back instead). */
static bool wait_ident(const struct ident *t)
{
	static const char *const waits[] = {
		"epoll_wait", "epoll_pwait", "epoll_pwait2", "io_uring_submit_and_wait",
		"io_uring_submit_and_wait_timeout", "io_uring_wait_cqe",
		"io_uring_wait_cqes", "io_uring_wait_cqe_timeout", NULL,
	};
	for (size_t k = 0; waits[k]; k++)
		if (id_is(t, waits[k]))
			return true;
	return false;
}

/* Run pmccabe on text: per function, the traditional McCabe number. Adds
 * functions[] (names) and fills the sums. Returns 0 or -errno. */
static int run_pmccabe(const char *text, json_t *funcs, int *ccn_sum, int *ccn_max)
{
	char tmp[] = "/tmp/axb-ergo-XXXXXX.c";
	int fd = mkstemps(tmp, 2);
	if (fd < 0)
		return -errno;
	int err = axb_write_all(fd, text, strlen(text));
	close(fd);
	if (err) {
		unlink(tmp);
		return err;
	}
	char cmd[sizeof tmp + 64];
	snprintf(cmd, sizeof cmd, "pmccabe '%s' 2>/dev/null", tmp);
	FILE *p = popen(cmd, "r");
	char line[1024];
	*ccn_sum = *ccn_max = 0;
	while (p && fgets(line, sizeof line, p)) {
		int mod, trad, stmts, first, nlines;
		if (sscanf(line, "%d %d %d %d %d", &mod, &trad, &stmts, &first, &nlines) != 5)
			continue;
		char *colon = strrchr(line, ':');
		if (!colon)
			continue;
		char *name = colon + 1;
		name += strspn(name, " \t");
		name[strcspn(name, " \t\r\n")] = 0;
		json_array_append_new(funcs, json_string(name));
		*ccn_sum += trad;
		if (trad > *ccn_max)
			*ccn_max = trad;
	}
	int st = p ? pclose(p) : -1;
	unlink(tmp);
	if (st != 0 || json_array_size(funcs) == 0)
		return -ENOENT;
	return 0;
}

/* The metrics of one implementation's text into row. Returns 0 or -errno
 * (why says what went wrong). */
static int analyse(const char *text, const struct axb_ergo_engine *en, json_t *row,
		   char *why, size_t whyn)
{
	json_t *funcs = json_array(), *cbs = json_array(), *tasks = json_array();
	json_t *states = json_array(), *api = json_array();
	int ccn_sum = 0, ccn_max = 0, loc = 0, frees = 0, loops = 0;
	int err = run_pmccabe(text, funcs, &ccn_sum, &ccn_max);
	if (err) {
		snprintf(why, whyn, "pmccabe failed (is it installed?)");
		goto out;
	}
	char *code = strip_c(text, strlen(text));
	if (!code) {
		err = -ENOMEM;
		goto out;
	}
	/* lines with code */
	for (const char *l = code; *l;) {
		const char *nl = strchr(l, '\n');
		size_t n = nl ? (size_t)(nl - l) : strlen(l);
		for (size_t i = 0; i < n; i++)
			if (l[i] != ' ' && l[i] != '\t' && l[i] != '\r') {
				loc++;
				break;
			}
		l += n + (nl != NULL);
	}
	for (size_t i = 0; code[i];) {
		if (!is_id_start(code[i]) || (i > 0 && is_id_char(code[i - 1]))) {
			i++;
			continue;
		}
		struct ident t = {code + i, 0};
		size_t s0 = i;
		while (is_id_char(code[i]))
			i++;
		t.n = i - s0;
		char nx = next_char(code, i);
		char pv = s0 > 0 ? code[s0 - 1] : 0;
		bool member = pv == '.' || (pv == '>' && s0 > 1 && code[s0 - 2] == '-');
		if (id_is(&t, "enum")) {
			/* enum [tag] { A, B = 2, C }: each enumerator is a state */
			size_t j = i;
			while (code[j] == ' ' || code[j] == '\t' || code[j] == '\n' ||
			       is_id_char(code[j]))
				j++;
			if (code[j] != '{')
				continue;
			bool want = true;
			for (j++; code[j] && code[j] != '}'; j++) {
				if (code[j] == ',') {
					want = true;
				} else if (want && is_id_start(code[j])) {
					struct ident e = {code + j, 0};
					while (is_id_char(code[j + e.n]))
						e.n++;
					json_array_append_new(states, json_stringn(e.p, e.n));
					j += e.n - 1;
					want = false;
				}
			}
			i = j;
			continue;
		}
		if (member)
			continue;
		bool defined = id_in(&t, funcs);
		if (defined && nx != '(') {
			struct ident call = enclosing_call(code, s0);
			if (call.p && (id_is(&call, "ax_spawn") || id_is(&call, "ax_spawn_at") ||
				       id_is(&call, "pthread_create") ||
				       id_is(&call, "axs_accept_loop")))
				add_unique(tasks, &t);
			else
				add_unique(cbs, &t);
			continue;
		}
		if (defined)
			continue;
		if (engine_ident(en, &t))
			add_unique(api, &t);
		if (nx == '(' && release_ident(&t))
			frees++;
		if (nx == '(' && wait_ident(&t))
			loops++;
	}
	free(code);
	json_object_set_new(row, "loc", json_integer(loc));
	json_object_set_new(row, "functions", json_integer((json_int_t)json_array_size(funcs)));
	json_object_set_new(row, "ccn_total", json_integer(ccn_sum));
	json_object_set_new(row, "ccn_max", json_integer(ccn_max));
	json_object_set_new(row, "callbacks", json_incref(cbs));
	json_object_set_new(row, "states", json_incref(states));
	json_object_set_new(row, "dispatch_loops", json_integer(loops));
	json_object_set_new(row, "ioc", json_integer((json_int_t)(json_array_size(cbs) +
		json_array_size(states)) + loops));
	json_object_set_new(row, "tasks", json_incref(tasks));
	json_object_set_new(row, "api_identifiers", json_incref(api));
	json_object_set_new(row, "api_count", json_integer((json_int_t)json_array_size(api)));
	json_object_set_new(row, "frees", json_integer(frees));
out:
	json_decref(funcs);
	json_decref(cbs);
	json_decref(tasks);
	json_decref(states);
	json_decref(api);
	return err;
}

static json_t *regions_json(const struct axb_ergo_region *rg, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && !rg[i].from && !rg[i].to)
			break;
		json_array_append_new(a, json_pack("{s:s?, s:s?}", "from", rg[i].from,
						   "to", rg[i].to));
	}
	return a;
}

/* One row of the table: scenario sc in implementation `impl` (engine en;
 * NULL for the ax version). */
json_t *axb_ergo_static_row(const struct axb_ergo *E, const struct axb_ergo_scenario *sc,
			  const struct axb_ergo_engine *en)
{
	char impl[64], why[256] = "";
	struct axb_ergo_source native[1];
	char native_path[256];
	const struct axb_ergo_source *src = sc->ax;
	size_t nsrc = 0;

	if (en) {
		snprintf(native_path, sizeof native_path, "references/native/%s_%s.c",
			 en->stem, sc->stem);
		native[0] = (struct axb_ergo_source){native_path, {{NULL, NULL}, {NULL, NULL}}};
		src = native;
		nsrc = 1;
		snprintf(impl, sizeof impl, "native-%s", en->name);
	} else {
		while (nsrc < AXB_ERGO_MAX_SOURCES && sc->ax[nsrc].path)
			nsrc++;
		snprintf(impl, sizeof impl, "ax");
	}
	json_t *sources = json_array();
	size_t cap = 1, len = 0;
	char *text = calloc(1, cap);
	for (size_t i = 0; i < nsrc && text; i++) {
		char path[PATH_MAX + 128];
		snprintf(path, sizeof path, "%s/%s", E->src, src[i].path);
		json_array_append_new(sources, json_pack("{s:s, s:o}", "path", src[i].path,
					"regions", regions_json(src[i].regions, 2)));
		char *part = extract(path, src[i].regions, 2, why, sizeof why);
		if (!part) {
			free(text);
			text = NULL;
			break;
		}
		size_t n = strlen(part);
		char *t = realloc(text, len + n + 1);
		if (t) {
			memcpy(t + len, part, n + 1);
			len += n;
		} else {
			free(text);
		}
		text = t;
		free(part);
	}
	json_t *row = json_pack("{s:s, s:s, s:s, s:s?, s:o}",
				"scenario", sc->name, "implementation", impl,
				"kind", en ? "native" : "ax", "engine", en ? en->name : NULL,
				"sources", sources);
	if (!text || analyse(text, en ? en : &ax_engine, row, why, sizeof why)) {
		json_object_set_new(row, "error", json_string(why[0] ? why : "out of memory"));
		axb_err("ergo: %s %s: %s", sc->name, impl, why);
	}
	free(text);
	return row;
}

