// SPDX-License-Identifier: MIT
/*
 * Spawn-mode updates of a real service (txn-svc) with real binaries:
 * every way a new image can fail must end with the old image serving,
 * the same connections open, the data intact, the right reason reported
 * and every participant cancelled exactly once in reverse order; a good
 * new image commits and sees the same memory.
 *
 *   txn-test TXN_SVC [TXN_SVC_V2 [ROUNDS [ALTERNATIONS]]]
 *
 * TXN_SVC_V2 is another build of the same service, for the exec-mode
 * refusal: its luo_init() refuses, the old binary must come back.
 * ROUNDS repeats every rollback case; ALTERNATIONS updates, good and bad
 * alternating, then run under load (a client sending "inc" all along).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char dir[] = "/tmp/txn-test.XXXXXX";
static char log_path[256], port_path[256], pid_path[256];
static const char *svc, *svc_v2;
static int failures;

#define FAIL(...)                                                              \
	do {                                                                   \
		fprintf(stderr, "FAIL: " __VA_ARGS__);                         \
		fputc('\n', stderr);                                           \
		failures++;                                                    \
	} while (0)

static void msleep(int ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static int read_int_file(const char *path)
{
	FILE *f = fopen(path, "r");
	int v = 0;

	if (!f)
		return 0;
	if (fscanf(f, "%d", &v) != 1)
		v = 0;
	fclose(f);
	return v;
}

static pid_t start_svc(void)
{
	pid_t pid;

	unlink(port_path);
	pid = fork();
	if (pid == 0) {
		execl(svc, svc, "--log", log_path, "--port-file", port_path,
		      "--pid-file", pid_path, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200 && !read_int_file(port_path); i++)
		msleep(25);
	return pid;
}

static int connect_svc(void)
{
	struct sockaddr_in sa = {
		.sin_family = AF_INET,
		.sin_port = htons((uint16_t)read_int_file(port_path)),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || connect(fd, (void *)&sa, sizeof(sa))) {
		FAIL("cannot connect to the service: %s", strerror(errno));
		exit(1);
	}
	return fd;
}

/* One request, one line back (within @timeout_ms); "" on EOF/timeout. */
static const char *ask(int fd, const char *req, int timeout_ms, char *buf,
		       size_t len)
{
	size_t got = 0;

	buf[0] = 0;
	if (send(fd, req, strlen(req), MSG_NOSIGNAL) < 0)
		return buf;
	while (got + 1 < len) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;

		if (poll(&p, 1, timeout_ms) <= 0)
			break;
		n = recv(fd, buf + got, len - 1 - got, 0);
		if (n <= 0)
			break;
		got += (size_t)n;
		buf[got] = 0;
		if (memchr(buf, '\n', got))
			break;
	}
	return buf;
}

struct view {
	unsigned long long value, marker, writes;
	int pid;
	char scratch[16];
};

static int get(int fd, struct view *v)
{
	char buf[256];

	ask(fd, "get\n", 10000, buf, sizeof(buf));
	if (sscanf(buf,
		   "value %llu pid %d marker %llx writes %llu scratch %15s",
		   &v->value, &v->pid, &v->marker, &v->writes,
		   v->scratch) != 5) {
		FAIL("get: answer '%s'", buf);
		return -1;
	}
	return 0;
}

/* The log since the update: the three cancels, once each, in reverse. */
static void check_cancels(const char *what, const char *reason)
{
	static const char *const want[] = {"cancel device svcdev",
					   "cancel beta", "cancel alpha"};
	char line[256], hook[64];
	FILE *f = fopen(log_path, "r");
	int n = 0, order_ok = 1, hooks = 0;

	snprintf(hook, sizeof(hook), "rollback-hook %s", reason);
	if (!f) {
		FAIL("%s: no log", what);
		return;
	}
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		if (!strncmp(line, "cancel", 6)) {
			if (n < 3 && strcmp(line, want[n]))
				order_ok = 0;
			n++;
		} else if (!strncmp(line, "rollback-hook", 13)) {
			hooks++;
			if (strcmp(line, hook))
				FAIL("%s: '%s', expected '%s'", what, line,
				     hook);
		}
	}
	fclose(f);
	if (n != 3 || !order_ok)
		FAIL("%s: %d cancels (order %s), expected device, beta, alpha once each",
		     what, n, order_ok ? "right" : "wrong");
	if (hooks != 1)
		FAIL("%s: rollback hook ran %d times", what, hooks);
}

struct rcase {
	const char *name;
	const char *behave;
	const char *path; /* NULL: txn-svc itself */
	int trial_ms, deadline_ms;
	const char *reason;
	bool kill_in_trial;
	bool writes; /* the new image adopted and wrote its mark */
};

static const struct rcase cases[] = {
	{"exit 3 at start", "exit3", NULL, 0, 5000, "exited", false, false},
	{"SIGSEGV at start", "segv", NULL, 0, 5000, "killed", false, false},
	{"hang before luo_init()", "hang-init", NULL, 0, 500, "deadline", false,
	 false},
	{"refuses the handover", "ignore", NULL, 0, 5000, "refused", false,
	 false},
	{"health probe fails", "health-fail", NULL, 2000, 5000, "health", false,
	 true},
	{"SIGKILL during the trial", "-", NULL, 30000, 5000, "killed", true,
	 true},
	{"stops answering (SIGSTOP)", "stop", NULL, 30000, 5000, "liveness",
	 false, true},
	{"asks for a rollback", "giveup", NULL, 30000, 5000, "requested", false,
	 true},
	{"hangs after adopting", "hang-after", NULL, 0, 500, "deadline", false,
	 true},
	{"scribbles over the arena", "scribble", NULL, 30000, 5000, "requested",
	 false, true},
	{"/bin/false", "-", "/bin/false", 0, 5000, "exited", false, false},
	{"/bin/sleep 100", "-", "/bin/sleep 100", 0, 500, "deadline", false,
	 false},
};

static void run_rollback(const struct rcase *c, int a, int b, int svc_pid)
{
	char req[512], buf[512], want[64];
	struct view before, after;

	if (get(b, &before))
		return;
	truncate(log_path, 0);
	unlink(pid_path);
	snprintf(req, sizeof(req), "update spawn %s %d %d%s%s\n", c->behave,
		 c->trial_ms, c->deadline_ms, c->path ? " " : "",
		 c->path ? c->path : "");
	if (c->kill_in_trial) {
		int newpid = 0;

		send(a, req, strlen(req), MSG_NOSIGNAL);
		for (int i = 0; i < 400 && !(newpid = read_int_file(pid_path));
		     i++)
			msleep(25);
		if (!newpid || newpid == svc_pid)
			FAIL("%s: no new image pid", c->name);
		else
			kill(newpid, SIGKILL);
		ask(a, "", 60000, buf, sizeof(buf));
	} else {
		ask(a, req, 60000, buf, sizeof(buf));
	}
	snprintf(want, sizeof(want), "rolledback %s ", c->reason);
	if (strncmp(buf, want, strlen(want)))
		FAIL("%s: answer '%s', expected '%s...'", c->name, buf, want);
	else
		printf("ok: %s: %s", c->name, buf);
	if (get(b, &after) || get(a, &after))
		return;
	if (after.pid != svc_pid || after.value != before.value)
		FAIL("%s: after the rollback pid %d value %llu, expected pid %d value %llu",
		     c->name, after.pid, after.value, svc_pid, before.value);
	/* What the new image wrote into the shared pages stays. */
	if (after.writes != before.writes + (c->writes ? 1 : 0))
		FAIL("%s: trial writes %llu -> %llu", c->name, before.writes,
		     after.writes);
	check_cancels(c->name, c->reason);
	/* The old image's blocks were not freed under it, and the space the
	 * new image used reads as zero again. */
	if (strcmp(after.scratch, "ok"))
		FAIL("%s: the old image's scratch block is %s", c->name,
		     after.scratch);
	ask(b, "probe-alloc\n", 10000, buf, sizeof(buf));
	if (strncmp(buf, "fresh-memory zero", 17))
		FAIL("%s: memory allocated after the rollback: '%s'", c->name,
		     buf);
}

/* Lines of the log since the update that begin with @prefix. */
static int log_count(const char *prefix)
{
	char line[256];
	FILE *f = fopen(log_path, "r");
	int n = 0;

	while (f && fgets(line, sizeof(line), f))
		n += !strncmp(line, prefix, strlen(prefix));
	if (f)
		fclose(f);
	return n;
}

static int conns_of(int fd)
{
	char buf[128];
	int n = -1;

	ask(fd, "conns\n", 10000, buf, sizeof(buf));
	if (sscanf(buf, "conns %d", &n) != 1)
		return -1;
	return n;
}

/*
 * Connections the new image accepted during its trial come back to the
 * old image on a rollback: a client connects during the trial (only the
 * new image accepts then), is answered by it, and after the rollback is
 * still connected and answered by the old image.  Another one that the
 * new image closed during the trial does not come back.
 */
/* A client taken back by a rollback, kept open until the commit. */
static int kept_client = -1;

struct tcase {
	const char *name;
	const char *fail; /* "fail HOW" sent to the new image; NULL: SIGKILL */
	const char *reason;
};

static const struct tcase trial_cases[] = {
	{"exits in its trial", "exit", "exited"},
	{"SIGSEGV in its trial", "segv", "killed"},
	{"SIGKILL in its trial", NULL, "killed"},
	{"asks for a rollback in its trial", "giveup", "requested"},
	{"fails its probe in its trial", "sick", "health"},
};

static void run_trial_conn(const struct tcase *c, int a, int b, int svc_pid)
{
	static const char req[] = "update spawn - 30000 5000\n";
	char buf[512], want[64];
	struct view before, v;
	int newpid = 0, n0, n, cc, d;

	if (get(b, &before) || (n0 = conns_of(b)) < 0)
		return;
	truncate(log_path, 0);
	unlink(pid_path);
	send(a, req, strlen(req), MSG_NOSIGNAL);
	for (int i = 0; i < 400 && !(newpid = read_int_file(pid_path)); i++)
		msleep(25);
	if (!newpid || newpid == svc_pid) {
		FAIL("%s: no new image pid", c->name);
		ask(a, "", 60000, buf, sizeof(buf));
		return;
	}
	cc = connect_svc();
	d = connect_svc();
	if (get(cc, &v) || v.pid != newpid)
		FAIL("%s: the client connected in the trial was answered by pid %d, expected the new image %d",
		     c->name, v.pid, newpid);
	ask(cc, "inc\n", 10000, buf, sizeof(buf));
	if (strncmp(buf, "ok ", 3))
		FAIL("%s: inc in the trial: '%s'", c->name, buf);
	if (get(d, &v))
		FAIL("%s: the second client was not answered", c->name);
	close(d);
	/* Until the new image has seen it go (and unpreserved it). */
	for (int i = 0; i < 400 && conns_of(cc) != n0 + 1; i++)
		msleep(25);
	if (c->fail) {
		snprintf(buf, sizeof(buf), "fail %s\n", c->fail);
		send(cc, buf, strlen(buf), MSG_NOSIGNAL);
	} else {
		kill(newpid, SIGKILL);
	}
	ask(a, "", 60000, buf, sizeof(buf));
	snprintf(want, sizeof(want), "rolledback %s ", c->reason);
	if (strncmp(buf, want, strlen(want)))
		FAIL("%s: answer '%s', expected '%s...'", c->name, buf, want);
	if (get(cc, &v)) {
		FAIL("%s: the client the new image accepted is not answered by the old image after the rollback",
		     c->name);
	} else if (v.pid != svc_pid || v.value != before.value + 1) {
		FAIL("%s: the client accepted in the trial: pid %d value %llu, expected pid %d value %llu",
		     c->name, v.pid, v.value, svc_pid, before.value + 1);
	} else {
		printf("ok: %s: the client accepted by the new image is served by the old one: %s",
		       c->name, buf);
	}
	n = log_count("returned ");
	if (n != 1)
		FAIL("%s: the old image took back %d clients, expected 1 (the one the new image closed in the trial must not come back)",
		     c->name, n);
	n = conns_of(b);
	if (n != n0 + 1)
		FAIL("%s: %d clients after the rollback, expected %d (the one closed in the trial must not come back)",
		     c->name, n, n0 + 1);
	check_cancels(c->name, c->reason);
	/* One stays for the commit that follows: it was preserved again. */
	if (kept_client < 0) {
		kept_client = cc;
		return;
	}
	close(cc);
	for (int i = 0; i < 400 && conns_of(b) != n0; i++)
		msleep(25);
}

/*
 * The load: one more client sending "inc" and waiting for each answer,
 * until @stop closes (bounded: 1,000,000 requests); it writes how many
 * were acknowledged, or -1 if one was never answered, to @report.
 */
static pid_t start_load(int *stop_w, int *report_r)
{
	int st[2], rp[2];
	pid_t pid;

	if (pipe(st) || pipe(rp))
		return -1;
	pid = fork();
	if (pid == 0) {
		int fd = connect_svc();
		long long acked = 0;
		char buf[128];

		close(st[1]);
		close(rp[0]);
		for (int i = 0; i < 1000000; i++) {
			struct pollfd p = {.fd = st[0], .events = POLLIN};

			if (poll(&p, 1, 0) > 0)
				break;
			ask(fd, "inc\n", 30000, buf, sizeof(buf));
			if (strncmp(buf, "ok ", 3)) {
				acked = -1;
				break;
			}
			acked++;
		}
		if (write(rp[1], &acked, sizeof(acked)) != sizeof(acked))
			_exit(1);
		_exit(0);
	}
	close(st[0]);
	close(rp[1]);
	*stop_w = st[1];
	*report_r = rp[0];
	return pid;
}

/*
 * @n updates in a row under load, good and bad alternating: each good one
 * commits into a new pid, each bad one rolls back to the current one; at
 * the end every acknowledged "inc" is in the value.
 */
static pid_t alternate(int n, int a, int b, pid_t pid)
{
	static const char *const bad[] = {"exit3", "segv", "giveup", "ignore"};
	int stop = -1, report = -1, newpid;
	long long acked = 0;
	struct view v0, w;
	char buf[512], req[256];
	pid_t loader;

	get(b, &v0);
	loader = start_load(&stop, &report);
	msleep(100);
	for (int i = 0; i < n; i++) {
		bool good = i % 2 == 0;

		snprintf(req, sizeof(req), "update spawn %s 0 5000\n",
			 good ? "-" : bad[(i / 2) % 4]);
		ask(a, req, 60000, buf, sizeof(buf));
		if (good && (sscanf(buf, "committed %d", &newpid) != 1 ||
			     newpid == pid)) {
			FAIL("alternating #%d: good update answered '%s'", i,
			     buf);
			break;
		}
		if (!good && strncmp(buf, "rolledback ", 11)) {
			FAIL("alternating #%d: bad update answered '%s'", i,
			     buf);
			break;
		}
		if (good) {
			waitpid(pid, NULL, 0);
			pid = newpid;
		}
		if (get(b, &w) || w.pid != pid) {
			FAIL("alternating #%d: pid %d serves, expected %d", i,
			     w.pid, pid);
			break;
		}
	}
	close(stop);
	if (read(report, &acked, sizeof(acked)) != sizeof(acked))
		acked = -1;
	close(report);
	waitpid(loader, NULL, 0);
	if (!get(b, &w) && (acked < 0 || w.value != v0.value + (uint64_t)acked))
		FAIL("under load: value %llu, expected %llu + %lld acknowledged",
		     w.value, v0.value, acked);
	else
		printf("ok: %d updates, good and bad alternating, under load: %lld requests acknowledged, none lost\n",
		       n, acked);
	return pid;
}

int main(int argc, char **argv)
{
	int rounds = argc > 3 ? atoi(argv[3]) : 1;
	int alternations = argc > 4 ? atoi(argv[4]) : 0;
	char buf[512];
	struct view v, w;
	pid_t pid;
	int a, b, newpid;

	if (argc < 2)
		return 2;
	svc = argv[1];
	svc_v2 = argc > 2 ? argv[2] : NULL;
	signal(SIGPIPE, SIG_IGN);
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	if (!mkdtemp(dir))
		return 1;
	snprintf(log_path, sizeof(log_path), "%s/log", dir);
	snprintf(port_path, sizeof(port_path), "%s/port", dir);
	snprintf(pid_path, sizeof(pid_path), "%s/pid", dir);
	pid = start_svc();
	a = connect_svc();
	b = connect_svc();
	for (int i = 0; i < 5; i++)
		ask(a, "inc\n", 5000, buf, sizeof(buf));
	for (int r = 0; r < rounds; r++) {
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
			run_rollback(&cases[i], a, b, pid);
		for (size_t i = 0;
		     i < sizeof(trial_cases) / sizeof(trial_cases[0]); i++)
			run_trial_conn(&trial_cases[i], a, b, pid);
	}

	/* A good new image, with a trial: commits, same pages; the commit is
	 * reported once its (slow) finish has run. */
	get(b, &v);
	ask(a, "update spawn slow-finish 300 5000\n", 60000, buf, sizeof(buf));
	if (sscanf(buf, "committed %d", &newpid) != 1 || newpid == pid)
		FAIL("good update: answer '%s'", buf);
	else
		printf("ok: good update with a trial: %s", buf);
	ask(b, "state\n", 5000, buf, sizeof(buf));
	if (strcmp(buf, "state normal\n"))
		FAIL("reported committed while the new image answers '%s'",
		     buf);
	waitpid(pid, NULL, 0); /* the old image ended */
	if (!get(b, &w) &&
	    (w.pid != newpid || w.value != v.value ||
	     w.marker != 0xabc000 + v.value || w.writes != v.writes + 1))
		FAIL("after the commit: pid %d value %llu marker %#llx writes %llu; expected pid %d value %llu marker %#llx writes %llu",
		     w.pid, w.value, w.marker, w.writes, newpid, v.value,
		     0xabc000 + v.value, v.writes + 1);
	if (kept_client >= 0 && (get(kept_client, &w) || w.pid != newpid))
		FAIL("after the commit: the client taken back by an earlier rollback is not served by the new image");
	else if (kept_client >= 0)
		printf("ok: the client taken back by a rollback went over the commit\n");
	/* The committed image is the old one of the next transaction. */
	run_rollback(&cases[0], a, b, newpid);
	run_rollback(&cases[5], a, b, newpid);
	ask(a, "inc\n", 5000, buf, sizeof(buf));
	get(b, &v);
	ask(a, "update spawn - 0 5000\n", 60000, buf, sizeof(buf));
	if (sscanf(buf, "committed %d", &pid) != 1 || pid == newpid)
		FAIL("second good update: answer '%s'", buf);
	if (!get(a, &w) && (w.pid != pid || w.value != v.value))
		FAIL("after the second commit: pid %d value %llu", w.pid,
		     w.value);

	/*
	 * Exec mode: a new binary whose luo_init() refuses the handover.
	 * The library re-execs the old binary with the untouched handover:
	 * same pid, same value, both connections still there.
	 */
	if (svc_v2) {
		char req[1024];

		get(b, &v);
		snprintf(req, sizeof(req),
			 "update exec - 0 0 %s --log %s --behave tamper\n",
			 svc_v2, log_path);
		/* No answer comes: the image that read it is gone. */
		ask(a, req, 1000, buf, sizeof(buf));
		if (buf[0])
			FAIL("exec-mode refusal: the update answered '%s'",
			     buf);
		if (!get(b, &w) && (w.pid != pid || w.value != v.value))
			FAIL("exec-mode refusal: pid %d value %llu, expected pid %d value %llu (the old binary was not re-executed with the handover)",
			     w.pid, w.value, pid, v.value);
		else if (!get(a, &w))
			printf("ok: exec mode, refused handover: the old binary runs again as pid %d, value %llu\n",
			       w.pid, w.value);
	}
	if (alternations)
		pid = alternate(alternations, a, b, pid);
	kill(pid, SIGKILL);
	while (wait(NULL) > 0)
		;
	if (!failures) {
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd))
			fprintf(stderr, "cannot remove %s\n", dir);
	}
	printf("%s\n", failures ? "FAILED" : "all passed");
	return failures ? 1 : 0;
}
