// SPDX-License-Identifier: MIT
/*
 * kvcache: options (memcached's spelling where they mean the same), the
 * descriptor limit, the listening socket, and the start.
 *
 *   kvcache [-p PORT] [-l ADDR] [-m MiB] [-c CONNS] [-t THREADS] [-I SIZE]
 *           [-f FACTOR] [-U 0] [-v] [--name NAME] [--update-to PATH]
 *
 * SIGUSR1 updates into --update-to (default: this binary) keeping the data
 * set and every connection; so does luoctl through the control socket.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <luo/abi.h>

#include "kv.h"
#include "kvlu.h"

struct kv_settings settings = {
	.port = 11211,
	.addr = NULL,
	.mem_limit = 64ULL << 20,
	.maxconns = 4096,
	.item_size_max = 1 << 20,
	.factor = 1.25,
	.name = "kvcache",
};

/**
 * listener_open() - bind and listen as the options say
 *
 * Return: the listening descriptor, or a negative errno after a message.
 */
int listener_open(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons(settings.port)};
	socklen_t len = sizeof(a);
	int fd, one = 1;

	if (settings.addr &&
	    inet_pton(AF_INET, settings.addr, &a.sin_addr) != 1) {
		fprintf(stderr, "kvcache: -l %s: not an IPv4 address\n",
			settings.addr);
		return -EINVAL;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 4096) ||
	    getsockname(fd, (struct sockaddr *)&a, &len)) {
		int err = -errno;

		fprintf(stderr, "kvcache: cannot listen on %s:%u: %s\n",
			settings.addr ? settings.addr : "0.0.0.0",
			settings.port, strerror(errno));
		if (fd >= 0)
			close(fd);
		return err;
	}
	settings.port = ntohs(a.sin_port);
	return fd;
}

/* "64", "512k", "2m": bytes. */
static bool parse_size(const char *s, uint64_t *v)
{
	char *end;
	unsigned long long x = strtoull(s, &end, 10);

	if (end == s)
		return false;
	if (*end == 'k' || *end == 'K')
		x <<= 10, end++;
	else if (*end == 'm' || *end == 'M')
		x <<= 20, end++;
	*v = x;
	return *end == 0;
}

/* Each client costs two descriptors: ours and the library's reference. */
static void raise_nofile(void)
{
	struct rlimit rl;
	uint64_t room;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		fprintf(stderr, "kvcache: setrlimit(RLIMIT_NOFILE): %s\n",
			strerror(errno));
	getrlimit(RLIMIT_NOFILE, &rl);
	room = rl.rlim_cur > 64 ? (rl.rlim_cur - 64) / 2 : 1;
	if (settings.maxconns > room) {
		uint32_t asked = settings.maxconns;

		settings.maxconns = (uint32_t)room;
		/* Said once, by the first image; later ones adopt its table. */
		if (getenv(LUO_HANDOVER_ENV))
			return;
		fprintf(stderr,
			"kvcache: -c %u needs %u descriptors; the limit is %llu: serving at most %llu connections\n",
			asked, asked * 2 + 64, (unsigned long long)rl.rlim_cur,
			(unsigned long long)room);
	}
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: kvcache [options]\n"
		"  -p, --port=PORT        TCP port (default 11211; 0 picks one)\n"
		"  -l, --listen=ADDR      IPv4 address (default all)\n"
		"  -m, --memory-limit=MB  item memory in MiB (default 64)\n"
		"  -c, --conn-limit=N     most connections (default 4096)\n"
		"  -t, --threads=N        accepted; one event thread serves\n"
		"  -I, --max-item-size=S  largest item, e.g. 1m (default 1m)\n"
		"  -f, --slab-growth-factor=F  chunk size factor (default 1.25)\n"
		"  -U, --udp-port=0       UDP is not served\n"
		"  -v, --verbose          more messages (-vv more)\n"
		"      --name=NAME        control socket name (default kvcache)\n"
		"      --update-to=PATH   binary a live update executes\n"
		"      --trust-carrier    retrieve clients without a per-file check\n"
		"      --inherit          exec-mode updates inherit the clients and\n"
		"                         their epoll instance (also LUO_EXEC_INHERIT=1)\n"
		"  -V, --version          print the version\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"port", required_argument, NULL, 'p'},
		{"listen", required_argument, NULL, 'l'},
		{"memory-limit", required_argument, NULL, 'm'},
		{"conn-limit", required_argument, NULL, 'c'},
		{"threads", required_argument, NULL, 't'},
		{"max-item-size", required_argument, NULL, 'I'},
		{"slab-growth-factor", required_argument, NULL, 'f'},
		{"udp-port", required_argument, NULL, 'U'},
		{"verbose", no_argument, NULL, 'v'},
		{"name", required_argument, NULL, 'N'},
		{"update-to", required_argument, NULL, 'T'},
		{"trust-carrier", no_argument, NULL, 'C'},
		{"inherit", no_argument, NULL, 'H'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	static char update_to[4096];
	sigset_t mask;
	uint64_t v;
	ssize_t n;
	int c, err;

	setvbuf(stdout, NULL, _IOLBF, 0);
	kv_fault(KV_FAULT_POINT_START);
	while ((c = getopt_long(argc, argv, "p:l:m:c:t:I:f:U:vN:T:Vh", opts,
				NULL)) != -1) {
		switch (c) {
		case 'p':
			v = strtoull(optarg, NULL, 10);
			if (v > 65535)
				goto bad;
			settings.port = (uint16_t)v;
			break;
		case 'l':
			settings.addr = optarg;
			break;
		case 'm':
			if (!parse_size(optarg, &v) || !v)
				goto bad;
			settings.mem_limit = v << 20;
			break;
		case 'c':
			v = strtoull(optarg, NULL, 10);
			if (!v || v > (1u << 24))
				goto bad;
			settings.maxconns = (uint32_t)v;
			break;
		case 't':
			if (atoi(optarg) > 1)
				kv_log(1,
				       "kvcache: -t %s: one event thread serves all connections\n",
				       optarg);
			break;
		case 'I':
			if (!parse_size(optarg, &v) || v < 1024 ||
			    v > (128u << 20))
				goto bad;
			settings.item_size_max = (uint32_t)v;
			break;
		case 'f':
			settings.factor = strtod(optarg, NULL);
			if (settings.factor <= 1.0)
				goto bad;
			break;
		case 'U':
			if (strcmp(optarg, "0"))
				fprintf(stderr,
					"kvcache: UDP is not supported; ignoring -U %s\n",
					optarg);
			break;
		case 'v':
			settings.verbose++;
			break;
		case 'N':
			settings.name = optarg;
			break;
		case 'T':
			if (!realpath(optarg, update_to)) {
				perror(optarg);
				return 2;
			}
			settings.update_to = update_to;
			break;
		case 'C':
			settings.trust_carrier = true;
			break;
		case 'H':
			settings.inherit = true;
			break;
		case 'V':
			printf("kvcache %s\n", KV_VERSION_STRING);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	settings.argv = argv;
	n = readlink("/proc/self/exe", settings.self,
		     sizeof(settings.self) - 1);
	if (n < 0) {
		perror("/proc/self/exe");
		return 1;
	}
	settings.self[n] = 0;
	/* Rebuilt under our feet: update into the new file at that path. */
	if (n > 10 && !strcmp(settings.self + n - 10, " (deleted)"))
		settings.self[n - 10] = 0;

	/*
	 * Signals are read from a signalfd.  The mask and any pending
	 * SIGUSR1 survive the exec, so an update asked for during one is
	 * served by the next image instead of killing it.
	 */
	sigemptyset(&mask);
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();

	err = kvlu_start();
	if (err) {
		kvlu_stop(); /* no control socket file left behind */
		return 1;
	}
	event_loop();
	kvlu_stop();
	kv_log(1, "kvcache v%d: exiting\n", KV_VERSION);
	return 0;
bad:
	fprintf(stderr, "kvcache: bad value for -%c: %s\n", c, optarg);
	usage(stderr);
	return 2;
}
