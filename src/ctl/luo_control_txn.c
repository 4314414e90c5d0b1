// SPDX-License-Identifier: MIT
/*
 * The control socket's part in an update as a transaction
 * (docs/control-protocol.md): "update" options for spawn mode, trials and
 * deadlines; "rollback" and "commit", answered by the new image during
 * its trial; the trial's rows in "status".
 *
 * In spawn mode the old image keeps the requesting connection and answers
 * it itself: the stages, then the commit (and the old process ends), or
 * the rollback with its report (ECANCELED).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <luo/luo.h>

#include "log.h"
#include "luo_control_internal.h"
#include "luo_internal.h"
#include "luo_txn.h"

/* Strict decimal milliseconds, at most a day. */
static int parse_ms(const char *v, uint64_t *ms)
{
	char *end;
	unsigned long long x;

	if (*v < '0' || *v > '9')
		return -EINVAL;
	errno = 0;
	x = strtoull(v, &end, 10);
	if (errno || *end || x > 86400000ULL)
		return -EINVAL;
	*ms = x;
	return 0;
}

int luo_ctl_update_parse(char **w, int n, struct luo_ctl_update_opts *o,
			 struct ctl_buf *out)
{
	int i;

	*o = (struct luo_ctl_update_opts){.mode = LIVEUPDATE_MODE_EXEC};
	for (i = 2; i < n && w[i][0] != '/'; i++) {
		const char *eq = strchr(w[i], '=');
		const char *v = eq ? eq + 1 : "";
		size_t klen = eq ? (size_t)(eq - w[i]) : strlen(w[i]);
		int err = 0;

		if (klen == 4 && !strncmp(w[i], "mode", 4)) {
			if (!strcmp(v, "spawn"))
				o->mode = LIVEUPDATE_MODE_SPAWN;
			else if (strcmp(v, "exec"))
				err = -EINVAL;
		} else if (klen == 8 && !strncmp(w[i], "trial_ms", 8)) {
			err = parse_ms(v, &o->trial_ms);
		} else if (klen == 11 && !strncmp(w[i], "deadline_ms", 11)) {
			err = parse_ms(v, &o->deadline_ms);
		} else if (klen == 5 && !strncmp(w[i], "probe", 5)) {
			o->external_probe = !strcmp(v, "external");
			err = o->external_probe ? 0 : -EINVAL;
		} else {
			err = -EINVAL;
		}
		if (err) {
			luo_ctl_error(
				out, err,
				"update: bad option '%s' (mode=exec|spawn, trial_ms=N, deadline_ms=N, probe=external; N in ms, at most a day), or PATH is not absolute",
				w[i]);
			return -1;
		}
	}
	if (o->mode == LIVEUPDATE_MODE_EXEC &&
	    (o->trial_ms || o->deadline_ms || o->external_probe)) {
		luo_ctl_error(
			out, -EINVAL,
			"update: a trial, a deadline and a health probe need spawn mode (--mode spawn): in exec mode the old image is gone once the exec succeeds");
		return -1;
	}
	if (o->trial_ms && !o->external_probe && !luo_txn_hooks_have_health()) {
		luo_ctl_error(
			out, -EINVAL,
			"update: a trial needs a health probe, and this service registers none: give --health CMD, or update without --trial");
		return -1;
	}
	return i;
}

bool luo_ctl_txn_busy(struct luo_control *ctl, struct ctl_buf *out)
{
	struct liveupdate_txn_status st;

	if (liveupdate_txn_get_status(&st))
		return false;
	luo_ctl_error(
		out, -EBUSY,
		"update: the previous update of %s is still in its trial (old image pid %d kept, %llu ms in): run 'luoctl -s %s commit' or 'luoctl -s %s rollback' first",
		ctl->name, (int)st.old_pid, (unsigned long long)st.elapsed_ms,
		ctl->name, ctl->name);
	return true;
}

/* What the progress callback of a spawn-mode update works on. */
struct spawn_peer {
	struct luo_control *ctl;
	struct ctl_conn *conn; /* the one that asked for the update */
	bool quiesced;
};

static void on_progress(const char *stage, uint64_t ns, void *arg)
{
	struct spawn_peer *sp = arg;

	/*
	 * This loop runs the update until its commit or rollback, so the
	 * other peers it accepted would wait through the whole trial: they
	 * get their answers and an end of file now and reconnect, to the
	 * new image while it serves the listener.  Only once prepare has
	 * succeeded: an update refused before it disturbs no one.
	 */
	if (!sp->quiesced) {
		luo_ctl_conns_quiesce(sp->ctl, sp->conn);
		sp->quiesced = true;
	}
	luo_ctl_stage(sp->conn, stage, ns);
}

void luo_ctl_update_spawn(struct luo_control *ctl, struct ctl_conn *conn,
			  const char *path, char **argv,
			  const struct luo_ctl_update_opts *uo,
			  struct ctl_buf *out)
{
	struct spawn_peer peer = {.ctl = ctl, .conn = conn};
	struct liveupdate_update_opts o = {
		.mode = LIVEUPDATE_MODE_SPAWN,
		.path = path,
		.argv = argv,
		.trial_ms = uo->trial_ms,
		.deadline_ms = uo->deadline_ms,
		.flags = uo->external_probe ? LIVEUPDATE_UPDATE_EXTERNAL_PROBE
					    : 0,
		.progress = on_progress,
		.arg = &peer,
	};
	struct liveupdate_update_report r;
	int err;

	pr_info("control socket: live update to %s in spawn mode (trial %llu ms)",
		path, (unsigned long long)uo->trial_ms);
	err = liveupdate_update(&o, &r);
	luo_ctl_row_begin(out);
	luo_ctl_row_str(out, "result", liveupdate_txn_reason_name(r.reason));
	luo_ctl_row_u64(out, "old_pid", (uint64_t)getpid());
	luo_ctl_row_u64(out, "new_pid", (uint64_t)r.new_pid);
	luo_ctl_row_i64(out, "exit_status", r.exit_status);
	luo_ctl_row_i64(out, "signal", r.term_signal);
	luo_ctl_row_u64(out, "ran_ns", r.ran_ns);
	luo_ctl_row_u64(out, "blackout_ns", r.blackout_ns);
	luo_ctl_row_u64(out, "rollback_ns", r.rollback_ns);
	luo_ctl_row_str(out, "text", r.text);
	luo_ctl_row_end(out);
	if (!err) {
		luo_ctl_buf_printf(out, "ok\n");
		/* This process has handed everything over: answer, end. */
		luo_ctl_conn_send_last(conn, 2000);
		fflush(NULL);
		_exit(0);
	}
	if (err == -ECANCELED)
		luo_ctl_error(
			out, err,
			"update rolled back (%s): %s; the old image (pid %d) serves again with everything it had",
			liveupdate_txn_reason_name(r.reason), r.text,
			(int)getpid());
	else
		luo_ctl_error(
			out, err,
			"update: %s (%s); nothing changed, the service keeps serving (see its log)",
			r.text[0] ? r.text : "failed", strerror(-err));
}

void luo_ctl_txn_command(struct luo_control *ctl, struct ctl_conn *conn,
			 char **w, int n, struct ctl_buf *out)
{
	struct liveupdate_txn_status st;
	char reason[160] = "";
	int err;

	/* "rollback health TEXT": an outside health probe failed. */
	bool health = n > 1 && !strcmp(w[1], "health");

	for (int i = health ? 2 : 1; i < n; i++)
		snprintf(reason + strlen(reason),
			 sizeof(reason) - strlen(reason), "%s%s",
			 i > 1 ? " " : "", w[i]);
	if (liveupdate_txn_get_status(&st)) {
		luo_ctl_error(
			out, -ENOENT,
			"%s: no update of %s is in its trial (pid %d, state %s): nothing to %s",
			w[0], ctl->name, (int)getpid(),
			liveupdate_state_name(liveupdate_get_state()), w[0]);
		return;
	}
	luo_ctl_row_begin(out);
	luo_ctl_row_u64(out, "old_pid", (uint64_t)st.old_pid);
	luo_ctl_row_u64(out, "new_pid", (uint64_t)st.new_pid);
	luo_ctl_row_end(out);
	luo_ctl_buf_printf(out, "ok\n");
	if (!strcmp(w[0], "commit")) {
		err = liveupdate_txn_commit();
	} else {
		/* Answer first: the old image kills this process. */
		luo_ctl_conn_send_last(conn, 2000);
		luo_ctl_buf_reset(out);
		err = luo_txn_rollback_as(health ? LIVEUPDATE_TXN_HEALTH
						 : LIVEUPDATE_TXN_REQUESTED,
					  reason[0] ? reason
						    : "asked by the operator");
	}
	if (err) {
		luo_ctl_buf_reset(out);
		luo_ctl_error(out, err, "%s: %s", w[0], strerror(-err));
	}
}

void luo_ctl_txn_status_rows(struct ctl_buf *out)
{
	struct liveupdate_txn_status st;

	if (liveupdate_txn_get_status(&st))
		return;
	luo_ctl_row_str(out, "trial", "running");
	luo_ctl_row_u64(out, "old_pid", (uint64_t)st.old_pid);
	luo_ctl_row_u64(out, "trial_ms", st.trial_ms);
	luo_ctl_row_u64(
		out, "trial_left_ms",
		st.elapsed_ms >= st.trial_ms ? 0 : st.trial_ms - st.elapsed_ms);
	luo_ctl_row_str(out, "health",
			st.health == 1	 ? "none-yet"
			: st.health == 0 ? "ok"
					 : strerror(-st.health));
	luo_ctl_row_str(out, "finish_requested",
			st.finish_requested ? "yes" : "no");
}
