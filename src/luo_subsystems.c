// SPDX-License-Identifier: MIT
/*
 * Subsystems: the service's own modules, each with a name and a u64 that
 * reaches the next image through the LUO FDT's "subsystems" node.
 *
 * Prepare and freeze are two-phase: first every callback runs and its u64
 * is kept aside; only when all succeeded are the values written to the
 * FDT.  A subsystem is cancelled only if its prepare succeeded, exactly
 * once, in reverse registration order.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "kho_internal.h"
#include "log.h"
#include "luo_control_proto.h"
#include "luo_internal.h"

/* Guarded by the state lock: written only in NORMAL/UPDATED (read side,
 * plus this mutex) and walked by transitions (write side). */
static pthread_mutex_t subsys_lock = PTHREAD_MUTEX_INITIALIZER;
static struct liveupdate_subsystem *head, *tail;

#define for_each_subsystem(h) for (h = head; h; h = h->next)
#define for_each_subsystem_reverse(h) for (h = tail; h; h = h->prev)

size_t luo_subsystems_names_len(size_t *count)
{
	struct liveupdate_subsystem *h;
	size_t len = 0;

	*count = 0;
	for_each_subsystem(h) {
		len += strlen(h->name) + 1;
		(*count)++;
	}
	return len;
}

static int check_registrable(struct liveupdate_subsystem *h, const char *op)
{
	enum liveupdate_state s = liveupdate_get_state();

	if (!h || !h->ops || !kho_name_valid(h->name)) {
		pr_err("%s: needs ops and a name of 1 to 63 characters of [A-Za-z0-9,._+-]",
		       op);
		return -EINVAL;
	}
	if (s == LIVEUPDATE_STATE_UNDEFINED) {
		pr_err("%s(%s): call luo_init() first", op, h->name);
		return -ENODEV;
	}
	if (s != LIVEUPDATE_STATE_NORMAL && s != LIVEUPDATE_STATE_UPDATED) {
		pr_err("%s(%s): not allowed in state %s; cancel or finish the update first",
		       op, h->name, liveupdate_state_name(s));
		return -EBUSY;
	}
	return 0;
}

static bool registered(struct liveupdate_subsystem *h)
{
	struct liveupdate_subsystem *it;

	for_each_subsystem(it)
		if (it == h)
			return true;
	return false;
}

int liveupdate_register_subsystem(struct liveupdate_subsystem *h)
{
	struct liveupdate_subsystem *it;
	uint64_t data;
	int err;

	err = liveupdate_state_read_enter();
	if (err)
		return err;
	err = check_registrable(h, "liveupdate_register_subsystem");
	if (err)
		goto out;
	pthread_mutex_lock(&subsys_lock);
	for_each_subsystem(it) {
		if (it == h || !strcmp(it->name, h->name)) {
			pr_err("liveupdate_register_subsystem: '%s' is already registered",
			       h->name);
			err = -EEXIST;
			break;
		}
	}
	if (!err) {
		h->next = NULL;
		h->prev = tail;
		h->prepared = 0;
		h->private_data = 0;
		if (tail)
			tail->next = h;
		else
			head = h;
		tail = h;
	}
	pthread_mutex_unlock(&subsys_lock);
	if (err)
		goto out;
	/* Booting from a live update: hand the subsystem its data now. */
	if (!luo_abi_in_subsystem(h->name, &data)) {
		luo_abi_in_subsystem_mark(h->name);
		if (h->ops->boot)
			h->ops->boot(h, data);
	}
out:
	liveupdate_state_read_exit();
	return err;
}

int liveupdate_unregister_subsystem(struct liveupdate_subsystem *h)
{
	int err = liveupdate_state_read_enter();

	if (err)
		return err;
	err = check_registrable(h, "liveupdate_unregister_subsystem");
	if (err)
		goto out;
	pthread_mutex_lock(&subsys_lock);
	if (!registered(h)) {
		pr_warn("liveupdate_unregister_subsystem: '%s' is not registered",
			h->name);
		err = -ENOENT;
	} else {
		if (h->prev)
			h->prev->next = h->next;
		else
			head = h->next;
		if (h->next)
			h->next->prev = h->prev;
		else
			tail = h->prev;
		h->next = h->prev = NULL;
	}
	pthread_mutex_unlock(&subsys_lock);
out:
	liveupdate_state_read_exit();
	return err;
}

int liveupdate_get_subsystem_data(struct liveupdate_subsystem *h,
				  uint64_t *data)
{
	int err;

	if (!h || !h->name || !data)
		return -EINVAL;
	/* A getter: allowed inside live update callbacks too. */
	err = luo_state_hold();
	if (err)
		return err;
	if (liveupdate_get_state() != LIVEUPDATE_STATE_UPDATED)
		err = -ENODATA;
	else
		err = luo_abi_in_subsystem(h->name, data);
	luo_state_unhold();
	return err;
}

void luo_subsystems_forget(void)
{
	pthread_mutex_lock(&subsys_lock);
	head = tail = NULL;
	pthread_mutex_unlock(&subsys_lock);
}

/* Cancel, in reverse, every subsystem whose prepare succeeded. */
static void subsystems_cancel(void)
{
	struct liveupdate_subsystem *h;

	for_each_subsystem_reverse(h) {
		if (!h->prepared)
			continue;
		h->prepared = 0;
		if (h->ops->cancel)
			h->ops->cancel(h, h->private_data);
		h->private_data = 0;
	}
}

/* Phase 2 of prepare and freeze: every value into the FDT, or none. */
static int subsystems_record(void)
{
	struct liveupdate_subsystem *h;
	int err;

	for_each_subsystem(h) {
		err = luo_abi_out_set_subsystem(h->name, h->private_data);
		if (err)
			return err;
	}
	return 0;
}

static int subsystems_prepare(void)
{
	struct liveupdate_subsystem *h;
	int err;

	for_each_subsystem(h) {
		uint64_t data = 0;

		if (h->ops->prepare) {
			err = h->ops->prepare(h, &data);
			if (err) {
				pr_err("subsystem '%s' refused prepare: %s",
				       h->name, strerror(-err));
				subsystems_cancel();
				return err;
			}
		}
		h->private_data = data;
		h->prepared = 1;
	}
	err = subsystems_record();
	if (err)
		subsystems_cancel();
	return err;
}

/* On failure the core cancels every participant, this one included. */
static int subsystems_freeze(void)
{
	struct liveupdate_subsystem *h;
	int err;

	for_each_subsystem(h) {
		uint64_t data = h->private_data;

		if (!h->ops->freeze)
			continue;
		err = h->ops->freeze(h, &data);
		if (err) {
			pr_err("subsystem '%s' refused freeze: %s", h->name,
			       strerror(-err));
			return err;
		}
		h->private_data = data;
	}
	return subsystems_record();
}

static void subsystems_finish(void)
{
	struct liveupdate_subsystem *h;

	for_each_subsystem(h) {
		uint64_t data;

		h->prepared = 0;
		if (luo_abi_in_subsystem(h->name, &data))
			continue;
		if (h->ops->finish)
			h->ops->finish(h, data);
	}
}

const struct luo_participant luo_subsystems_participant = {
	.name = "subsystems",
	.prepare = subsystems_prepare,
	.freeze = subsystems_freeze,
	.cancel = subsystems_cancel,
	.finish = subsystems_finish,
};

void luo_subsystems_describe(struct ctl_buf *b)
{
	struct liveupdate_subsystem *h;

	pthread_mutex_lock(&subsys_lock);
	for_each_subsystem(h) {
		uint64_t data;
		bool in = !luo_abi_in_subsystem(h->name, &data);

		ctl_row_begin(b);
		ctl_row_str(b, "name", h->name);
		ctl_row_str(b, "prepared", h->prepared ? "yes" : "no");
		ctl_row_str(b, "incoming", in ? "yes" : "no");
		ctl_row_u64(b, "incoming_data", in ? data : 0);
		ctl_row_u64(b, "outgoing_data", h->private_data);
		ctl_row_end(b);
	}
	pthread_mutex_unlock(&subsys_lock);
}
