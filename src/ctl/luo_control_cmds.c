// SPDX-License-Identifier: MIT
/*
 * The control socket's commands (docs/control-protocol.md).  Each writes
 * its rows and one final "ok" or "error" line; errors say what to do.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <luo/luo.h>

#include "log.h"
#include "luo_control_internal.h"
#include "luo_internal.h"

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* What to do next from @st, for error messages. */
static void state_error(struct luo_control *ctl, struct ctl_buf *out, int err,
			const char *cmd)
{
	enum liveupdate_state st = liveupdate_get_state();
	const char *n = ctl->name, *hint;
	char buf[256];

	switch (st) {
	case LIVEUPDATE_STATE_NORMAL:
		hint = !strcmp(cmd, "freeze")
			       ? "run 'luoctl -s %s prepare' first"
			       : "no update is in progress (%s)";
		break;
	case LIVEUPDATE_STATE_PREPARED:
		hint = "run 'luoctl -s %s freeze' to go on or 'cancel' to stop";
		break;
	case LIVEUPDATE_STATE_FROZEN:
		hint = "run 'luoctl -s %s cancel' to resume serving";
		break;
	case LIVEUPDATE_STATE_UPDATED:
		hint = "run 'luoctl -s %s finish' first";
		break;
	default:
		hint = "the library is not initialized (%s)";
		break;
	}
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	snprintf(buf, sizeof(buf), hint, n);
#pragma GCC diagnostic pop
	luo_ctl_error(out, err, "%s: service %s is in state %s: %s", cmd, n,
		      liveupdate_state_name(st), buf);
}

static void cmd_status(struct luo_control *ctl, struct ctl_buf *out)
{
	luo_ctl_row_begin(out);
	luo_ctl_row_str(out, "name", ctl->name);
	luo_ctl_row_u64(out, "pid", (uint64_t)getpid());
	luo_ctl_row_str(out, "state",
			liveupdate_state_name(liveupdate_get_state()));
	luo_ctl_row_u64(out, "num", liveupdate_get_num());
	luo_ctl_row_u64(out, "protocol", LUO_CONTROL_PROTOCOL);
	luo_ctl_row_str(out, "path", ctl->path);
	if (ctl->updated) {
		luo_ctl_row_u64(out, "last_update_ns", ctl->update_realtime_ns);
		luo_ctl_row_u64(out, "blackout_ns", ctl->blackout_ns);
	}
	luo_ctl_txn_status_rows(out);
	luo_ctl_row_end(out);
	luo_ctl_ok(out);
}

#define STATE_BIT(s) (1U << LIVEUPDATE_STATE_##s)

/* The transitions, and the states the library allows each in. */
static const struct {
	const char *name;
	int (*run)(void);
	unsigned int allowed;
} transitions[] = {
	{"prepare", liveupdate_prepare, STATE_BIT(NORMAL)},
	{"freeze", liveupdate_freeze, STATE_BIT(PREPARED)},
	{"cancel", liveupdate_cancel, STATE_BIT(PREPARED) | STATE_BIT(FROZEN)},
	{"finish", liveupdate_finish, STATE_BIT(UPDATED)},
};

/* Return: false if @cmd is not a transition. */
static bool cmd_transition(struct luo_control *ctl, const char *cmd,
			   struct ctl_buf *out)
{
	size_t i;
	int err;

	for (i = 0; i < sizeof(transitions) / sizeof(transitions[0]); i++)
		if (!strcmp(cmd, transitions[i].name))
			break;
	if (i == sizeof(transitions) / sizeof(transitions[0]))
		return false;
	/* Refused here, in the client's words, rather than in the log. */
	if (!(transitions[i].allowed & (1U << liveupdate_get_state()))) {
		state_error(ctl, out, -EINVAL, cmd);
		return true;
	}
	err = transitions[i].run();
	if (!err)
		luo_ctl_ok(out);
	else if (err == -EINVAL) /* the state changed meanwhile */
		state_error(ctl, out, err, cmd);
	else
		luo_ctl_error(
			out, err,
			"%s: a participant refused (%s); the service log says which, and the service is in state %s",
			cmd, strerror(-err),
			liveupdate_state_name(liveupdate_get_state()));
	return true;
}

/* argv for the new image: @path, then the current arguments. */
static char **current_args(const char *path)
{
	char buf[65536], **argv;
	ssize_t len = 0, n;
	size_t count = 0, k = 0;
	int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	while ((n = read(fd, buf + len, sizeof(buf) - 1 - (size_t)len)) > 0)
		len += n;
	close(fd);
	buf[len] = '\0';
	for (ssize_t i = 0; i < len; i++)
		count += !buf[i];
	argv = calloc(count + 2, sizeof(*argv));
	if (!argv)
		return NULL;
	argv[k++] = strdup(path);
	/* Skip argv[0]: the new image is @path. */
	for (ssize_t i = (ssize_t)strlen(buf) + 1; i < len;
	     i += (ssize_t)strlen(buf + i) + 1)
		argv[k++] = strdup(buf + i);
	for (size_t i = 0; i < k; i++)
		if (!argv[i])
			goto fail;
	return argv;
fail:
	for (size_t i = 0; i < k; i++)
		free(argv[i]);
	free(argv);
	return NULL;
}

static void free_args(char **argv)
{
	for (size_t i = 0; argv && argv[i]; i++)
		free(argv[i]);
	free(argv);
}

/* The connection asking for an update crosses it in CTL_SESSION. */
static int luo_ctl_preserve_requester(struct luo_control *ctl, int fd)
{
	if (!ctl->session)
		return -ENOENT;
	return liveupdate_session_preserve_fd(ctl->session, fd,
					      CTL_TOKEN_REQUESTER);
}

static void luo_ctl_unpreserve_requester(struct luo_control *ctl)
{
	if (ctl->session)
		liveupdate_session_unpreserve_fd(ctl->session,
						 CTL_TOKEN_REQUESTER);
}

/*
 * update keep|args [OPTION...] PATH [ARG...]: prepare, freeze, exec.  The
 * requesting connection is preserved, so the new image reports the
 * outcome on it.  Only on failure does this return.  With mode=spawn the
 * old image runs the transaction and answers (luo_control_txn.c).
 */
static void cmd_update(struct luo_control *ctl, struct ctl_conn *conn, char **w,
		       int n, struct ctl_buf *out)
{
	const char *path;
	char **argv;
	struct luo_ctl_update_opts uo;
	uint64_t t0, t1, t2;
	int err, first;
	bool keep;

	first = n >= 2 ? luo_ctl_update_parse(w, n, &uo, out) : -1;
	if (first < 0 || first >= n ||
	    (strcmp(w[1], "keep") && strcmp(w[1], "args"))) {
		if (!out->len)
			luo_ctl_error(
				out, -EINVAL,
				"usage: update keep|args [mode=exec|spawn] [trial_ms=N] [deadline_ms=N] [probe=external] PATH [ARG...]");
		return;
	}
	keep = !strcmp(w[1], "keep");
	/* The options are out of the way: PATH and its arguments follow. */
	w += first - 2;
	n -= first - 2;
	path = w[2];
	if (luo_ctl_txn_busy(ctl, out))
		return;
	if (liveupdate_get_state() != LIVEUPDATE_STATE_NORMAL) {
		state_error(ctl, out, -EBUSY, "update");
		return;
	}
	if (path[0] != '/' || access(path, X_OK)) {
		err = path[0] != '/' ? -EINVAL : -errno;
		luo_ctl_error(
			out, err,
			"update: cannot execute '%s' (%s): give the absolute path of an executable new binary",
			path, path[0] != '/' ? "not absolute" : strerror(-err));
		return;
	}
	if (keep) {
		argv = current_args(path);
	} else {
		argv = calloc((size_t)n - 1, sizeof(*argv));
		for (int i = 2; argv && i < n; i++)
			argv[i - 2] = strdup(w[i]);
	}
	if (!argv) {
		luo_ctl_error(out, -ENOMEM, "update: out of memory");
		return;
	}
	if (uo.mode == LIVEUPDATE_MODE_SPAWN) {
		/* The old image answers this connection itself. */
		luo_ctl_update_spawn(ctl, conn, path, argv, &uo, out);
		goto out;
	}
	err = luo_ctl_preserve_requester(ctl, conn->fd);
	if (err) {
		luo_ctl_error(
			out, err,
			"update: cannot keep this connection across the update: %s",
			strerror(-err));
		goto out;
	}
	t0 = mono_ns();
	err = liveupdate_prepare();
	t1 = mono_ns();
	if (err) {
		luo_ctl_unpreserve_requester(ctl);
		luo_ctl_error(
			out, err,
			"update: prepare failed (%s); nothing changed, the service keeps serving (see its log for the participant that refused)",
			strerror(-err));
		goto out;
	}
	luo_ctl_stage(conn, "prepare", t1 - t0);
	err = liveupdate_freeze();
	t2 = mono_ns();
	if (err) {
		luo_ctl_unpreserve_requester(ctl);
		luo_ctl_error(
			out, err,
			"update: freeze failed (%s); the update was cancelled and the service keeps serving",
			strerror(-err));
		goto out;
	}
	luo_ctl_stage(conn, "freeze", t2 - t1);
	/* The other peers get their answers and a clean end of file now:
	 * the exec would close them with their requests unread. */
	luo_ctl_conns_quiesce(ctl, conn);
	if (luo_ctl_conn_flush(conn) || conn->out_off < conn->out.len)
		pr_warn("control socket: the peer that asked for the update does not read; it misses the prepare and freeze stages");
	pr_info("control socket: live update to %s", path);
	err = liveupdate_reboot(path, argv, NULL);
	/* Still here: the exec failed and the library cancelled. */
	luo_ctl_unpreserve_requester(ctl);
	luo_ctl_error(
		out, err,
		"update: exec of '%s' failed (%s); the update was cancelled and the old image keeps serving in state %s",
		path, strerror(-err),
		liveupdate_state_name(liveupdate_get_state()));
out:
	free_args(argv);
}

void luo_ctl_report_update(struct ctl_buf *out)
{
	struct liveupdate_timing t;
	uint64_t now = mono_ns();

	if (liveupdate_get_timing(&t)) {
		luo_ctl_error(out, -ENODATA,
			      "the new image has no update timing");
	} else {
		luo_ctl_buf_printf(
			out, "stage exec us=%llu\n",
			(unsigned long long)(t.exec_ns - t.freeze_ns) / 1000);
		luo_ctl_buf_printf(
			out, "stage boot us=%llu\n",
			(unsigned long long)(t.adopted_ns - t.exec_ns) / 1000);
		luo_ctl_buf_printf(out, "stage ready us=%llu\n",
				   (unsigned long long)(now - t.adopted_ns) /
					   1000);
		luo_ctl_row_begin(out);
		luo_ctl_row_u64(out, "pid", (uint64_t)getpid());
		luo_ctl_row_u64(out, "num", liveupdate_get_num());
		luo_ctl_row_str(out, "state",
				liveupdate_state_name(liveupdate_get_state()));
		luo_ctl_row_u64(out, "blackout_ns", now - t.freeze_ns);
		luo_ctl_row_end(out);
		luo_ctl_ok(out);
	}
}

static void cmd_dump(struct luo_control *ctl, char **w, int n,
		     struct ctl_buf *out)
{
	bool incoming = liveupdate_get_state() == LIVEUPDATE_STATE_UPDATED;

	(void)ctl;
	if (n > 1 && !strcmp(w[1], "incoming"))
		incoming = true;
	else if (n > 1 && !strcmp(w[1], "outgoing"))
		incoming = false;
	else if (n > 1) {
		luo_ctl_error(out, -EINVAL, "usage: dump [incoming|outgoing]");
		return;
	}
	if (luo_kho_blobs_describe(out, incoming)) {
		luo_ctl_buf_reset(out);
		luo_ctl_error(
			out, -ENODATA,
			"no %s handover to show: the outgoing one exists from prepare until the update or a cancel, the incoming one from the update until finish (state is %s)",
			incoming ? "incoming" : "outgoing",
			liveupdate_state_name(liveupdate_get_state()));
		return;
	}
	luo_ctl_ok(out);
}

static int device_row(const struct liveupdate_device_info *d, void *arg)
{
	struct ctl_buf *out = arg;

	luo_ctl_row_begin(out);
	luo_ctl_row_str(out, "path", d->path);
	luo_ctl_row_str(out, "bus", d->bus);
	luo_ctl_row_str(out, "driver", d->driver);
	luo_ctl_row_u64(out, "depth", d->depth);
	luo_ctl_row_str(out, "registered", d->registered ? "yes" : "no");
	luo_ctl_row_str(out, "requested", d->requested ? "yes" : "no");
	luo_ctl_row_str(out, "preserved", d->preserved ? "yes" : "no");
	luo_ctl_row_str(out, "reclaimed", d->reclaimed ? "yes" : "no");
	luo_ctl_row_end(out);
	return 0;
}

static void cmd_devices(struct ctl_buf *out)
{
	int err = liveupdate_device_foreach(device_row, out);

	if (err) {
		luo_ctl_buf_reset(out);
		luo_ctl_error(out, err, "devices: cannot list them: %s",
			      strerror(-err));
		return;
	}
	luo_ctl_ok(out);
}

/* device PATH requested 0|1 */
static void cmd_device(struct luo_control *ctl, char **w, int n,
		       struct ctl_buf *out)
{
	int err;

	if (n != 4 || strcmp(w[2], "requested") ||
	    (strcmp(w[3], "0") && strcmp(w[3], "1"))) {
		luo_ctl_error(out, -EINVAL, "usage: device PATH requested 0|1");
		return;
	}
	err = liveupdate_device_request_path(w[1], w[3][0] == '1');
	if (!err)
		luo_ctl_ok(out);
	else if (err == -ENOENT)
		luo_ctl_error(
			out, err,
			"device: no registered device at '%s'; 'luoctl -s %s devices' lists them",
			w[1], ctl->name);
	else if (err == -EBUSY)
		state_error(ctl, out, err, "device");
	else if (err == -EINVAL)
		luo_ctl_error(
			out, err,
			"device: '%s' or one of its ancestors has a bus or driver without live update callbacks (the service log names it); it cannot be preserved",
			w[1]);
	else
		luo_ctl_error(out, err, "device: %s", strerror(-err));
}

void luo_ctl_run(struct luo_control *ctl, struct ctl_conn *conn, char **w,
		 int n, struct ctl_buf *out)
{
	const char *cmd = w[0];

	if (n == 1 && cmd_transition(ctl, cmd, out))
		return;
	if (!strcmp(cmd, "status") && n == 1) {
		cmd_status(ctl, out);
	} else if (!strcmp(cmd, "update")) {
		cmd_update(ctl, conn, w, n, out);
	} else if (!strcmp(cmd, "rollback") || !strcmp(cmd, "commit")) {
		luo_ctl_txn_command(ctl, conn, w, n, out);
	} else if ((!strcmp(cmd, "sessions") || !strcmp(cmd, "files")) &&
		   n == 1) {
		luo_sessions_describe(out, !strcmp(cmd, "files"));
		luo_ctl_ok(out);
	} else if (!strcmp(cmd, "subsystems") && n == 1) {
		luo_subsystems_describe(out);
		luo_ctl_ok(out);
	} else if (!strcmp(cmd, "devices") && n == 1) {
		cmd_devices(out);
	} else if (!strcmp(cmd, "device")) {
		cmd_device(ctl, w, n, out);
	} else if (!strcmp(cmd, "dump")) {
		cmd_dump(ctl, w, n, out);
	} else {
		luo_ctl_error(
			out, -EINVAL,
			"unknown request '%s' (or wrong arguments); luoctl(1) lists the commands",
			cmd);
	}
}
