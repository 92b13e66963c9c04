/*
 * fault.c - the faults of the `*_faults` scenarios (docs/harness.md, "Fault
 * scenarios"; docs/decisions.md): which fault a cell asks for, the private
 * network namespace the network faults run in, installing the impairment
 * there (netem where the kernel has it, else iptables rules that drop
 * packets in the kernel and hand every packet to the load generator's
 * user-space queue), and whether this machine can do any of it.
 *
 * The server enters a fresh namespace before it listens
 * (axb_netns_private); the load generator joins it through the server's
 * pid and installs the impairment (axb_netfault_install); `run` asks
 * axb_fault_supported while planning, so a cell this machine cannot
 * impair is `unsupported` with the reason instead of measured unimpaired.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *const fault_names[] = {
	[AXB_FAULT_NONE] = "none",
	[AXB_FAULT_BASELINE] = "baseline",
	[AXB_FAULT_DELAY] = "delay",
	[AXB_FAULT_LOSS] = "loss",
	[AXB_FAULT_REORDER] = "reorder",
	[AXB_FAULT_RESET] = "reset",
	[AXB_FAULT_SLOW_READER] = "slow_reader",
	[AXB_FAULT_SLOWLORIS] = "slowloris",
};

enum axb_fault axb_fault_of(const struct axs_scenario *sc, const int64_t *values)
{
	int i = axs_param_index(sc, "fault");
	if (i < 0 || values[i] < 0 || values[i] > AXB_FAULT_SLOWLORIS)
		return AXB_FAULT_NONE;
	return (enum axb_fault)values[i];
}

const char *axb_fault_name(enum axb_fault f)
{
	return f <= AXB_FAULT_SLOWLORIS ? fault_names[f] : "?";
}

bool axb_fault_in_netns(enum axb_fault f)
{
	return f == AXB_FAULT_BASELINE || f == AXB_FAULT_DELAY ||
	       f == AXB_FAULT_LOSS || f == AXB_FAULT_REORDER;
}

/* Bring lo up with an Ethernet MTU in the calling thread's namespace:
 * with loopback's 64 KiB MTU a 16 KiB message is one packet, and loss or
 * reordering would act on whole messages only. */
static int lo_up(char *why, size_t n)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0) {
		snprintf(why, n, "socket: %s", strerror(errno));
		return -errno;
	}
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
	int err = 0;
	ifr.ifr_mtu = AXB_FAULT_MTU;
	if (ioctl(s, SIOCSIFMTU, &ifr) < 0) {
		err = -errno;
		snprintf(why, n, "cannot set lo's MTU in the namespace: %s", strerror(errno));
	} else if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0 ||
		   (ifr.ifr_flags |= IFF_UP, ioctl(s, SIOCSIFFLAGS, &ifr) < 0)) {
		err = -errno;
		snprintf(why, n, "cannot bring lo up in the namespace: %s", strerror(errno));
	}
	close(s);
	return err;
}

int axb_netns_private(char *why, size_t n)
{
	if (unshare(CLONE_NEWNET) < 0) {
		int e = errno;
		snprintf(why, n, "cannot create a network namespace "
			 "(unshare(CLONE_NEWNET): %s)", strerror(e));
		return -e;
	}
	return lo_up(why, n);
}

/* Run a network tool (tc, iptables) found in the usual system folders,
 * waiting for it; its stderr's first line goes into why on failure.
 * Returns 0, -ENOENT when the tool is not installed, or -EIO. */
int axb_fault_tool(char *const argv[], char *why, size_t n)
{
	static const char *const dirs[] = {"/usr/sbin", "/sbin", "/usr/bin", "/bin"};
	char path[256] = "";
	for (size_t i = 0; i < sizeof dirs / sizeof dirs[0] && !path[0]; i++) {
		snprintf(path, sizeof path, "%s/%s", dirs[i], argv[0]);
		if (access(path, X_OK))
			path[0] = 0;
	}
	if (!path[0]) {
		snprintf(why, n, "%s is not installed (scripts/setup iproute2 iptables)",
			 argv[0]);
		return -ENOENT;
	}
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0) {
		snprintf(why, n, "pipe: %s", strerror(errno));
		return -EIO;
	}
	pid_t pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		snprintf(why, n, "fork: %s", strerror(errno));
		return -EIO;
	}
	if (pid == 0) {
		int dn = open("/dev/null", O_RDWR);
		if (dn >= 0) {
			dup2(dn, 0);
			dup2(dn, 1);
		}
		dup2(p[1], 2);
		execv(path, argv);
		_exit(127);
	}
	close(p[1]);
	char out[512];
	size_t got = 0;
	ssize_t r;
	while ((r = read(p[0], out + got, sizeof out - 1 - got)) > 0 ||
	       (r < 0 && errno == EINTR))
		if (r > 0)
			got += (size_t)r;
	close(p[0]);
	out[got] = 0;
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	char *nl = strchr(out, '\n');
	if (nl)
		*nl = 0;
	snprintf(why, n, "%s failed: %s", argv[0], got ? out : "(no message)");
	return -EIO;
}

int axb_netfault_install(enum axb_fault f, int64_t delay_ns, int64_t jitter_ns,
			 enum axb_netfault_mech *mech, char *spec, size_t sn,
			 char *why, size_t n)
{
	char d[32], j[32];
	snprintf(d, sizeof d, "%lldus", (long long)(delay_ns / 1000));
	snprintf(j, sizeof j, "%lldus", (long long)(jitter_ns / 1000));

	/* netem first: the kernel's own emulator, both directions on lo */
	char *netem[12] = {"tc", "qdisc", "add", "dev", "lo", "root", "netem"};
	size_t k = 7;
	if (f == AXB_FAULT_DELAY) {
		netem[k++] = "delay";
		netem[k++] = d;
		netem[k++] = j;
	} else if (f == AXB_FAULT_LOSS) {
		netem[k++] = "loss";
		netem[k++] = "1%";
	} else if (f == AXB_FAULT_REORDER) {
		netem[k++] = "delay";
		netem[k++] = d;
		netem[k++] = "reorder";
		netem[k++] = "25%";
	}
	netem[k] = NULL;
	char nwhy[256];
	if (axb_fault_tool(netem, nwhy, sizeof nwhy) == 0) {
		*mech = AXB_MECH_NETEM;
		size_t off = (size_t)snprintf(spec, sn, "netem on lo:");
		for (size_t i = 7; i < k && off < sn; i++)
			off += (size_t)snprintf(spec + off, sn - off, " %s", netem[i]);
		if (k == 7)
			snprintf(spec + off, sn - off, " (nothing impaired)");
		return 0;
	}

	/* no netem: loss is dropped in the kernel by an iptables rule, and
	 * every TCP packet on lo goes through NFQUEUE 0, which the load
	 * generator's companion process serves (faults.c): delay, jitter,
	 * reordering, or straight through for baseline and loss. Without
	 * --queue-bypass: a packet nobody serves is dropped, never passed
	 * unimpaired. */
	char qwhy[256];
	if (f == AXB_FAULT_LOSS) {
		char *drop[] = {"iptables", "-w", "-A", "OUTPUT", "-o", "lo", "-p", "tcp",
				"-m", "statistic", "--mode", "random", "--probability",
				"0.01", "-j", "DROP", NULL};
		if (axb_fault_tool(drop, qwhy, sizeof qwhy)) {
			snprintf(why, n, "no netem (%s) and no iptables loss rule (%s)",
				 nwhy, qwhy);
			return -ENOTSUP;
		}
	}
	char *queue[] = {"iptables", "-w", "-A", "OUTPUT", "-o", "lo", "-p", "tcp",
			 "-j", "NFQUEUE", "--queue-num", "0", NULL};
	if (axb_fault_tool(queue, qwhy, sizeof qwhy)) {
		snprintf(why, n, "no netem (%s) and no NFQUEUE rule (%s)", nwhy, qwhy);
		return -ENOTSUP;
	}
	*mech = AXB_MECH_NFQUEUE;
	switch (f) {
	case AXB_FAULT_DELAY:
		snprintf(spec, sn, "NFQUEUE on lo, user-space queue: every packet held "
			 "%s +/- %s (uniform)", d, j);
		break;
	case AXB_FAULT_LOSS:
		snprintf(spec, sn, "iptables statistic on lo: 1%% of packets dropped "
			 "in the kernel; then NFQUEUE, passed at once");
		break;
	case AXB_FAULT_REORDER:
		snprintf(spec, sn, "NFQUEUE on lo, user-space queue: 25%% of packets "
			 "passed at once, the rest held %s", d);
		break;
	default:
		snprintf(spec, sn, "NFQUEUE on lo, user-space queue: every packet "
			 "passed at once");
		break;
	}
	return 0;
}

const char *axb_netfault_mech_name(enum axb_netfault_mech m)
{
	return m == AXB_MECH_NETEM ? "netem" : "nfqueue";
}

/* Whether this machine can impair packets as fault f asks: tried once
 * per fault and process in a throw-away namespace of a child process. */
bool axb_fault_supported(const struct axs_scenario *sc, const int64_t *values,
			 char *why, size_t n)
{
	static int known[AXB_FAULT_SLOWLORIS + 1]; /* 0 unknown, 1 yes, -1 no, -2 no (said) */
	static char reason[AXB_FAULT_SLOWLORIS + 1][340];
	enum axb_fault f = axb_fault_of(sc, values);
	if (!axb_fault_in_netns(f))
		return true;
	if (!known[f]) {
		int p[2];
		pid_t pid = -1;
		if (pipe2(p, O_CLOEXEC) == 0 && (pid = fork()) != 0 && pid < 0) {
			close(p[0]);
			close(p[1]);
		}
		if (pid == 0) {
			char w[300] = "";
			enum axb_netfault_mech m;
			char spec[200];
			close(p[0]);
			int e = axb_netns_private(w, sizeof w);
			if (!e)
				e = axb_netfault_install(f, 1000000, 250000, &m, spec,
							 sizeof spec, w, sizeof w);
			if (e)
				axb_write_all(p[1], w, strlen(w));
			_exit(e ? 1 : 0);
		}
		char w[300] = "";
		if (pid > 0) {
			close(p[1]);
			size_t got = 0;
			ssize_t r;
			while ((r = read(p[0], w + got, sizeof w - 1 - got)) > 0 ||
			       (r < 0 && errno == EINTR))
				if (r > 0)
					got += (size_t)r;
			w[got] = 0;
			close(p[0]);
			int st = 0;
			while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
				;
			known[f] = WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 1 : -1;
		} else {
			snprintf(w, sizeof w, "cannot fork the probe: %s", strerror(errno));
			known[f] = -1;
		}
		snprintf(reason[f], sizeof reason[f], "fault=%s: %s", fault_names[f],
			 w[0] ? w : "the probe failed");
	}
	if (known[f] < 0) {
		snprintf(why, n, "%s", reason[f]);
		if (known[f] == -1) /* said once per run, on the terminal too */
			axb_err("fault=%s cells are unsupported here: %s", fault_names[f],
				reason[f] + strlen("fault=: ") + strlen(fault_names[f]));
		known[f] = -2;
	}
	return known[f] > 0;
}
