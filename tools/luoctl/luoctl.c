// SPDX-License-Identifier: MIT
/**
 * DOC: luoctl - drive and inspect live updates of a service
 *
 *   luoctl [-s NAME | -S PATH] [--json] [--timeout SEC] COMMAND [ARGS]
 *   luoctl list [--all] | --version | --help
 *
 * See luoctl(1) (tools/luoctl/luoctl.1) for the commands and exit codes,
 * docs/luoctl-json.md for the JSON.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "luo_control_proto.h"
#include "luoctl.h"

#ifndef LUOCTL_VERSION
#define LUOCTL_VERSION "unknown"
#endif

static bool json;
static const char *service = "";
static char target[160]; /* "-s NAME" or "-S PATH", for hints */
static char sock_path[PATH_MAX_LUO];
static uint64_t timeout_ns; /* 0: the command's default */

/* The JSON schema of every reply (docs/luoctl-json.md). */
static const struct jfield status_fields[] = {
	{"name", J_STR},
	{"pid", J_INT},
	{"state", J_STR},
	{"num", J_INT},
	{"protocol", J_INT},
	{"path", J_STR},
	{"last_update_ns", J_INT},
	{"blackout_ns", J_INT},
	/* A spawn-mode trial in progress; null otherwise. */
	{"trial", J_STR},
	{"old_pid", J_INT},
	{"trial_ms", J_INT},
	{"trial_left_ms", J_INT},
	{"health", J_STR},
	{"finish_requested", J_BOOL},
	{NULL, J_STR},
};
static const struct jfield sessions_fields[] = {
	{"name", J_STR},   {"direction", J_STR}, {"files", J_INT},
	{"status", J_STR}, {NULL, J_STR},
};
static const struct jfield files_fields[] = {
	{"session", J_STR}, {"direction", J_STR}, {"token", J_INT},
	{"handler", J_STR}, {"kind", J_STR},	  {"inode", J_INT},
	{"status", J_STR},  {NULL, J_STR},
};
static const struct jfield subsystems_fields[] = {
	{"name", J_STR},	  {"prepared", J_BOOL},
	{"incoming", J_BOOL},	  {"incoming_data", J_INT},
	{"outgoing_data", J_INT}, {NULL, J_STR},
};
static const struct jfield devices_fields[] = {
	{"path", J_STR},       {"bus", J_STR},	       {"driver", J_STR},
	{"depth", J_INT},      {"registered", J_BOOL}, {"requested", J_BOOL},
	{"preserved", J_BOOL}, {"reclaimed", J_BOOL},  {NULL, J_STR},
};
static const struct jfield update_fields[] = {
	{"pid", J_INT},		{"num", J_INT}, {"state", J_STR},
	{"blackout_ns", J_INT}, {NULL, J_STR},
};
static const struct jfield spawn_fields[] = {
	{"result", J_STR},	 {"old_pid", J_INT},	 {"new_pid", J_INT},
	{"exit_status", J_SINT}, {"signal", J_SINT},	 {"ran_ns", J_INT},
	{"blackout_ns", J_INT},	 {"rollback_ns", J_INT}, {"text", J_STR},
	{NULL, J_STR},
};
static const struct jfield dump_fields[] = {
	{"name", J_STR}, {"offset", J_INT}, {"size", J_INT},
	{"hex", J_STR},	 {NULL, J_STR},
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: luoctl [-s NAME | -S PATH] [--json] [--timeout SEC] COMMAND\n"
		"       luoctl [--json] list [--all] | --version | --help\n"
		"commands:\n"
		"  status                       state, update counter, last update\n"
		"  prepare | freeze | cancel | finish\n"
		"  update [--finish] [--mode spawn|exec] [--trial DURATION] [--health CMD]\n"
		"         [--deadline DURATION] PATH [ARG...]\n"
		"                               prepare, freeze and exec PATH; wait for it\n"
		"                               (an untested release: --mode spawn --trial 30s\n"
		"                               --health CMD rolls back on any failure)\n"
		"  rollback [REASON] | commit   end a spawn-mode trial either way\n"
		"  stop                         SIGTERM to the service; wait until it ended\n"
		"  sessions | files | subsystems | devices\n"
		"  device PATH requested 0|1    ask for a device to be kept (or not)\n"
		"  dump [incoming|outgoing] [--blob NAME]\n"
		"                               the handover as device-tree source\n"
		"  list [--all]                 the services running on this machine\n"
		"                               (--all: and stale sockets)\n");
}

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "luoctl: ");
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	fprintf(stderr, fmt, arg);
#pragma GCC diagnostic pop
	fprintf(stderr, "\n");
	usage(stderr);
	return EXIT_USAGE;
}

/*
 * After a lost connection: does anything still serve the socket?  The
 * answer decides what to suggest (a status that cannot work is not).
 * Return: the pid that answers, 0 if something listens but does not
 * answer, -1 if nothing listens any more.
 */
static int still_served(const char *path)
{
	struct client c = {.fd = -1, .quiet = true};
	int code, pid;

	c.deadline_ns = mono_ns() + 2000000000ULL;
	code = client_connect(&c, path);
	pid = c.pid;
	client_close(&c);
	if (!code)
		return pid;
	return code == EXIT_TIMEOUT ? 0 : -1;
}

static void say_whether_served(void)
{
	int pid = still_served(sock_path);

	if (pid > 0)
		fprintf(stderr,
			"luoctl: service %s answers again (pid %d): 'luoctl %s status' shows its state\n",
			service, pid, target);
	else if (pid == 0)
		fprintf(stderr,
			"luoctl: something still listens on %s but does not answer: the service may hang; check its log\n",
			sock_path);
	else
		fprintf(stderr,
			"luoctl: nothing serves %s any more: the service is gone (it exited or crashed); check its log\n",
			sock_path);
}

static int lost(int code)
{
	if (code == EXIT_TIMEOUT) {
		fprintf(stderr,
			"luoctl: no answer from service %s in time (--timeout)\n",
			service);
	} else {
		fprintf(stderr,
			"luoctl: the connection to service %s was lost mid-command\n",
			service);
		say_whether_served();
	}
	return code;
}

static int refused(const struct reply *r)
{
	fprintf(stderr, "luoctl: %s\n", r->err_msg ? r->err_msg : "");
	return EXIT_REFUSED;
}

/* Before a request answered EAGAIN is sent again. */
#define RESEND_PAUSE_NS 20000000L

/*
 * Send one request and read its reply; prints errors itself.  A request
 * answered EAGAIN was not run: the service is starting its new image and
 * closed the connection (docs/control-protocol.md).  It is sent again on a
 * new connection, which the new image (or, after a rollback, the old one)
 * accepts, until the command's deadline.
 */
static int request(struct client *c, int argc, char **argv, struct reply *r)
{
	for (;;) {
		int code = client_send(c, argc, argv);

		if (!code)
			code = client_reply(c, r, NULL, NULL);
		if (code)
			return lost(code);
		if (r->ok)
			return 0;
		if (strcmp(r->err_name, "EAGAIN") ||
		    mono_ns() + RESEND_PAUSE_NS >= c->deadline_ns)
			return refused(r);
		reply_free(r); /* leaves @r empty for the caller's free */
		client_close(c);
		nanosleep(&(struct timespec){.tv_nsec = RESEND_PAUSE_NS}, NULL);
		code = client_connect(c, c->path);
		if (code)
			return code;
	}
}

static void fmt_ms(char *buf, size_t len, const char *ns)
{
	if (ns)
		snprintf(buf, len, "%.3f ms", strtod(ns, NULL) / 1e6);
	else
		snprintf(buf, len, "-");
}

static int cmd_status(struct client *c, int argc, char **argv)
{
	struct reply r;
	const struct row *row;
	const char *last;
	int code = request(c, argc, argv, &r);

	if (code)
		goto out;
	if (!r.nrows) {
		fprintf(stderr, "luoctl: the service sent no status row\n");
		code = EXIT_LOST;
		goto out;
	}
	row = &r.rows[0];
	if (json) {
		json_print(json_row(row, status_fields));
		goto out;
	}
	last = row_get(row, "last_update_ns");
	printf("service      %s\n", row_show(row, "name"));
	printf("pid          %s\n", row_show(row, "pid"));
	printf("state        %s\n", row_show(row, "state"));
	printf("live updates %s\n", row_show(row, "num"));
	if (last) {
		time_t t = (time_t)(strtoull(last, NULL, 10) / 1000000000ULL);
		char when[64], ms[32];

		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S %z",
			 localtime(&t));
		fmt_ms(ms, sizeof(ms), row_get(row, "blackout_ns"));
		printf("last update  %s\n", when);
		printf("blackout     %s\n", ms);
	} else {
		printf("last update  never (this image did not start from a live update)\n");
	}
	printf("socket       %s\n", row_show(row, "path"));
	if (row_get(row, "trial"))
		printf("trial        %s: old image pid %s kept, %s ms of %s ms left, health %s, finish %s\n",
		       row_show(row, "trial"), row_show(row, "old_pid"),
		       row_show(row, "trial_left_ms"),
		       row_show(row, "trial_ms"), row_show(row, "health"),
		       row_show(row, "finish_requested"));
out:
	reply_free(&r);
	return code;
}

static struct json_object *jstr(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

static int cmd_simple(struct client *c, int argc, char **argv)
{
	struct reply r;
	int code = request(c, argc, argv, &r);

	if (!code) {
		if (json) {
			struct json_object *o = json_object_new_object();

			json_object_object_add(o, "service", jstr(c->name));
			json_object_object_add(o, "command", jstr(argv[0]));
			json_object_object_add(o, "ok",
					       json_object_new_boolean(1));
			json_print(o);
		} else {
			printf("%s: %s done\n", c->name, argv[0]);
		}
	}
	reply_free(&r);
	return code;
}

static const struct jfield *list_fields(const char *cmd,
					const char *const **cols)
{
	static const char *const sessions[] = {"name", "direction", "files",
					       "status", NULL};
	static const char *const files[] = {"session", "direction", "token",
					    "handler", "kind",	    "inode",
					    "status",  NULL};
	static const char *const subsystems[] = {
		"name",		 "prepared",	  "incoming",
		"incoming_data", "outgoing_data", NULL};
	static const char *const devices[] = {
		"path",	     "bus",	  "driver",    "registered",
		"requested", "preserved", "reclaimed", NULL};

	if (!strcmp(cmd, "sessions"))
		return *cols = sessions, sessions_fields;
	if (!strcmp(cmd, "files"))
		return *cols = files, files_fields;
	if (!strcmp(cmd, "subsystems"))
		return *cols = subsystems, subsystems_fields;
	return *cols = devices, devices_fields;
}

static int cmd_list(struct client *c, int argc, char **argv)
{
	const char *const *cols;
	const struct jfield *fields = list_fields(argv[0], &cols);
	struct reply r;
	int code = request(c, argc, argv, &r);

	if (code) {
		reply_free(&r);
		return code;
	}
	if (!json) {
		print_table(&r, cols);
	} else {
		struct json_object *a = json_rows(&r, fields);

		/* A subsystem without incoming data has none, not 0. */
		for (size_t i = 0; fields == subsystems_fields &&
				   i < json_object_array_length(a);
		     i++) {
			struct json_object *o = json_object_array_get_idx(a, i);
			struct json_object *in;

			if (json_object_object_get_ex(o, "incoming", &in) &&
			    !json_object_get_boolean(in))
				json_object_object_add(o, "incoming_data",
						       NULL);
		}
		json_print(a);
	}
	reply_free(&r);
	return 0;
}

struct stage_log {
	int n;
	int adopted_fd; /* the health command starts at "adopted" */
	struct json_object *stages;
};

static void on_stage(const char *name, const char *us, void *arg)
{
	struct stage_log *log = arg;
	struct jfield f[] = {{"us", J_INT}, {NULL, J_STR}};
	struct row row = {1, (char *[]){"us"}, (char *[]){(char *)us}};

	log->n++;
	if (log->adopted_fd >= 0 && !strcmp(name, "adopted") &&
	    write(log->adopted_fd, "a", 1) != 1)
		fprintf(stderr, "luoctl: cannot start the health command\n");
	if (json) {
		struct json_object *o = json_row(&row, f);

		json_object_object_add(o, "name", jstr(name));
		json_object_array_add(log->stages, o);
		return;
	}
	(void)f;
	printf("  %-8s %10.3f ms\n", name, strtod(us, NULL) / 1e3);
	fflush(stdout);
}

/* update [--finish] [TXN OPTIONS] PATH [ARG...]: check it before
 * connecting. */
static int update_args(int argc, char **argv, bool *finish, char *path,
		       int *first, struct txn_opts *to)
{
	int i = 1, code;

	*finish = i < argc && !strcmp(argv[i], "--finish");
	i += *finish;
	code = txn_parse_opts(argc, argv, &i, to);
	if (code)
		return code;
	if (i >= argc)
		return usage_error("update: give the path of the new binary%s",
				   "");
	if (!realpath(argv[i], path)) {
		fprintf(stderr, "luoctl: update: %s: %s\n", argv[i],
			strerror(errno));
		return EXIT_USAGE;
	}
	*first = i + 1;
	return 0;
}

static int finish_after_update(struct client *c, bool *finished)
{
	char *fin = "finish", *st = "status";
	struct reply f, r;
	int code = client_send(c, 1, &fin);

	if (!code)
		code = client_reply(c, &f, NULL, NULL);
	if (code)
		return lost(code);
	if (f.ok) {
		*finished = true;
		if (!json)
			printf("%s: finish done\n", c->name);
		reply_free(&f);
		return 0;
	}
	/* The service may have finished on its own meanwhile. */
	code = request(c, 1, &st, &r);
	if (!code && r.nrows &&
	    !strcmp(row_get(&r.rows[0], "state") ?: "", "normal")) {
		*finished = true;
		if (!json)
			printf("%s: already finished by the service\n",
			       c->name);
	} else if (!code) {
		code = refused(&f);
	}
	reply_free(&f);
	reply_free(&r);
	return code;
}

/*
 * The old image's answer to a spawn-mode update; a commit is reported
 * once the old image (@old_fd, a pidfd on it) has exited.
 */
static int spawn_result(struct client *c, struct reply *r, int old_fd)
{
	const struct row *row = r->nrows ? &r->rows[0] : NULL;
	int code = r->ok ? 0 : EXIT_REFUSED;
	char ms[32], ran[32], back[32];

	if (!r->ok && !strcmp(r->err_name, "ECANCELED"))
		code = EXIT_ROLLED_BACK;
	if (r->ok) {
		code = wait_old_image_exit(old_fd, c->pid, c->deadline_ns);
		if (code) {
			reply_free(r);
			return code;
		}
	} else if (old_fd >= 0) {
		close(old_fd);
	}
	if (json && row) {
		struct json_object *o = json_row(row, spawn_fields);

		json_object_object_add(o, "service", jstr(c->name));
		json_object_object_add(o, "committed",
				       json_object_new_boolean(r->ok));
		json_print(o);
	} else if (row && (r->ok || code == EXIT_ROLLED_BACK)) {
		fmt_ms(ms, sizeof(ms), row_get(row, "blackout_ns"));
		fmt_ms(ran, sizeof(ran), row_get(row, "ran_ns"));
		fmt_ms(back, sizeof(back), row_get(row, "rollback_ns"));
		if (r->ok)
			printf("%s: committed: pid %s serves (old pid %s ended), blackout %s, new image ran %s before the commit\n",
			       c->name, row_show(row, "new_pid"),
			       row_show(row, "old_pid"), ms, ran);
		else
			printf("%s: rolled back (%s): pid %s serves again; the new image (pid %s) ran %s; rollback %s\n",
			       c->name, row_show(row, "result"),
			       row_show(row, "old_pid"),
			       row_show(row, "new_pid"), ran, back);
	}
	if (!r->ok)
		fprintf(stderr, "luoctl: %s\n", r->err_msg ? r->err_msg : "");
	reply_free(r);
	return code;
}

static int cmd_update(struct client *c, int argc, char **argv)
{
	bool finish, finished = false, explicit_args = false;
	char path[PATH_MAX], **req, words[2][48];
	struct stage_log log = {.adopted_fd = -1};
	struct txn_opts to;
	struct reply r;
	pid_t prober = 0;
	int i, n = 0, code, old_fd = -1;

	code = update_args(argc, argv, &finish, path, &i, &to);
	if (code)
		return code;
	if (i < argc && !strcmp(argv[i], "--")) {
		explicit_args = true;
		i++;
	}
	req = calloc((size_t)argc + 4, sizeof(*req));
	if (!req)
		return EXIT_LOST;
	req[n++] = "update";
	req[n++] = explicit_args || i < argc ? "args" : "keep";
	n += txn_request_words(&to, req + n, words);
	req[n++] = path;
	while (i < argc)
		req[n++] = argv[i++];
	if (!json)
		printf("%s: live update to %s%s\n", c->name, path,
		       to.spawn ? " in spawn mode" : "");
	else
		log.stages = json_object_new_array();
	if (!to.spawn && !to.mode_given && !json)
		fprintf(stderr,
			"luoctl: exec mode: a new image that crashes after its exec cannot be rolled back; for an untested release use --mode spawn --trial 30s --health CMD\n");
	if (to.spawn) {
		/* The trial and both deadlines, with room to spare. */
		uint64_t need =
			(to.trial_ms + 2 * (to.deadline_ms ?: 10000) + 30000) *
			1000000ULL;

		if (c->deadline_ns < mono_ns() + need)
			c->deadline_ns = mono_ns() + need;
		prober = txn_start_prober(&to, sock_path, &log.adopted_fd);
		old_fd = service_pidfd(c->pid);
	}
	code = client_send(c, n, req);
	free(req);
	if (!code)
		code = client_reply(c, &r, on_stage, &log);
	txn_stop_prober(prober, log.adopted_fd);
	if (to.spawn && !code) {
		json_object_put(log.stages);
		return spawn_result(c, &r, old_fd);
	}
	if (old_fd >= 0)
		close(old_fd);
	if (code) {
		if (code == EXIT_LOST && log.n >= 2) {
			fprintf(stderr,
				"luoctl: the old image exec'd but the new one never answered: it may have crashed in start-up or does not serve the control socket\n");
			say_whether_served();
		} else {
			lost(code);
		}
		json_object_put(log.stages);
		return code;
	}
	if (!r.ok) {
		code = refused(&r);
		goto out;
	}
	if (!json && r.nrows) {
		char ms[32];

		fmt_ms(ms, sizeof(ms), row_get(&r.rows[0], "blackout_ns"));
		printf("%s: updated: pid %s, live update #%s, blackout %s, state %s\n",
		       c->name, row_show(&r.rows[0], "pid"),
		       row_show(&r.rows[0], "num"), ms,
		       row_show(&r.rows[0], "state"));
	}
	if (r.nrows && !strcmp(row_get(&r.rows[0], "state") ?: "", "normal"))
		finished = true; /* the service finished at start-up */
	else if (finish && r.nrows &&
		 !strcmp(row_get(&r.rows[0], "state") ?: "", "updated"))
		code = finish_after_update(c, &finished);
	if (finish && finished && !code && !json && r.nrows &&
	    strcmp(row_get(&r.rows[0], "state") ?: "", "updated"))
		printf("%s: already finished by the service\n", c->name);
	if (json && !code) {
		struct json_object *o =
			json_row(r.nrows ? &r.rows[0] : NULL, update_fields);

		json_object_object_add(o, "service", jstr(c->name));
		json_object_object_add(o, "path", jstr(path));
		json_object_object_add(o, "stages", log.stages);
		log.stages = NULL;
		json_object_object_add(o, "finished",
				       json_object_new_boolean(finished));
		json_print(o);
	}
out:
	json_object_put(log.stages);
	reply_free(&r);
	return code;
}

static int dump_args(int argc, char **argv, const char **blob, const char **dir)
{
	*blob = *dir = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--blob") && i + 1 < argc)
			*blob = argv[++i];
		else if (!*dir && (!strcmp(argv[i], "incoming") ||
				   !strcmp(argv[i], "outgoing")))
			*dir = argv[i];
		else
			return usage_error("dump: unexpected '%s'", argv[i]);
	}
	return 0;
}

static int cmd_dump(struct client *c, int argc, char **argv)
{
	const char *blob, *dir;
	char *req[2] = {"dump", NULL};
	struct json_object *a = NULL;
	struct reply r;
	size_t shown = 0;
	int code = dump_args(argc, argv, &blob, &dir);

	if (code)
		return code;
	req[1] = (char *)dir;
	code = request(c, dir ? 2 : 1, req, &r);
	if (!code && json)
		a = json_object_new_array();
	for (size_t i = 0; !code && i < r.nrows; i++) {
		const char *name = row_get(&r.rows[i], "name");
		const char *hex = row_get(&r.rows[i], "hex");
		size_t len = hex ? strlen(hex) / 2 : 0;
		unsigned char *bin;

		if (!name || !hex || (blob && strcmp(blob, name)))
			continue;
		shown++;
		if (json) {
			json_object_array_add(
				a, json_row(&r.rows[i], dump_fields));
			continue;
		}
		bin = malloc(len ? len : 1);
		for (size_t k = 0; bin && k < len; k++)
			sscanf(hex + 2 * k, "%2hhx", &bin[k]);
		if (shown > 1)
			printf("\n");
		if (!bin || print_dts(bin, len, name))
			code = EXIT_LOST;
		free(bin);
	}
	if (!code && !shown) {
		fprintf(stderr, "luoctl: no blob named '%s' in the handover\n",
			blob ? blob : "");
		code = EXIT_REFUSED;
	}
	if (a && !code)
		json_print(a);
	else
		json_object_put(a);
	reply_free(&r);
	return code;
}

/* luoctl list: one row per socket file in the directories services use. */
struct listing {
	bool all;	   /* stale sockets too */
	struct reply rows; /* for the table */
	struct json_object *json;
	uint64_t deadline_ns;
};

static void list_add(struct listing *l, const char *const *kv)
{
	struct row *rows =
		realloc(l->rows.rows, (l->rows.nrows + 1) * sizeof(*rows));
	struct row *row;
	size_t n = 0;

	if (!rows)
		return;
	l->rows.rows = rows;
	row = &rows[l->rows.nrows++];
	while (kv[2 * n])
		n++;
	row->keys = calloc(n, sizeof(char *));
	row->vals = calloc(n, sizeof(char *));
	row->n = 0;
	for (size_t i = 0; row->keys && row->vals && i < n; i++) {
		if (!kv[2 * i + 1])
			continue;
		row->keys[row->n] = strdup(kv[2 * i]);
		row->vals[row->n] = strdup(kv[2 * i + 1]);
		row->n++;
	}
}

static void list_one(const char *path, unsigned uid, void *arg)
{
	static const struct jfield fields[] = {
		{"name", J_STR},       {"socket", J_STR}, {"uid", J_INT},
		{"reachable", J_BOOL}, {"pid", J_INT},	  {"state", J_STR},
		{"num", J_INT},	       {"error", J_STR},  {NULL, J_STR},
	};
	struct listing *l = arg;
	struct client c = {.fd = -1, .quiet = true};
	char name[PATH_MAX_LUO], uidbuf[16], *st = "status";
	const char *base = strrchr(path, '/') + 1, *error = NULL;
	const struct row *row = NULL;
	struct reply r = {0};
	uint64_t now = mono_ns();
	int code;

	snprintf(name, sizeof(name), "%.*s", (int)(strlen(base) - 5), base);
	snprintf(uidbuf, sizeof(uidbuf), "%u", uid);
	/* Each probe gets at most 2 s of what is left. */
	c.deadline_ns = now >= l->deadline_ns ? now
			: l->deadline_ns - now > 2000000000ULL
				? now + 2000000000ULL
				: l->deadline_ns;
	code = client_connect(&c, path);
	if (!code)
		code = client_send(&c, 1, &st);
	if (!code)
		code = client_reply(&c, &r, NULL, NULL);
	if (!code && r.ok && r.nrows)
		row = &r.rows[0];
	else if (code == EXIT_UNREACHABLE)
		error = "not running (nobody listens)";
	else if (code == EXIT_DENIED)
		error = "permission denied";
	else if (code == EXIT_TIMEOUT)
		error = "no answer in time";
	else
		error = "bad answer";
	if (code == EXIT_UNREACHABLE && !l->all) {
		client_close(&c);
		return; /* a stale socket file: no service */
	}
	{
		const char *kv[] = {
			"name",	     row ? row_get(row, "name") : name,
			"socket",    path,
			"uid",	     uidbuf,
			"reachable", row ? "yes" : "no",
			"pid",	     row ? row_get(row, "pid") : NULL,
			"state",     row ? row_get(row, "state") : NULL,
			"num",	     row ? row_get(row, "num") : NULL,
			"error",     error,
			NULL,
		};

		list_add(l, kv);
		if (l->json)
			json_object_array_add(
				l->json,
				json_row(&l->rows.rows[l->rows.nrows - 1],
					 fields));
	}
	reply_free(&r);
	client_close(&c);
}

static int cmd_services(int argc)
{
	static const char *const cols[] = {"name", "pid",    "state", "num",
					   "uid",  "socket", "error", NULL};
	struct listing l = {.deadline_ns = mono_ns() + timeout_ns,
			    .all = argc > 1};

	if (json)
		l.json = json_object_new_array();
	for_each_service_socket(list_one, &l);
	if (json)
		json_print(l.json);
	else
		print_table(&l.rows, cols);
	reply_free(&l.rows);
	return 0;
}

static int cmd_rollback_commit(struct client *c, int argc, char **argv)
{
	return cmd_txn(c, sock_path, argc, argv, json);
}

/* --timeout SEC: a positive number of seconds, nothing else. */
static int parse_timeout(const char *s)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v <= 0 || v > 31536000)
		return usage_error(
			"--timeout wants a number of seconds greater than 0, not '%s'",
			s);
	timeout_ns = (uint64_t)(v * 1e9);
	if (!timeout_ns)
		timeout_ns = 1;
	return 0;
}

static int cmd_stop_service(struct client *c, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return cmd_stop(c, json);
}

/* The commands and the arguments they take (checked before connecting). */
static const struct command {
	const char *name;
	int (*run)(struct client *c, int argc, char **argv);
	int min, max; /* arguments after the command's name */
	const char *args;
} commands[] = {
	{"status", cmd_status, 0, 0, ""},
	{"prepare", cmd_simple, 0, 0, ""},
	{"freeze", cmd_simple, 0, 0, ""},
	{"cancel", cmd_simple, 0, 0, ""},
	{"finish", cmd_simple, 0, 0, ""},
	{"update", cmd_update, 1, INT_MAX,
	 " [--finish] [--mode spawn|exec] [--trial D] [--health CMD] [--deadline D] PATH [ARG...]"},
	{"rollback", cmd_rollback_commit, 0, INT_MAX, " [REASON]"},
	{"commit", cmd_rollback_commit, 0, 0, ""},
	{"stop", cmd_stop_service, 0, 0, ""},
	{"sessions", cmd_list, 0, 0, ""},
	{"files", cmd_list, 0, 0, ""},
	{"subsystems", cmd_list, 0, 0, ""},
	{"devices", cmd_list, 0, 0, ""},
	{"device", cmd_simple, 3, 3, " PATH requested 0|1"},
	{"dump", cmd_dump, 0, 3, " [incoming|outgoing] [--blob NAME]"},
	{"list", NULL, 0, 1, " [--all]"},
};

static int check_args(const struct command *cmd, int argc, char **argv)
{
	if (argc - 1 < cmd->min || argc - 1 > cmd->max ||
	    (!strcmp(cmd->name, "list") && argc == 2 &&
	     strcmp(argv[1], "--all")) ||
	    (!strcmp(cmd->name, "device") &&
	     (strcmp(argv[2], "requested") ||
	      (strcmp(argv[3], "0") && strcmp(argv[3], "1"))))) {
		fprintf(stderr,
			"luoctl: usage: luoctl [-s NAME | -S PATH] %s%s\n",
			cmd->name, cmd->args);
		return EXIT_USAGE;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"service", required_argument, NULL, 's'},
		{"socket", required_argument, NULL, 'S'},
		{"json", no_argument, NULL, 'j'},
		{"timeout", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	static struct client c = {.fd = -1};
	const struct command *cmd = NULL;
	const char *name = NULL, *path = NULL;
	int opt, code;

	while ((opt = getopt_long(argc, argv, "+s:S:jt:hV", opts, NULL)) !=
	       -1) {
		switch (opt) {
		case 's':
			name = optarg;
			path = NULL;
			break;
		case 'S':
			path = optarg;
			name = NULL;
			break;
		case 'j':
			json = true;
			break;
		case 't':
			if (parse_timeout(optarg))
				return EXIT_USAGE;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("luoctl %s (control protocol %d)\n",
			       LUOCTL_VERSION, 1);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc)
		return usage_error("give a command%s", "");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[optind], commands[i].name))
			cmd = &commands[i];
	if (!cmd)
		return usage_error(
			"unknown command '%s' ('luoctl --help' lists them)",
			argv[optind]);
	argc -= optind;
	argv += optind;
	code = check_args(cmd, argc, argv);
	if (code)
		return code;
	if (!strcmp(cmd->name, "update") || !strcmp(cmd->name, "dump")) {
		/* Their arguments are checked before anything is sent. */
		char rp[PATH_MAX];
		bool fin;
		const char *b, *d;
		struct txn_opts to;
		int first;

		code = !strcmp(cmd->name, "update")
			       ? update_args(argc, argv, &fin, rp, &first, &to)
			       : dump_args(argc, argv, &b, &d);
		if (code)
			return code;
	}
	if (!timeout_ns)
		timeout_ns = (strcmp(cmd->name, "update") ? 30ULL : 60ULL) *
			     1000000000ULL;
	if (!cmd->run)
		return cmd_services(argc);
	if (!name && !path)
		return usage_error("name the service: -s NAME or -S PATH%s",
				   "");
	if (name) {
		service = name;
		snprintf(target, sizeof(target), "-s %s", name);
		code = find_service(name, sock_path, sizeof(sock_path));
		if (code)
			return code;
	} else {
		service = path;
		snprintf(target, sizeof(target), "-S %s", path);
		snprintf(sock_path, sizeof(sock_path), "%s", path);
	}
	/* One deadline for the whole command, connect included. */
	c.deadline_ns = mono_ns() + timeout_ns;
	code = client_connect(&c, sock_path);
	if (!code)
		code = cmd->run(&c, argc, argv);
	client_close(&c);
	return code;
}
