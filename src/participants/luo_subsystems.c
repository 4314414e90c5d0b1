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
#include <libfdt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kho_internal.h"
#include "log.h"
#include "luo_internal.h"

/* Guarded by the state lock: written only in NORMAL/UPDATED (read side,
 * plus this mutex) and walked by transitions (write side). */
static pthread_mutex_t subsys_lock = PTHREAD_MUTEX_INITIALIZER;
static struct liveupdate_subsystem *head, *tail;

#define for_each_subsystem(h) for (h = head; h; h = h->next)
#define for_each_subsystem_reverse(h) for (h = tail; h; h = h->prev)

/* Incoming subsystem data, copied out of the FDT at adoption. */
struct incoming_subsystem {
	char name[KHO_NAME_MAX + 1];
	uint64_t data;
	bool claimed;
};

static struct {
	struct incoming_subsystem *subsys;
	size_t nsubsys;
	bool active;
} in;

static struct incoming_subsystem *in_find(const char *name);

/**
 * luo_subsystems_in_parse() - check and keep the incoming "subsystems" node.
 * @fdt: the incoming LUO FDT, already checked by luo_abi_in_parse().
 * @why: buffer for the reason of a refusal.
 * @whylen: its size.
 *
 * Return: 0, -EBADMSG or -EPROTONOSUPPORT (with @why set), -ENOMEM.
 */
int luo_subsystems_in_parse(const void *fdt, char *why, size_t whylen)
{
	int prop, node, err;
	size_t n = 0;

	err = luo_fdt_check_node(fdt, LUO_SUBSYSTEMS_NODE,
				 LUO_SUBSYSTEMS_COMPATIBLE, &node, why, whylen);
	if (err)
		return err;

	fdt_for_each_property_offset(prop, fdt, node)
		n++;
	in.subsys = calloc(n ? n : 1, sizeof(*in.subsys));
	if (!in.subsys)
		return luo_reason(why, whylen, -ENOMEM, "out of memory");
	fdt_for_each_property_offset(prop, fdt, node) {
		const char *name;
		const fdt64_t *val;
		int len;

		val = fdt_getprop_by_offset(fdt, prop, &name, &len);
		if (!val || !name)
			return luo_reason(why, whylen, -EBADMSG,
					  "unreadable subsystems property");
		if (!strcmp(name, "compatible"))
			continue;
		if (!luo_kho_name_valid(name) || len != sizeof(*val))
			return luo_reason(
				why, whylen, -EBADMSG,
				"subsystem entry '%.63s' is malformed", name);
		if (in_find(name))
			return luo_reason(why, whylen, -EBADMSG,
					  "subsystem '%s' appears twice", name);
		strcpy(in.subsys[in.nsubsys].name, name);
		in.subsys[in.nsubsys].data = fdt64_ld(val);
		in.nsubsys++;
	}
	in.active = true;
	return 0;
}

/**
 * luo_subsystems_in_from_crash() - the incoming values of a crashed process
 * @e: the crash record's entries, already checked (names valid, unique).
 * @n: their number.
 *
 * Return: 0 or -ENOMEM.
 */
int luo_subsystems_in_from_crash(const struct kho_crash_entry *e, size_t n)
{
	in.subsys = calloc(n ? n : 1, sizeof(*in.subsys));
	if (!in.subsys)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		snprintf(in.subsys[i].name, sizeof(in.subsys[i].name), "%s",
			 e[i].name);
		in.subsys[i].data = e[i].data;
	}
	in.nsubsys = n;
	in.active = true;
	return 0;
}

/**
 * luo_subsystems_in_release() - drop the incoming subsystem values.
 */
void luo_subsystems_in_release(void)
{
	free(in.subsys);
	in.subsys = NULL;
	in.nsubsys = 0;
	in.active = false;
}

static struct incoming_subsystem *in_find(const char *name)
{
	for (size_t i = 0; name && i < in.nsubsys; i++)
		if (!strcmp(in.subsys[i].name, name))
			return &in.subsys[i];
	return NULL;
}

int luo_abi_in_subsystem(const char *name, uint64_t *data)
{
	struct incoming_subsystem *s;

	if (!in.active)
		return -ENODATA;
	s = in_find(name);
	if (!s)
		return -ENOENT;
	*data = s->data;
	return 0;
}

void luo_abi_in_subsystem_mark(const char *name)
{
	struct incoming_subsystem *s = in_find(name);

	if (s)
		s->claimed = true;
}

void luo_abi_in_warn_unclaimed(void)
{
	for (size_t i = 0; i < in.nsubsys; i++)
		if (!in.subsys[i].claimed)
			pr_warn("subsystem '%s' left data (%#llx) but never registered in this image; it is dropped",
				in.subsys[i].name,
				(unsigned long long)in.subsys[i].data);
}

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

	if (!h || !h->ops || !luo_kho_name_valid(h->name)) {
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

static void subsystems_forget(void)
{
	luo_subsystems_in_release();
	luo_subsystems_forget();
}

const struct luo_participant luo_subsystems_participant = {
	.name = "subsystems",
	.prepare = subsystems_prepare,
	.freeze = subsystems_freeze,
	.cancel = subsystems_cancel,
	.finish = subsystems_finish,
	.release_incoming = luo_subsystems_in_release,
	.forget = subsystems_forget,
};

void luo_subsystems_foreach(void (*fn)(const struct luo_subsystem_row *row,
				       void *arg),
			    void *arg)
{
	struct liveupdate_subsystem *h;

	pthread_mutex_lock(&subsys_lock);
	for_each_subsystem(h) {
		struct luo_subsystem_row row = {
			.name = h->name,
			.prepared = h->prepared,
			.outgoing_data = h->private_data,
		};

		row.incoming =
			!luo_abi_in_subsystem(h->name, &row.incoming_data);
		if (!row.incoming)
			row.incoming_data = 0;
		fn(&row, arg);
	}
	pthread_mutex_unlock(&subsys_lock);
}
