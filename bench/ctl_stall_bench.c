// SPDX-License-Identifier: MIT
/*
 * How long one luo_control_dispatch() call holds the service's thread
 * while a control peer asks for a large listing and never reads it (poll
 * mode, as kvcache serves it).  Before the server queued its replies, the
 * dispatch that wrote to such a peer waited 2 s for it.
 *
 *   ctl_stall_bench [--sessions N] [--peers N]
 *
 * Prints the listing's size and the longest and total dispatch times.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <luo/luo.h>

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"sessions", required_argument, NULL, 's'},
		{"peers", required_argument, NULL, 'p'},
		{NULL, 0, NULL, 0},
	};
	int sessions = 20000, peers = 4, c;
	char dir[] = "/tmp/luo-ctl-bench.XXXXXX", path[64];
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct luo_control_opts o = {.name = "bench"};
	struct luo_control *ctl;
	double worst = 0, total = 0;
	int fds[64], queued = 0;

	while ((c = getopt_long(argc, argv, "s:p:", opts, NULL)) != -1) {
		if (c == 's')
			sessions = atoi(optarg);
		else if (c == 'p')
			peers = atoi(optarg);
		else
			return 2;
	}
	if (peers < 1 || peers > 64 || sessions < 0)
		return 2;
	signal(SIGPIPE, SIG_IGN);
	luo_set_log_level(LUO_LOG_ERR);
	if (!mkdtemp(dir) || luo_init(NULL))
		return 1;
	for (int i = 0; i < sessions; i++) {
		char name[32];
		struct luo_session *s;

		snprintf(name, sizeof(name), "bench-%06d", i);
		if (liveupdate_create_session(name, &s))
			return 1;
	}
	snprintf(path, sizeof(path), "%s/b.sock", dir);
	o.path = path;
	if (luo_control_start(&o, &ctl))
		return 1;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	for (int i = 0; i < peers; i++) {
		fds[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fds[i] < 0 ||
		    connect(fds[i], (struct sockaddr *)&sa, sizeof(sa)) ||
		    send(fds[i], "sessions\n", 9, 0) != 9)
			return 1;
	}
	/* Serve until every peer's socket is full and nothing is pending. */
	for (int turn = 0; turn < 2000; turn++) {
		struct pollfd p = {.fd = luo_control_fd(ctl), .events = POLLIN};
		double t0, d;

		if (poll(&p, 1, 5) <= 0)
			break;
		t0 = now_ms();
		luo_control_dispatch(ctl);
		d = now_ms() - t0;
		total += d;
		if (d > worst)
			worst = d;
	}
	for (int i = 0; i < peers; i++) {
		int n = 0;

		ioctl(fds[i], FIONREAD, &n);
		queued += n;
	}
	printf("ctl-stall: sessions=%d peers=%d (none reads) queued_in_sockets=%d worst_dispatch_ms=%.3f total_dispatch_ms=%.3f\n",
	       sessions, peers, queued, worst, total);
	luo_control_stop(ctl);
	luo_exit();
	rmdir(dir);
	return 0;
}
