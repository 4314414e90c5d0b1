// SPDX-License-Identifier: MIT
/**
 * DOC: luoctl - drive and inspect live updates of a service
 *
 *   luoctl [-s NAME | -S PATH] [--json] [--timeout SEC] COMMAND [ARGS]
 *
 * See luoctl(1) (tools/luoctl/luoctl.1) for the commands and exit codes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "luo_control_proto.h"
#include "luoctl.h"

static bool json;
static const char *service = "";
static char service_path[108]; /* the socket, for a second connection */
static char target[160]; /* "-s NAME" or "-S PATH", for hints */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: luoctl [-s NAME | -S PATH] [--json] [--timeout SEC] COMMAND\n"
		"commands:\n"
		"  status                       state, update counter, last update\n"
		"  prepare | freeze | cancel | finish\n"
		"  update [--finish] [--mode spawn|exec] [--trial DURATION] [--health CMD]\n"
		"         [--deadline DURATION] PATH [ARG...]\n"
		"                               prepare, freeze and exec PATH; wait for it\n"
		"                               (an untested release: --mode spawn --trial 30s\n"
		"                               --health CMD rolls back on any failure)\n"
		"  rollback [REASON] | commit   end a spawn-mode trial either way\n"
		"  sessions | files | subsystems | devices\n"
		"  device PATH requested 0|1    ask for a device to be kept (or not)\n"
		"  dump [incoming|outgoing] [--blob NAME]\n"
		"                               the handover as device-tree source\n");
}

static int lost(int code)
{
	if (code == EXIT_TIMEOUT)
		fprintf(stderr,
			"luoctl: no answer from service %s in time (--timeout)\n",
			service);
	else
		fprintf(stderr,
			"luoctl: the connection to service %s was lost mid-command: the service may have exited or crashed; check its log and run 'luoctl %s status'\n",
			service, target);
	return code;
}

static int refused(const struct reply *r)
{
	fprintf(stderr, "luoctl: %s\n", r->err_msg ? r->err_msg : "");
	return EXIT_REFUSED;
}

/* Send one request and read its reply; prints errors itself. */
static int request(struct client *c, int argc, char **argv, struct reply *r)
{
	int code = client_send(c, argc, argv);

	if (!code)
		code = client_reply(c, r, NULL, NULL);
	if (code)
		return lost(code);
	return r->ok ? 0 : refused(r);
}

static void fmt_ms(char *buf, size_t len, const char *ns)
{
	snprintf(buf, len, "%.3f ms", ns ? strtod(ns, NULL) / 1e6 : 0.0);
}

static int cmd_status(struct client *c)
{
	char *argv[] = {"status"};
	struct reply r;
	const struct row *row;
	const char *last, *bo;
	int code = request(c, 1, argv, &r);

	if (code || !r.nrows)
		goto out;
	row = &r.rows[0];
	if (json) {
		print_json_rows(&r);
		goto out;
	}
	last = row_get(row, "last_update_ns");
	bo = row_get(row, "blackout_ns");
	printf("service      %s\n", row_get(row, "name"));
	printf("pid          %s\n", row_get(row, "pid"));
	printf("state        %s\n", row_get(row, "state"));
	printf("live updates %s\n", row_get(row, "num"));
	if (last) {
		time_t t = (time_t)(strtoull(last, NULL, 10) / 1000000000ULL);
		char when[64], ms[32];

		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S %z",
			 localtime(&t));
		fmt_ms(ms, sizeof(ms), bo);
		printf("last update  %s\n", when);
		printf("blackout     %s\n", ms);
	} else {
		printf("last update  never (this image did not start from a live update)\n");
	}
	printf("socket       %s\n", row_get(row, "path"));
	if (row_get(row, "trial"))
		printf("trial        %s: old image pid %s kept, %s ms of %s ms left, health %s, finish %s\n",
		       row_get(row, "trial"), row_get(row, "old_pid"),
		       row_get(row, "trial_left_ms"), row_get(row, "trial_ms"),
		       row_get(row, "health"),
		       row_get(row, "finish_requested"));
out:
	reply_free(&r);
	return code;
}

static int cmd_simple_args(struct client *c, int argc, char **argv)
{
	struct reply r;
	int code = request(c, argc, argv, &r);

	if (!code) {
		if (json) {
			printf("{\"service\": ");
			json_string(c->name);
			printf(", \"command\": ");
			json_string(argv[0]);
			printf(", \"ok\": true}\n");
		} else {
			printf("%s: %s done\n", c->name, argv[0]);
		}
	}
	reply_free(&r);
	return code;
}

static int cmd_simple(struct client *c, char *cmd)
{
	return cmd_simple_args(c, 1, &cmd);
}

static int cmd_list(struct client *c, int argc, char **argv,
		    const char *const *cols)
{
	struct reply r;
	int code = request(c, argc, argv, &r);

	if (!code)
		print_table(&r, cols, json);
	reply_free(&r);
	return code;
}

struct stage_log {
	int n;
	int adopted_fd; /* the health command starts at "adopted" */
};

static void on_stage(const char *name, const char *us, void *arg)
{
	struct stage_log *log = arg;

	log->n++;
	if (log->adopted_fd >= 0 && !strcmp(name, "adopted") &&
	    write(log->adopted_fd, "a", 1) != 1)
		fprintf(stderr, "luoctl: cannot start the health command\n");
	if (json)
		return;
	printf("  %-8s %10.3f ms\n", name, strtod(us, NULL) / 1e3);
	fflush(stdout);
}

/* The old image's answer to a spawn-mode update. */
static int spawn_result(struct client *c, struct reply *r)
{
	const struct row *row = r->nrows ? &r->rows[0] : NULL;
	int code = r->ok ? 0 : EXIT_REFUSED;
	char ms[32], ran[32];

	if (!r->ok && !strcmp(r->err_name, "ECANCELED"))
		code = EXIT_ROLLED_BACK;
	if (json && row) {
		print_json_rows(r);
	} else if (row && (r->ok || code == EXIT_ROLLED_BACK)) {
		fmt_ms(ms, sizeof(ms), row_get(row, "blackout_ns"));
		fmt_ms(ran, sizeof(ran), row_get(row, "ran_ns"));
		if (r->ok)
			printf("%s: committed: pid %s serves (old pid %s ended), blackout %s, new image ran %s before the commit\n",
			       c->name, row_get(row, "new_pid"),
			       row_get(row, "old_pid"), ms, ran);
		else
			printf("%s: rolled back (%s): pid %s serves again; the new image (pid %s) ran %s\n",
			       c->name, row_get(row, "result"),
			       row_get(row, "old_pid"), row_get(row, "new_pid"),
			       ran);
	}
	if (!r->ok)
		fprintf(stderr, "luoctl: %s\n", r->err_msg ? r->err_msg : "");
	reply_free(r);
	return code;
}

static int cmd_update(struct client *c, int argc, char **argv)
{
	bool finish = false, explicit_args = false;
	char path[PATH_MAX], **req, words[2][48];
	struct stage_log log = {.adopted_fd = -1};
	struct txn_opts to;
	struct reply r;
	pid_t prober = 0;
	int i = 1, n = 0, code;

	if (i < argc && !strcmp(argv[i], "--finish")) {
		finish = true;
		i++;
	}
	code = txn_parse_opts(argc, argv, &i, &to);
	if (code)
		return code;
	if (i >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!realpath(argv[i], path)) {
		fprintf(stderr, "luoctl: update: %s: %s\n", argv[i],
			strerror(errno));
		return EXIT_USAGE;
	}
	i++;
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
	c->timeout_ms = c->timeout_ms < 0 ? 60000 : c->timeout_ms;
	if (!to.spawn && !to.mode_given && !json)
		fprintf(stderr,
			"luoctl: exec mode: a new image that crashes after its exec cannot be rolled back; for an untested release use --mode spawn --trial 30s --health CMD\n");
	if (to.spawn) {
		/* The trial and both deadlines, with room to spare. */
		long long need = (long long)to.trial_ms +
				 2 * (long long)(to.deadline_ms ?: 10000) +
				 30000;

		if (c->timeout_ms < need)
			c->timeout_ms = (int)need;
		prober = txn_start_prober(&to, service_path, &log.adopted_fd);
	}
	code = client_send(c, n, req);
	free(req);
	if (!code)
		code = client_reply(c, &r, on_stage, &log);
	txn_stop_prober(prober, log.adopted_fd);
	if (to.spawn && !code)
		return spawn_result(c, &r);
	if (code) {
		if (code == EXIT_LOST && log.n >= 2)
			fprintf(stderr,
				"luoctl: the old image exec'd but the new one never answered: it may have crashed in start-up or does not serve the control socket; run 'luoctl %s status'\n",
				target);
		else
			lost(code);
		return code;
	}
	if (!r.ok) {
		code = refused(&r);
		reply_free(&r);
		return code;
	}
	if (json) {
		print_json_rows(&r);
	} else if (r.nrows) {
		char ms[32];

		fmt_ms(ms, sizeof(ms), row_get(&r.rows[0], "blackout_ns"));
		printf("%s: updated: pid %s, live update #%s, blackout %s, state %s\n",
		       c->name, row_get(&r.rows[0], "pid"),
		       row_get(&r.rows[0], "num"), ms,
		       row_get(&r.rows[0], "state"));
	}
	if (finish && r.nrows &&
	    !strcmp(row_get(&r.rows[0], "state") ?: "", "updated")) {
		char *fin = "finish", *st = "status";
		struct reply f;

		reply_free(&r);
		code = client_send(c, 1, &fin);
		if (!code)
			code = client_reply(c, &f, NULL, NULL);
		if (code)
			return lost(code);
		if (f.ok) {
			if (!json)
				printf("%s: finish done\n", c->name);
			reply_free(&f);
			return 0;
		}
		/* The service may have finished on its own meanwhile. */
		code = request(c, 1, &st, &r);
		if (!code && r.nrows &&
		    !strcmp(row_get(&r.rows[0], "state") ?: "", "normal")) {
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
	if (finish && !json)
		printf("%s: already finished by the service\n", c->name);
	reply_free(&r);
	return 0;
}

static int cmd_dump(struct client *c, int argc, char **argv)
{
	const char *blob = NULL, *dir = NULL;
	char *req[2] = {"dump", NULL};
	struct reply r;
	size_t shown = 0;
	int code;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--blob") && i + 1 < argc)
			blob = argv[++i];
		else if (!strcmp(argv[i], "incoming") ||
			 !strcmp(argv[i], "outgoing"))
			dir = argv[i];
		else
			return usage(stderr), EXIT_USAGE;
	}
	req[1] = (char *)dir;
	code = request(c, dir ? 2 : 1, req, &r);
	for (size_t i = 0; !code && i < r.nrows; i++) {
		const char *name = row_get(&r.rows[i], "name");
		const char *hex = row_get(&r.rows[i], "hex");
		size_t len = hex ? strlen(hex) / 2 : 0;
		unsigned char *bin;

		if (!name || !hex || (blob && strcmp(blob, name)))
			continue;
		bin = malloc(len ? len : 1);
		for (size_t k = 0; bin && k < len; k++)
			sscanf(hex + 2 * k, "%2hhx", &bin[k]);
		if (shown++)
			printf("\n");
		if (!bin || print_dts(bin, len, name))
			code = EXIT_LOST;
		free(bin);
	}
	if (!code && !shown) {
		fprintf(stderr, "luoctl: no blob named '%s' in the handover\n",
			blob);
		code = EXIT_REFUSED;
	}
	reply_free(&r);
	return code;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"service", required_argument, NULL, 's'},
		{"socket", required_argument, NULL, 'S'},
		{"json", no_argument, NULL, 'j'},
		{"timeout", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	static struct client c = {.fd = -1, .timeout_ms = -1};
	char path[108] = "";
	const char *cmd;
	int opt, code;

	while ((opt = getopt_long(argc, argv, "+s:S:jt:h", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			service = optarg;
			snprintf(target, sizeof(target), "-s %s", optarg);
			if (luo_ctl_default_path(optarg, path, sizeof(path))) {
				fprintf(stderr, "luoctl: name too long\n");
				return EXIT_USAGE;
			}
			break;
		case 'S':
			snprintf(path, sizeof(path), "%s", optarg);
			service = optarg;
			snprintf(target, sizeof(target), "-S %s", optarg);
			break;
		case 'j':
			json = true;
			break;
		case 't':
			c.timeout_ms = (int)(strtod(optarg, NULL) * 1000);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc || !*path) {
		if (!*path)
			fprintf(stderr,
				"luoctl: name the service: -s NAME or -S PATH\n");
		usage(stderr);
		return EXIT_USAGE;
	}
	cmd = argv[optind];
	argc -= optind;
	argv += optind;
	if (strcmp(cmd, "update"))
		c.timeout_ms = c.timeout_ms < 0 ? 30000 : c.timeout_ms;
	snprintf(service_path, sizeof(service_path), "%s", path);
	code = client_connect(&c, path);
	if (code)
		return code;
	if (!strcmp(cmd, "status") && argc == 1)
		code = cmd_status(&c);
	else if ((!strcmp(cmd, "prepare") || !strcmp(cmd, "freeze") ||
		  !strcmp(cmd, "cancel") || !strcmp(cmd, "finish")) &&
		 argc == 1)
		code = cmd_simple(&c, argv[0]);
	else if (!strcmp(cmd, "update"))
		code = cmd_update(&c, argc, argv);
	else if (!strcmp(cmd, "rollback") ||
		 (!strcmp(cmd, "commit") && argc == 1))
		code = cmd_txn(&c, path, argc, argv, json);
	else if (!strcmp(cmd, "sessions") && argc == 1)
		code = cmd_list(&c, 1, argv,
				(const char *const[]){"name", "direction",
						      "files", "status", NULL});
	else if (!strcmp(cmd, "files") && argc == 1)
		code = cmd_list(&c, 1, argv,
				(const char *const[]){"session", "direction",
						      "token", "handler",
						      "kind", "inode", "status",
						      NULL});
	else if (!strcmp(cmd, "subsystems") && argc == 1)
		code = cmd_list(&c, 1, argv,
				(const char *const[]){"name", "prepared",
						      "incoming",
						      "incoming_data",
						      "outgoing_data", NULL});
	else if (!strcmp(cmd, "devices") && argc == 1)
		code = cmd_list(&c, 1, argv,
				(const char *const[]){"path", "bus", "driver",
						      "registered", "requested",
						      "preserved", "reclaimed",
						      NULL});
	else if (!strcmp(cmd, "device") && argc == 4 &&
		 !strcmp(argv[2], "requested") &&
		 (!strcmp(argv[3], "0") || !strcmp(argv[3], "1")))
		code = cmd_simple_args(&c, argc, argv);
	else if (!strcmp(cmd, "dump"))
		code = cmd_dump(&c, argc, argv);
	else {
		usage(stderr);
		code = EXIT_USAGE;
	}
	close(c.fd);
	return code;
}
