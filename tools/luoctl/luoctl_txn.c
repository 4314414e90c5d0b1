// SPDX-License-Identifier: MIT
/*
 * luoctl's side of an update as a transaction: the spawn-mode options of
 * "update" (--mode, --trial, --deadline, --health), the health command
 * run during the trial, and the "rollback" and "commit" commands.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "luoctl.h"

/* "30s", "500ms", "2m", "1.5s", "10" (seconds): ms, or -1. */
long long parse_duration(const char *s)
{
	char *end;
	double v;

	if (!s || !*s || *s == '-' || *s == '+')
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || v < 0)
		return -1;
	if (!*end || !strcmp(end, "s"))
		v *= 1000;
	else if (!strcmp(end, "m"))
		v *= 60000;
	else if (!strcmp(end, "h"))
		v *= 3600000;
	else if (strcmp(end, "ms"))
		return -1;
	if (v > 86400000.0)
		return -1;
	return (long long)v;
}

int txn_parse_opts(int argc, char **argv, int *i, struct txn_opts *o)
{
	memset(o, 0, sizeof(*o));
	while (*i < argc && !strncmp(argv[*i], "--", 2) && argv[*i][2]) {
		const char *opt = argv[*i],
			   *v = *i + 1 < argc ? argv[*i + 1] : NULL;
		long long ms;

		if (strcmp(opt, "--mode") && strcmp(opt, "--trial") &&
		    strcmp(opt, "--deadline") && strcmp(opt, "--health"))
			return 0; /* not ours */
		if (!v) {
			fprintf(stderr, "luoctl: update: %s needs a value\n",
				opt);
			return EXIT_USAGE;
		}
		if (!strcmp(opt, "--mode")) {
			if (!strcmp(v, "spawn"))
				o->spawn = true;
			else if (strcmp(v, "exec")) {
				fprintf(stderr,
					"luoctl: update: --mode is 'spawn' or 'exec', not '%s'\n",
					v);
				return EXIT_USAGE;
			}
			o->mode_given = true;
		} else if (!strcmp(opt, "--health")) {
			o->health = v;
		} else {
			ms = parse_duration(v);
			if (ms < 0 || (!strcmp(opt, "--deadline") && !ms)) {
				fprintf(stderr,
					"luoctl: update: %s %s: not a duration (like 30s, 500ms, 2m; at most 24h%s)\n",
					opt, v,
					!strcmp(opt, "--deadline") ? ", not 0"
								   : "");
				return EXIT_USAGE;
			}
			if (!strcmp(opt, "--trial"))
				o->trial_ms = ms;
			else
				o->deadline_ms = ms;
		}
		*i += 2;
	}
	/* A trial, a deadline or a probe only make sense in spawn mode. */
	if ((o->trial_ms || o->deadline_ms || o->health) && !o->spawn) {
		if (o->mode_given) {
			fprintf(stderr,
				"luoctl: update: --trial, --deadline and --health need --mode spawn: in exec mode the old image is gone once the exec succeeds\n");
			return EXIT_USAGE;
		}
		o->spawn = true;
	}
	return 0;
}

int txn_request_words(const struct txn_opts *o, char **req, char bufs[][48])
{
	int n = 0;

	if (!o->spawn)
		return 0;
	req[n++] = "mode=spawn";
	if (o->trial_ms) {
		snprintf(bufs[0], 48, "trial_ms=%llu", o->trial_ms);
		req[n++] = bufs[0];
	}
	if (o->deadline_ms) {
		snprintf(bufs[1], 48, "deadline_ms=%llu", o->deadline_ms);
		req[n++] = bufs[1];
	}
	if (o->health)
		req[n++] = "probe=external";
	return n;
}

/*
 * The health command's loop, in a child: it starts when the parent writes
 * to @go (the new image adopted), runs CMD every @interval_ms and on the
 * first failure asks the new image (it serves the socket now) to roll
 * back.
 */
static void prober(const char *sock, const char *cmd, int go,
		   unsigned interval_ms)
{
	char c;

	if (read(go, &c, 1) != 1)
		_exit(0);
	for (;;) {
		struct timespec ts = {interval_ms / 1000,
				      (long)(interval_ms % 1000) * 1000000L};
		struct client k = {.fd = -1, .quiet = true};
		char reason[256], *req[3] = {"rollback", "health", reason};
		struct reply r;
		int st = system(cmd);

		k.deadline_ns = mono_ns() + 5000000000ULL;
		if (st == 0) {
			nanosleep(&ts, NULL);
			continue;
		}
		snprintf(reason, sizeof(reason),
			 "health command '%s' failed (%s %d)", cmd,
			 WIFEXITED(st) ? "exit" : "signal",
			 WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
		fprintf(stderr, "luoctl: %s: asking for a rollback\n", reason);
		if (!client_connect(&k, sock) && !client_send(&k, 3, req) &&
		    !client_reply(&k, &r, NULL, NULL))
			reply_free(&r);
		_exit(1);
	}
}

pid_t txn_start_prober(const struct txn_opts *o, const char *sock, int *go)
{
	unsigned interval = o->trial_ms / 5;
	int p[2];
	pid_t pid;

	if (!o->health)
		return 0;
	interval = interval < 100 ? 100 : interval > 1000 ? 1000 : interval;
	if (pipe(p))
		return -1;
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		close(p[1]);
		prober(sock, o->health, p[0], interval);
	}
	close(p[0]);
	*go = p[1];
	return pid;
}

void txn_stop_prober(pid_t pid, int go)
{
	if (go >= 0)
		close(go);
	if (pid > 0) {
		kill(pid, SIGTERM);
		waitpid(pid, NULL, 0);
	}
}

static void msleep(int ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* Ask "status" until @done says yes; 0 when it did within @timeout_ms. */
static int wait_status(const char *sock, int timeout_ms,
		       bool (*done)(const struct row *row, void *arg),
		       void *arg)
{
	for (int waited = 0; waited <= timeout_ms; waited += 100) {
		struct client k = {.fd = -1, .quiet = true};
		char *req = "status";
		struct reply r;
		int ok = 0;

		k.deadline_ns = mono_ns() + 2000000000ULL;
		if (!client_connect(&k, sock) && !client_send(&k, 1, &req) &&
		    !client_reply(&k, &r, NULL, NULL)) {
			ok = r.ok && r.nrows && done(&r.rows[0], arg);
			reply_free(&r);
		}
		if (k.fd >= 0)
			close(k.fd);
		if (ok)
			return 0;
		msleep(100);
	}
	return -1;
}

static bool old_serves(const struct row *row, void *arg)
{
	const char *pid = row_get(row, "pid");

	return pid && atoi(pid) == *(int *)arg && !row_get(row, "trial");
}

static bool no_trial(const struct row *row, void *arg)
{
	(void)arg;
	return !row_get(row, "trial") &&
	       !strcmp(row_get(row, "state") ?: "", "normal");
}

int cmd_txn(struct client *c, const char *sock, int argc, char **argv,
	    bool json)
{
	char reason[256] = "", *req[2] = {argv[0], reason};
	bool rollback = !strcmp(argv[0], "rollback");
	struct reply r;
	int code, old_pid = 0, new_pid = 0, wait_ms;

	for (int i = 1; i < argc; i++)
		snprintf(reason + strlen(reason),
			 sizeof(reason) - strlen(reason), "%s%s",
			 i > 1 ? " " : "", argv[i]);
	if (rollback && !reason[0])
		snprintf(reason, sizeof(reason), "asked by the operator");
	code = client_send(c, rollback ? 2 : 1, req);
	if (!code)
		code = client_reply(c, &r, NULL, NULL);
	if (code) {
		fprintf(stderr, "luoctl: %s: the connection was lost: %s\n",
			argv[0],
			rollback ? "the new image may already be gone"
				 : "run 'luoctl status'");
		return code;
	}
	if (!r.ok) {
		fprintf(stderr, "luoctl: %s\n", r.err_msg ? r.err_msg : "");
		reply_free(&r);
		return EXIT_REFUSED;
	}
	if (r.nrows) {
		old_pid = atoi(row_get(&r.rows[0], "old_pid") ?: "0");
		new_pid = atoi(row_get(&r.rows[0], "new_pid") ?: "0");
	}
	reply_free(&r);
	/* What is left of the command's deadline. */
	wait_ms = c->deadline_ns > mono_ns()
			  ? (int)((c->deadline_ns - mono_ns()) / 1000000ULL)
			  : 0;
	code = rollback ? wait_status(sock, wait_ms, old_serves, &old_pid)
			: wait_status(sock, wait_ms, no_trial, NULL);
	if (code) {
		fprintf(stderr,
			"luoctl: %s asked for, but the service did not show it within %d ms: run 'luoctl status'\n",
			argv[0], wait_ms);
		return EXIT_TIMEOUT;
	}
	/* A commit is reported once the old image is gone. */
	if (!rollback && old_pid > 0) {
		code = wait_old_image_exit(-1, old_pid, c->deadline_ns);
		if (code)
			return code;
	}
	if (json) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "service",
				       json_object_new_string(c->name));
		json_object_object_add(o, "command",
				       json_object_new_string(argv[0]));
		json_object_object_add(o, "ok", json_object_new_boolean(1));
		json_object_object_add(
			o, "pid",
			json_object_new_int(rollback ? old_pid : new_pid));
		json_print(o);
	} else if (rollback)
		printf("%s: rolled back: the old image (pid %d) serves again\n",
		       c->name, old_pid);
	else
		printf("%s: committed: pid %d serves, the old image (pid %d) ended\n",
		       c->name, new_pid, old_pid);
	return 0;
}
