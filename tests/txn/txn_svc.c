// SPDX-License-Identifier: MIT
/*
 * txn-svc: a small TCP service for the transaction tests.  It keeps a
 * value in handover memory, preserves its listener and every client
 * connection, and logs every participant's cancel to a file, so a test can
 * check that a rollback told each exactly once, in reverse order.
 *
 *   txn-svc --log FILE [--port-file FILE] [--behave B] [--pid-file FILE]
 *
 * Requests, one line each: "get" -> "value V pid P marker M writes W
 * scratch ok|damaged"; "probe-alloc" -> "fresh-memory zero|dirty";
 * "inc" -> "ok V"; "conns" -> "conns N" (clients open); "state" -> "state
 * NAME" (the library's state); "fail HOW" (a new
 * image in its trial: exit 3, segv, giveup, sick: its probe fails from
 * now on); "update MODE BEHAVE TRIAL_MS DEADLINE_MS [PATH]" runs a
 * live update into PATH (default: itself) started with --behave BEHAVE
 * ("-": none) and answers "committed PID" or "rolledback REASON EXIT SIG
 * TEXT" or "failed ERRNO".
 *
 * Behaviours of a new image: exit3, segv, hang-init (before luo_init()),
 * ignore (refuses the handover), health-fail (its probe fails), stop
 * (SIGSTOPs itself after adopting), hang-after (hangs after adopting,
 * never calls liveupdate_finish()), scribble (allocates and writes 4 MiB,
 * frees the old image's scratch block, then gives up), giveup (asks for a
 * rollback), slow-finish (a subsystem's finish takes 400 ms), tamper
 * (exec mode: its luo_init() refuses what it is given), ok.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <luo/luo.h>

#define MAGIC 0x54584e5356433031ULL
#define MAXCONN 64
#define TOKEN_LISTENER 1
#define TOKEN_CONN 100

struct state {
	uint64_t magic;
	uint64_t value;
	uint64_t marker;       /* written by the old image at freeze */
	uint64_t trial_writes; /* written by new images during their trial */
	uint64_t ntokens;
	uint64_t tokens[MAXCONN];
	uint64_t scratch_off; /* a block of the first image's, 256 KiB */
};

#define SCRATCH (256 << 10)

static struct state *st;
static const char *log_path, *behave = "", *pid_file;
static int listen_fd = -1;
static int conns[MAXCONN];
static uint64_t conn_tok[MAXCONN];
static int nconns;
static struct luo_session *sess;
static uint64_t next_token = TOKEN_CONN;
/* Taken back from a rolled-back trial: preserved once the update returned. */
static int returned_from;
static volatile int sick;

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_(const char *fmt, ...)
{
	char line[256];
	va_list ap;
	int fd =
		open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	int n;

	if (fd < 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	line[n++] = '\n';
	if (write(fd, line, (size_t)n) < 0)
		perror("log");
	close(fd);
}

static int sub_prepare(struct liveupdate_subsystem *h, uint64_t *data)
{
	*data = kho_ptr_to_offset(st);
	logf_("prepare %s", h->name);
	return 0;
}

static int sub_freeze(struct liveupdate_subsystem *h, uint64_t *data)
{
	(void)data;
	if (!strcmp(h->name, "alpha"))
		st->marker = 0xabc000 + st->value;
	return 0;
}

static void sub_cancel(struct liveupdate_subsystem *h, uint64_t data)
{
	(void)data;
	logf_("cancel %s", h->name);
}

static void sub_boot(struct liveupdate_subsystem *h, uint64_t data)
{
	if (strcmp(h->name, "alpha"))
		return;
	void *scratch;

	if (kho_restore(data, sizeof(*st), (void **)&st) ||
	    st->magic != MAGIC ||
	    kho_restore(st->scratch_off, SCRATCH, &scratch))
		st = NULL;
}

/* slow-finish: the commit must not be reported before this has run. */
static void sub_finish(struct liveupdate_subsystem *h, uint64_t data)
{
	(void)data;
	if (!strcmp(behave, "slow-finish") && !strcmp(h->name, "alpha"))
		usleep(400 * 1000);
}

static const struct liveupdate_subsystem_ops sub_ops = {
	.prepare = sub_prepare,
	.freeze = sub_freeze,
	.cancel = sub_cancel,
	.boot = sub_boot,
	.finish = sub_finish,
};
static struct liveupdate_subsystem alpha = {.ops = &sub_ops, .name = "alpha"};
static struct liveupdate_subsystem beta = {.ops = &sub_ops, .name = "beta"};

static int dev_prepare(struct liveupdate_device *d, uint64_t *data)
{
	(void)d;
	*data = 0;
	return 0;
}

static void dev_cancel(struct liveupdate_device *d, uint64_t data)
{
	(void)data;
	logf_("cancel device %s", d->name);
}

static const struct liveupdate_device_cbs dev_cbs = {.prepare = dev_prepare,
						     .cancel = dev_cancel};
static const struct liveupdate_driver drv = {.name = "svc",
					     .liveupdate = &dev_cbs};
static struct liveupdate_device dev = {.name = "svcdev", .driver = &drv};

static int health_fail(void *arg)
{
	(void)arg;
	return -EIO;
}

static int health_ok(void *arg)
{
	(void)arg;
	if (sick)
		return -EIO;
	return st && st->magic == MAGIC ? 0 : -EBADMSG;
}

static void add_conn(int fd, uint64_t token);

/* A client the rolled-back new image accepted: serve it here. */
static int take_returned(const char *session, uint64_t token, void *arg)
{
	int fd;

	(void)arg;
	if (strcmp(session, "svc") || token < TOKEN_CONN ||
	    liveupdate_txn_returned_take(session, token, &fd))
		return 0;
	add_conn(fd, token);
	if (token >= next_token)
		next_token = token + 1;
	logf_("returned %llu", (unsigned long long)token);
	return 0;
}

static void on_rollback(const struct liveupdate_update_report *r, void *arg)
{
	(void)arg;
	logf_("rollback-hook %s", liveupdate_txn_reason_name(r->reason));
	/*
	 * What the new image wrote into handover memory stays: it may have
	 * rewritten the token list and died half way.  This image knows its
	 * connections: write the list again.
	 */
	if (!st)
		return;
	returned_from = nconns;
	liveupdate_txn_returned_foreach(take_returned, NULL);
	st->ntokens = 0;
	for (int i = 0; i < nconns; i++)
		st->tokens[st->ntokens++] = conn_tok[i];
}

static void add_conn(int fd, uint64_t token)
{
	if (nconns == MAXCONN) {
		close(fd);
		return;
	}
	conns[nconns] = fd;
	conn_tok[nconns++] = token;
}

static void preserve_all(void)
{
	if (liveupdate_create_session("svc", &sess) ||
	    liveupdate_session_preserve_fd(sess, listen_fd, TOKEN_LISTENER)) {
		fprintf(stderr, "txn-svc: cannot preserve the listener\n");
		exit(1);
	}
	st->ntokens = 0;
	for (int i = 0; i < nconns; i++) {
		if (liveupdate_session_preserve_fd(sess, conns[i], conn_tok[i]))
			fprintf(stderr, "txn-svc: cannot preserve a client\n");
		st->tokens[st->ntokens++] = conn_tok[i];
	}
}

static void reply(int fd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void reply(int fd, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (send(fd, line, (size_t)n, MSG_NOSIGNAL) < 0)
		perror("txn-svc: send");
}

static void do_update(int fd, char **w, int n)
{
	char self[4096], *argv[16];
	struct liveupdate_update_opts o = {0};
	struct liveupdate_update_report r;
	ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	int k = 0, err;

	if (n < 5 || len < 0) {
		reply(fd, "failed usage\n");
		return;
	}
	self[len] = 0;
	o.mode = !strcmp(w[1], "spawn") ? LIVEUPDATE_MODE_SPAWN
					: LIVEUPDATE_MODE_EXEC;
	o.trial_ms = strtoull(w[3], NULL, 10);
	o.deadline_ms = strtoull(w[4], NULL, 10);
	o.path = n > 5 ? w[5] : self;
	argv[k++] = (char *)o.path;
	if (n > 5) { /* another program: its own arguments */
		for (int i = 6; i < n && k < 15; i++)
			argv[k++] = w[i];
		argv[k] = NULL;
		goto run;
	}
	argv[k++] = "--log";
	argv[k++] = (char *)log_path;
	if (strcmp(w[2], "-")) {
		argv[k++] = "--behave";
		argv[k++] = w[2];
	}
	if (pid_file) {
		argv[k++] = "--pid-file";
		argv[k++] = (char *)pid_file;
	}
	argv[k] = NULL;
run:
	o.argv = argv;
	/* A committed image asks once its finish has run. */
	if (!liveupdate_device_requested(&dev))
		liveupdate_device_request(&dev, true);
	logf_("update %s %s", w[1], w[2]);
	err = liveupdate_update(&o, &r);
	if (!err) {
		reply(fd, "committed %d\n", (int)r.new_pid);
		_exit(0);
	}
	/* Preserve what the rollback hook took back (not allowed there). */
	for (int i = returned_from; err == -ECANCELED && i < nconns; i++)
		if (liveupdate_session_preserve_fd(sess, conns[i], conn_tok[i]))
			fprintf(stderr, "txn-svc: cannot preserve a client\n");
	returned_from = nconns;
	if (err == -ECANCELED)
		reply(fd, "rolledback %s %d %d %s\n",
		      liveupdate_txn_reason_name(r.reason), r.exit_status,
		      r.term_signal, r.text);
	else
		reply(fd, "failed %d\n", -err);
}

static bool scratch_ok(void)
{
	const uint8_t *p = kho_offset_to_ptr(st->scratch_off);

	for (int i = 0; p && i < SCRATCH; i++)
		if (p[i] != (uint8_t)(i * 7 + 1))
			return false;
	return p != NULL;
}

/* Memory allocated now must read as zero, whatever a new image wrote
 * into the free space during a trial that rolled back. */
static const char *probe_alloc(void)
{
	const char *verdict = "zero";
	uint8_t *p[4];

	for (int k = 0; k < 4; k++) {
		if (kho_alloc_preserve(1 << 20, (void **)&p[k]))
			return "no-memory";
		for (int i = 0; i < (1 << 20); i++)
			if (p[k][i])
				verdict = "dirty";
	}
	for (int k = 0; k < 4; k++)
		kho_unpreserve_free(p[k]);
	return verdict;
}

/* A new image in its trial fails as asked. */
static void fail_now(int fd, const char *how)
{
	if (liveupdate_txn_get_status(&(struct liveupdate_txn_status){0})) {
		reply(fd, "error not-in-trial\n");
		return;
	}
	logf_("fail %s", how);
	if (!strcmp(how, "exit"))
		exit(3);
	if (!strcmp(how, "segv")) {
		signal(SIGSEGV, SIG_DFL);
		raise(SIGSEGV);
	}
	if (!strcmp(how, "giveup"))
		liveupdate_txn_rollback("asked by a client");
	else if (!strcmp(how, "sick"))
		sick = 1;
	else
		reply(fd, "error unknown\n");
}

/* One request; false if the connection is done. */
static bool serve(int i)
{
	char buf[512], *w[16], *save;
	ssize_t n = recv(conns[i], buf, sizeof(buf) - 1, 0);
	int nw = 0;

	if (n <= 0)
		return false;
	buf[n] = 0;
	for (char *t = strtok_r(buf, " \r\n", &save); t && nw < 16;
	     t = strtok_r(NULL, " \r\n", &save))
		w[nw++] = t;
	if (!nw)
		return true;
	if (!strcmp(w[0], "get"))
		reply(conns[i],
		      "value %llu pid %d marker %#llx writes %llu scratch %s\n",
		      (unsigned long long)st->value, (int)getpid(),
		      (unsigned long long)st->marker,
		      (unsigned long long)st->trial_writes,
		      scratch_ok() ? "ok" : "damaged");
	else if (!strcmp(w[0], "probe-alloc"))
		reply(conns[i], "fresh-memory %s\n", probe_alloc());
	else if (!strcmp(w[0], "inc"))
		reply(conns[i], "ok %llu\n", (unsigned long long)++st->value);
	else if (!strcmp(w[0], "update"))
		do_update(conns[i], w, nw);
	else if (!strcmp(w[0], "state"))
		reply(conns[i], "state %s\n",
		      liveupdate_state_name(liveupdate_get_state()));
	else if (!strcmp(w[0], "conns"))
		reply(conns[i], "conns %d\n", nconns);
	else if (!strcmp(w[0], "fail") && nw > 1)
		fail_now(conns[i], w[1]);
	else
		reply(conns[i], "error unknown\n");
	return true;
}

static void fresh(const char *port_file)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	FILE *f;

	uint8_t *scratch;

	if (kho_alloc_preserve(sizeof(*st), (void **)&st) ||
	    kho_alloc_preserve(SCRATCH, (void **)&scratch))
		exit(1);
	for (int i = 0; i < SCRATCH; i++)
		scratch[i] = (uint8_t)(i * 7 + 1);
	st->scratch_off = kho_ptr_to_offset(scratch);
	st->magic = MAGIC;
	listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (listen_fd < 0 || bind(listen_fd, (void *)&sa, sizeof(sa)) ||
	    listen(listen_fd, 64) || getsockname(listen_fd, (void *)&sa, &len))
		exit(1);
	f = port_file ? fopen(port_file, "w") : NULL;
	if (f) {
		fprintf(f, "%d\n", ntohs(sa.sin_port));
		fclose(f);
	}
}

static void adopt(void)
{
	struct luo_session *in;

	if (!st || liveupdate_retrieve_session("svc", &in) ||
	    liveupdate_session_retrieve_fd(in, TOKEN_LISTENER, &listen_fd)) {
		fprintf(stderr, "txn-svc: cannot take the state back\n");
		exit(1);
	}
	for (uint64_t i = 0; i < st->ntokens; i++) {
		int fd;

		if (!liveupdate_session_retrieve_fd(in, st->tokens[i], &fd))
			add_conn(fd, st->tokens[i]);
		if (st->tokens[i] >= next_token)
			next_token = st->tokens[i] + 1;
	}
	liveupdate_session_finish(in);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"log", required_argument, NULL, 'l'},
		{"port-file", required_argument, NULL, 'p'},
		{"behave", required_argument, NULL, 'b'},
		{"pid-file", required_argument, NULL, 'P'},
		{NULL, 0, NULL, 0},
	};
	struct luo_init_opts init = {0};
	struct liveupdate_txn_hooks hooks = {.rollback = on_rollback,
					     .health = health_ok};
	const char *port_file = NULL;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'l')
			log_path = optarg;
		else if (c == 'p')
			port_file = optarg;
		else if (c == 'b')
			behave = optarg;
		else if (c == 'P')
			pid_file = optarg;
		else
			return 2;
	}
	if (!log_path)
		return 2;
	if (!strcmp(behave, "exit3"))
		return 3;
	if (!strcmp(behave, "segv")) {
		signal(SIGSEGV, SIG_DFL);
		raise(SIGSEGV);
	}
	if (!strcmp(behave, "hang-init"))
		for (;;)
			pause();
	if (!strcmp(behave, "ignore"))
		init.flags |= LUO_INIT_IGNORE_HANDOVER;
	/* Exec mode: a luo_init() that cannot accept what it is given. */
	if (!strcmp(behave, "tamper") && getenv("LUO_HANDOVER_FD"))
		setenv("LUO_HANDOVER_FD", "not-a-handover", 1);
	if (!strcmp(behave, "health-fail"))
		hooks.health = health_fail;
	liveupdate_set_txn_hooks(&hooks);
	if (luo_init(&init) && luo_init(&init))
		return 1;
	if (liveupdate_register_subsystem(&alpha) ||
	    liveupdate_register_subsystem(&beta) ||
	    liveupdate_device_register(&dev) ||
	    (liveupdate_get_state() == LIVEUPDATE_STATE_NORMAL &&
	     liveupdate_device_request(&dev, true)))
		return 1;
	if (liveupdate_get_state() == LIVEUPDATE_STATE_UPDATED) {
		uint64_t data;

		if (liveupdate_device_preserved(&dev))
			liveupdate_device_reclaim(&dev, &data, NULL);
		adopt();
		st->trial_writes++;
		if (pid_file) {
			FILE *f = fopen(pid_file, "w");

			if (f) {
				fprintf(f, "%d\n", (int)getpid());
				fclose(f);
			}
		}
		if (!strcmp(behave, "stop"))
			raise(SIGSTOP);
		/* Adopted, then its main loop hangs: it never gets ready. */
		if (!strcmp(behave, "hang-after"))
			for (;;)
				pause();
		/* Writes all over the free space, frees the old image's
		 * scratch block, then gives up. */
		if (!strcmp(behave, "scribble")) {
			uint8_t *p;

			for (int k = 0; k < 4; k++)
				if (!kho_alloc_preserve(1 << 20, (void **)&p))
					memset(p, 0xee, 1 << 20);
			kho_unpreserve_free(kho_offset_to_ptr(st->scratch_off));
			liveupdate_txn_rollback("scribbled and gave up");
			for (;;)
				pause();
		}
		/* It serves nothing more: the old image ends it. */
		if (!strcmp(behave, "giveup") &&
		    !liveupdate_txn_rollback("v2 finds the state too old"))
			for (;;)
				pause();
		preserve_all();
		if (liveupdate_finish())
			return 1;
	} else {
		if (!st)
			fresh(port_file);
		preserve_all();
	}
	for (;;) {
		struct pollfd p[MAXCONN + 1];

		p[0] = (struct pollfd){.fd = listen_fd, .events = POLLIN};
		for (int i = 0; i < nconns; i++)
			p[i + 1] = (struct pollfd){.fd = conns[i],
						   .events = POLLIN};
		if (poll(p, (nfds_t)nconns + 1, -1) < 0)
			continue;
		if (p[0].revents) {
			int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);

			if (fd >= 0) {
				uint64_t tok = next_token++;

				add_conn(fd, tok);
				if (liveupdate_session_preserve_fd(sess, fd,
								   tok))
					fprintf(stderr,
						"txn-svc: cannot preserve a client\n");
				if (st->ntokens < MAXCONN)
					st->tokens[st->ntokens++] = tok;
			}
		}
		for (int i = nconns; i-- > 0;) {
			if (!p[i + 1].revents || serve(i))
				continue;
			liveupdate_session_unpreserve_fd(sess, conn_tok[i]);
			close(conns[i]);
			conns[i] = conns[--nconns];
			conn_tok[i] = conn_tok[nconns];
		}
	}
}
