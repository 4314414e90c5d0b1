// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stddef.h>

#include "recorder.h"

struct rec_journal rec;

static struct rec_subsys *of(struct liveupdate_subsystem *h)
{
	return (struct rec_subsys *)((char *)h -
				     offsetof(struct rec_subsys, h));
}

static void note(enum rec_op op, struct liveupdate_subsystem *h, uint64_t data)
{
	if (rec.n < REC_MAX_EVENTS)
		rec.ev[rec.n++] = (struct rec_event){op, of(h)->id, data};
	if (rec.try_lock_in_callback) {
		int err = liveupdate_state_read_enter();

		struct luo_session *sess;
		uint64_t d;

		if (err == -EDEADLK)
			rec.deadlk_seen++;
		else if (!err)
			liveupdate_state_read_exit();
		/* Allowed in a callback: works (here: no data, not updated). */
		if (liveupdate_get_subsystem_data(h, &d) == -EDEADLK)
			rec.allowed_refused++;
		/* Not allowed: refused at once instead of hanging. */
		if (liveupdate_cancel() != -EDEADLK)
			rec.refusal_missing++;
		if (liveupdate_create_session("in-callback", &sess) != -EDEADLK)
			rec.refusal_missing++;
	}
}

static int rec_prepare(struct liveupdate_subsystem *h, uint64_t *data)
{
	struct rec_subsys *s = of(h);

	note(REC_PREPARE, h, s->prepare_data);
	if (s->prepare_ret)
		return s->prepare_ret;
	*data = s->prepare_data;
	return 0;
}

static int rec_freeze(struct liveupdate_subsystem *h, uint64_t *data)
{
	struct rec_subsys *s = of(h);

	note(REC_FREEZE, h, *data);
	if (s->freeze_ret)
		return s->freeze_ret;
	if (s->freeze_data)
		*data = s->freeze_data;
	return 0;
}

static void rec_cancel(struct liveupdate_subsystem *h, uint64_t data)
{
	note(REC_CANCEL, h, data);
}

static void rec_boot(struct liveupdate_subsystem *h, uint64_t data)
{
	note(REC_BOOT, h, data);
}

static void rec_finish(struct liveupdate_subsystem *h, uint64_t data)
{
	note(REC_FINISH, h, data);
}

const struct liveupdate_subsystem_ops rec_ops = {
	.prepare = rec_prepare,
	.freeze = rec_freeze,
	.cancel = rec_cancel,
	.boot = rec_boot,
	.finish = rec_finish,
};

void rec_reset(void)
{
	memset(&rec, 0, sizeof(rec));
}

void rec_subsys_init(struct rec_subsys *s, int id, const char *name)
{
	memset(s, 0, sizeof(*s));
	s->id = id;
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->h.ops = &rec_ops;
	s->h.name = s->name;
}

int rec_count(enum rec_op op, int id)
{
	int c = 0;

	for (int i = 0; i < rec.n; i++)
		c += rec.ev[i].op == op && rec.ev[i].id == id;
	return c;
}

const char *rec_order(enum rec_op op)
{
	static char buf[REC_MAX_EVENTS + 1];
	int k = 0;

	for (int i = 0; i < rec.n; i++)
		if (rec.ev[i].op == op)
			buf[k++] = (char)('0' + rec.ev[i].id);
	buf[k] = 0;
	return buf;
}

void rec_log_handler(enum luo_log_level level, const char *msg, void *arg)
{
	(void)arg;
	if (level == LUO_LOG_ERR) {
		rec.log_errors++;
		snprintf(rec.last_error, sizeof(rec.last_error), "%s", msg);
	} else if (level == LUO_LOG_WARN) {
		rec.log_warnings++;
	}
}

int rec_luo_start(const struct luo_init_opts *opts)
{
	rec_reset();
	luo_set_log_handler(rec_log_handler, NULL);
	return luo_init(opts) ? -1 : 0;
}

int rec_luo_stop(void)
{
	enum liveupdate_state s = liveupdate_get_state();

	if (s == LIVEUPDATE_STATE_PREPARED || s == LIVEUPDATE_STATE_FROZEN)
		liveupdate_cancel();
	luo_set_log_handler(NULL, NULL);
	return luo_exit() ? -1 : 0;
}
