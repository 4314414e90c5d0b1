// SPDX-License-Identifier: MIT
/*
 * counter: the smallest useful live-updatable service.
 *
 * It keeps a counter and a buffer (64 MiB by default) in handover memory
 * and registers a subsystem whose u64 is the offset of its state.  Each
 * new image checks every byte of the buffer against the pattern the old
 * image left, changes a stripe of it, bumps the counter and, if asked,
 * updates itself again.
 *
 *   counter [--size MIB] [--updates N] [--next PATH] [--hugetlb|--thp]
 *           [--quiet] [--control NAME] [--control-path PATH] [--no-finish]
 *           [--mode exec|spawn] [--no-probe]
 *
 * With --updates N it performs N live updates in a row, alternating
 * between itself and --next (default: itself), then exits 0.  Without it,
 * it serves until SIGTERM and updates into --next on SIGUSR1.  With
 * --control it also serves the control socket (luoctl -s NAME ...) from
 * the library's thread; --no-finish leaves liveupdate_finish() to
 * 'luoctl finish'.  --mode spawn makes its own updates (SIGUSR1,
 * --updates) spawn-mode transactions; luoctl picks the mode per update.
 * A health probe (the state is sound) is registered unless --no-probe.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <luo/luo.h>

#ifndef COUNTER_VERSION
#define COUNTER_VERSION 1
#endif

#define STATE_MAGIC 0x434f554e54455231ULL /* "COUNTER1" */
#define STRIPE 512 /* every 512th word changes at each update */
#define PATH_LEN 4096

/* Lives in handover memory; offsets only, no pointers. */
struct counter_state {
	uint64_t magic;
	uint64_t counter;
	uint64_t round; /* stripe increments applied to the buffer */
	uint64_t updates_left;
	uint64_t buf_off;
	uint64_t buf_words;
	uint64_t seed;
	uint64_t last_version;
	uint64_t chained; /* started with --updates: run them, then exit */
	char paths[2][PATH_LEN]; /* the two images to alternate between */
};

static struct counter_state *state;
static uint64_t *buf;
static volatile sig_atomic_t want_update, want_exit;
static int quiet;

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static uint64_t expected(uint64_t i)
{
	return mix(state->seed ^ i) + (i % STRIPE == 0 ? state->round : 0);
}

/* Full check: this is the example proving the data survived. */
static int verify_buffer(void)
{
	for (uint64_t i = 0; i < state->buf_words; i++) {
		if (buf[i] != expected(i)) {
			fprintf(stderr,
				"counter: buffer word %llu is %#llx, expected %#llx\n",
				(unsigned long long)i,
				(unsigned long long)buf[i],
				(unsigned long long)expected(i));
			return -1;
		}
	}
	return 0;
}

static void mutate_buffer(void)
{
	for (uint64_t i = 0; i < state->buf_words; i += STRIPE)
		buf[i]++;
	state->round++;
}

static int counter_prepare(struct liveupdate_subsystem *h, uint64_t *data)
{
	(void)h;
	*data = kho_ptr_to_offset(state);
	return 0;
}

static void counter_boot(struct liveupdate_subsystem *h, uint64_t data)
{
	int err;

	(void)h;
	err = kho_restore(data, sizeof(*state), (void **)&state);
	if (err || state->magic != STATE_MAGIC) {
		fprintf(stderr, "counter: cannot restore state at %#llx: %s\n",
			(unsigned long long)data,
			err ? strerror(-err) : "bad magic");
		state = NULL;
		return;
	}
	err = kho_restore(state->buf_off, state->buf_words * 8, (void **)&buf);
	if (err) {
		fprintf(stderr, "counter: cannot restore the buffer: %s\n",
			strerror(-err));
		state = NULL;
	}
}

static const struct liveupdate_subsystem_ops counter_ops = {
	.prepare = counter_prepare,
	.boot = counter_boot,
};

static struct liveupdate_subsystem counter_subsys = {
	.ops = &counter_ops,
	.name = "counter",
};

/*
 * Devices, to show the device model and to drive from luoctl: "counter"
 * with two children.  "counter/buffer" can be preserved (its data is the
 * counter at prepare); "counter/stats" has a driver without live update
 * callbacks, so requesting it is refused.
 */
static int dev_prepare(struct liveupdate_device *dev, uint64_t *data)
{
	(void)dev;
	*data = state ? state->counter : 0;
	return 0;
}

static int dev_reboot(struct liveupdate_device *dev, uint64_t data)
{
	(void)dev;
	(void)data;
	return 0;
}

static void dev_done(struct liveupdate_device *dev, uint64_t data)
{
	(void)dev;
	(void)data;
}

static const struct liveupdate_device_cbs dev_cbs = {
	.prepare = dev_prepare,
	.reboot = dev_reboot,
	.finish = dev_done,
	.cancel = dev_done,
};
static const struct liveupdate_bus counter_bus = {.name = "counter",
						  .liveupdate = &dev_cbs};
static const struct liveupdate_driver buffer_driver = {.name = "buffer",
						       .liveupdate = &dev_cbs};
static const struct liveupdate_driver stats_driver = {.name = "stats"};
static struct liveupdate_device dev_root = {
	.name = "counter", .bus = &counter_bus, .driver = &buffer_driver};
static struct liveupdate_device dev_buffer = {.name = "buffer",
					      .parent = &dev_root,
					      .bus = &counter_bus,
					      .driver = &buffer_driver};
static struct liveupdate_device dev_stats = {.name = "stats",
					     .parent = &dev_root,
					     .bus = &counter_bus,
					     .driver = &stats_driver};

static int register_devices(void)
{
	struct liveupdate_device *devs[] = {&dev_root, &dev_buffer, &dev_stats};

	for (size_t i = 0; i < sizeof(devs) / sizeof(devs[0]); i++) {
		uint64_t data;
		int err = liveupdate_device_register(devs[i]);

		if (err)
			return err;
		if (liveupdate_device_preserved(devs[i]) &&
		    !liveupdate_device_reclaim(devs[i], &data, NULL) && !quiet)
			printf("counter v%d: device %s reclaimed (counter was %llu at prepare)\n",
			       COUNTER_VERSION, liveupdate_device_path(devs[i]),
			       (unsigned long long)data);
	}
	return 0;
}

static int fresh_state(uint64_t size_mib, const char *self, const char *next)
{
	int err;

	err = kho_alloc_preserve(sizeof(*state), (void **)&state);
	if (err)
		return err;
	state->buf_words = (size_mib << 20) / 8;
	err = kho_alloc_preserve(state->buf_words * 8, (void **)&buf);
	if (err)
		return err;
	state->magic = STATE_MAGIC;
	state->buf_off = kho_ptr_to_offset(buf);
	state->seed = mix((uint64_t)time(NULL) ^ (uint64_t)getpid());
	snprintf(state->paths[0], PATH_LEN, "%s", self);
	snprintf(state->paths[1], PATH_LEN, "%s", next);
	for (uint64_t i = 0; i < state->buf_words; i++)
		buf[i] = expected(i);
	return 0;
}

/* The options this image was started with, handed on at each update. */
static char **start_argv;
static int spawn_mode;

static int update(void)
{
	const char *path = state->paths[(state->counter + 1) % 2];
	struct liveupdate_update_opts o = {
		.mode = spawn_mode ? LIVEUPDATE_MODE_SPAWN
				   : LIVEUPDATE_MODE_EXEC,
		.path = path,
		.argv = start_argv,
	};
	struct liveupdate_update_report r;
	int err;

	/* Only the program changes: the control socket, the mode and the
	 * rest stay. */
	start_argv[0] = (char *)path;
	err = liveupdate_update(&o, &r);
	if (!err) {
		/* Spawn mode committed: the new process is the counter. */
		if (!quiet)
			printf("counter v%d: pid %d handed over to pid %d\n",
			       COUNTER_VERSION, (int)getpid(), (int)r.new_pid);
		_exit(0);
	}
	/* Exec mode returns only on failure; spawn mode on a rollback. */
	fprintf(stderr,
		"counter v%d: update into %s failed: %s; still serving\n",
		COUNTER_VERSION, path,
		err == -ECANCELED ? r.text : strerror(-err));
	return err;
}

/* The trial's health probe: the state is there and sound. */
static int counter_health(void *arg)
{
	(void)arg;
	return state && state->magic == STATE_MAGIC ? 0 : -EBADMSG;
}

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		want_update = 1;
	else
		want_exit = 1;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: counter [--size MIB] [--updates N] [--next PATH] [--hugetlb|--thp] [--quiet]\n"
		"               [--control NAME] [--control-path PATH] [--no-finish]\n"
		"               [--mode exec|spawn] [--no-probe]\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"size", required_argument, NULL, 's'},
		{"updates", required_argument, NULL, 'u'},
		{"next", required_argument, NULL, 'n'},
		{"quiet", no_argument, NULL, 'q'},
		{"hugetlb", no_argument, NULL, 'H'},
		{"thp", no_argument, NULL, 'T'},
		{"control", required_argument, NULL, 'C'},
		{"control-path", required_argument, NULL, 'P'},
		{"no-finish", no_argument, NULL, 'F'},
		{"mode", required_argument, NULL, 'M'},
		{"no-probe", no_argument, NULL, 'N'},
		{NULL, 0, NULL, 0},
	};
	struct luo_init_opts init_opts = {0};
	struct luo_control_opts ctl_opts = {.flags = LUO_CONTROL_THREAD};
	struct luo_control *ctl = NULL;
	int no_finish = 0, no_probe = 0;
	sigset_t mask, waitmask;
	uint64_t size_mib = 64, updates = 0;
	char self[PATH_LEN], next[PATH_LEN] = "";
	ssize_t n;
	int c, err;

	setvbuf(stdout, NULL, _IOLBF,
		0); /* one line per event, even to a file */
	start_argv = argv;
	while ((c = getopt_long(argc, argv, "s:u:n:qHT", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			size_mib = strtoull(optarg, NULL, 0);
			break;
		case 'u':
			updates = strtoull(optarg, NULL, 0);
			break;
		case 'n':
			if (!realpath(optarg, next)) {
				perror(optarg);
				return 2;
			}
			break;
		case 'q':
			quiet = 1;
			break;
		case 'H':
			init_opts.flags |= LUO_INIT_HUGETLB;
			break;
		case 'T':
			init_opts.flags |= LUO_INIT_THP;
			break;
		case 'C':
			ctl_opts.name = optarg;
			break;
		case 'P':
			ctl_opts.path = optarg;
			break;
		case 'F':
			no_finish = 1;
			break;
		case 'M':
			spawn_mode = !strcmp(optarg, "spawn");
			break;
		case 'N':
			no_probe = 1;
			break;
		default:
			usage();
			return 2;
		}
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0)
		return 2;
	self[n] = 0;
	if (!next[0])
		strcpy(next, self);

	if (!no_probe)
		liveupdate_set_txn_hooks(&(struct liveupdate_txn_hooks){
			.health = counter_health});
	err = luo_init(&init_opts);
	if (err) {
		/* A handover we cannot trust: refuse it and start fresh. */
		fprintf(stderr, "counter: starting fresh (%s)\n",
			strerror(-err));
		if (!no_probe)
			liveupdate_set_txn_hooks(&(struct liveupdate_txn_hooks){
				.health = counter_health});
		err = luo_init(&init_opts);
		if (err)
			return 1;
	}
	err = liveupdate_register_subsystem(&counter_subsys);
	if (!err)
		err = register_devices();
	if (err)
		return 1;

	if (liveupdate_get_state() == LIVEUPDATE_STATE_UPDATED) {
		struct liveupdate_timing t;

		if (!state || verify_buffer())
			return 1;
		mutate_buffer();
		state->counter++;
		liveupdate_get_timing(&t);
		if (!quiet)
			printf("counter v%d: pid %d, live update #%llu from v%llu: counter=%llu, %llu MiB verified, blackout %.2f ms\n",
			       COUNTER_VERSION, (int)getpid(),
			       (unsigned long long)liveupdate_get_num(),
			       (unsigned long long)state->last_version,
			       (unsigned long long)state->counter,
			       (unsigned long long)(state->buf_words >> 17),
			       (t.adopted_ns - t.freeze_ns) / 1e6);
		state->last_version = COUNTER_VERSION;
	} else {
		err = fresh_state(size_mib, self, next);
		if (err) {
			fprintf(stderr,
				"counter: cannot allocate %llu MiB: %s\n",
				(unsigned long long)size_mib, strerror(-err));
			return 1;
		}
		state->updates_left = updates;
		state->chained = updates > 0;
		state->last_version = COUNTER_VERSION;
		if (!quiet)
			printf("counter v%d: fresh start, %llu MiB in handover memory, pid %d\n",
			       COUNTER_VERSION, (unsigned long long)size_mib,
			       (int)getpid());
	}

	/* Before finish: the control socket is carried in a session. */
	if (ctl_opts.name || ctl_opts.path) {
		if (!ctl_opts.name)
			ctl_opts.name = "counter";
		err = luo_control_start(&ctl_opts, &ctl);
		if (err) {
			fprintf(stderr, "counter: control socket: %s\n",
				strerror(-err));
			return 1;
		}
		if (!quiet)
			printf("counter v%d: control socket %s\n",
			       COUNTER_VERSION, luo_control_path(ctl));
	}
	if (liveupdate_get_state() == LIVEUPDATE_STATE_UPDATED && !no_finish) {
		err = liveupdate_finish();
		/* 'luoctl update --finish' may have finished it first. */
		if (err && liveupdate_get_state() != LIVEUPDATE_STATE_NORMAL)
			return 1;
	}
	/* Serving: under systemd this ends the start or the reload. */
	luo_notify_ready();

	if (state->chained) {
		if (state->updates_left) {
			state->updates_left--;
			update();
			return 1; /* only a failed update gets here */
		}
		printf("counter v%d: done after %llu live updates, counter=%llu\n",
		       COUNTER_VERSION,
		       (unsigned long long)liveupdate_get_num(),
		       (unsigned long long)state->counter);
		return 0;
	}

	/*
	 * Serve with the signals blocked except while waiting.  The mask and
	 * any pending signal survive execve(), so a request that arrives
	 * while the new image starts waits for its handler instead of
	 * killing the process.
	 */
	sigemptyset(&mask);
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, &waitmask);
	sigdelset(&waitmask, SIGUSR1);
	sigdelset(&waitmask, SIGTERM);
	sigdelset(&waitmask, SIGINT);
	signal(SIGUSR1, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	while (!want_exit) {
		sigsuspend(&waitmask);
		if (want_update && !want_exit) {
			want_update = 0;
			update();
		}
	}
	luo_notify_stopping();
	luo_control_stop(ctl);
	if (!quiet)
		printf("counter v%d: pid %d stopped, counter=%llu\n",
		       COUNTER_VERSION, (int)getpid(),
		       (unsigned long long)state->counter);
	return 0;
}
